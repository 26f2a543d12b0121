import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { deriveSigningKey, verifySignedManifest, type SigningKey } from "../../common/model-manifest.ts";
import { decode, ModelCatalogSchema, type RawPublisher, Outbox, topics } from "../../common/protocol.ts";
import { checkPublish, checkSubscribe } from "../../coordinator/auth.ts";
import { TaskStore } from "../../coordinator/market/task-store.ts";
import { buildCatalog, CatalogPublisher } from "../../coordinator/models/catalog.ts";
import { ModelStore } from "../../coordinator/models/model-store.ts";
import { importSeedModels, SEED_MANIFEST } from "../../coordinator/models/seed-models.ts";
import { writeGgufFile } from "../../gguf/writer.ts";
import { tinyLlama, withMeta } from "../fixtures/gguf-fixtures.ts";
import { writeLoraAdapter, writeRandomModel } from "../fixtures/node-helpers.ts";

// The coordinator's model store against a real LevelDB and real GGUF files: content-addressed,
// gated like a node gates, versions monotonic per lineage, signed with the fleet key, and what it
// holds survives a restart.

const KEY = deriveSigningKey(Buffer.alloc(32, 3));
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function withStore(fn: (ctx: { store: ModelStore; dir: string; reopen: (key?: SigningKey) => Promise<ModelStore> }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-models-"));
  let tasks = new TaskStore(path.join(dir, "tasks"));
  await tasks.start();
  const open = async (key = KEY) => {
    const s = new ModelStore({ dir: path.join(dir, "models"), tasks, key, logger: silentLogger, now: () => 1_000 });
    await s.start();
    return s;
  };
  let store = await open();
  try {
    await fn({
      store, dir,
      reopen: async (key) => {
        await store.close();
        await tasks.close();
        tasks = new TaskStore(path.join(dir, "tasks"));
        await tasks.start();
        return (store = await open(key));
      },
    });
  } finally {
    await store.close();
    await tasks.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

test("add copies, signs and serves a model; get, list, open and readChunk return its bytes", async () => {
  await withStore(async ({ store, dir }) => {
    const file = await writeRandomModel(dir, "m1");
    const signed = await store.add(file, { name: "m1", skills: ["add"], parents: [{ agentId: "a1" }] });
    const m = verifySignedManifest(signed, KEY.publicKey);
    assert.equal(m.sha256, sha256(file));
    assert.equal(m.bytes, statSync(file).size);
    assert.deepEqual([m.lineage, m.version, m.format, m.keyId, m.createdAt], ["m1", 1, "gguf-model", KEY.keyId, 1_000]);
    const got = store.get(m.sha256)!;
    assert.deepEqual(got.signed, signed);
    assert.equal(got.file, path.join(dir, "models", `${m.sha256}.gguf`));
    assert.equal(statSync(got.file).mode & 0o777, 0o400);
    assert.equal(statSync(path.join(dir, "models")).mode & 0o777, 0o700);
    assert.deepEqual(store.list(), [signed]);
    const bytes = readFileSync(file);
    assert.deepEqual(await store.readChunk(m.sha256, 10, 100), bytes.subarray(10, 110));
    assert.deepEqual(await store.readChunk(m.sha256, m.bytes - 5, 5), bytes.subarray(m.bytes - 5));
    assert.equal(await codeOf(store.readChunk(m.sha256, m.bytes - 5, 6)), "MODEL_RANGE_INVALID");
    assert.equal(await codeOf(store.readChunk("0".repeat(64), 0, 1)), "MODEL_NOT_FOUND");
    const fh = await store.open(m.sha256);
    assert.equal((await fh.stat()).size, m.bytes);
    await fh.close();
    // Only the model is in the folder: no half-copied file is left behind.
    assert.deepEqual(readdirSync(path.join(dir, "models")), [`${m.sha256}.gguf`]);
  });
});

test("versions increase per lineage, adding the same model again is idempotent, another lineage is refused", async () => {
  await withStore(async ({ store, dir }) => {
    const [a, b, c] = await Promise.all([1, 2, 3].map((s) => writeRandomModel(dir, `v${s}`, undefined, s)));
    const [sa, sb] = await Promise.all([store.add(a!, { name: "v1", lineage: "arith", skills: ["add"] }), store.add(b!, { name: "v2", lineage: "arith", skills: ["add"] })]);
    const sc = await store.add(c!, { name: "v3", lineage: "text", skills: ["reverse"] });
    assert.deepEqual([sa.manifest.version, sb.manifest.version].sort(), [1, 2]);
    assert.equal(sc.manifest.version, 1);
    assert.deepEqual(await store.add(a!, { name: "renamed", lineage: "arith", skills: ["count"] }), sa);
    assert.equal(store.highestVersion("arith"), 2);
    assert.equal(await codeOf(store.add(a!, { name: "v1", lineage: "other", skills: ["add"] })), "MODEL_LINEAGE_CONFLICT");
    // A removed model's version is never handed out again.
    assert.equal(await store.remove(sb.manifest.sha256), true);
    assert.equal(store.get(sb.manifest.sha256), undefined);
    assert.equal(await store.remove(sb.manifest.sha256), false);
    const again = await store.add(b!, { name: "v2", lineage: "arith", skills: ["add"] });
    assert.equal(again.manifest.version, 3);
  });
});

test("a file the GGUF gate refuses is not stored, with the gate's code", async () => {
  await withStore(async ({ store, dir }) => {
    const broken = path.join(dir, "broken.gguf");
    await writeGgufFile(broken, withMeta(tinyLlama(), "llama.block_count", undefined));
    assert.equal(await codeOf(store.add(broken, { name: "broken", skills: ["add"] })), "GGUF_MODEL_INVALID");
    const junk = path.join(dir, "junk.gguf");
    writeFileSync(junk, Buffer.from("this is not a gguf file at all, just text".repeat(4)));
    assert.match((await codeOf(store.add(junk, { name: "junk", skills: ["add"] }))) ?? "", /^GGUF_/);
    assert.equal(await codeOf(store.add(path.join(dir, "absent.gguf"), { name: "absent", skills: [] })), "GGUF_FILE_UNREADABLE");
    assert.equal(await codeOf(store.add(junk, { name: "bad name/", skills: [] })), "MODEL_MANIFEST_INVALID");
    assert.deepEqual(store.list(), []);
    assert.equal(store.highestVersion("broken"), undefined);
    assert.deepEqual(readdirSync(path.join(dir, "models")), []);
  });
});

test("an adapter is checked against its base in the store", async () => {
  await withStore(async ({ store, dir }) => {
    const base = await writeRandomModel(dir, "base");
    const adapter = await writeLoraAdapter(base, path.join(dir, "adapter.gguf"));
    assert.equal(await codeOf(store.add(adapter, { name: "ad", format: "gguf-lora", skills: ["add"] })), "MODEL_BASE_MISSING");
    assert.equal(await codeOf(store.add(adapter, { name: "ad", format: "gguf-lora", base: sha256(base), skills: ["add"] })), "MODEL_BASE_MISSING");
    // An adapter offered as a model is refused by the model gate.
    assert.equal(await codeOf(store.add(adapter, { name: "ad", skills: ["add"] })), "GGUF_MODEL_UNCHECKED");
    const b = await store.add(base, { name: "base", skills: ["add"] });
    const s = await store.add(adapter, { name: "ad", format: "gguf-lora", base: b.manifest.sha256, skills: ["add"] });
    assert.equal(s.manifest.base, b.manifest.sha256);
    // On another base of other dimensions the adapter does not fit.
    const other = await store.add(await writeRandomModel(dir, "other", { dim: 64, layers: 1, ffn: 64, ctx: 256 }), { name: "other", skills: ["add"] });
    const copy = path.join(dir, "adapter2.gguf");
    await writeLoraAdapter(base, copy, 9);
    assert.equal(await codeOf(store.add(copy, { name: "ad2", format: "gguf-lora", base: other.manifest.sha256, skills: ["add"] })), "GGUF_MODEL_INVALID");
  });
});

test("a restart keeps manifests and versions, drops unrecorded files, and re-signs after a key rotation", async () => {
  await withStore(async ({ store, dir, reopen }) => {
    const s1 = await store.add(await writeRandomModel(dir, "r1"), { name: "r1", lineage: "r", skills: ["add"] });
    const stray = path.join(dir, "models", `${"e".repeat(64)}.gguf`);
    writeFileSync(stray, "left by a crash");
    writeFileSync(path.join(dir, "models", ".incoming-123.gguf"), "half a copy");
    let again = await reopen();
    assert.deepEqual(again.list(), [s1]);
    assert.equal(again.highestVersion("r"), 1);
    assert.deepEqual(readdirSync(path.join(dir, "models")), [`${s1.manifest.sha256}.gguf`]);
    const s2 = await again.add(await writeRandomModel(dir, "r2", undefined, 2), { name: "r2", lineage: "r", skills: ["add"] });
    assert.equal(s2.manifest.version, 2);
    // A new fleet secret: the store signs what it holds again with the new key.
    const rotated = deriveSigningKey(Buffer.alloc(32, 4));
    again = await reopen(rotated);
    assert.equal(again.list().length, 2);
    for (const s of again.list()) assert.equal(verifySignedManifest(s, rotated.publicKey).keyId, rotated.keyId);
  });
});

test("seed import signs the four seed models once", async () => {
  await withStore(async ({ store, reopen }) => {
    const seeds = JSON.parse(readFileSync(SEED_MANIFEST, "utf8")) as { models: { name: string; sha256: string; skills: string[] }[] };
    assert.equal(seeds.models.length, 4);
    const first = await importSeedModels(store, { logger: silentLogger });
    assert.deepEqual([first.added.length, first.present.length, first.failed], [4, 0, []]);
    for (const seed of seeds.models) {
      const m = verifySignedManifest(store.get(seed.sha256)!.signed, KEY.publicKey);
      assert.deepEqual([m.name, m.lineage, m.version, m.skills, m.gate], [seed.name, seed.name, 1, seed.skills, undefined]);
    }
    const after = await reopen();
    const second = await importSeedModels(after, { logger: silentLogger });
    assert.deepEqual([second.added.length, second.present.length], [0, 4]);
    assert.equal(after.list().length, 4);
    assert.ok(after.list().every((s) => s.manifest.version === 1));
  });
});

test("a seed file that is not the seed manifest's is skipped without taking a version; a missing manifest adds nothing", async () => {
  await withStore(async ({ store, dir }) => {
    await writeRandomModel(dir, "swapped");
    const manifest = path.join(dir, "seed-manifest.json");
    writeFileSync(manifest, JSON.stringify({ models: [{ name: "seed-x", file: "swapped.gguf", sha256: "0".repeat(64), skills: ["add"] }] }));
    const r = await importSeedModels(store, { manifest, logger: silentLogger });
    assert.deepEqual([r.added, r.present, r.failed.map((f) => f.code)], [[], [], ["MODEL_HASH_MISMATCH"]]);
    assert.equal(store.highestVersion("seed-x"), undefined);
    assert.deepEqual(await importSeedModels(store, { manifest: path.join(dir, "absent.json"), logger: silentLogger }), { added: [], present: [], failed: [] });
    assert.deepEqual(store.list(), []);
  });
});

test("the catalog is published retained at start and after each change, newest first within 64 KiB", async () => {
  await withStore(async ({ store, dir }) => {
    const sent: { topic: string; payload: string; retain?: boolean | undefined }[] = [];
    const raw: RawPublisher = { publish: (topic, payload, o) => void sent.push({ topic, payload, retain: o.retain }) };
    const pub = new CatalogPublisher({ store, keyId: KEY.keyId, out: new Outbox(raw), now: () => 5 });
    await pub.start();
    await store.add(await writeRandomModel(dir, "c1"), { name: "c1", skills: ["add"] });
    await pub.close();
    assert.equal(sent.length, 2);
    assert.ok(sent.every((s) => s.topic === topics.modelCatalog && s.retain === true));
    const last = decode(ModelCatalogSchema, sent[1]!.payload);
    assert.ok(last.ok);
    assert.deepEqual([last.value.models.length, last.value.keyId, last.value.omitted], [1, KEY.keyId, 0]);
    // Over the byte budget: the newest version of every lineage is kept first.
    const many = store.list().flatMap((s) => Array.from({ length: 6 }, (_, v) => ({ ...s, manifest: { ...s.manifest, version: v + 1, createdAt: v } })));
    const cat = buildCatalog(many, KEY.keyId, 0, 256 + 3 * (JSON.stringify(many[0]).length + 1));
    assert.equal(cat.models.length, 3);
    assert.equal(cat.omitted, 3);
    assert.deepEqual(cat.models.map((s) => s.manifest.version), [6, 5, 4]);
  });
});

test("the catalog topic: only the coordinator publishes it; nodes may read it, submitters may not", () => {
  const t = topics.modelCatalog;
  assert.equal(checkPublish({ role: "coordinator", name: "coordinator" }, t, true).allowed, true);
  assert.equal(checkSubscribe({ role: "node", name: "n1" }, t).allowed, true);
  assert.equal(checkPublish({ role: "node", name: "n1" }, t, true).allowed, false);
  assert.equal(checkPublish({ role: "node", name: "n1" }, t, false).allowed, false);
  assert.equal(checkPublish({ role: "submitter", name: "alice" }, t, false).allowed, false);
  assert.equal(checkSubscribe({ role: "submitter", name: "alice" }, t).allowed, false);
});
