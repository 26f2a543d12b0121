// `colony models push` against a running coordinator (embedded aedes with auth) and a real node
// daemon: a model of the store, named by a sha256 prefix as `colony models list` prints it, is
// fetched and verified by the node; pushed again, the node already has it; a file on the
// coordinator's host is added (signed) and pushed in one step; a submitter credential is refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { runColony } from "../fixtures/colony-process.ts";
import { genome, startNode, TINY, writeRandomModel } from "../fixtures/node-helpers.ts";

const SEEDS = fileURLToPath(new URL("../../models/", import.meta.url));
const seeds = JSON.parse(readFileSync(path.join(SEEDS, "seed-manifest.json"), "utf8")) as { models: { name: string; sha256: string }[] };
const dir = mkdtempSync(path.join(os.tmpdir(), "colony-push-cli-"));
let h: Harness;
let node: Awaited<ReturnType<typeof startNode>>;

before(async () => {
  h = await startHarness({ dataDir: path.join(dir, "coordinator"), config: { architect: false } });
  node = await startNode({
    nodeId: "n-cli", url: h.url, cred: await h.nodeCred("n-cli"), dataDir: path.join(dir, "node"), modelKey: h.coordinator.signingKey!.publicKey, calibrate: false,
    genomes: [genome("seed-add", path.join(SEEDS, "seed-add.gguf"), ["add"])],
  });
});

after(async () => {
  await node?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("models push: by sha256 prefix to every online node (fetched, then exists); a file is added, signed and pushed; a submitter is refused", async () => {
  const count = seeds.models.find((m) => m.name === "seed-count")!.sha256;
  const common = ["--url", h.url, "--data-dir", h.dataDir, "--json"];
  const first = await runColony(["models", "push", count.slice(0, 12), ...common]);
  assert.equal(first.code, 0, first.stderr);
  const r1 = JSON.parse(first.stdout.trim().split("\n").at(-1)!) as { sha256: string; results: { nodeId: string; status: string }[] };
  assert.equal(r1.sha256, count);
  assert.deepEqual(r1.results, [{ nodeId: "n-cli", status: "fetched" }]);
  const again = JSON.parse((await runColony(["models", "push", count, ...common])).stdout.trim().split("\n").at(-1)!) as { results: { status: string }[] };
  assert.equal(again.results[0]!.status, "exists", "a node that has the hash fetches nothing");

  const file = await writeRandomModel(dir, "pushed", TINY, 7);
  const added = await runColony(["models", "push", file, "--name", "pushed", "--skills", "add", "--node", "n-cli", ...common]);
  assert.equal(added.code, 0, added.stderr);
  const r3 = JSON.parse(added.stdout.trim().split("\n").at(-1)!) as { sha256: string; version: number; results: { status: string }[] };
  assert.equal(r3.version, 1);
  assert.equal(r3.results[0]!.status, "fetched");
  assert.equal(h.coordinator.models!.get(r3.sha256)!.signed.manifest.name, "pushed");

  // Only a coordinator credential may push: a submitter cannot even read the reply topic.
  const secret = await loadOrCreateFleetSecret(h.dataDir);
  const credFile = path.join(dir, "sub.json");
  writeFileSync(credFile, JSON.stringify({ ...issueCredential(secret, "submitter", "tester"), url: h.url }), { mode: 0o600 });
  const refused = await runColony(["models", "push", count, "--credentials", credFile]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /MODEL_PUSH_FAILED|coordinator credential/);
});
