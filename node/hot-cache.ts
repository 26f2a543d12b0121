/**
 * The node's hot cache: each agent's most recent experiences (prompt, output, cost, verdict) in
 * LevelDB on the node, bounded per agent. The verdict arrives later (the coordinator's
 * `nodes/{nodeId}/verdict`, see jobs.ts) and is filled into the stored experience. It keeps no
 * track record: the coordinator owns that (record-cache.ts holds its latest word).
 */
import type { Level } from "level";
import type { EnergySource, Verdict } from "../common/protocol.ts";

export interface Experience {
  taskId: string;
  agentId: string;
  skill?: string | undefined;
  prompt: string;
  output: string;
  at: number;
  tokens: number;
  latencyMs: number;
  energyJ: number;
  energySource?: EnergySource | undefined;
  /** Filled in when the verdict arrives; a provisional `delivery` verdict is replaced by a later one. */
  success?: boolean | undefined;
  verdictSource?: Verdict["source"] | undefined;
  score?: number | undefined;
}

type Db = Level<string, unknown>;

export class HotCache {
  private readonly exp;
  private readonly idx;
  private readonly counts = new Map<string, number>();

  constructor(db: Db, private readonly perAgent: number) {
    this.exp = db.sublevel<string, Experience>("hot", { valueEncoding: "json" });
    this.idx = db.sublevel<string, string>("hot-idx", { valueEncoding: "utf8" });
  }

  async start(): Promise<void> {
    for await (const key of this.exp.keys()) {
      const agent = key.slice(0, key.indexOf("!"));
      this.counts.set(agent, (this.counts.get(agent) ?? 0) + 1);
    }
  }

  async close(): Promise<void> {}

  private static key(e: Pick<Experience, "agentId" | "at" | "taskId">): string {
    // agent ! zero-padded time ! task: keys of one agent sort oldest first.
    return `${e.agentId}!${String(e.at).padStart(15, "0")}!${e.taskId}`;
  }

  async add(e: Experience): Promise<void> {
    const key = HotCache.key(e);
    await this.exp.put(key, e);
    await this.idx.put(e.taskId, key);
    const n = (this.counts.get(e.agentId) ?? 0) + 1;
    this.counts.set(e.agentId, n);
    if (n > this.perAgent) {
      // Drop the oldest beyond the bound.
      const old: string[] = [];
      for await (const k of this.exp.keys({ gt: `${e.agentId}!`, lt: `${e.agentId}!\xff`, limit: n - this.perAgent })) old.push(k);
      const olds = await this.exp.getMany(old);
      await this.exp.batch(old.map((k) => ({ type: "del" as const, key: k })));
      await this.idx.batch(olds.filter((o): o is Experience => !!o).map((o) => ({ type: "del" as const, key: o.taskId })));
      this.counts.set(e.agentId, n - old.length);
    }
  }

  /**
   * Files the verdict of a task this node ran. A first verdict is kept; a later one replaces it only
   * when the first was provisional (`delivery`) or the new one is the submitter's `feedback`.
   * Returns false if the task is unknown or the verdict changed nothing.
   */
  async verdict(taskId: string, v: Pick<Verdict, "success" | "score" | "source">): Promise<boolean> {
    const key = await this.idx.get(taskId);
    if (key === undefined) return false;
    const e = await this.exp.get(key);
    if (!e) return false;
    const replaceable = e.success === undefined || e.verdictSource === "delivery" || v.source === "feedback";
    if (!replaceable) return false;
    e.success = v.success;
    e.verdictSource = v.source;
    if (v.score !== undefined) e.score = v.score;
    await this.exp.put(key, e);
    return true;
  }

  async recent(agentId: string, limit = 50): Promise<Experience[]> {
    const out: Experience[] = [];
    for await (const v of this.exp.values({ gt: `${agentId}!`, lt: `${agentId}!\xff`, reverse: true, limit })) out.push(v);
    return out;
  }

  count(agentId: string): number {
    return this.counts.get(agentId) ?? 0;
  }
}
