import type { Record } from "./scoring.ts";

/** A verdict that came from a submitter (its check, plain delivery, or its feedback). */
export interface VerdictFrom {
  submitter: string;
  taskId: string;
}

/** One submitter's latest verdicts on one agent and skill, oldest first. */
export type VerdictWindow = { taskId: string; success: boolean }[];

/** What changed, for the owner that persists it (reputation.ts). */
export type RecordChange =
  | { kind: "base"; key: string; skill: string; rec: Record }
  | { kind: "window"; key: string; skill: string; submitter: string; window: VerdictWindow };

/**
 * Each agent's record per skill, one observation per task attempt (docs/scoring.md), under the
 * agent's record key (agent-ref.ts). Two parts:
 *
 * - the base: the agent's own failures (error, timeout, refusal, node offline, deadline) and the
 *   verdicts of trusted submitters, counted without limit;
 * - one window per other submitter: its latest `windowSize` verdicts only, each worth `windowWeight`
 *   of an observation, so one submitter, however many tasks it sends with impossible checks or
 *   hostile feedback, moves an agent's record by at most `windowSize x windowWeight` observations
 *   (20 x 0.25 = 5 by default; and as many successes, for an agent it favours).
 *
 * The record the market scores with is the base plus every window (so it may hold fractions). Pure state; `onChange` hands
 * every change to the owner that persists it. Skill "*" is used for tasks without a skill.
 */
export class TrackRecords {
  private readonly base = new Map<string, Record>();
  private readonly windows = new Map<string, Map<string, VerdictWindow>>();
  private readonly combined = new Map<string, Record>();
  private readonly totals = new Map<string, number>();

  constructor(
    private readonly onChange: (change: RecordChange) => void = () => {},
    readonly windowSize = 20,
    readonly windowWeight = 0.25,
  ) {}

  private static id(key: string, skill: string): string {
    return `${key}|${skill}`;
  }

  get(key: string, skill: string): Record {
    return this.combined.get(TrackRecords.id(key, skill)) ?? { successes: 0, failures: 0 };
  }

  /** All trials of a skill across agents (N of the exploration bonus). */
  total(skill: string): number {
    return this.totals.get(skill) ?? 0;
  }

  /** Rebuilds the combined record of (key, skill) and keeps the skill's total in step. */
  private recombine(key: string, skill: string): void {
    const id = TrackRecords.id(key, skill);
    const prev = this.get(key, skill);
    const b = this.base.get(id) ?? { successes: 0, failures: 0 };
    let s = b.successes;
    let f = b.failures;
    for (const w of this.windows.get(id)?.values() ?? []) for (const v of w) v.success ? (s += this.windowWeight) : (f += this.windowWeight);
    this.combined.set(id, { successes: s, failures: f });
    this.totals.set(skill, this.total(skill) - prev.successes - prev.failures + s + f);
  }

  load(key: string, skill: string, rec: Record): void {
    this.base.set(TrackRecords.id(key, skill), rec);
    this.recombine(key, skill);
  }

  loadWindow(key: string, skill: string, submitter: string, window: VerdictWindow): void {
    const id = TrackRecords.id(key, skill);
    const ws = this.windows.get(id) ?? new Map<string, VerdictWindow>();
    ws.set(submitter, window.slice(-this.windowSize));
    this.windows.set(id, ws);
    this.recombine(key, skill);
  }

  /** Adds one observation: to the base, or to the window of the submitter it came from. */
  note(key: string, skill: string, success: boolean, from?: VerdictFrom): Record {
    const id = TrackRecords.id(key, skill);
    if (!from) {
      const prev = this.base.get(id) ?? { successes: 0, failures: 0 };
      const rec = success ? { ...prev, successes: prev.successes + 1 } : { ...prev, failures: prev.failures + 1 };
      this.base.set(id, rec);
      this.recombine(key, skill);
      this.onChange({ kind: "base", key, skill, rec });
    } else {
      const ws = this.windows.get(id) ?? new Map<string, VerdictWindow>();
      const window = [...(ws.get(from.submitter) ?? []), { taskId: from.taskId, success }].slice(-this.windowSize);
      ws.set(from.submitter, window);
      this.windows.set(id, ws);
      this.recombine(key, skill);
      this.onChange({ kind: "window", key, skill, submitter: from.submitter, window });
    }
    return this.get(key, skill);
  }

  /**
   * Changes an observation already counted from `was` to `now` (feedback replacing a provisional
   * verdict): the number of observations stays the same. A windowed verdict that has already left
   * its window no longer counts, so there is nothing to change.
   */
  correct(key: string, skill: string, was: boolean, now: boolean, from?: VerdictFrom): Record {
    if (was === now) return this.get(key, skill);
    const id = TrackRecords.id(key, skill);
    if (from) {
      const window = this.windows.get(id)?.get(from.submitter);
      const entry = window?.find((v) => v.taskId === from.taskId);
      if (!window || !entry) return this.get(key, skill);
      entry.success = now;
      this.recombine(key, skill);
      this.onChange({ kind: "window", key, skill, submitter: from.submitter, window });
      return this.get(key, skill);
    }
    const prev = this.base.get(id) ?? { successes: 0, failures: 0 };
    const fromField = was ? "successes" : "failures";
    const toField = now ? "successes" : "failures";
    // A record loaded from an older store may not hold the observation being corrected: then add it.
    if (prev[fromField] === 0) return this.note(key, skill, now);
    const rec = { ...prev, [fromField]: prev[fromField] - 1, [toField]: prev[toField] + 1 };
    this.base.set(id, rec);
    this.recombine(key, skill);
    this.onChange({ kind: "base", key, skill, rec });
    return this.get(key, skill);
  }

  /** For `colony status`: every combined record, by key and skill. */
  all(): { key: string; skill: string; successes: number; failures: number }[] {
    return [...this.combined].map(([id, r]) => {
      const [key, skill] = id.split("|") as [string, string];
      return { key, skill, ...r };
    });
  }
}
