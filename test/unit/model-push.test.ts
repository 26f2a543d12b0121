/**
 * The model transfer's pieces without a broker: the chunk frame codec (bounds, truncated headers,
 * lying lengths) and the fetcher against the real model server, wired directly (the server's
 * publish is the fetcher's onFrame). test/integration/model-push.test.ts runs them over MQTT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Counters } from "../../common/counters.ts";
import { silentLogger } from "../../common/logger.ts";
import { allocChunkFrame, decodeChunkFrame, encodeChunkFrame, MAX_CHUNK_HEADER_BYTES, MAX_MODEL_CHUNK, type ModelChunkHeader, type ModelFetch, type ModelReport } from "../../common/protocol.ts";
import { ModelServer } from "../../coordinator/models/model-server.ts";
import { deriveSigningKey, signManifest, type ModelManifest } from "../../common/model-manifest.ts";
import { ModelFetcher, type ModelFetcherOptions } from "../../node/models/model-fetcher.ts";
import { NodeModelStore } from "../../node/models/model-store.ts";
import { ModelVersions } from "../../node/models/model-versions.ts";
import { verifyModelFile } from "../../node/llama/model-file.ts";
import { writeRandomModel } from "../fixtures/node-helpers.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The store's read API over one file (the real store is coordinator/models/model-store.ts; its own tests cover it). */
class OneModelStore {
  constructor(private readonly file: string, private readonly entry: { sha256: string; signed: unknown }) {}
  get(s: string) {
    return s === this.entry.sha256 ? { file: this.file, signed: this.entry.signed } : undefined;
  }
  async readChunk(_s: string, offset: number, length: number): Promise<Buffer> {
    const fd = await open(this.file, "r");
    try {
      const b = Buffer.alloc(length);
      await fd.read(b, 0, length, offset);
      return b;
    } finally {
      await fd.close();
    }
  }
}

function header(over: Partial<ModelChunkHeader> = {}): ModelChunkHeader {
  return { requestId: "r1", sha256: "a".repeat(64), offset: 0, length: 3, total: 10, chunkSha256: sha(Buffer.from("abc")), ...over };
}

test("frame codec: a frame round-trips, data is a view of the payload", () => {
  const f = encodeChunkFrame(header(), Buffer.from("abc"));
  const d = decodeChunkFrame(f);
  assert.ok(d.ok);
  assert.equal(d.data.toString(), "abc");
  assert.equal(d.header.total, 10);
  assert.equal(d.data.buffer, f.buffer);
  // The same frame built in place: bytes read into it, the sha256 sealed in afterwards.
  const { chunkSha256: _, ...rest } = header();
  const inPlace = allocChunkFrame(rest);
  inPlace.data.write("abc");
  const sealed = decodeChunkFrame(inPlace.seal(sha(Buffer.from("abc"))));
  assert.ok(sealed.ok);
  assert.deepEqual(sealed.header, header());
  assert.equal(sealed.data.toString(), "abc");
  assert.throws(() => allocChunkFrame(rest).seal("nothex"));
});

test("frame codec: truncated, oversized and lying frames are refused with their codes", () => {
  const good = encodeChunkFrame(header(), Buffer.from("abc"));
  const code = (b: Buffer) => {
    const d = decodeChunkFrame(b);
    return d.ok ? "ok" : d.code;
  };
  assert.equal(code(Buffer.alloc(0)), "FRAME_TRUNCATED");
  assert.equal(code(Buffer.from([0, 0, 1])), "FRAME_TRUNCATED");
  assert.equal(code(good.subarray(0, 10)), "FRAME_TRUNCATED");
  const huge = Buffer.from(good);
  huge.writeUInt32BE(MAX_CHUNK_HEADER_BYTES + 1, 0);
  assert.equal(code(huge), "FRAME_HEADER_TOO_LARGE");
  const max = Buffer.from(good);
  max.writeUInt32BE(0xffffffff, 0);
  assert.equal(code(max), "FRAME_HEADER_TOO_LARGE");
  // Bytes missing or extra against the header's length.
  assert.equal(code(good.subarray(0, good.length - 1)), "FRAME_LENGTH_MISMATCH");
  assert.equal(code(Buffer.concat([good, Buffer.from("x")])), "FRAME_LENGTH_MISMATCH");
  // A header length that cuts the JSON short.
  const short = Buffer.from(good);
  short.writeUInt32BE(good.readUInt32BE(0) - 2, 0);
  assert.equal(code(short), "FRAME_HEADER_INVALID");
  // Not JSON, or JSON of the wrong shape.
  const notJson = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from("{x")]);
  assert.equal(code(notJson), "FRAME_HEADER_INVALID");
  const raw = (h: object, data = Buffer.alloc(0)) => {
    const j = Buffer.from(JSON.stringify(h));
    const p = Buffer.alloc(4);
    p.writeUInt32BE(j.length);
    return Buffer.concat([p, j, data]);
  };
  assert.equal(code(raw({ ...header(), extra: 1 }, Buffer.from("abc"))), "FRAME_HEADER_INVALID");
  assert.equal(code(raw({ ...header(), offset: -1 }, Buffer.from("abc"))), "FRAME_HEADER_INVALID");
  assert.equal(code(raw({ ...header(), length: MAX_MODEL_CHUNK + 1 })), "FRAME_HEADER_INVALID");
  // Bytes outside the model.
  assert.equal(code(raw(header({ offset: 8 }), Buffer.from("abc"))), "FRAME_OUT_OF_RANGE");
  // An error frame carrying bytes.
  assert.equal(code(raw(header({ error: { code: "X", message: "y" } }), Buffer.from("abc"))), "FRAME_LENGTH_MISMATCH");
  assert.throws(() => encodeChunkFrame(header(), Buffer.from("ab")));
});

interface Rig {
  dir: string;
  file: string;
  sha256: string;
  signed: { manifest: ModelManifest; signature?: string };
  server: ModelServer;
  fetcher: (over?: Partial<ModelFetcherOptions>) => ModelFetcher;
  nodeStore: NodeModelStore;
  reports: ModelReport[];
  requests: ModelFetch[];
  counters: Counters;
  close(): void;
}

async function rig(opts: { corrupt?: (offset: number) => boolean; tamper?: (s: Rig["signed"]) => void; foreign?: boolean; version?: number } = {}): Promise<Rig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-push-"));
  const file = await writeRandomModel(dir, "m");
  const bytes = readFileSync(file);
  const key = deriveSigningKey(Buffer.from("fleet-secret-A"));
  const signer = opts.foreign ? deriveSigningKey(Buffer.from("fleet-secret-B")) : key;
  const manifest: ModelManifest = { sha256: sha(bytes), bytes: bytes.length, format: "gguf-model", name: "m", lineage: "m", version: opts.version ?? 1, parents: [], skills: [], createdAt: 1, keyId: signer.keyId };
  const signed: Rig["signed"] = signManifest(manifest, signer.privateKey, signer.keyId);
  opts.tamper?.(signed);
  const store = new OneModelStore(file, { sha256: manifest.sha256, signed });
  const counters = new Counters(silentLogger);
  let fetchers: ModelFetcher[] = [];
  const reports: ModelReport[] = [];
  const requests: ModelFetch[] = [];
  const server = new ModelServer({ store, counters, logger: silentLogger, corrupt: opts.corrupt, publish: (_t, p) => setImmediate(() => fetchers.forEach((f) => f.onFrame(p))) });
  const nodeStore = new NodeModelStore(path.join(dir, "node"));
  await nodeStore.open();
  const versions = new ModelVersions(nodeStore.dir);
  await versions.load();
  const r: Rig = {
    dir, file, sha256: manifest.sha256, signed, server, nodeStore, reports, requests, counters,
    fetcher: (over = {}) => {
      const f = new ModelFetcher({
        nodeId: "n1", store: nodeStore, versions, modelKey: () => key.publicKey, inUse: () => new Set(), counters, logger: silentLogger, now: Date.now,
        send: (req) => (requests.push(req), setImmediate(() => server.onFetch(req))),
        report: (x) => reports.push(x),
        gate: async (f) => void (await verifyModelFile(f)),
        chunkBytes: 4096, window: 4, requestTimeoutMs: 500, ...over,
      });
      fetchers.push(f);
      return f;
    },
    close: () => {
      for (const f of fetchers) f.close();
      fetchers = [];
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return r;
}

test("fetcher: fetches, verifies and stores a model; a second ensure fetches nothing", async () => {
  const r = await rig();
  try {
    const f = r.fetcher();
    const got = await f.ensure(r.sha256);
    assert.equal(got.fetchedBytes, statSync(r.file).size);
    assert.equal(sha(readFileSync(got.file)), r.sha256);
    assert.equal(statSync(got.file).mode & 0o777, 0o400);
    assert.ok(existsSync(r.nodeStore.manifestFile(r.sha256)));
    assert.ok(!existsSync(r.nodeStore.partFile(r.sha256)));
    assert.deepEqual(r.reports.map((x) => x.ok), [true]);
    const n = r.requests.length;
    const again = await f.ensure(r.sha256);
    assert.equal(again.fetchedBytes, 0);
    assert.equal(r.requests.length, n);
  } finally {
    r.close();
  }
});

test("fetcher: a corrupt chunk is fetched again; one corrupt every time fails with MODEL_CHUNK_CORRUPT", async () => {
  let hits = 0;
  const r = await rig({ corrupt: (o) => o === 8192 && hits++ < 2 });
  try {
    const got = await r.fetcher().ensure(r.sha256);
    assert.equal(sha(readFileSync(got.file)), r.sha256);
    assert.equal(r.counters.get("models.chunks.corrupt"), 2);
  } finally {
    r.close();
  }
  const always = await rig({ corrupt: (o) => o === 4096 });
  try {
    await assert.rejects(always.fetcher({ retries: 3 }).ensure(always.sha256), { code: "MODEL_CHUNK_CORRUPT" });
    assert.equal(always.reports.at(-1)?.code, "MODEL_CHUNK_CORRUPT");
  } finally {
    always.close();
  }
});

test("fetcher: a transfer cut short resumes from the verified prefix; a damaged prefix is cut and fetched again", async () => {
  const r = await rig();
  try {
    const size = statSync(r.file).size;
    // First fetcher: stop answering after a few chunks (the node "dies"), then close it.
    let answered = 0;
    const f1 = r.fetcher({ requestTimeoutMs: 200, retries: 1 });
    const orig = r.server.onFetch.bind(r.server);
    r.server.onFetch = (req) => (answered++ < 6 ? orig(req) : undefined);
    await assert.rejects(f1.ensure(r.sha256), { code: "MODEL_FETCH_TIMEOUT" });
    f1.close();
    r.server.onFetch = orig;
    const partSize = statSync(r.nodeStore.partFile(r.sha256)).size;
    assert.ok(partSize > 0 && partSize < size, `part of ${partSize} bytes`);
    // Damage the second chunk of the part: the resume keeps only the first.
    const part = readFileSync(r.nodeStore.partFile(r.sha256));
    part[5000] = part[5000]! ^ 0xff;
    writeFileSync(r.nodeStore.partFile(r.sha256), part);
    const before = r.requests.length;
    const got = await r.fetcher().ensure(r.sha256);
    assert.equal(sha(readFileSync(got.file)), r.sha256);
    assert.equal(got.fetchedBytes, size - 4096);
    assert.equal(r.counters.get("models.resume.bad-prefix"), 1);
    assert.ok(r.requests.slice(before).every((q) => q.offset === 0 ? q.length === 0 : q.offset >= 4096));
  } finally {
    r.close();
  }
});

test("fetcher: tampered, foreign-signed, unsigned and rolled-back manifests are refused with their codes, nothing stored", async () => {
  const cases: [string, Parameters<typeof rig>[0]][] = [
    ["MODEL_SIGNATURE_INVALID", { tamper: (s) => (s.manifest.skills = ["math"]) }],
    ["MODEL_FOREIGN_KEY", { foreign: true }],
    ["MODEL_UNSIGNED", { tamper: (s) => delete s.signature }],
  ];
  for (const [code, o] of cases) {
    const r = await rig(o);
    try {
      await assert.rejects(r.fetcher().ensure(r.sha256), { code });
      assert.deepEqual(await r.nodeStore.list(), []);
      assert.equal(r.reports.at(-1)?.code, code);
      // Only the manifest was asked for: no byte of the model moved.
      assert.deepEqual(r.requests.map((q) => q.length), [0]);
    } finally {
      r.close();
    }
  }
  const r = await rig({ version: 3 });
  try {
    const versions = new ModelVersions(r.nodeStore.dir);
    await versions.record("m", 4, "d".repeat(64));
    // A fresh fetcher reads the persisted highest version.
    const v2 = new ModelVersions(r.nodeStore.dir);
    await v2.load();
    assert.equal(v2.get("m")?.version, 4);
    const f = new ModelFetcher({
      nodeId: "n1", store: r.nodeStore, versions: v2, modelKey: () => deriveSigningKey(Buffer.from("fleet-secret-A")).publicKey, inUse: () => new Set(), counters: r.counters, logger: silentLogger, now: Date.now,
      send: (req) => setImmediate(() => r.server.onFetch(req)), report: (x) => r.reports.push(x), gate: async () => {}, requestTimeoutMs: 500,
    });
    const orig = r.server;
    void orig;
    // Route the server's frames to this fetcher too.
    (r.server as unknown as { o: { publish: (t: string, p: Buffer) => void } }).o.publish = (_t, p) => setImmediate(() => f.onFrame(p));
    await assert.rejects(f.ensure(r.sha256), { code: "MODEL_ROLLBACK" });
    f.close();
  } finally {
    r.close();
  }
});

test("fetcher: no model key is MODEL_KEY_MISSING; an unknown hash is MODEL_NOT_FOUND", async () => {
  const r = await rig();
  try {
    await assert.rejects(r.fetcher({ modelKey: () => undefined }).ensure(r.sha256), { code: "MODEL_KEY_MISSING" });
    await assert.rejects(r.fetcher().ensure("b".repeat(64)), { code: "MODEL_NOT_FOUND" });
  } finally {
    r.close();
  }
});

test("node store: quota refuses with MODEL_QUOTA after collecting unused models; gc never removes a model in use", async () => {
  const r = await rig();
  try {
    await r.fetcher().ensure(r.sha256);
    const size = statSync(r.file).size;
    const tight = new NodeModelStore(r.nodeStore.dir, { quotaBytes: size + 10 });
    await assert.rejects(tight.reserve("c".repeat(64), size, new Set([r.sha256])), { code: "MODEL_QUOTA" });
    assert.deepEqual(await tight.list(), [r.sha256]);
    assert.deepEqual(await tight.gc(new Set([r.sha256])), []);
    await tight.reserve("c".repeat(64), size, new Set());
    assert.deepEqual(await tight.list(), []);
  } finally {
    r.close();
  }
});

test("server: per-node bound refuses with MODEL_FETCH_BUSY; ranges past the end are MODEL_RANGE_INVALID", async () => {
  const r = await rig();
  try {
    const frames: Buffer[] = [];
    const store = new OneModelStore(r.file, { sha256: r.sha256, signed: r.signed });
    const slow = { get: (s: string) => store.get(s), readChunk: (s: string, o: number, l: number) => new Promise<Buffer>((res) => setTimeout(() => res(store.readChunk(s, o, l)), 50)) };
    const server = new ModelServer({ store: slow, counters: r.counters, logger: silentLogger, publish: (_t, p) => frames.push(p), maxInFlightPerNode: 2, maxQueuedPerNode: 2 });
    for (let i = 0; i < 6; i++) server.onFetch({ nodeId: "n1", requestId: `q${i}`, sha256: r.sha256, offset: 0, length: 10 });
    await new Promise((res) => setTimeout(res, 400));
    server.onFetch({ nodeId: "n1", requestId: "past", sha256: r.sha256, offset: statSync(r.file).size - 5, length: 10 });
    await new Promise((res) => setTimeout(res, 100));
    const heads = frames.map((f) => {
      const d = decodeChunkFrame(f);
      assert.ok(d.ok);
      return d.header;
    });
    assert.equal(heads.filter((h) => h.error?.code === "MODEL_FETCH_BUSY").length, 2);
    assert.equal(heads.filter((h) => !h.error).length, 4);
    assert.equal(heads.find((h) => h.requestId === "past")?.error?.code, "MODEL_RANGE_INVALID");
    await server.close();
  } finally {
    r.close();
  }
});
