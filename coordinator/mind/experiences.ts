/**
 * The cold cache: every finished attempt as an experience (experience.ts), kept in the
 * coordinator's LevelDB (section `exp`), indexed by time, skill key and agent, bounded by age and
 * count. Fed only by market events (market/events.ts), like reputation and evolution:
 *
 * - attemptFailed: an experience with no output and the verdict `failure` (prompt and submitter are
 *   read from the task store when the batch is written, off the market's path);
 * - taskFinished with a delivered attempt: the output with its verdict (check or delivery) and cost;
 * - feedback: the stored experience's verdict becomes the submitter's (source `feedback`).
 *
 * A task whose submit says `learn: false` leaves nothing: the market puts `learn: false` on its
 * events from the stored submit, so this holds after a restart too (feedback then finds nothing).
 *
 * Keys (time keys are fixed width, so LevelDB's key order is time order):
 *   t:{at}:{taskId}:{attempt}          -> Experience (the record; `{at}:{taskId}:{attempt}` is its time key)
 *   k:{taskId}:{attempt}               -> time key (feedback and duplicates)
 *   s:{skill}|{time key}               -> 0
 *   a:{nodeId}/{agentId}|{time key}    -> 0
 *   v:{nodeId}/{agentId}|{skill}|{time key} -> 0   (verified successes only: what distillation reads)
 *   m:count                            -> how many records (written in every batch)
 *
 * Writes are queued and written as one batch on the next turn of the event loop (or after the
 * batch being written), never on the market's path; close() writes what is queued.
 */
import type { Clock, Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import type { AttemptFailed, FeedbackApplied, MarketEventBus, TaskFinished } from "../market/events.ts";
import type { TaskRecord, TaskStore } from "../market/task-store.ts";
import { isVerifiedSuccess, type Experience } from "../../common/experience.ts";

type Section = ReturnType<TaskStore["section"]>;
type Op = { type: "put"; key: string; value: unknown } | { type: "del"; key: string };

export interface AgentKey {
  nodeId: string;
  agentId: string;
}

export interface ExperienceQuery {
  /** A skill key: a skill, a niche ("~c3") or "*". */
  skill?: string | undefined;
  agent?: AgentKey | undefined;
  /** `since <= at < until`, coordinator clock (ms). */
  since?: number | undefined;
  until?: number | undefined;
  /** Only verified successes (isVerifiedSuccess). */
  verified?: boolean | undefined;
  limit?: number | undefined;
}

export interface ExperienceStoreOptions {
  /** The coordinator's LevelDB: section `exp` holds the cold cache; a failed attempt's prompt and submitter come from its tasks. */
  store: Pick<TaskStore, "section" | "getTask">;
  events: MarketEventBus;
  clock: Clock;
  counters: Counters;
  logger: Logger;
  /** Experiences older than this are pruned. */
  retentionMs: number;
  /** The oldest beyond this many are pruned. */
  maxExperiences: number;
  /** How often the pruner runs. Default min(60 s, retentionMs / 4), at least 1 s. */
  pruneEveryMs?: number;
  /** Records deleted per batch when pruning. Default 2000. */
  pruneBatch?: number;
}

const T = "t:";
const K = "k:";
const S = "s:";
const A = "a:";
const V = "v:";
const COUNT = "m:count";
/** Outputs longer than the schema allows are cut (a done may carry 1 MiB; 8192 tokens rarely reach 256 KiB). */
const MAX_OUTPUT = 256 * 1024;
const SHA256 = /^[0-9a-f]{64}$/;
/** Records read per getMany while walking an index. */
const PAGE = 128;
const HIGH = "\uffff";

const pad = (at: number) => String(Math.max(0, Math.floor(at))).padStart(15, "0");
/** The time key of an experience: time, then task and attempt (ties in time keep a stable order). */
export const timeKey = (e: Pick<Experience, "at" | "taskId" | "attempt">) => `${pad(e.at)}:${e.taskId}:${String(e.attempt).padStart(4, "0")}`;
const taskKey = (taskId: string, attempt: number) => `${K}${taskId}:${String(attempt).padStart(4, "0")}`;
const agentPrefix = (a: AgentKey) => `${A}${a.nodeId}/${a.agentId}|`;
const verifiedPrefix = (a: AgentKey, skill: string) => `${V}${a.nodeId}/${a.agentId}|${skill}|`;

function indexKeys(e: Experience, tk: string): string[] {
  const keys = [S + e.skill + "|" + tk, agentPrefix(e) + tk];
  if (isVerifiedSuccess(e)) keys.push(verifiedPrefix(e, e.skill) + tk);
  return keys;
}

type Queued =
  | { kind: "finished"; e: TaskFinished }
  | { kind: "failed"; e: AttemptFailed }
  | { kind: "feedback"; e: FeedbackApplied };

export class ExperienceStore implements Lifecycle {
  private queue: Queued[] = [];
  private scheduled = false;
  /** Writes (batches and prunes) run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private count = 0;
  private timer: Timer | undefined;
  private unsubscribe: (() => void)[] = [];
  private closed = false;
  private started = false;

  private section: Section | undefined;

  constructor(private readonly o: ExperienceStoreOptions) {}

  private get db(): Section {
    if (!this.section) throw new Error("the experience store is not started");
    return this.section;
  }

  /** How many experiences are stored (and queued). */
  get size(): number {
    return this.count + this.queue.filter((q) => q.kind !== "feedback").length;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.section = this.o.store.section("exp");
    const stored = (await this.db.get(COUNT)) as number | undefined;
    if (stored === undefined) for await (const _ of this.db.keys({ gte: T, lt: T + HIGH })) this.count++;
    else this.count = stored;
    await this.prune();
    const ev = this.o.events;
    this.unsubscribe = [
      ev.on("attemptFailed", (e) => e.learn !== false && this.enqueue({ kind: "failed", e })),
      ev.on("taskFinished", (e) => e.learn !== false && e.delivered !== undefined && this.enqueue({ kind: "finished", e })),
      ev.on("feedback", (e) => this.enqueue({ kind: "feedback", e })),
    ];
    this.schedulePrune();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.timer?.cancel();
    await this.flush();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private get pruneEveryMs(): number {
    return this.o.pruneEveryMs ?? Math.min(60_000, Math.max(1000, Math.floor(this.o.retentionMs / 4)));
  }

  private schedulePrune(): void {
    if (this.closed) return;
    this.timer = this.o.clock.setTimer(this.pruneEveryMs, () => {
      this.prune()
        .catch((err) => this.o.logger.error({ err }, "experience pruning failed"))
        .finally(() => this.schedulePrune());
    });
  }

  private enqueue(q: Queued): void {
    this.queue.push(q);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush().catch((err) => this.o.logger.error({ err }, "experience write failed")));
    }
  }

  /** Writes everything queued as one batch (after the batch or prune in progress); resolves when written. */
  flush(): Promise<void> {
    this.scheduled = false;
    const items = this.queue;
    this.queue = [];
    if (items.length === 0) return this.chain;
    return this.serial(() => this.write(items));
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn);
    // A failed batch is logged by the caller; the next write still runs.
    this.chain = next.catch(() => {});
    return next;
  }

  private async write(items: Queued[]): Promise<void> {
    const adds = new Map<string, Experience>();
    for (const q of items) {
      if (q.kind === "finished") this.fromFinished(q.e, adds);
      else if (q.kind === "failed") await this.fromFailed(q.e, adds);
    }
    // An attempt is kept once: a duplicate event (a replay) keeps the first record.
    const existing = adds.size ? await this.db.getMany([...adds.keys()]) : [];
    let i = 0;
    for (const k of [...adds.keys()]) if (existing[i++] !== undefined) adds.delete(k), this.o.counters.inc("experiences.duplicate");
    const updated = new Map<string, { before: Experience; after: Experience }>();
    for (const q of items) if (q.kind === "feedback") await this.applyFeedback(q.e, adds, updated);

    const ops: Op[] = [];
    for (const [k, e] of adds) {
      const tk = timeKey(e);
      ops.push({ type: "put", key: T + tk, value: e }, { type: "put", key: k, value: tk }, ...indexKeys(e, tk).map((key): Op => ({ type: "put", key, value: 0 })));
    }
    for (const { before, after } of updated.values()) {
      const tk = timeKey(after);
      ops.push(...indexKeys(before, tk).map((key): Op => ({ type: "del", key })));
      ops.push({ type: "put", key: T + tk, value: after }, ...indexKeys(after, tk).map((key): Op => ({ type: "put", key, value: 0 })));
    }
    if (ops.length === 0) return;
    ops.push({ type: "put", key: COUNT, value: this.count + adds.size });
    await this.db.batch(ops);
    this.count += adds.size;
    if (adds.size) this.o.counters.inc("experiences.stored", adds.size);
    if (updated.size) this.o.counters.inc("experiences.feedback", updated.size);
    // Over the count bound: prune now rather than at the next tick.
    if (this.count > this.o.maxExperiences) setImmediate(() => !this.closed && void this.prune().catch((err) => this.o.logger.error({ err }, "experience pruning failed")));
  }

  private fromFinished(e: TaskFinished, adds: Map<string, Experience>): void {
    const d = e.delivered!;
    let output = d.output;
    if (output.length > MAX_OUTPUT) output = output.slice(0, MAX_OUTPUT), this.o.counters.inc("experiences.truncated");
    const cost: Experience["cost"] = {};
    const c = d.cost;
    if (c.energyJ !== undefined && c.energyJ >= 0 && Number.isFinite(c.energyJ)) cost.energyJ = c.energyJ;
    if (c.tokens !== undefined && Number.isInteger(c.tokens) && c.tokens >= 0) cost.tokens = c.tokens;
    if (c.promptMs !== undefined && c.promptMs >= 0 && Number.isFinite(c.promptMs)) cost.promptMs = c.promptMs;
    if (c.generateMs !== undefined && c.generateMs >= 0 && Number.isFinite(c.generateMs)) cost.generateMs = c.generateMs;
    const exp: Experience = {
      taskId: e.taskId, attempt: d.attempt, skill: e.skill, prompt: e.prompt, output, verdict: { ...d.verdict }, cost,
      agentId: d.agentId, nodeId: d.nodeId, submitter: e.submitter, at: Math.floor(e.at),
    };
    if (d.genome && SHA256.test(d.genome)) exp.genome = d.genome;
    if (e.private) exp.private = true;
    this.add(adds, taskKey(e.taskId, d.attempt), exp);
  }

  private async fromFailed(e: AttemptFailed, adds: Map<string, Experience>): Promise<void> {
    const rec: TaskRecord | undefined = await this.o.store.getTask(e.taskId).catch(() => undefined);
    const exp: Experience = {
      taskId: e.taskId, attempt: e.attempt, skill: e.skill, prompt: rec?.submit.prompt ?? "", output: "", verdict: { success: false, source: "failure" }, cost: {},
      agentId: e.agentId, nodeId: e.nodeId, submitter: rec?.owner ?? "anonymous", at: Math.floor(e.at),
    };
    if (e.genome && SHA256.test(e.genome)) exp.genome = e.genome;
    if (e.private || rec?.submit.private === true) exp.private = true;
    this.add(adds, taskKey(e.taskId, e.attempt), exp);
  }

  private add(adds: Map<string, Experience>, key: string, exp: Experience): void {
    if (adds.has(key)) return this.o.counters.inc("experiences.duplicate");
    adds.set(key, exp);
  }

  /** The delivering attempt's experience (queued in this batch, or stored) takes the submitter's verdict. */
  private async applyFeedback(e: FeedbackApplied, adds: Map<string, Experience>, updated: Map<string, { before: Experience; after: Experience }>): Promise<void> {
    const matches = (x: Experience) => x.taskId === e.taskId && x.nodeId === e.nodeId && x.agentId === e.agentId && x.verdict.source !== "failure";
    for (const x of adds.values()) if (matches(x)) return void (x.verdict = { ...e.verdict });
    const tks: string[] = [];
    for await (const tk of this.db.values({ gte: `${K}${e.taskId}:`, lt: `${K}${e.taskId}:${HIGH}` })) tks.push(tk as string);
    for (const tk of tks.reverse()) {
      const prior = updated.get(tk);
      const before = prior?.after ?? ((await this.db.get(T + tk)) as Experience | undefined);
      if (!before || !matches(before)) continue;
      updated.set(tk, { before: prior?.before ?? before, after: { ...before, verdict: { ...e.verdict } } });
      return;
    }
  }

  /**
   * Experiences matching `q`, oldest first. Uses the narrowest index: an agent's verified successes
   * of one skill, else the agent's, else the skill's, else the time order itself; the other
   * criteria filter. Reads its own writes (what is queued is written first).
   */
  async *query(q: ExperienceQuery = {}): AsyncGenerator<Experience> {
    await this.flush();
    const lo = pad(q.since ?? 0);
    const hi = q.until === undefined ? HIGH : pad(q.until);
    let limit = q.limit ?? Infinity;
    if (limit <= 0) return;
    const keep = (e: Experience) =>
      (q.skill === undefined || e.skill === q.skill) && (q.agent === undefined || (e.nodeId === q.agent.nodeId && e.agentId === q.agent.agentId)) && (!q.verified || isVerifiedSuccess(e));
    if (!q.agent && !q.skill) {
      for await (const [, v] of this.db.iterator({ gte: T + lo, lt: T + hi })) {
        const e = v as Experience;
        if (!keep(e)) continue;
        yield e;
        if (--limit <= 0) return;
      }
      return;
    }
    const prefix = q.agent ? (q.verified && q.skill ? verifiedPrefix(q.agent, q.skill) : agentPrefix(q.agent)) : S + q.skill + "|";
    for await (const e of this.walk(prefix, lo, hi)) {
      if (!keep(e)) continue;
      yield e;
      if (--limit <= 0) return;
    }
  }

  /** Records of an index range, in key order, read a page at a time. */
  private async *walk(prefix: string, lo: string, hi: string, reverse = false, limit = -1): AsyncGenerator<Experience> {
    let page: string[] = [];
    for await (const k of this.db.keys({ gte: prefix + lo, lt: prefix + hi, reverse, limit })) {
      page.push(T + k.slice(prefix.length));
      if (page.length >= PAGE) yield* await this.records(page.splice(0));
    }
    if (page.length) yield* await this.records(page);
  }

  /** A record pruned since its index key was read is skipped. */
  private async records(keys: string[]): Promise<Experience[]> {
    return (await this.db.getMany(keys)).filter((v): v is Experience => v !== undefined);
  }

  /**
   * For distillation: per skill, the newest `limit` verified successes of these agents together,
   * all returned in time order (oldest first).
   */
  async verifiedSuccesses(agents: readonly AgentKey[], skills: readonly string[], limit: number): Promise<Experience[]> {
    await this.flush();
    const out: Experience[] = [];
    const newestFirst = (x: Experience, y: Experience) => (timeKey(x) < timeKey(y) ? 1 : timeKey(x) > timeKey(y) ? -1 : 0);
    for (const s of new Set(skills)) {
      const found: Experience[] = [];
      for (const a of agents) for await (const e of this.walk(verifiedPrefix(a, s), "", HIGH, true, limit)) found.push(e);
      out.push(...found.sort(newestFirst).slice(0, limit));
    }
    return out.sort((x, y) => newestFirst(y, x));
  }

  /** Deletes experiences past their age, then the oldest beyond the count bound, in batches; returns how many. */
  prune(): Promise<number> {
    let n = 0;
    return this.serial(async () => {
      const batch = this.o.pruneBatch ?? 2000;
      for (;;) {
        const removed = await this.pruneBatch(batch);
        n += removed;
        if (removed < batch) break;
        // Other work (a write batch, a query) gets a turn between prune batches.
        await new Promise((r) => setImmediate(r));
      }
      if (n) this.o.counters.inc("experiences.pruned", n);
    }).then(() => n);
  }

  private async pruneBatch(max: number): Promise<number> {
    const cutoff = this.o.clock.now() - this.o.retentionMs;
    let excess = this.count - this.o.maxExperiences;
    const ops: Op[] = [];
    let n = 0;
    for await (const [k, v] of this.db.iterator({ gte: T, lt: T + HIGH, limit: max })) {
      const e = v as Experience;
      if (e.at >= cutoff && excess <= 0) break;
      excess--;
      n++;
      const tk = k.slice(T.length);
      ops.push({ type: "del", key: k }, { type: "del", key: taskKey(e.taskId, e.attempt) }, ...indexKeys(e, tk).map((key): Op => ({ type: "del", key })));
    }
    if (n === 0) return 0;
    ops.push({ type: "put", key: COUNT, value: this.count - n });
    await this.db.batch(ops);
    this.count -= n;
    return n;
  }
}
