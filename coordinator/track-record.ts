import type { Record } from "./scoring.ts";

/**
 * Each agent's record per skill: successes and failures from checks, done errors and submitter
 * feedback. Kept in memory for scoring; every change is handed to `persist` (the task store).
 * Skill "*" is used for tasks without a skill.
 */
export class TrackRecords {
  private readonly recs = new Map<string, Record>();
  private readonly totals = new Map<string, number>();
  constructor(private readonly persist: (agentId: string, skill: string, rec: Record) => void = () => {}) {}

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

  note(agentId: string, skill: string, success: boolean): Record {
    const prev = this.get(agentId, skill);
    const rec = success ? { successes: prev.successes + 1, failures: prev.failures } : { successes: prev.successes, failures: prev.failures + 1 };
    this.load(agentId, skill, rec);
    this.persist(agentId, skill, rec);
    return rec;
  }

  /** For `colony status`: every agent's record. */
  all(): { agentId: string; skill: string; successes: number; failures: number }[] {
    return [...this.recs].map(([k, r]) => {
      const [agentId, skill] = k.split("|") as [string, string];
      return { agentId, skill, ...r };
    });
  }
}
