/**
 * The coordinator's record of each of this node's agents per skill, as its latest verdict carried
 * it: a cache of the one owner's word (the coordinator, docs/scoring.md), never added to here. The
 * bidder picks among the node's own agents with it; kept in LevelDB so a restarted node picks as
 * well as before. Skill "*" is the key of tasks without a skill, as on the coordinator.
 */
import type { Level } from "level";
import type { Record } from "../../common/accuracy.ts";

export class RecordCache {
  private readonly db;
  private readonly recs = new Map<string, Record>();

  constructor(db: Level<string, unknown>) {
    this.db = db.sublevel<string, Record>("coordinator-records", { valueEncoding: "json" });
  }

  async start(): Promise<void> {
    for await (const [k, v] of this.db.iterator()) this.recs.set(k, v);
  }

  async close(): Promise<void> {}

  private static key(agentId: string, skill: string | undefined): string {
    return `${agentId}|${skill ?? "*"}`;
  }

  /** Synchronous: the bid path reads it. */
  get(agentId: string, skill: string | undefined): Record {
    return this.recs.get(RecordCache.key(agentId, skill)) ?? { successes: 0, failures: 0 };
  }

  async put(agentId: string, skill: string | undefined, rec: Record): Promise<void> {
    const k = RecordCache.key(agentId, skill);
    this.recs.set(k, rec);
    await this.db.put(k, rec);
  }
}
