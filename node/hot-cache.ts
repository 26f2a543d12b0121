/**
 * The node's hot cache: each agent's most recent experiences (prompt, output, cost, verdict) in
 * LevelDB on the node, bounded per agent, plus the per-skill track record built from verdicts,
 * which is the agent's expected accuracy in its bids. The verdict arrives later (see daemon.ts:
 * the coordinator's verdict on `nodes/{nodeId}/verdict`), and is filled into the stored experience.
 */
import type { Level } from "level";

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
  /** Filled in when the verdict arrives. */
  success?: boolean | undefined;
  score?: number | undefined;
}

interface Record {
  ok: number;
  n: number;
}

type Db = Level<string, unknown>;

export class HotCache {
  private readonly exp;
  private readonly idx;
  private readonly rec;
  private readonly counts = new Map<string, number>();
  private readonly records = new Map<string, Record>();

  constructor(db: Db, private readonly perAgent: number) {
    this.exp = db.sublevel<string, Experience>("hot", { valueEncoding: "json" });
    this.idx = db.sublevel<string, string>("hot-idx", { valueEncoding: "utf8" });
    this.rec = db.sublevel<string, Record>("rec", { valueEncoding: "json" });
  }

  async start(): Promise<void> {
    for await (const key of this.exp.keys()) {
      const agent = key.slice(0, key.indexOf("!"));
      this.counts.set(agent, (this.counts.get(agent) ?? 0) + 1);
    }
    for await (const [k, v] of this.rec.iterator()) this.records.set(k, v);
  }

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

  /** Fills in the verdict of a task this node ran and updates the agent's track record. Returns false if unknown or already judged. */
  async verdict(taskId: string, success: boolean, score?: number): Promise<boolean> {
    const key = await this.idx.get(taskId);
    if (key === undefined) return false;
    const e = await this.exp.get(key);
    if (!e || e.success !== undefined) return false;
    e.success = success;
    if (score !== undefined) e.score = score;
    await this.exp.put(key, e);
    const rk = `${e.agentId}!${e.skill ?? "*"}`;
    const r = this.records.get(rk) ?? { ok: 0, n: 0 };
    const next = { ok: r.ok + (success ? 1 : 0), n: r.n + 1 };
    this.records.set(rk, next);
    await this.rec.put(rk, next);
    return true;
  }

  /** Expected accuracy: Beta prior (weight 2) centred on `prior`, updated by verdicts. Synchronous. */
  accuracy(agentId: string, skill: string | undefined, prior: number): number {
    const r = this.records.get(`${agentId}!${skill ?? "*"}`) ?? { ok: 0, n: 0 };
    return (r.ok + 2 * prior) / (r.n + 2);
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
