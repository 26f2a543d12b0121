// `colony models push` against a running coordinator (embedded aedes with auth) and a real node
// daemon: a model of the store, named by a sha256 prefix as `colony models list` prints it, is
// fetched and verified by the node; pushed again, the node already has it; a file on the
// coordinator's host is added (signed) and pushed in one step; a submitter credential is refused.
// Piped (not a terminal), the command prints each node's progress as plain lines, and exits 1 with
// the code of a node that refused.
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
import { waitRegistered } from "../fixtures/scripted-node.ts";

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

test("models push, piped: each node's progress as plain lines in order, then the answers; a node that refuses makes it exit 1 with the code", async () => {
  // A second node without the fleet's model key: it refuses every pushed model (MODEL_KEY_MISSING).
  const nokey = await startNode({ nodeId: "n-nokey", url: h.url, cred: await h.nodeCred("n-nokey"), dataDir: path.join(dir, "node-nokey"), calibrate: false, genomes: [] });
  try {
    await waitRegistered((id) => h.coordinator.registry.list().some((n) => n.nodeId === id && n.online), "n-nokey");
    const file = await writeRandomModel(dir, "shown", { dim: 128, layers: 2, ffn: 256, ctx: 256 }, 9);
    const r = await runColony(["models", "push", file, "--name", "shown", "--skills", "add", "--node", "n-cli", "--node", "n-nokey", "--url", h.url, "--data-dir", h.dataDir]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
    const rank = { pending: 0, fetching: 1, verifying: 2, done: 3, failed: 3 } as Record<string, number>;
    const of = (node: string) => lines.filter((l) => l.startsWith(`${node} `)).map((l) => l.split(/\s+/)[1]!);
    for (const node of ["n-cli", "n-nokey"]) {
      const states = of(node);
      assert.ok(states.length >= 1, `${node}: no progress line in\n${r.stdout}`);
      for (let i = 1; i < states.length; i++) assert.ok(rank[states[i]!]! >= rank[states[i - 1]!]!, `${node} went back: ${states.join(" ")}`);
    }
    assert.ok(lines.some((l) => /^n-cli\s+done 100% \(.* MB\/.* MB\)$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^n-nokey\s+failed .*MODEL_KEY_MISSING/.test(l)), r.stdout);
    // The answers follow the progress.
    const summary = lines.findIndex((l) => l.startsWith("model "));
    const lastProgress = lines.map((l, i) => (/^n-(cli|nokey)\s/.test(l) ? i : -1)).reduce((a, b) => Math.max(a, b));
    assert.ok(summary > lastProgress, r.stdout);
    assert.ok(lines.includes("n-cli: fetched"), r.stdout);
    assert.ok(lines.some((l) => l.startsWith("n-nokey: refused MODEL_KEY_MISSING")), r.stdout);
    assert.equal(h.coordinator.rollouts!.list().find((x) => x.nodeId === "n-nokey")?.code, "MODEL_KEY_MISSING");
  } finally {
    await nokey.close();
  }
});
