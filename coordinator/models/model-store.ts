/**
 * The coordinator's model store (docs/models.md): content-addressed files in `<dataDir>/models/`
 * (folder 0700, each model `<sha256>.gguf`, 0400), each with a manifest signed by the fleet's model
 * key (common/model-manifest.ts), served to nodes by the model server over MQTT.
 *
 * Manifests and the highest version of each lineage live in the coordinator's LevelDB (section
 * `models`: `m:{sha256}` -> signed manifest, `v:{lineage}` -> {version, sha256}) rather than in
 * `<sha256>.manifest.json` files: a manifest and its lineage's version bump are written in one
 * batch, so a crash never leaves a version handed out twice or a manifest without its counter, and
 * the database's lock already keeps a second process (a `colony models add` beside a running
 * coordinator) out. The bytes are renamed into place before that batch; start() removes a file the
 * batch never recorded (a crash in between) and half-copied files.
 *
 * Every file passes the GGUF gate before it is accepted: the model gate (gguf/llama-check.ts) for a
 * model, the adapter gate against its base (gguf/lora-check.ts) for an adapter, exactly as a node
 * checks it (node/llama/model-file.ts); a refusal carries the gate's GGUF_* code.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { ColonyError, CommonErrors, ModelManifestErrors, ModelTransferErrors } from "../../common/errors.ts";
import type { GateReport } from "../../common/gate-report.ts";
import type { Logger } from "../../common/logger.ts";
import {
  ModelManifestSchema, signManifest, verifySignedManifest, type ModelFormat, type ModelManifest, type ModelParent, type SignedManifest, type SigningKey,
} from "../../common/model-manifest.ts";
import { GgufErrors } from "../../gguf/errors.ts";
import { checkModel } from "../../gguf/llama-check.ts";
import { checkLoraAdapter } from "../../gguf/lora-check.ts";
import { readGgufHeaderFromFile } from "../../gguf/reader.ts";
import type { TaskStore } from "../market/task-store.ts";
import { ModelStoreErrors } from "./errors.ts";
import { copyHashing } from "../../common/file-hash.ts";

type Section = ReturnType<TaskStore["section"]>;

/** What the caller says about a model; the store adds sha256, bytes, version, createdAt and keyId. */
export interface ModelMeta {
  name: string;
  /** Default: `name`. */
  lineage?: string | undefined;
  /** Default "gguf-model". */
  format?: ModelFormat | undefined;
  /** An adapter's base model (sha256, in this store). */
  base?: string | undefined;
  /** Default []. */
  parents?: ModelParent[] | undefined;
  skills: string[];
  datasetSha256?: string | undefined;
  gate?: GateReport | undefined;
}

export interface StoredModel {
  /** The file's path (read-only; do not move it). */
  file: string;
  signed: SignedManifest;
}

export interface ModelStoreOptions {
  /** The store's folder, `<dataDir>/models`. */
  dir: string;
  /** The coordinator's LevelDB; its `models` section is opened in start(), after the task store started. */
  tasks: Pick<TaskStore, "section">;
  key: SigningKey;
  /** Default Date.now. */
  now?: (() => number) | undefined;
  logger: Logger;
}

const MANIFEST = "m:";
const VERSION = "v:";
const INCOMING = ".incoming-";
const SHA_RE = /^[0-9a-f]{64}$/;

export class ModelStore {
  private db: Section | undefined;
  private readonly models = new Map<string, SignedManifest>();
  private readonly versions = new Map<string, { version: number; sha256: string }>();
  private readonly listeners = new Set<() => void>();
  // add() and remove() run one at a time: a lineage's next version is read and written in one turn.
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: ModelStoreOptions) {}

  get dir(): string {
    return this.o.dir;
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    await chmod(this.o.dir, 0o700);
    const db = (this.db = this.o.tasks.section("models"));
    for await (const [key, value] of db.iterator({ gte: VERSION, lt: VERSION + "\uffff" })) this.versions.set(key.slice(VERSION.length), value as { version: number; sha256: string });
    const names = new Set(await readdir(this.o.dir));
    for await (const [key, value] of db.iterator({ gte: MANIFEST, lt: MANIFEST + "\uffff" })) {
      const sha = key.slice(MANIFEST.length);
      const signed = await this.loaded(sha, value);
      if (!signed) continue;
      if (!names.has(`${sha}.gguf`)) {
        this.o.logger.error({ sha256: sha, model: signed.manifest.name }, "a model's file is missing from the model store; its manifest is dropped");
        await db.del(key);
        continue;
      }
      this.models.set(sha, signed);
    }
    for (const n of names) {
      const orphan = /^([0-9a-f]{64})\.gguf$/.exec(n);
      if (n.startsWith(INCOMING) || (orphan && !this.models.has(orphan[1]!))) {
        this.o.logger.warn({ file: n }, "removing a model file the store never recorded (an interrupted add)");
        await rm(path.join(this.o.dir, n), { force: true });
      }
    }
  }

  /**
   * A stored manifest as read at start: re-signed when it carries an older key (the fleet secret
   * was rotated: the store holds the new private key), dropped when its signature does not verify
   * with the current key (the record was altered).
   */
  private async loaded(sha: string, value: unknown): Promise<SignedManifest | undefined> {
    const { key, logger } = this.o;
    const m = ModelManifestSchema.safeParse((value as SignedManifest | undefined)?.manifest);
    if (m.success && m.data.keyId !== key.keyId) {
      const signed = signManifest(m.data, key.privateKey, key.keyId);
      await this.db!.put(MANIFEST + sha, signed as never);
      logger.info({ sha256: sha, from: m.data.keyId, to: key.keyId }, "model manifest signed again with the fleet's new model key");
      return signed;
    }
    try {
      verifySignedManifest(value, key.publicKey);
      return value as SignedManifest;
    } catch (err) {
      logger.error({ sha256: sha, err: { code: (err as ColonyError).code, message: (err as Error).message } }, "a stored model manifest does not verify; dropped");
      await this.db!.del(MANIFEST + sha);
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.catch(() => undefined);
    this.listeners.clear();
    this.db = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Calls `fn` after every add or remove that changed the store; returns the unsubscribe. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get(sha256: string): StoredModel | undefined {
    const signed = this.models.get(sha256);
    return signed && { file: this.fileOf(sha256), signed };
  }

  /** Every manifest, by lineage then version. */
  list(): SignedManifest[] {
    return [...this.models.values()].sort((a, b) => (a.manifest.lineage < b.manifest.lineage ? -1 : a.manifest.lineage > b.manifest.lineage ? 1 : a.manifest.version - b.manifest.version));
  }

  /** The highest version handed out in `lineage` (also of a model removed since), undefined before the first. */
  highestVersion(lineage: string): number | undefined {
    return this.versions.get(lineage)?.version;
  }

  /** Opens a stored model for reading; the caller closes the handle. */
  async open(sha256: string): Promise<FileHandle> {
    if (!this.models.has(sha256)) throw notFound(sha256);
    return open(this.fileOf(sha256), "r");
  }

  /** Exactly `length` bytes at `offset` (MODEL_NOT_FOUND, MODEL_RANGE_INVALID past the end). */
  async readChunk(sha256: string, offset: number, length: number): Promise<Buffer> {
    const signed = this.models.get(sha256);
    if (!signed) throw notFound(sha256);
    const size = signed.manifest.bytes;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new ColonyError(ModelTransferErrors.MODEL_RANGE_INVALID, `bytes ${offset}+${length} are outside model ${sha256.slice(0, 12)} (${size} bytes)`);
    }
    const buf = Buffer.alloc(length);
    const fd = await open(this.fileOf(sha256), "r");
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fd.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new ColonyError(ModelTransferErrors.MODEL_TRUNCATED, `model ${sha256.slice(0, 12)} in the store is shorter than its manifest`);
        got += bytesRead;
      }
    } finally {
      await fd.close();
    }
    return buf;
  }

  /**
   * Copies `file` into the store while hashing it, checks it with the GGUF gate, signs its manifest
   * with the next version of its lineage and records it. The same content in the same lineage
   * returns the manifest already stored (whatever the other fields say); in another lineage it is
   * refused (MODEL_LINEAGE_CONFLICT).
   */
  add(file: string, meta: ModelMeta): Promise<SignedManifest> {
    return this.serial(() => this.addNow(file, meta));
  }

  /** Removes a model's file and manifest; its lineage keeps its highest version (versions are never reused). */
  remove(sha256: string): Promise<boolean> {
    return this.serial(async () => {
      if (!this.models.has(sha256)) return false;
      await this.d.del(MANIFEST + sha256);
      this.models.delete(sha256);
      await rm(this.fileOf(sha256), { force: true });
      this.changed();
      return true;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed || !this.db) return Promise.reject(new ColonyError(CommonErrors.ALREADY_CLOSED, "the model store is not open"));
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private get d(): Section {
    if (!this.db) throw new ColonyError(CommonErrors.ALREADY_CLOSED, "the model store is not open");
    return this.db;
  }

  private fileOf(sha256: string): string {
    return path.join(this.o.dir, `${sha256}.gguf`);
  }

  private changed(): void {
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (err) {
        this.o.logger.error({ err }, "a model store listener failed");
      }
    }
  }

  private async addNow(file: string, meta: ModelMeta): Promise<SignedManifest> {
    const lineage = meta.lineage ?? meta.name;
    const format = meta.format ?? "gguf-model";
    const tmp = path.join(this.o.dir, `${INCOMING}${randomBytes(8).toString("hex")}.gguf`);
    try {
      const { sha256, bytes } = await copyChecked(file, tmp);
      const draft = {
        sha256, bytes, format, ...(meta.base !== undefined ? { base: meta.base } : {}), name: meta.name, lineage, version: (this.highestVersion(lineage) ?? 0) + 1,
        parents: meta.parents ?? [], skills: meta.skills, ...(meta.datasetSha256 !== undefined ? { datasetSha256: meta.datasetSha256 } : {}),
        ...(meta.gate !== undefined ? { gate: meta.gate } : {}), createdAt: Math.floor((this.o.now ?? Date.now)()), keyId: this.o.key.keyId,
      };
      const parsed = ModelManifestSchema.safeParse(draft);
      if (!parsed.success) {
        const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
        throw new ColonyError(ModelManifestErrors.MODEL_MANIFEST_INVALID, `model ${meta.name}: ${issues}`);
      }
      const existing = this.models.get(sha256);
      if (existing) {
        if (existing.manifest.lineage === lineage) return existing;
        throw new ColonyError(ModelStoreErrors.MODEL_LINEAGE_CONFLICT, `the store already holds ${sha256.slice(0, 12)} as ${existing.manifest.name} v${existing.manifest.version} of lineage ${existing.manifest.lineage}, not ${lineage}`);
      }
      await this.gate(tmp, parsed.data, file);
      const signed = signManifest(parsed.data, this.o.key.privateKey, this.o.key.keyId);
      await chmod(tmp, 0o400);
      await rename(tmp, this.fileOf(sha256));
      const version = { version: signed.manifest.version, sha256 };
      await this.d.batch([
        { type: "put", key: MANIFEST + sha256, value: signed as never },
        { type: "put", key: VERSION + lineage, value: version as never },
      ]);
      this.models.set(sha256, signed);
      this.versions.set(lineage, version);
      this.o.logger.info({ sha256, model: signed.manifest.name, lineage, version: signed.manifest.version, bytes }, "model added to the store");
      this.changed();
      return signed;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The node's gate, on the copy (what is stored is what was checked). Throws the gate's GGUF_* error. */
  private async gate(copy: string, m: ModelManifest, shownAs: string): Promise<void> {
    const header = await readGgufHeaderFromFile(copy).catch((err: unknown) => {
      throw named(err, shownAs);
    });
    try {
      if (m.format === "gguf-model") {
        checkModel(header);
        return;
      }
      if (!m.base) throw new ColonyError(ModelStoreErrors.MODEL_BASE_MISSING, `adapter ${m.name} names no base model`);
      const base = this.models.get(m.base);
      if (!base) throw new ColonyError(ModelStoreErrors.MODEL_BASE_MISSING, `adapter ${m.name}'s base model ${m.base.slice(0, 12)} is not in the model store`);
      checkLoraAdapter(header, await readGgufHeaderFromFile(this.fileOf(m.base)));
    } catch (err) {
      throw named(err, shownAs);
    }
  }
}

function notFound(sha256: string): ColonyError {
  return new ColonyError(ModelTransferErrors.MODEL_NOT_FOUND, `the model store holds no model ${SHA_RE.test(sha256) ? sha256.slice(0, 12) : JSON.stringify(sha256.slice(0, 80))}`);
}

/** The gate's error with the caller's file name in front (its code unchanged). */
function named(err: unknown, file: string): unknown {
  if (!(err instanceof ColonyError)) return err;
  return new ColonyError(err.code, `${file}: ${err.message}`, { ...err.details, file }, { cause: err });
}

/** Copies `from` to `to` (mode 0600, must not exist) and returns the sha256 and size of the bytes written. */
async function copyChecked(from: string, to: string): Promise<{ sha256: string; bytes: number }> {
  const info = await stat(from).catch((err: NodeJS.ErrnoException) => {
    throw new ColonyError(GgufErrors.GGUF_FILE_UNREADABLE, `model file ${from} cannot be read: ${err.code ?? err.message}`, { path: from });
  });
  if (!info.isFile()) throw new ColonyError(GgufErrors.GGUF_FILE_UNREADABLE, `${from} is not a file`, { path: from });
  return copyHashing(from, to);
}
