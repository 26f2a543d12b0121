/**
 * What llama.cpp opens is exactly what the gate checked. A model path can be replaced between the
 * check and the load (or while llama.cpp maps it: mmap'd pages follow later writes to the file),
 * by anyone who can write it or its folder. So the node never hands llama.cpp the path it was
 * given: it copies the file into a private store (the node's data dir, mode 0700; files 0400),
 * hashing the bytes as they are copied, runs the gate on the copy, and loads the copy, named by
 * its sha256. Checking the source again right before the load would leave a window between that
 * check and llama.cpp's open(); an fd-based open is not something node-llama-cpp offers. The
 * price is one read and one write of the model per new file (109 MB: 330-420 ms for copy and
 * sha256, measured here at load average ~5) and the disk space of one copy per model in use.
 *
 * A source is copied again only when its size, mtime, ctime or inode changed (ctime cannot be
 * set back by a user, unlike mtime); otherwise its verified copy is reused. A swap that keeps all
 * of them is still harmless: the copy is what gets loaded.
 */
import { randomUUID } from "node:crypto";
import { chmod, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { NodeErrors } from "../errors.ts";
import { hashMismatch, verifyModelFile, type ModelFacts } from "./model-file.ts";
import { copyHashing } from "../../common/file-hash.ts";

export interface VerifiedModel extends ModelFacts {
  sha256: string;
  /** The private verified copy llama.cpp loads. */
  verifiedFile: string;
}

// The store's own files: verified copies and copies in progress. Nothing else in the folder is touched.
const OWN_FILE = /^([0-9a-f]{64}\.gguf|\.[0-9a-f-]{36}\.tmp)$/;

interface Pin {
  stamp: string;
  model: VerifiedModel;
}

async function stampOf(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch (err) {
    throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
}


export class VerifiedModelStore {
  private readonly pins = new Map<string, Pin>();
  /** sha256 pinned by each source's model reference: applies to every later re-verification. */
  private readonly expected = new Map<string, string>();

  /**
   * `inUse`: verified files llama.cpp has loaded now (never removed while loaded). `check`: the gate
   * run on each copy; default the model gate (a store of LoRA adapters passes the adapter reader).
   */
  constructor(
    private readonly dir: string,
    private readonly opts: { allowUnchecked: boolean; inUse: () => Set<string>; check?: (copy: string, shownAs: string) => Promise<ModelFacts> },
  ) {}

  /**
   * A source whose verified copy has this sha256, if one was pinned since the start: a genome that
   * pins a model by hash may use a file the node already holds under another path or URI.
   */
  sourceFor(sha256: string): string | undefined {
    for (const [source, p] of this.pins) if (p.model.sha256 === sha256) return source;
    return undefined;
  }

  /** Removes every copy and leftover temporary file (at start: no copy is referenced yet). */
  async clear(): Promise<void> {
    this.pins.clear();
    for (const name of await this.files()) if (OWN_FILE.test(name)) await rm(path.join(this.dir, name), { force: true });
  }

  /**
   * The verified copy of `source`, made (or reused if the source did not change). `sha256`, if
   * given, is remembered for the source: every later copy must have it too.
   */
  async pin(source: string, sha256?: string): Promise<VerifiedModel> {
    const expected = sha256 ?? this.expected.get(source);
    const stamp = await stampOf(source);
    const cached = this.pins.get(source);
    let model: VerifiedModel;
    if (cached && cached.stamp === stamp) {
      if (expected && cached.model.sha256 !== expected) throw hashMismatch(source, expected, cached.model.sha256);
      model = cached.model;
    } else {
      model = await this.copyAndVerify(source, expected);
      this.pins.set(source, { stamp, model });
      if (cached && cached.model.verifiedFile !== model.verifiedFile) await this.dropUnused(cached.model.verifiedFile);
    }
    if (sha256) this.expected.set(source, sha256);
    return model;
  }

  private async copyAndVerify(source: string, expected: string | undefined): Promise<VerifiedModel> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.dir, `.${randomUUID()}.tmp`);
    try {
      let sha256: string;
      try {
        sha256 = (await copyHashing(source, tmp)).sha256;
      } catch (err) {
        throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model file ${source} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file: source }, { cause: err });
      }
      if (expected && sha256 !== expected) throw hashMismatch(source, expected, sha256);
      // The gate runs on the copy: the bytes it passes are the bytes llama.cpp will map.
      const facts = this.opts.check ? await this.opts.check(tmp, source) : await verifyModelFile(tmp, { allowUnchecked: this.opts.allowUnchecked, shownAs: source });
      const verifiedFile = path.join(this.dir, `${sha256}.gguf`);
      await chmod(tmp, 0o400);
      // Same name = same bytes (another source, or an earlier copy): replacing it changes nothing,
      // and a model llama.cpp has mapped keeps the old inode.
      await rename(tmp, verifiedFile);
      return { ...facts, sha256, verifiedFile };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Deletes a copy no source pins and llama.cpp has not loaded (it would be removed at the next start anyway). */
  private async dropUnused(file: string): Promise<void> {
    const referenced = [...this.pins.values()].some((p) => p.model.verifiedFile === file);
    if (!referenced && !this.opts.inUse().has(file)) await rm(file, { force: true });
  }

  /** The names in the store's folder. */
  async files(): Promise<string[]> {
    return (await readdir(this.dir).catch(() => [])).sort();
  }
}
