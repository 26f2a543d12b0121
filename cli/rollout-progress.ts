/**
 * `colony models push`'s per-node progress, from the coordinator's retained rollout table
 * (`colony/v1/models/rollouts`, coordinator/models/rollouts.ts). On a terminal: one bar per node,
 * redrawn in place (at most every `intervalMs`). Piped or under a supervisor: a plain line per node
 * when its state changes and at each quarter of the model, so a log shows the rollout without a
 * carriage return in it.
 */
import type { Rollout } from "../common/protocol.ts";

export interface RolloutProgressOptions {
  /** Default process.stdout. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Bars (true) or plain lines (false). Default: whether the stream is a terminal. */
  bars?: boolean;
  /** Least ms between two redraws of the bars. Default 100. */
  intervalMs?: number;
  now?: () => number;
}

const WIDTH = 24;
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const pct = (r: Rollout) => (r.total > 0 ? Math.min(100, Math.floor((100 * r.bytes) / r.total)) : r.state === "done" ? 100 : 0);

/** One node's line: `name [#####-----]  42%  44.1 MB/104.9 MB  fetching`, or plain `name fetching 42% (44.1 MB/104.9 MB)`; a failure ends with its code. */
export function rolloutLine(r: Rollout, nameWidth: number, bar: boolean): string {
  const p = pct(r);
  const filled = Math.round((p / 100) * WIDTH);
  const why = r.state === "failed" ? ` ${r.code ?? ""}${r.message ? `: ${r.message}` : ""}` : "";
  const size = r.total > 0 ? `${mb(r.bytes)}/${mb(r.total)}` : "";
  const name = r.nodeId.padEnd(nameWidth);
  return bar ? `  ${name} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${String(p).padStart(3)}%  ${size}  ${r.state}${why}` : `  ${name} ${r.state} ${p}%${size ? ` (${size})` : ""}${why}`;
}

export class RolloutProgress {
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly bars: boolean;
  private readonly rows = new Map<string, Rollout>();
  /** Plain mode: what was printed last per node (state and quarter). */
  private readonly said = new Map<string, string>();
  private drawn = 0;
  private lastDraw = -Infinity;
  private finished = false;

  constructor(private readonly o: RolloutProgressOptions = {}) {
    this.stream = o.stream ?? process.stdout;
    this.bars = o.bars ?? this.stream.isTTY === true;
  }

  /** The rollout table's rows for this push (the caller filters by requestId). */
  update(rows: readonly Rollout[], force = false): void {
    if (this.finished) return;
    for (const r of rows) this.rows.set(r.nodeId, r);
    if (this.bars) return this.draw(force);
    const width = this.nameWidth();
    for (const r of rows) {
      const mark = `${r.state}:${Math.floor(pct(r) / 25)}`;
      if (this.said.get(r.nodeId) === mark) continue;
      this.said.set(r.nodeId, mark);
      this.stream.write(rolloutLine(r, width, false) + "\n");
    }
  }

  /** Last redraw (the cursor ends below the bars); later updates are ignored. */
  done(): void {
    if (this.bars && this.rows.size > 0 && !this.finished) this.draw(true);
    this.finished = true;
  }

  private nameWidth(): number {
    return Math.max(0, ...[...this.rows.keys()].map((k) => k.length));
  }

  private draw(force: boolean): void {
    const now = (this.o.now ?? Date.now)();
    if (!force && now - this.lastDraw < (this.o.intervalMs ?? 100)) return;
    this.lastDraw = now;
    const width = this.nameWidth();
    // Back to the first bar, then each line rewritten and cleared to its end (ECMA-48 CUU, EL).
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    const lines = [...this.rows.values()].map((r) => `\r${rolloutLine(r, width, true)}\x1b[K\n`);
    this.stream.write(up + lines.join(""));
    this.drawn = lines.length;
  }
}
