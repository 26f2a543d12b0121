import type { Record } from "./scoring.ts";

/**
 * Each agent's record per skill: one observation per task attempt (docs/scoring.md), under the
 * agent's record key (agent-ref.ts; named `agentId` below for brevity). Pure state; `onChange` hands
 * every change to the owner that persists it (reputation.ts). Skill "*" is used for tasks without a
 * skill.
 */
export class TrackRecords {
  private readonly recs = new Map<string, Record>();
  private readonly totals = new Map<string, number>();
  constructor(private readonly onChange: (agentId: string, skill: string, rec: Record) => void = () => {}) {}

  private static key(agentId: string, skill: string): string {
    return `${agentId}|${skill}`;
  }

  get(agentId: string, skill: string): Record {
    return this.recs.get(TrackRecords.key(agentId, skill)) ?? { successes: 0, failures: 0 };
  }

  /** All trials of a skill across agents (N of the exploration bonus). */
  total(skill: string): number {
    return this.totals.get(skill) ?? 0;
  }

  load(agentId: string, skill: string, rec: Record): void {
    const prev = this.get(agentId, skill);
    this.recs.set(TrackRecords.key(agentId, skill), rec);
    this.totals.set(skill, this.total(skill) - prev.successes - prev.failures + rec.successes + rec.failures);
  }

  /** Adds one observation. */
  note(agentId: string, skill: string, success: boolean): Record {
    const prev = this.get(agentId, skill);
    return this.set(agentId, skill, success ? { successes: prev.successes + 1, failures: prev.failures } : { successes: prev.successes, failures: prev.failures + 1 });
  }

  /**
   * Changes an observation already counted from `was` to `now` (feedback replacing a provisional
   * verdict): the number of observations stays the same.
   */
  correct(agentId: string, skill: string, was: boolean, now: boolean): Record {
    const prev = this.get(agentId, skill);
    if (was === now) return prev;
    const from = was ? "successes" : "failures";
    const to = now ? "successes" : "failures";
    // A record loaded from an older store may not hold the observation being corrected: then add it.
    if (prev[from] === 0) return this.note(agentId, skill, now);
    return this.set(agentId, skill, { ...prev, [from]: prev[from] - 1, [to]: prev[to] + 1 });
  }

  private set(agentId: string, skill: string, rec: Record): Record {
    this.load(agentId, skill, rec);
    this.onChange(agentId, skill, rec);
    return rec;
  }

  /** For `colony status`: every record, by key and skill. */
  all(): { key: string; skill: string; successes: number; failures: number }[] {
    return [...this.recs].map(([k, r]) => {
      const [key, skill] = k.split("|") as [string, string];
      return { key, skill, ...r };
    });
  }
}
