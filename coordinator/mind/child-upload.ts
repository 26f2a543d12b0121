/**
 * Receives the child a trainer node uploads (docs/mind.md, "Trainer nodes"): chunk frames
 * (common/protocol/model-frame.ts) on the node's `train-upload`, in order, each checked against its
 * own sha256 and written at its offset into one file. A frame at offset 0 starts the upload over
 * (the node uploads again after a re-sent `train`). Nothing here trusts the node: the file counts
 * only when its size and sha256 match what the node then reports (`complete`), and the gate still
 * checks the model before llama.cpp opens it (trainer/distil/pipeline.ts, stage "gate").
 */
import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import type { ModelChunkHeader } from "../../common/protocol.ts";
import { sha256File } from "../../common/file-hash.ts";

export class ChildUpload {
  private fd: FileHandle | undefined;
  private expect: { sha256: string; total: number } | undefined;
  private received = 0;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private problem: string | undefined;

  /** @param maxBytes the largest child accepted (a node cannot fill the coordinator's disk). */
  constructor(readonly file: string, private readonly maxBytes: number) {}

  /** One frame, already decoded and addressed to this job by its node. Returns a reason when it is dropped. */
  onFrame(header: ModelChunkHeader, data: Buffer): string | undefined {
    if (header.error) return "an error frame";
    if (header.total > this.maxBytes) return `a child of ${header.total} bytes exceeds ${this.maxBytes}`;
    if (createHash("sha256").update(data).digest("hex") !== header.chunkSha256) return `chunk at ${header.offset} does not match its sha256`;
    // QoS 1 frames from one node arrive in order, each after the last one's PUBACK: a deep queue is a misbehaving sender.
    if (this.queued >= 4) return "frames arrive faster than they are written";
    this.queued++;
    const copy = Buffer.from(data);
    this.chain = this.chain
      .then(() => this.write(header, copy))
      .catch((err: Error) => void (this.problem = err.message))
      .finally(() => this.queued--);
    return undefined;
  }

  private async write(h: ModelChunkHeader, data: Buffer): Promise<void> {
    if (h.offset === 0) {
      await this.fd?.close();
      this.fd = await open(this.file, "w", 0o600);
      this.expect = { sha256: h.sha256, total: h.total };
      this.received = 0;
      this.problem = undefined;
    }
    if (!this.fd || !this.expect) throw new Error(`a frame at ${h.offset} before the upload's start`);
    if (h.sha256 !== this.expect.sha256 || h.total !== this.expect.total) throw new Error("a frame of another file in the middle of an upload");
    if (h.offset !== this.received) throw new Error(`a frame at ${h.offset}, expected ${this.received}`);
    await this.fd.write(data, 0, data.length, h.offset);
    this.received += data.length;
  }

  /** After the node's `trained`: the file is complete and is exactly what the node says; else why not. */
  async complete(sha256: string, bytes: number): Promise<string | undefined> {
    await this.chain;
    await this.fd?.close();
    this.fd = undefined;
    if (this.problem) return this.problem;
    if (!this.expect) return "no upload arrived";
    if (this.expect.sha256 !== sha256 || this.expect.total !== bytes) return `the upload was of ${this.expect.sha256.slice(0, 12)} (${this.expect.total} bytes), the node reports ${sha256.slice(0, 12)} (${bytes} bytes)`;
    if (this.received !== bytes) return `${this.received} of ${bytes} bytes arrived`;
    const actual = await sha256File(this.file);
    if (actual !== sha256) return `the bytes received have sha256 ${actual.slice(0, 12)}, the node reports ${sha256.slice(0, 12)}`;
    return undefined;
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
    await this.fd?.close().catch(() => {});
    this.fd = undefined;
  }
}
