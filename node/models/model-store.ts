/**
 * The node's store of models pushed by the coordinator (docs/node.md, "Pushed models"): one
 * content-addressed folder (`DATA_DIR/colony-models`, mode 0700) holding
 *
 *   <sha256>.gguf            the verified model, 0400, named by the sha256 of its bytes;
 *   <sha256>.manifest.json   its signed manifest, as the coordinator sent it (0400);
 *   .<sha256>.part           a transfer in progress (model-fetcher.ts resumes it);
 *   .<sha256>.chunks         the sha256 of each chunk written to the .part, one line each;
 *   versions.json            the highest manifest version seen per lineage (model-versions.ts).
 *
 * A model enters only through `commit`, after the fetcher verified it, by an atomic rename: a
 * reader sees the whole verified file or none. The quota is the device profile's `modelDiskMB`
 * (unset: the disk's free space is the only limit); `gc` removes models no agent uses, never one
 * in use.
 */
import { existsSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { ColonyError, ModelTransferErrors } from "../../common/errors.ts";

const MODEL = /^([0-9a-f]{64})\.gguf$/;
const PART = /^\.([0-9a-f]{64})\.part$/;

export interface StoredModel {
  sha256: string;
  file: string;
  /** The signed manifest as received (verified before the model was committed). */
  signed: unknown;
  bytes: number;
}

export interface NodeModelStoreOptions {
  /** Disk the store's models and transfers may use, in bytes. Default: no quota beyond the disk's free space. */
  quotaBytes?: number | undefined;
  /** Free bytes on the disk holding `dir` (tests inject). Default: fs.statfs. */
  freeDiskBytes?: ((dir: string) => Promise<number>) | undefined;
}

async function diskFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export class NodeModelStore {
  constructor(readonly dir: string, private readonly o: NodeModelStoreOptions = {}) {}

  /**
   * Creates the folder, and removes what a commit cut short by a power loss left behind (found by
   * test/chaos/model-swap.test.ts: a `.chunks` file stayed forever beside a model committed just
   * before the kill, since the model is never fetched again): the transfer files of a model already
   * stored, a manifest whose model never arrived (the next commit writes it again) and temporary
   * manifests. A `.part` of a model not stored is kept for the next fetch to resume, writable again
   * (a commit cut between its chmod 0400 and its rename left it read-only: EACCES on the resume for a
   * node not run as root).
   */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const names = new Set(await readdir(this.dir));
    const stored = (sha: string | undefined) => sha !== undefined && names.has(`${sha}.gguf`);
    for (const n of names) {
      const transfer = /^\.([0-9a-f]{64})\.(part|chunks)$/.exec(n)?.[1];
      const manifest = /^([0-9a-f]{64})\.manifest\.json$/.exec(n)?.[1];
      if ((transfer && stored(transfer)) || (manifest && !stored(manifest)) || /^[0-9a-f]{64}\.manifest\.json\.tmp$/.test(n)) await rm(path.join(this.dir, n), { force: true });
      else if (transfer && n.endsWith(".part")) await chmod(path.join(this.dir, n), 0o600).catch(() => {});
    }
  }

  modelFile(sha256: string): string {
    return path.join(this.dir, `${sha256}.gguf`);
  }
  manifestFile(sha256: string): string {
    return path.join(this.dir, `${sha256}.manifest.json`);
  }
  partFile(sha256: string): string {
    return path.join(this.dir, `.${sha256}.part`);
  }
  chunksFile(sha256: string): string {
    return path.join(this.dir, `.${sha256}.chunks`);
  }

  /** Whether the model file is stored (a quick check for pricing; `get` reads the manifest too). */
  has(sha256: string): boolean {
    return existsSync(this.modelFile(sha256));
  }

  /** The model if the store holds it (file and manifest both there). */
  async get(sha256: string): Promise<StoredModel | undefined> {
    try {
      const [s, text] = await Promise.all([stat(this.modelFile(sha256)), readFile(this.manifestFile(sha256), "utf8")]);
      return { sha256, file: this.modelFile(sha256), signed: JSON.parse(text) as unknown, bytes: s.size };
    } catch {
      return undefined;
    }
  }

  /** The sha256 of every stored model. */
  async list(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names.flatMap((n) => MODEL.exec(n)?.[1] ?? []).sort();
  }

  /** Bytes the store's models and partial transfers take now. */
  async usedBytes(except?: string): Promise<number> {
    let used = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const sha = MODEL.exec(name)?.[1] ?? PART.exec(name)?.[1];
      if (!sha || sha === except) continue;
      used += await stat(path.join(this.dir, name)).then((s) => s.size, () => 0);
    }
    return used;
  }

  /**
   * Room for a model of `bytes` (its transfer in progress is counted as its own): frees models not
   * in `inUse` if that makes it fit, else MODEL_QUOTA. Nothing in use is ever removed.
   */
  async reserve(sha256: string, bytes: number, inUse: Set<string>): Promise<void> {
    const have = await stat(this.partFile(sha256)).then((s) => s.size, () => 0);
    const fits = async () => {
      const quotaOk = this.o.quotaBytes === undefined || (await this.usedBytes(sha256)) + bytes <= this.o.quotaBytes;
      const free = await (this.o.freeDiskBytes ?? diskFree)(this.dir);
      return { quotaOk, diskOk: bytes - have <= free, free };
    };
    let f = await fits();
    if (f.quotaOk && f.diskOk) return;
    await this.gc(new Set([...inUse, sha256]));
    f = await fits();
    if (f.quotaOk && f.diskOk) return;
    const mb = (n: number) => Math.ceil(n / 2 ** 20);
    const why = !f.quotaOk ? `the node's model quota is ${mb(this.o.quotaBytes!)} MB and models in use take ${mb(await this.usedBytes(sha256))} MB` : `${mb(f.free)} MB free on the disk of ${this.dir}`;
    throw new ColonyError(ModelTransferErrors.MODEL_QUOTA, `model ${sha256.slice(0, 12)} is ${mb(bytes)} MB; ${why}`, { bytes, quotaBytes: this.o.quotaBytes });
  }

  /**
   * Moves a verified `.part` into the store with its signed manifest: the manifest first, then the
   * model by an atomic rename (the model's presence is what `get` keys on).
   */
  async commit(sha256: string, signed: unknown): Promise<StoredModel> {
    const part = this.partFile(sha256);
    const manifest = this.manifestFile(sha256);
    const tmp = `${manifest}.tmp`;
    await rm(tmp, { force: true });
    await writeFile(tmp, JSON.stringify(signed), { mode: 0o400, flag: "wx" });
    await rename(tmp, manifest);
    await chmod(part, 0o400);
    await rename(part, this.modelFile(sha256));
    await rm(this.chunksFile(sha256), { force: true });
    const s = await stat(this.modelFile(sha256));
    return { sha256, file: this.modelFile(sha256), signed, bytes: s.size };
  }

  /** Removes a transfer in progress (a refused model, or a prefix that can no longer be trusted). */
  async discardPart(sha256: string): Promise<void> {
    await rm(this.partFile(sha256), { force: true });
    await rm(this.chunksFile(sha256), { force: true });
  }

  /**
   * Removes every stored model whose sha256 is not in `inUse` (and its manifest), and returns their
   * hashes. Transfers in progress are kept (they resume); pass their hashes in `inUse` too when a
   * fetch of them is running.
   */
  async gc(inUse: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const sha of await this.list()) {
      if (inUse.has(sha)) continue;
      await rm(this.modelFile(sha), { force: true });
      await rm(this.manifestFile(sha), { force: true });
      removed.push(sha);
    }
    return removed;
  }
}
