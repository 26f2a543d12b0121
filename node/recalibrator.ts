/**
 * Keeps each model's calibration (load time, tokens/s, best thread count: llama/calibration.ts):
 * at start, a model without a stored one is measured (unless calibration is off); afterwards, when
 * nothing runs, the stalest model whose agents all sleep is measured again once its calibration is
 * older than `maxAgeMs` (firmware updates, thermal paste, other services change what a device
 * does), so no task and no live context is disturbed.
 */
import { every, type Clock, type Timer } from "../common/clock.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import type { Agent } from "./agents/agent.ts";
import type { AgentPool } from "./agents/agent-pool.ts";
import { calibrateBest, type CalibrationStore } from "./llama/calibration.ts";
import type { LlamaRuntime } from "./llama/llama-runtime.ts";

export interface RecalibratorOptions {
  pool: AgentPool;
  runtime: LlamaRuntime;
  calibrations: CalibrationStore;
  /** Measure uncalibrated models at start. */
  calibrateAtStart: boolean;
  maxAgeMs: number;
  /** True when no task runs or waits. */
  idle: () => boolean;
  clock: Clock;
  logger: Logger;
}

export class Recalibrator implements Lifecycle {
  private timer: Timer | undefined;
  private busy = false;
  private closed = false;

  constructor(private readonly o: RecalibratorOptions) {}

  private byModel(): Map<string, Agent[]> {
    const m = new Map<string, Agent[]>();
    for (const a of this.o.pool.agents.values()) m.set(a.modelFile, [...(m.get(a.modelFile) ?? []), a]);
    return m;
  }

  async start(): Promise<void> {
    const { calibrations, runtime } = this.o;
    for (const [file, agents] of this.byModel()) {
      // Keyed by the maximum thread count; the stored calibration names the best one.
      if (await calibrations.load(file, runtime.threads)) continue;
      if (this.o.calibrateAtStart) await calibrations.put(file, runtime.threads, await calibrateBest(agents[0]!, runtime, this.o.logger));
    }
    const ms = Math.max(1000, Math.min(60_000, this.o.maxAgeMs / 10));
    this.timer = every(this.o.clock, ms, () => void this.runIfIdle(this.o.maxAgeMs));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
  }

  /** Re-measures the stalest idle model older than `maxAgeMs`; true if it measured one. */
  async runIfIdle(maxAgeMs: number): Promise<boolean> {
    const { calibrations } = this.o;
    if (this.busy || this.closed || !this.o.idle()) return false;
    const now = this.o.clock.now();
    const age = (file: string) => calibrations.get(file)?.at ?? 0;
    const stale = [...this.byModel()]
      .filter(([file, agents]) => agents.every((a) => a.state === "asleep") && now - age(file) > maxAgeMs)
      .sort(([a], [b]) => age(a) - age(b));
    const pick = stale[0];
    if (!pick) return false;
    this.busy = true;
    try {
      await calibrations.put(pick[0], this.o.runtime.threads, await calibrateBest(pick[1][0]!, this.o.runtime, this.o.logger));
      return true;
    } catch (err) {
      this.o.logger.warn({ err, model: pick[0] }, "recalibration failed");
      return false;
    } finally {
      this.busy = false;
    }
  }
}
