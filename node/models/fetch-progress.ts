/**
 * One transfer's progress as the node publishes it on `model-progress` (common/protocol/models.ts):
 * throttled while bytes come in, at most every `intervalMs` unless `step` of the model arrived since
 * the last message, so a 1 MiB chunk costs a clock read and a comparison, not a publish. Changes of
 * state (verifying, done, failed) always go out, in order (`seq`).
 */
import { randomBytes } from "node:crypto";
import { MODEL_PROGRESS_INTERVAL_MS, MODEL_PROGRESS_STEP, type ModelProgress, type ModelTransferState } from "../../common/protocol.ts";

export interface FetchProgressOptions {
  nodeId: string;
  sha256: string;
  send: (p: ModelProgress) => void;
  now: () => number;
  /** Default MODEL_PROGRESS_INTERVAL_MS (250 ms). */
  intervalMs?: number | undefined;
  /** Default MODEL_PROGRESS_STEP (0.05 of the model). */
  step?: number | undefined;
}

export class FetchProgress {
  private readonly transferId = `mt-${randomBytes(6).toString("hex")}`;
  private seq = 0;
  private bytes = 0;
  private total = 0;
  private lastAt = -Infinity;
  private lastBytes = 0;
  private ended = false;

  constructor(private readonly o: FetchProgressOptions) {}

  /** The manifest is verified: `total` bytes to hold, `bytes` of them already there (a resume). */
  start(total: number, bytes: number): void {
    this.total = total;
    this.bytes = bytes;
    this.emit("fetching");
  }

  /** `n` more bytes arrived; published when the interval or the step has passed. */
  add(n: number): void {
    this.bytes += n;
    if (this.ended) return;
    const now = this.o.now();
    const stepBytes = this.total * (this.o.step ?? MODEL_PROGRESS_STEP);
    if (now - this.lastAt < (this.o.intervalMs ?? MODEL_PROGRESS_INTERVAL_MS) && this.bytes - this.lastBytes < stepBytes) return;
    this.emit("fetching", undefined, now);
  }

  verifying(): void {
    this.emit("verifying");
  }

  done(): void {
    this.bytes = this.total;
    this.emit("done");
    this.ended = true;
  }

  failed(code: string, message: string): void {
    if (this.ended) return;
    this.emit("failed", { code, message: message.slice(0, 1024) });
    this.ended = true;
  }

  private emit(state: ModelTransferState, error?: { code: string; message: string }, now = this.o.now()): void {
    this.lastAt = now;
    this.lastBytes = this.bytes;
    this.o.send({ nodeId: this.o.nodeId, sha256: this.o.sha256, transferId: this.transferId, seq: this.seq++, state, bytes: this.bytes, total: this.total, ...error, at: now });
  }
}
