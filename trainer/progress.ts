/**
 * A one-line progress bar on stderr: step, loss, tokens/s, ETA. It draws only when stderr is a
 * terminal or when forced, so tests, pipes and CI logs stay clean; redraws are throttled because a
 * tiny model can take hundreds of steps per second.
 */
export interface ProgressOptions {
  totalSteps: number;
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Draw even when the stream is not a TTY. Default false. */
  force?: boolean;
  /** Minimum milliseconds between redraws. Default 100. */
  intervalMs?: number;
  /** Clock in ms, injectable for tests. Default performance.now. */
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export class ProgressBar {
  readonly enabled: boolean;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private tokens = 0;
  private drew = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.enabled = opts.force === true || this.stream.isTTY === true;
    this.now = opts.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Renders the line for a state; exported through the instance for tests. */
  render(step: number, loss: number, tokensPerSecond: number, etaSeconds: number): string {
    const total = this.opts.totalSteps;
    const width = 20;
    const filled = Math.max(0, Math.min(width, Math.round((step / Math.max(1, total)) * width)));
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    return `[${bar}] step ${step}/${total} loss ${loss.toFixed(4)} ${Math.round(tokensPerSecond)} tok/s ETA ${formatDuration(etaSeconds)}`;
  }

  /** Call after each step with that step's number (1-based), loss and tokens processed. */
  update(step: number, loss: number, stepTokens: number): void {
    this.tokens += stepTokens;
    if (!this.enabled) return;
    const t = this.now();
    if (step < this.opts.totalSteps && t - this.lastDraw < (this.opts.intervalMs ?? 100)) return;
    this.lastDraw = t;
    const elapsed = (t - this.started) / 1000;
    const tps = elapsed > 0 ? this.tokens / elapsed : 0;
    const eta = step > 0 ? (elapsed / step) * (this.opts.totalSteps - step) : Infinity;
    this.stream.write(`\r${this.render(step, loss, tps, eta)}\x1b[K`);
    this.drew = true;
  }

  /** Ends the line so later output starts on a fresh one. */
  done(): void {
    if (this.enabled && this.drew) this.stream.write("\n");
    this.drew = false;
  }
}
