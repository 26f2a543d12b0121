/**
 * Fetches a model from the coordinator's store over MQTT, verifies it and keeps it in the node's
 * store (docs/node.md, "Pushed models"). `ensure(sha256)`:
 *
 * 1. the store holds it: nothing is fetched;
 * 2. else one request with `manifest: true` and no bytes brings the signed manifest and the size;
 *    the signature is checked with the fleet's model key (the node's credential), the manifest
 *    must name the hash asked for and the size the coordinator serves, its version must not be a
 *    rollback in its lineage, and it must fit the quota: all before a byte of the model moves;
 * 3. chunks of `chunkBytes`, `window` requests in flight (one MQTT round trip per chunk would
 *    leave the link idle most of the time), each checked against its sha256 (a corrupt chunk is
 *    asked for again, up to `retries` times) and written at its offset into `.<sha>.part`; the
 *    sha256 of each written chunk goes to `.<sha>.chunks`, so a transfer cut short (a disconnect,
 *    a node restart) resumes from the bytes already there after re-hashing them against it;
 * 4. the whole file: sha256 == manifest.sha256 == the hash asked for, size == manifest.bytes, then
 *    the model gate (or the adapter gate for "gguf-lora") runs on the part file, before llama.cpp
 *    ever sees it; then the atomic rename into the store (0400) with the manifest beside it.
 *
 * Progress (bytes held of the total, then verifying, done or failed with the code) goes out on
 * `model-progress`, throttled (fetch-progress.ts), so `colony models push` and the dashboard show it.
 *
 * A refusal keeps its stable code, is counted (`models.refused.{code}`) and reported on
 * `model-report`; the node keeps serving. Two `ensure` of the same hash share one transfer.
 */
import { createHash, randomBytes } from "node:crypto";
import { appendFile, open, readFile, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import type { Counters } from "../../common/counters.ts";
import { ColonyError, CommonErrors, ModelTransferErrors } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { checkVersion, verifySignedManifest, type ModelManifest } from "../../common/model-manifest.ts";
import { decodeChunkFrame, MAX_MODEL_CHUNK, type ModelChunkHeader, type ModelFetch, type ModelProgress, type ModelReport } from "../../common/protocol.ts";
import { NodeErrors } from "../errors.ts";
import { FetchProgress } from "./fetch-progress.ts";
import type { NodeModelStore } from "./model-store.ts";
import type { ModelVersions } from "./model-versions.ts";

export interface FetchedModel {
  file: string;
  manifest: ModelManifest;
  /** Bytes that came over MQTT for this call (0: the store had it). */
  fetchedBytes: number;
}

export interface ModelFetcherOptions {
  nodeId: string;
  store: NodeModelStore;
  versions: ModelVersions;
  /** Publishes a model-fetch (the node link's outbox). */
  send: (req: ModelFetch) => void;
  /** Publishes a model-report. */
  report: (r: ModelReport) => void;
  /** Publishes a transfer's throttled progress (fetch-progress.ts). Default none. */
  progress?: ((p: ModelProgress) => void) | undefined;
  /** Least ms between two progress messages while bytes come in. Default 250 (MODEL_PROGRESS_INTERVAL_MS). */
  progressIntervalMs?: number | undefined;
  /** The fleet's model public key (base64url), from the node's credential; undefined: MODEL_KEY_MISSING. */
  modelKey: () => string | undefined;
  /** The model or adapter gate on the complete part file (throws with the gate's code). */
  gate: (file: string, manifest: ModelManifest) => Promise<void>;
  /** Hashes of models agents use now (never removed to make room). */
  inUse: () => Set<string>;
  counters: Counters;
  logger: Logger;
  now: () => number;
  /** Bytes per request. Default 1 MiB (MAX_MODEL_CHUNK, the most a request may ask). */
  chunkBytes?: number | undefined;
  /** Requests in flight. Default 8 (the coordinator serves 8 per node at once). */
  window?: number | undefined;
  /** A request unanswered this long is sent again. Default 10 000 ms. */
  requestTimeoutMs?: number | undefined;
  /** Tries per request (timeouts, corrupt chunks, a busy coordinator) before the transfer fails. Default 5. */
  retries?: number | undefined;
}

interface Pending {
  timer?: NodeJS.Timeout;
  resolve: (f: { header: ModelChunkHeader; data: Buffer }) => void;
  reject: (err: Error) => void;
}

const refuse = (code: string, message: string) => new ColonyError(code, message);

export class ModelFetcher {
  private readonly active = new Map<string, Promise<FetchedModel>>();
  /** Open requests by requestId. */
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(private readonly o: ModelFetcherOptions) {}

  /** Hashes with a transfer running now (the daemon keeps them out of garbage collection). */
  get fetching(): Set<string> {
    return new Set(this.active.keys());
  }

  ensure(sha256: string): Promise<FetchedModel> {
    if (this.closed) return Promise.reject(new ColonyError(CommonErrors.ALREADY_CLOSED, "the node is shutting down"));
    const running = this.active.get(sha256);
    if (running) return running;
    const p = this.run(sha256).finally(() => this.active.delete(sha256));
    this.active.set(sha256, p);
    return p;
  }

  /** Stops every transfer (its part file stays: the next start resumes it). */
  close(): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ColonyError(CommonErrors.ALREADY_CLOSED, "the node is shutting down"));
      this.pending.delete(id);
    }
  }

  /** A `model-chunk` frame from the link. Frames that fail the codec or answer nothing open are counted and dropped. */
  onFrame(payload: Buffer): void {
    const f = decodeChunkFrame(payload);
    if (!f.ok) return this.o.counters.drop(`model-chunk.${f.code}`, { why: f.message.slice(0, 200) });
    const p = this.pending.get(f.header.requestId);
    // A late answer to a request already sent again (or from before a restart).
    if (!p) return this.o.counters.inc("models.chunks.stale");
    this.pending.delete(f.header.requestId);
    clearTimeout(p.timer);
    p.resolve(f);
  }

  private async run(sha256: string): Promise<FetchedModel> {
    const have = await this.o.store.get(sha256);
    if (have) return { file: have.file, manifest: (have.signed as { manifest: ModelManifest }).manifest, fetchedBytes: 0 };
    const started = this.o.now();
    let fetchedBytes = 0;
    const send = this.o.progress;
    const progress = send ? new FetchProgress({ nodeId: this.o.nodeId, sha256, send, now: this.o.now, intervalMs: this.o.progressIntervalMs }) : undefined;
    try {
      const r = await this.transfer(sha256, progress, (n) => {
        fetchedBytes += n;
        // As they arrive, refused transfers included (node/metrics.ts); `models.fetched.bytes` counts verified ones.
        this.o.counters.inc("models.fetch.bytes", n);
        progress?.add(n);
      });
      progress?.done();
      this.o.counters.inc("models.fetched");
      this.o.counters.inc("models.fetched.bytes", fetchedBytes);
      this.o.logger.info({ sha256, bytes: r.manifest.bytes, fetchedBytes, ms: this.o.now() - started }, "model fetched and verified");
      this.o.report({ nodeId: this.o.nodeId, sha256, ok: true, fetchedBytes, at: this.o.now() });
      return { ...r, fetchedBytes };
    } catch (err) {
      const e = err instanceof ColonyError ? err : new ColonyError(CommonErrors.INTERNAL, (err as Error)?.message ?? String(err));
      if (e.code === CommonErrors.ALREADY_CLOSED) throw e;
      progress?.failed(e.code, e.message);
      this.o.counters.inc("models.refused");
      this.o.counters.inc(`models.refused.${e.code}`);
      this.o.logger.warn({ sha256, code: e.code, err: { message: e.message } }, "model refused");
      this.o.report({ nodeId: this.o.nodeId, sha256, ok: false, code: e.code, message: e.message.slice(0, 4000), fetchedBytes, at: this.o.now() });
      throw e;
    }
  }

  private async transfer(sha256: string, progress: FetchProgress | undefined, counted: (n: number) => void): Promise<{ file: string; manifest: ModelManifest }> {
    const key = this.o.modelKey();
    if (!key) throw refuse(ModelTransferErrors.MODEL_KEY_MISSING, `the node has no model key in its credential: cannot verify model ${sha256.slice(0, 12)} (issue the node a new credential)`);
    const first = await this.request(sha256, 0, 0, true);
    const manifest = verifySignedManifest(first.header.signed, key);
    if (manifest.sha256 !== sha256) throw refuse(NodeErrors.MODEL_HASH_MISMATCH, `the manifest served for ${sha256} names model ${manifest.sha256}`);
    if (manifest.bytes !== first.header.total) throw refuse(ModelTransferErrors.MODEL_TRUNCATED, `the manifest of ${sha256.slice(0, 12)} says ${manifest.bytes} bytes, the coordinator serves ${first.header.total}`);
    const seen = this.o.versions.get(manifest.lineage);
    checkVersion(manifest, seen?.version, seen?.sha256);
    await this.o.store.reserve(sha256, manifest.bytes, new Set([...this.o.inUse(), ...this.active.keys()]));

    const part = this.o.store.partFile(sha256);
    // Created if absent (0600), never truncated: its prefix is what a resume keeps.
    await (await open(part, "a", 0o600)).close();
    const fd = await open(part, "r+");
    const total = createHash("sha256");
    let done: number;
    try {
      done = await this.resume(sha256, fd, manifest.bytes, total);
      if (done > 0) this.o.logger.info({ sha256, offset: done }, "resuming a model transfer");
      progress?.start(manifest.bytes, done);
      await this.pull(sha256, fd, done, manifest.bytes, total, counted);
      await fd.truncate(manifest.bytes);
    } finally {
      await fd.close();
    }
    progress?.verifying();
    const actual = total.digest("hex");
    const size = (await stat(part)).size;
    if (size !== manifest.bytes) {
      await this.o.store.discardPart(sha256);
      throw refuse(ModelTransferErrors.MODEL_TRUNCATED, `model ${sha256.slice(0, 12)} is ${size} bytes on disk, its manifest says ${manifest.bytes}`);
    }
    if (actual !== sha256) {
      await this.o.store.discardPart(sha256);
      throw refuse(NodeErrors.MODEL_HASH_MISMATCH, `the bytes fetched for ${sha256} have sha256 ${actual}`);
    }
    try {
      await this.o.gate(part, manifest);
    } catch (err) {
      await this.o.store.discardPart(sha256);
      throw err;
    }
    await this.o.versions.record(manifest.lineage, manifest.version, sha256);
    const stored = await this.o.store.commit(sha256, first.header.signed);
    return { file: stored.file, manifest };
  }

  /**
   * The prefix of an earlier transfer that is still what it was: each chunk listed in `.chunks`,
   * in order from 0, re-hashed against its recorded sha256 (and fed to `total`). The part file is
   * cut after the last good chunk; the list is rewritten to match.
   */
  private async resume(sha256: string, fd: FileHandle, bytes: number, total: ReturnType<typeof createHash>): Promise<number> {
    const listFile = this.o.store.chunksFile(sha256);
    const lines = (await readFile(listFile, "utf8").catch(() => "")).split("\n");
    const byOffset = new Map<number, { length: number; sha: string }>();
    for (const l of lines) {
      const m = /^(\d+) (\d+) ([0-9a-f]{64})$/.exec(l);
      if (m) byOffset.set(Number(m[1]), { length: Number(m[2]), sha: m[3]! });
    }
    let at = 0;
    const kept: string[] = [];
    const size = (await fd.stat()).size;
    for (;;) {
      const c = byOffset.get(at);
      if (!c || c.length <= 0 || at + c.length > Math.min(bytes, size)) break;
      const buf = Buffer.allocUnsafe(c.length);
      const { bytesRead } = await fd.read(buf, 0, c.length, at);
      if (bytesRead !== c.length || createHash("sha256").update(buf).digest("hex") !== c.sha) {
        this.o.counters.inc("models.resume.bad-prefix");
        break;
      }
      total.update(buf);
      kept.push(`${at} ${c.length} ${c.sha}`);
      at += c.length;
    }
    await fd.truncate(at);
    await writeFile(listFile, kept.length ? `${kept.join("\n")}\n` : "", { mode: 0o600 });
    return at;
  }

  /**
   * Fetches a plain file the coordinator serves to this node by sha256 (a training job's
   * experiences: node/trainer/): no manifest and no model gate, so the caller must have the hash
   * from a source it trusts (the coordinator's command). The bytes must hash to `sha256` and count
   * `bytes`, else MODEL_HASH_MISMATCH / MODEL_TRUNCATED; then `dest` appears (renamed, complete).
   */
  async fetchFile(sha256: string, bytes: number, dest: string): Promise<void> {
    if (this.closed) throw new ColonyError(CommonErrors.ALREADY_CLOSED, "the node is shutting down");
    const part = `${dest}.part`;
    const fd = await open(part, "w", 0o600);
    const total = createHash("sha256");
    try {
      await this.pull(sha256, fd, 0, bytes, total, (n) => this.o.counters.inc("files.fetch.bytes", n), `${dest}.chunks`);
    } finally {
      await fd.close();
    }
    const actual = total.digest("hex");
    const size = (await stat(part)).size;
    if (size !== bytes) throw refuse(ModelTransferErrors.MODEL_TRUNCATED, `file ${sha256.slice(0, 12)} is ${size} bytes, the command says ${bytes}`);
    if (actual !== sha256) throw refuse(NodeErrors.MODEL_HASH_MISMATCH, `the bytes fetched for ${sha256} have sha256 ${actual}`);
    await rename(part, dest);
    await rm(`${dest}.chunks`, { force: true });
  }

  /** Fetches [from, bytes) with `window` requests in flight, writing each chunk at its offset and hashing in order. */
  private async pull(sha256: string, fd: FileHandle, from: number, bytes: number, total: ReturnType<typeof createHash>, counted: (n: number) => void, listFile = this.o.store.chunksFile(sha256)): Promise<void> {
    const step = Math.min(this.o.chunkBytes ?? MAX_MODEL_CHUNK, MAX_MODEL_CHUNK);
    const window = Math.max(1, this.o.window ?? 8);
    let next = from;
    let hashed = from;
    /** Chunks written but not yet fed to the whole-file hash (they came ahead of an earlier one). */
    const ahead = new Map<number, Buffer>();
    let failure: Error | undefined;
    // Chunks that arrive ahead of one still missing wait in memory for the in-order hash: at most
    // this many bytes ahead are asked for, so a chunk being retried cannot make that grow.
    const maxAhead = 4 * window * step;
    let progressed: (() => void)[] = [];
    const worker = async (): Promise<void> => {
      while (next < bytes && !failure) {
        if (next - hashed >= maxAhead) {
          await new Promise<void>((r) => progressed.push(r));
          continue;
        }
        const offset = next;
        const length = Math.min(step, bytes - offset);
        next += length;
        const { data, header } = await this.request(sha256, offset, length, false);
        counted(data.length);
        await fd.write(data, 0, data.length, offset);
        await appendFile(listFile, `${offset} ${length} ${header.chunkSha256}\n`);
        ahead.set(offset, data);
        for (let c = ahead.get(hashed); c; c = ahead.get(hashed)) {
          ahead.delete(hashed);
          total.update(c);
          hashed += c.length;
        }
        const wake = progressed;
        progressed = [];
        for (const r of wake) r();
      }
    };
    const workers = Array.from({ length: window }, () =>
      worker().catch((err: Error) => {
        failure ??= err;
        const wake = progressed;
        progressed = [];
        for (const r of wake) r();
      }),
    );
    await Promise.all(workers);
    if (failure) throw failure;
    if (hashed !== bytes) throw new ColonyError(CommonErrors.INTERNAL, `hashed ${hashed} of ${bytes} bytes`);
  }

  /**
   * One range, asked again on a timeout, a corrupt chunk or a busy coordinator (up to `retries`
   * tries); a refusal (MODEL_NOT_FOUND, MODEL_RANGE_INVALID) ends the transfer with its code.
   */
  private async request(sha256: string, offset: number, length: number, manifest: boolean): Promise<{ header: ModelChunkHeader; data: Buffer }> {
    const tries = this.o.retries ?? 5;
    const timeoutMs = this.o.requestTimeoutMs ?? 10_000;
    let lastWhy = "";
    let lastCode: string = ModelTransferErrors.MODEL_FETCH_TIMEOUT;
    for (let t = 1; t <= tries; t++) {
      if (this.closed) throw new ColonyError(CommonErrors.ALREADY_CLOSED, "the node is shutting down");
      const requestId = `mf-${randomBytes(8).toString("hex")}`;
      const answer = await new Promise<{ header: ModelChunkHeader; data: Buffer } | undefined>((resolve, reject) => {
        const p: Pending = { resolve, reject };
        p.timer = setTimeout(() => {
          this.pending.delete(requestId);
          resolve(undefined);
        }, timeoutMs);
        this.pending.set(requestId, p);
        this.o.send({ nodeId: this.o.nodeId, requestId, sha256, offset, length, ...(manifest ? { manifest: true } : {}) });
      });
      if (!answer) {
        this.o.counters.inc("models.chunks.timeout");
        lastCode = ModelTransferErrors.MODEL_FETCH_TIMEOUT;
        lastWhy = `no answer within ${timeoutMs} ms`;
        continue;
      }
      const { header, data } = answer;
      if (header.error) {
        if (header.error.code === ModelTransferErrors.MODEL_FETCH_BUSY) {
          this.o.counters.inc("models.chunks.busy");
          lastCode = ModelTransferErrors.MODEL_FETCH_BUSY;
          lastWhy = header.error.message;
          await new Promise((r) => setTimeout(r, 50 * t));
          continue;
        }
        throw refuse(header.error.code.slice(0, 64), `the coordinator refused model ${sha256.slice(0, 12)} at ${offset}: ${header.error.message}`);
      }
      if (header.sha256 !== sha256 || header.offset !== offset || header.length !== length) {
        this.o.counters.inc("models.chunks.mismatched");
        lastCode = ModelTransferErrors.MODEL_CHUNK_CORRUPT;
        lastWhy = `answer for [${header.offset}, +${header.length}) of ${header.sha256.slice(0, 12)}`;
        continue;
      }
      if (!manifest && createHash("sha256").update(data).digest("hex") !== header.chunkSha256) {
        this.o.counters.inc("models.chunks.corrupt");
        lastCode = ModelTransferErrors.MODEL_CHUNK_CORRUPT;
        lastWhy = `chunk at ${offset} does not match its sha256`;
        continue;
      }
      return answer;
    }
    const what = manifest ? "the manifest" : `bytes [${offset}, ${offset + length})`;
    throw refuse(lastCode, `model ${sha256.slice(0, 12)}: ${what} failed ${tries} times; last: ${lastWhy}`);
  }
}
