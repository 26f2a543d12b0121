/**
 * Serves the coordinator's model store over MQTT (docs/protocol.md, "Model transfer"): each
 * `nodes/{nodeId}/model-fetch` is answered by one binary frame on that node's `model-chunk`
 * (common/protocol/model-frame.ts) holding exactly the range asked for, read from the store and
 * nothing more. Unknown hashes are MODEL_NOT_FOUND, ranges past the end MODEL_RANGE_INVALID.
 *
 * One node cannot flood the coordinator: at most `maxInFlightPerNode` of its reads run at once and
 * at most `maxQueuedPerNode` wait; beyond that a request is refused with MODEL_FETCH_BUSY at once
 * (the fetcher keeps fewer in flight than that and asks again). Memory held for one node is thus
 * bounded by maxInFlightPerNode x 1 MiB. Frames go at QoS 0: a lost frame is asked for again by the
 * fetcher's timeout, and a PUBACK per MiB would only add round trips.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { Counters } from "../../common/counters.ts";
import { ColonyError, ModelTransferErrors } from "../../common/errors.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { allocChunkFrame, encodeChunkFrame, topics, type ModelChunkHeader, type ModelFetch, type ModelReport, type WireError } from "../../common/protocol.ts";

const EMPTY_SHA256 = createHash("sha256").digest("hex");
/** 16 384 chunk hashes (~2 MB): 16 GB of models at 1 MiB chunks. */
const MAX_CHUNK_HASHES = 16_384;

/**
 * One file the server may serve: a model with its signed manifest (`manifest.bytes` is its size), or
 * a plain file offered to one node (`bytes`, no manifest: coordinator/mind/served-files.ts).
 */
export interface ServedFile {
  file: string;
  signed: unknown;
  /** The size of a plain file; a model's comes from its manifest. */
  bytes?: number;
}

/** What the server needs of the store (coordinator/models/model-store.ts). */
export interface ModelSource {
  /** The model's signed manifest (whose `manifest.bytes` is its size), or undefined/a throw when the store lacks it. */
  get(sha256: string, nodeId?: string): Promise<ServedFile | undefined> | ServedFile | undefined;
  /** Exactly `length` bytes at `offset`. */
  readChunk(sha256: string, offset: number, length: number): Promise<Buffer>;
  /** A read handle on the model: when present, chunks are read straight into their frames (no copy). */
  open?(sha256: string): Promise<FileHandle>;
}

export interface ModelServerOptions {
  store: ModelSource;
  /** Publishes one frame at QoS 0 (the coordinator's MQTT client). */
  publish: (topic: string, payload: Buffer) => void;
  counters: Counters;
  logger: Logger;
  /** Reads of one node served at once. Default 8 (8 MiB in memory per node). */
  maxInFlightPerNode?: number | undefined;
  /** Requests of one node waiting behind those; more are refused with MODEL_FETCH_BUSY. Default 64. */
  maxQueuedPerNode?: number | undefined;
  /** Test hook: flips one byte of the chunk at `offset` after its sha256 was taken. Default none. */
  corrupt?: ((offset: number, sha256: string) => boolean) | undefined;
}

interface NodeQueue {
  running: number;
  waiting: ModelFetch[];
}

export class ModelServer implements Lifecycle {
  private readonly queues = new Map<string, NodeQueue>();
  /** size and signed manifest by sha256 (the store is content-addressed: an entry never changes). */
  private readonly known = new Map<string, { total: number; signed: unknown }>();
  /**
   * sha256 of chunks served, by `sha256:offset:length` (a rollout asks every node for the same
   * chunks: hashed once, not once per node). Least recently used first out past `MAX_CHUNK_HASHES`.
   */
  private readonly chunkHashes = new Map<string, string>();
  private closed = false;

  constructor(private readonly o: ModelServerOptions) {}

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.queues.clear();
  }

  /** A decoded model-fetch from `req.nodeId` (inbound.ts checked it came on that node's topic). */
  onFetch(req: ModelFetch): void {
    if (this.closed) return;
    const q = this.queues.get(req.nodeId) ?? { running: 0, waiting: [] };
    this.queues.set(req.nodeId, q);
    if (q.running >= (this.o.maxInFlightPerNode ?? 8)) {
      if (q.waiting.length >= (this.o.maxQueuedPerNode ?? 64)) {
        this.o.counters.inc("models.fetch.busy");
        return this.refuse(req, { code: ModelTransferErrors.MODEL_FETCH_BUSY, message: `${req.nodeId} has ${q.running + q.waiting.length} model-fetch requests open; ask again` }, 0);
      }
      q.waiting.push(req);
      return;
    }
    this.run(q, req);
  }

  /** A node's verdict on a model it fetched: counted, and a refusal logged. */
  onReport(r: ModelReport): void {
    if (r.ok) {
      this.o.counters.inc("models.reports.ok");
      this.o.logger.info({ nodeId: r.nodeId, sha256: r.sha256, fetchedBytes: r.fetchedBytes }, "node stored a model");
      return;
    }
    const code = /^[A-Z][A-Z0-9_]{0,63}$/.test(r.code ?? "") ? r.code! : "UNKNOWN";
    this.o.counters.inc("models.reports.refused");
    this.o.counters.inc(`models.refused.${code}`);
    // The node's message is its own words: logged cut short, never spread into the line.
    this.o.logger.warn({ nodeId: r.nodeId, sha256: r.sha256, code, why: (r.message ?? "").slice(0, 300) }, "node refused a model");
  }

  private run(q: NodeQueue, req: ModelFetch): void {
    q.running++;
    this.serve(req)
      .catch((err) => this.o.logger.error({ err, nodeId: req.nodeId }, "serving a model chunk failed"))
      .finally(() => {
        q.running--;
        const next = q.waiting.shift();
        if (next && !this.closed) this.run(q, next);
        else if (q.running === 0 && q.waiting.length === 0) this.queues.delete(req.nodeId);
      });
  }

  private async entry(sha256: string, nodeId: string): Promise<{ total: number; signed: unknown } | undefined> {
    const hit = this.known.get(sha256);
    if (hit) return hit;
    let got: ServedFile | undefined;
    try {
      got = await this.o.store.get(sha256, nodeId);
    } catch (err) {
      if (err instanceof ColonyError && err.code === ModelTransferErrors.MODEL_NOT_FOUND) return undefined;
      throw err;
    }
    if (!got) return undefined;
    // A plain file is offered to one node: not remembered for the others.
    if (got.bytes !== undefined) return { total: got.bytes, signed: undefined };
    const total = (got.signed as { manifest?: { bytes?: unknown } } | undefined)?.manifest?.bytes;
    if (typeof total !== "number") throw new Error(`the store's manifest of ${sha256} has no size`);
    const e = { total, signed: got.signed };
    this.known.set(sha256, e);
    return e;
  }

  private async serve(req: ModelFetch): Promise<void> {
    const e = await this.entry(req.sha256, req.nodeId);
    if (!e) {
      this.o.counters.inc("models.fetch.not-found");
      return this.refuse(req, { code: ModelTransferErrors.MODEL_NOT_FOUND, message: `the coordinator holds no model ${req.sha256}` }, 0);
    }
    if (req.offset + req.length > e.total) {
      this.o.counters.inc("models.fetch.bad-range");
      return this.refuse(req, { code: ModelTransferErrors.MODEL_RANGE_INVALID, message: `bytes [${req.offset}, ${req.offset + req.length}) lie outside the model's ${e.total}` }, e.total);
    }
    const f = allocChunkFrame({ requestId: req.requestId, sha256: req.sha256, offset: req.offset, length: req.length, total: e.total, ...(req.manifest && e.signed !== undefined ? { signed: e.signed } : {}) });
    try {
      await this.read(req, f.data);
    } catch (err) {
      // Removed from the store since: forget it, so the next request reads the store again.
      this.known.delete(req.sha256);
      this.o.logger.warn({ err: { message: (err as Error).message }, sha256: req.sha256 }, "a model chunk could not be read");
      return this.refuse(req, { code: ModelTransferErrors.MODEL_NOT_FOUND, message: `model ${req.sha256} could not be read at ${req.offset}` }, e.total);
    }
    const frame = f.seal(this.chunkHash(req, f.data));
    if (f.data.length > 0 && this.o.corrupt?.(req.offset, req.sha256)) f.data[0] = f.data[0]! ^ 0xff;
    this.o.counters.inc("models.fetch.chunks");
    this.o.counters.inc("models.fetch.bytes", f.data.length);
    if (!this.closed) this.o.publish(topics.nodeModelChunk(req.nodeId), frame);
  }

  /** Fills `into` with the range asked for: straight from a read handle when the store has one. */
  private async read(req: ModelFetch, into: Buffer): Promise<void> {
    if (into.length === 0) return;
    if (!this.o.store.open) {
      const data = await this.o.store.readChunk(req.sha256, req.offset, req.length);
      if (data.length !== req.length) throw new Error(`the store read ${data.length} bytes of ${req.length}`);
      data.copy(into);
      return;
    }
    const fd = await this.o.store.open(req.sha256);
    try {
      let got = 0;
      while (got < into.length) {
        const { bytesRead } = await fd.read(into, got, into.length - got, req.offset + got);
        if (bytesRead === 0) throw new Error(`model ${req.sha256.slice(0, 12)} ends before ${req.offset + into.length}`);
        got += bytesRead;
      }
    } finally {
      await fd.close();
    }
  }

  private chunkHash(req: ModelFetch, data: Buffer): string {
    const k = `${req.sha256}:${req.offset}:${data.length}`;
    let h = this.chunkHashes.get(k);
    if (h !== undefined) this.chunkHashes.delete(k);
    else h = createHash("sha256").update(data).digest("hex");
    this.chunkHashes.set(k, h);
    if (this.chunkHashes.size > MAX_CHUNK_HASHES) this.chunkHashes.delete(this.chunkHashes.keys().next().value!);
    return h;
  }

  private refuse(req: ModelFetch, error: WireError, total: number): void {
    if (this.closed) return;
    const header: ModelChunkHeader = { requestId: req.requestId, sha256: req.sha256, offset: req.offset, length: 0, total, chunkSha256: EMPTY_SHA256, error };
    this.o.publish(topics.nodeModelChunk(req.nodeId), encodeChunkFrame(header));
  }
}
