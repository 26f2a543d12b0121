// `colony models add|verify` and `colony credentials issue --node` as a user runs them (real CLI
// processes): a node credential carries the fleet's model key, a model added to a stopped
// coordinator's store verifies offline with it, and each refusal exits 1 with its stable code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { wilson } from "../../common/gate-report.ts";
import { deriveSigningKey, type SignedManifest } from "../../common/model-manifest.ts";
import { renderCatalog } from "../../cli/models-table.ts";
import { loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { TaskStore } from "../../coordinator/market/task-store.ts";
import { ColonyProcesses, freePort, runColony } from "../fixtures/colony-process.ts";
import { writeRandomModel } from "../fixtures/node-helpers.ts";

test("colony models add and verify: the node credential's modelKey verifies; every refusal has its code", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-cli-models-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const coord = path.join(dir, "coord");
  const credFile = path.join(dir, "n1.json");
  const issued = await runColony(["credentials", "issue", "--node", "n1", "--out", credFile, "--data-dir", coord]);
  assert.equal(issued.code, 0, issued.stderr);
  const key = deriveSigningKey(await loadOrCreateFleetSecret(coord));
  const cred = JSON.parse(readFileSync(credFile, "utf8")) as { username: string; modelKey: string };
  assert.equal(cred.username, "node.n1");
  assert.equal(cred.modelKey, key.publicKey);
  assert.match(issued.stdout, new RegExp(`modelKey: ${key.publicKey}`));

  const model = await writeRandomModel(dir, "m", undefined, 1);
  const other = await writeRandomModel(dir, "other", undefined, 2);
  const added = await runColony(["models", "add", model, "--name", "m", "--skills", "add,count", "--lineage", "arith", "--data-dir", coord, "--json"]);
  assert.equal(added.code, 0, added.stderr);
  const signed = JSON.parse(added.stdout) as SignedManifest;
  assert.deepEqual([signed.manifest.lineage, signed.manifest.version, signed.manifest.skills, signed.manifest.keyId], ["arith", 1, ["add", "count"], key.keyId]);
  const write = (name: string, v: unknown) => {
    const f = path.join(dir, name);
    writeFileSync(f, JSON.stringify(v));
    return f;
  };
  const good = write("m.signed.json", signed);
  const tampered = write("tampered.json", { ...signed, manifest: { ...signed.manifest, version: 7 } });
  const unsigned = write("unsigned.json", { manifest: signed.manifest });
  const foreignKey = deriveSigningKey(Buffer.alloc(32, 9)).publicKey;

  const verify = (file: string, manifest: string, ...rest: string[]) => runColony(["models", "verify", file, "--manifest", manifest, ...rest]);
  const [ok, byKey, swapped, changed, bare, foreign, noKey] = await Promise.all([
    verify(model, good, "--credentials", credFile),
    verify(model, good, "--key", key.publicKey, "--json"),
    verify(other, good, "--credentials", credFile),
    verify(model, tampered, "--credentials", credFile),
    verify(model, unsigned, "--credentials", credFile),
    verify(model, good, "--key", foreignKey),
    verify(model, good),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: m v1 of arith .* signed with fleet key [0-9a-f]{16}, no gate report/);
  assert.equal(byKey.code, 0, byKey.stderr);
  assert.equal((JSON.parse(byKey.stdout) as { sha256: string }).sha256, signed.manifest.sha256);
  for (const [r, code] of [[swapped, "MODEL_HASH_MISMATCH"], [changed, "MODEL_SIGNATURE_INVALID"], [bare, "MODEL_UNSIGNED"], [foreign, "MODEL_FOREIGN_KEY"], [noKey, "MODEL_KEY_MISSING"]] as const) {
    assert.equal(r.code, 1, `${code}: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`^error ${code}:`, "m"));
  }

  // A running coordinator holds the store: add refuses instead of waiting or corrupting it.
  const holder = new TaskStore(path.join(coord, "tasks"));
  await holder.start();
  try {
    const busy = await runColony(["models", "add", other, "--name", "o", "--skills", "add", "--data-dir", coord]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /^error MODEL_STORE_BUSY:/m);
  } finally {
    await holder.close();
  }
});

test("colony models list renders the catalog: newest first per lineage, gate, parents, adapters", () => {
  const key = deriveSigningKey(Buffer.alloc(32, 1));
  const m = (name: string, lineage: string, version: number, extra: Partial<SignedManifest["manifest"]> = {}): SignedManifest => ({
    manifest: { sha256: String(version).repeat(64).slice(0, 64), bytes: 802_016, format: "gguf-model", name, lineage, version, parents: [], skills: ["add"], createdAt: version, keyId: key.keyId, ...extra },
    signature: "A".repeat(86),
  });
  const gate = { heldOut: { source: "generator" as const, perSkill: 200, seed: "s" }, margin: 0.02, skills: [{ skill: "add", child: wilson(190, 200), parents: [], best: 1 }], union: { child: 0.95, bestParent: 1 }, passed: false, reasons: ["add dropped 5 points"] };
  const text = renderCatalog({
    at: 0, keyId: key.keyId, omitted: 2,
    models: [m("seed-add", "seed-add", 1), m("kid", "arith", 1), m("kid2", "arith", 2, { gate, parents: [{ agentId: "a1" }, { agentId: "c1" }] }), m("ad", "lora", 1, { format: "gguf-lora", base: "f".repeat(64) })],
  });
  const lines = text.split("\n");
  assert.match(lines[0]!, /^NAME +LINEAGE +VER +SHA256 +SIZE +SKILLS +GATE +PARENTS$/);
  assert.match(lines[1]!, /^kid2 +arith +v2 +2{12} +802\.0 kB +add +failed +a1,c1$/);
  assert.match(lines[2]!, /^kid +arith +v1 .* +- +-$/);
  assert.match(lines[3]!, /lora on f{12}$/);
  assert.match(lines.at(-1)!, new RegExp(`^4 models, signed with key ${key.keyId}; 2 older not in the catalog$`));
});

test("a started coordinator signs the seed models and a node credential reads them with colony models list", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-cli-models-"));
  const procs = new ColonyProcesses();
  t.after(() => {
    procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const coord = path.join(dir, "coord");
  const port = await freePort();
  await procs.start(["coordinator", "--data-dir", coord, "--port", String(port), "--host", "127.0.0.1", "--no-mdns"]);
  const credFile = path.join(dir, "n1.json");
  assert.equal((await runColony(["credentials", "issue", "--node", "n1", "--out", credFile, "--data-dir", coord, "--url", `mqtt://127.0.0.1:${port}`])).code, 0);
  const [asNode, asJson] = await Promise.all([
    runColony(["models", "list", "--credentials", credFile, "--wait-ms", "10000"]),
    runColony(["models", "list", "--data-dir", coord, "--url", `mqtt://127.0.0.1:${port}`, "--json", "--wait-ms", "10000"]),
  ]);
  assert.equal(asNode.code, 0, asNode.stderr);
  for (const seed of ["seed-add", "seed-count", "seed-max-sort", "seed-reverse"]) assert.match(asNode.stdout, new RegExp(`^${seed} +${seed} +v1 `, "m"));
  assert.match(asNode.stdout, /^4 models, signed with key [0-9a-f]{16}$/m);
  assert.equal(asJson.code, 0, asJson.stderr);
  const cat = JSON.parse(asJson.stdout) as { keyId: string; models: SignedManifest[] };
  const key = deriveSigningKey(await loadOrCreateFleetSecret(coord));
  assert.equal(cat.keyId, key.keyId);
  assert.equal(cat.models.length, 4);
});
