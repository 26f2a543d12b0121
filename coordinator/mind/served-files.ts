/**
 * The model server's source with a training job's inputs added (docs/mind.md, "Trainer nodes"): the
 * coordinator's signed models for everyone who may fetch, plus plain files (a job's experiences)
 * offered to exactly one node, the trainer it awarded the job to, for as long as the job runs. A
 * node that asks for an offered file's hash without the offer gets MODEL_NOT_FOUND, like for any
 * hash the store lacks. The hash came in the coordinator's own command, so the node checks the
 * bytes against it instead of a manifest.
 */
import { createHash } from "node:crypto";
import { open, readFile, writeFile, type FileHandle } from "node:fs/promises";
import type { ModelSource, ServedFile } from "../models/model-server.ts";

interface Offer {
  file: string;
  bytes: number;
  nodeId: string;
}

export class ServedFiles implements ModelSource {
  private readonly offers = new Map<string, Offer>();

  constructor(private readonly store: ModelSource) {}

  offer(sha256: string, o: Offer): void {
    this.offers.set(sha256, o);
  }

  withdraw(sha256: string): void {
    this.offers.delete(sha256);
  }

  get(sha256: string, nodeId?: string): Promise<ServedFile | undefined> | ServedFile | undefined {
    const o = this.offers.get(sha256);
    if (o && o.nodeId === nodeId) return { file: o.file, signed: undefined, bytes: o.bytes };
    return this.store.get(sha256, nodeId);
  }

  async readChunk(sha256: string, offset: number, length: number): Promise<Buffer> {
    const o = this.offers.get(sha256);
    if (!o) return this.store.readChunk(sha256, offset, length);
    const fd = await open(o.file, "r");
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fd.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fd.close();
    }
  }

  open(sha256: string): Promise<FileHandle> {
    const o = this.offers.get(sha256);
    if (o) return open(o.file, "r");
    if (this.store.open) return this.store.open(sha256);
    return Promise.reject(new Error("the store has no read handles"));
  }
}

/**
 * The job's experiences a trainer node may see: all but those of private tasks, whose prompts go
 * only to nodes that hold the task's skill (docs/security.md). Written beside the job's file; the
 * coordinator's own gate still reads the whole file.
 */
export async function shareableExperiences(file: string): Promise<{ file: string; sha256: string; bytes: number }> {
  const raw = await readFile(file);
  const lines = raw.toString("utf8").split("\n").filter((l) => l !== "");
  const kept = lines.filter((l) => (JSON.parse(l) as { private?: boolean }).private !== true);
  const described = (f: string, b: Buffer) => ({ file: f, sha256: createHash("sha256").update(b).digest("hex"), bytes: b.length });
  if (kept.length === lines.length) return described(file, raw);
  const out = file.replace(/\.jsonl$/, "") + ".shared.jsonl";
  const text = Buffer.from(kept.map((l) => l + "\n").join(""), "utf8");
  await writeFile(out, text, { mode: 0o600 });
  return described(out, text);
}
