// The market suite on a broker cluster (docs/scale.md): the coordinator's embedded aedes joins a
// cluster through Redis (`brokerRedis`), and every node and submitter connects to ANOTHER member, an
// aedes started as `colony broker` starts it (same fleet auth hooks, same Redis): every announce,
// bid, award and result crosses members. Needs Debian's redis-server (CI installs it).
import { silentLogger } from "../../common/logger.ts";
import { createAedesAuthHooks } from "../../coordinator/auth.ts";
import { EmbeddedBroker } from "../../coordinator/broker.ts";
import { marketSuite } from "../fixtures/market-suite.ts";
import { startRedis } from "../fixtures/redis.ts";
import { needs } from "../fixtures/system-tools.ts";

marketSuite("cluster", async (plan) => {
  const redis = await startRedis();
  const member = new EmbeddedBroker({ host: "127.0.0.1", port: 0, hooks: createAedesAuthHooks({ secret: plan.secret, insecure: false, logger: silentLogger }), redis: redis.url, logger: silentLogger });
  await member.start();
  return {
    config: { brokerRedis: redis.url },
    clientUrl: member.localUrl,
    close: async () => {
      await member.close();
      await redis.close();
    },
  };
}, { skip: needs("redis-server") });
