import path from "node:path";
import { writeMosquittoFiles } from "../../coordinator/auth.ts";
import { marketSuite } from "../fixtures/market-suite.ts";
import { startMosquitto } from "../fixtures/mosquitto.ts";
import { needs } from "../fixtures/system-tools.ts";

// The same suite with Debian's mosquitto as the external broker (`--broker URL`), with the fleet's
// password and ACL files from the generator (coordinator/mosquitto-config.ts): the coordinator logs
// in with a coordinator credential from the fleet secret, bidders as nodes, the test as a submitter.
marketSuite("mosquitto", async (plan) => {
  const files = await writeMosquittoFiles(path.join(plan.dataDir, "mosquitto"), { secret: plan.secret, nodes: plan.nodes, submitters: plan.submitters });
  const m = await startMosquitto({ passwordFile: files.passwordFile, aclFile: files.aclFile });
  return { url: m.url, close: () => m.close() };
}, { skip: needs("mosquitto") });
