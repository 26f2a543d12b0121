import { Level } from "level";
import { ANONYMOUS, type Result, type Submit, type WireError, type BidEstimateSchema } from "../../common/protocol.ts";
import type { z } from "zod";
import type { AttemptVerdict } from "./events.ts";
import { IdFilter } from "./id-filter.ts";
import type { PenaltyState } from "./penalties.ts";
import type { Record as TrackRecord } from "./scoring.ts";
import type { VerdictWindow } from "./track-record.ts";

/**
 * The coordinator's durable state in one LevelDB: tasks (with every attempt and the final
 * result), agents' track records per skill, and penalties. A task is written BEFORE its `accepted`
 * event goes out, so an accepted task survives a SIGKILL of the coordinator.
 */
export interface AttemptRecord {
  attempt: number;
  auctionId: string;
  nodeId?: string;
  agentId?: string;
  /** The agent's genome hash when it won (its record and penalty key: agent-ref.ts). */
  genome?: string;
  bid?: z.infer<typeof BidEstimateSchema>;
  /** pending | running | ok | check-failed | error | ack-timeout | refused | attempt-timeout | offline | no-bidders | deadline | restarted */
  outcome: string;
  error?: WireError;
  /** A done that arrived after this attempt was superseded: recorded, never published as final. */
  late?: { status: "ok" | "error"; at: number };
  /** How a delivered output was judged: the one observation this attempt adds to the agent's record. */
  verdict?: AttemptVerdict;
}

export interface TaskRecord {
  id: string;
  /** The submitter (MQTT username) whose folder the task lives in; absent in tasks stored by older versions (= "anonymous"). */
  owner?: string;
  submit: Submit;
  /**
   * A task without a skill: the niche the coordinator inferred from its prompt when it accepted the
   * task (coordinator/evolution/niches.ts), its track-record key. Absent with niches switched off.
   */
  niche?: string;
  /** sha256 of the submit in stable JSON (intake.ts), for the idempotent re-send rule. */
  digest?: string;
  /** Tasks stored by older versions kept the whole stable JSON instead (the prompt twice). */
  raw?: string;
  acceptedAt: number;
  deadlineAt: number;
  /** Resolved at acceptance (the submit's or the default); absent in tasks stored by older versions. */
  maxTokens?: number;
  state: "open" | "done";
  attempts: AttemptRecord[];
  result?: Result;
  feedback?: { success: boolean; at: number };
}

const TASK = "task:";
/** Index of unfinished tasks (`open:{id}`): what a restart resumes, without reading every task. */
const OPEN = "open:";
/** Index of finished tasks by finish time (`fin:{time}:{id}` -> owner): result expiry and task pruning. */
const FIN = "fin:";
const META = "meta:";
const REC = "rec:";
const PEN = "pen:";
const NODE = "node:";
const WIN = "win:";

/** Finish times as fixed-width keys, so LevelDB's key order is time order. */
const finKey = (at: number, id: string) => `${FIN}${String(Math.max(0, Math.floor(at))).padStart(15, "0")}:${id}`;

export interface FinishedEntry {
  id: string;
  owner: string;
  finishedAt: number;
}

/** The submitter whose folder a task lives in (tasks stored before owners were kept: anonymous). */
export const ownerOf = (rec: Pick<TaskRecord, "owner">): string => rec.owner ?? ANONYMOUS;

/** The track-record key of a task: its skill, else the niche inferred from its prompt, else "*". */
export const skillKey = (rec: Pick<TaskRecord, "submit" | "niche">): string => rec.submit.skill ?? rec.niche ?? "*";

type Op = { type: "put"; key: string; value: unknown } | { type: "del"; key: string };

/** The index keys that go with a task record, written in the same batch. */
function indexOps(t: TaskRecord): Op[] {
  if (t.state !== "done") return [{ type: "put", key: OPEN + t.id, value: 1 }];
  return [
    { type: "del", key: OPEN + t.id },
    { type: "put", key: finKey(t.result?.timings.finishedAt ?? t.acceptedAt, t.id), value: ownerOf(t) },
  ];
}

/**
 * Task writes are group-committed: every putTask made while a batch is being written, or in the
 * same event-loop turn, goes into the next single LevelDB batch, and a task written several times
 * meanwhile is written once, in its newest state (the caller passes the live record). Under load
 * this turns the few writes each task needs (accepted, auction, award, result) into a fraction of a
 * write per task; idle, a write waits one turn of the loop. Each promise resolves when a batch
 * holding the record as it was at call time (or newer) is written.
 */
export class TaskStore {
  private db: Level<string, unknown> | undefined;
  private pending = new Map<string, TaskRecord>();
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private writing: Promise<void> | undefined;
  private scheduled = false;
  /**
   * Set by a failed batch (e.g. ENOSPC): LevelDB's log may now end in a torn record, and every
   * write after it, acknowledged or not, is dropped when the log is replayed at the next open
   * (a disk-full coordinator lost the result it had published, then ran the task again after a
   * restart: test/chaos/disk-full.test.ts). The next batch reopens the database first, which
   * replays the log now and starts a fresh one.
   */
  private torn = false;
  private reopening: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Every stored task id (id-filter.ts): a new id needs no read. */
  private readonly ids = new IdFilter();
  constructor(private readonly location: string) {}

  async start(): Promise<void> {
    this.db = new Level<string, unknown>(this.location, { valueEncoding: "json" });
    await this.db.open();
    await this.buildIndex();
    for await (const k of this.d.keys({ gte: TASK, lt: TASK + "\xff" })) this.ids.add(k.slice(TASK.length));
  }

  /** Stores written before the open/fin indexes existed get them once, in one pass over every task. */
  private async buildIndex(): Promise<void> {
    if ((await this.d.get(META + "index")) !== undefined) return;
    const ops: Op[] = [];
    for await (const t of this.tasks()) {
      ops.push(...indexOps(t));
      if (ops.length >= 1000) await this.d.batch(ops.splice(0));
    }
    ops.push({ type: "put", key: META + "index", value: 1 });
    await this.d.batch(ops);
  }

  async close(): Promise<void> {
    // Writes already asked for land before the database closes.
    while (this.writing || this.pending.size) await (this.writing ?? this.flush());
    await this.reopening?.catch(() => {});
    clearTimeout(this.retry);
    const db = this.db;
    this.db = undefined;
    if (db) await db.close();
  }

  private get d(): Level<string, unknown> {
    if (!this.db) throw new Error("task store is not open");
    return this.db;
  }

  /**
   * A named section of the same LevelDB for another part's records (evolution's lineage, the
   * architect's decisions): one database per coordinator, one owner per section. Open after start().
   */
  section(name: string) {
    return this.d.sublevel<string, unknown>(name, { valueEncoding: "json" });
  }

  /** Reads its own writes: a record waiting for its batch is returned as it is now. An id never stored is not read. */
  async getTask(id: string): Promise<TaskRecord | undefined> {
    const pending = this.pending.get(id);
    if (pending || !this.ids.mayHave(id)) return pending;
    return (await this.d.get(TASK + id)) as TaskRecord | undefined;
  }

  putTask(t: TaskRecord): Promise<void> {
    if (!this.db) return Promise.reject(new Error("task store is not open"));
    this.pending.set(t.id, t);
    this.ids.add(t.id);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.writing && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    return done;
  }

  /** Writes everything pending as one batch; what arrives meanwhile waits for the next one. */
  private flush(): Promise<void> {
    this.scheduled = false;
    if (this.writing || this.pending.size === 0) return this.writing ?? Promise.resolve();
    const ops = [...this.pending.values()].flatMap((t): Op[] => [{ type: "put", key: TASK + t.id, value: t }, ...indexOps(t)]);
    const waiters = this.waiters;
    this.pending = new Map();
    this.waiters = [];
    this.writing = Promise.resolve().then(() => this.reopenIfTorn()).then(() => this.d.batch(ops)).then(
      () => waiters.forEach((w) => w.resolve()),
      (err) => {
        this.torn = true;
        waiters.forEach((w) => w.reject(err));
      },
    ).finally(() => {
      this.writing = undefined;
      if (this.pending.size) void this.flush();
    });
    return this.writing;
  }

  /** After a failed batch: close and open again, before the next batch. */
  private reopenIfTorn(): Promise<void> {
    if (!this.torn) return Promise.resolve();
    return (this.reopening ??= this.reopen().finally(() => (this.reopening = undefined)));
  }

  private async reopen(): Promise<void> {
    await this.d.close();
    try {
      await this.d.open();
    } catch (err) {
      // Still full. The other sections share this database: try again in a second even when no
      // task is written meanwhile.
      this.retry ??= setTimeout(() => {
        this.retry = undefined;
        void this.reopenIfTorn().catch(() => {});
      }, 1000).unref();
      // Its error says "Database failed to open"; the reason (e.g. "No space left on device") is its cause.
      throw new Error(`task store reopen failed: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`, { cause: err });
    }
    this.torn = false;
  }

  async *tasks(): AsyncGenerator<TaskRecord> {
    for await (const [, v] of this.d.iterator({ gte: TASK, lt: TASK + "\xff" })) yield v as TaskRecord;
  }

  /** How many tasks the store holds (a walk over the keys: for tests and operators, not hot paths). */
  async countTasks(): Promise<number> {
    let n = 0;
    for await (const _ of this.d.keys({ gte: TASK, lt: TASK + "\xff" })) n++;
    return n;
  }

  /** Unfinished tasks, from the open index. */
  async *openTasks(): AsyncGenerator<TaskRecord> {
    for await (const k of this.d.keys({ gte: OPEN, lt: OPEN + "\xff" })) {
      const t = await this.getTask(k.slice(OPEN.length));
      if (t && t.state !== "done") yield t;
    }
  }

  /** Finished tasks with `from <= finishedAt < to`, oldest first (or newest first with `reverse`). */
  async *finished(from: number, to: number, opts: { reverse?: boolean; limit?: number } = {}): AsyncGenerator<FinishedEntry> {
    const range = { gte: finKey(from, ""), lt: finKey(to, ""), reverse: opts.reverse ?? false, limit: opts.limit ?? -1 };
    for await (const [k, owner] of this.d.iterator(range)) {
      const rest = k.slice(FIN.length);
      const colon = rest.indexOf(":");
      yield { id: rest.slice(colon + 1), owner: owner as string, finishedAt: Number(rest.slice(0, colon)) };
    }
  }

  /**
   * Deletes at most `max` tasks that finished before `before`, oldest first, with their index keys;
   * returns how many. LevelDB reclaims the space in its background compactions.
   */
  async pruneFinished(before: number, max: number): Promise<number> {
    const ops: { type: "del"; key: string }[] = [];
    for await (const e of this.finished(0, before, { limit: max })) {
      // A record written meanwhile (a late done) stays until the next sweep finds it again.
      if (this.pending.has(e.id)) continue;
      ops.push({ type: "del", key: TASK + e.id }, { type: "del", key: finKey(e.finishedAt, e.id) });
    }
    if (ops.length) await this.d.batch(ops);
    return ops.length / 2;
  }

  async getMeta(key: string): Promise<unknown> {
    return this.d.get(META + key);
  }

  putMeta(key: string, value: unknown): Promise<void> {
    return this.d.put(META + key, value);
  }

  putRecord(agentId: string, skill: string, rec: TrackRecord): Promise<void> {
    return this.d.put(`${REC}${agentId}|${skill}`, rec);
  }

  putRecords(items: readonly { agentId: string; skill: string; rec: TrackRecord }[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    return this.d.batch(items.map((i) => ({ type: "put" as const, key: `${REC}${i.agentId}|${i.skill}`, value: i.rec })));
  }

  /** One submitter's window of verdicts on an agent and skill (track-record.ts). */
  putWindows(items: readonly { key: string; skill: string; submitter: string; window: VerdictWindow }[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    return this.d.batch(items.map((i) => ({ type: "put" as const, key: `${WIN}${i.key}|${i.skill}|${i.submitter}`, value: i.window })));
  }

  async *windows(): AsyncGenerator<{ key: string; skill: string; submitter: string; window: VerdictWindow }> {
    for await (const [k, v] of this.d.iterator({ gte: WIN, lt: WIN + "\xff" })) {
      const [key, skill, submitter] = k.slice(WIN.length).split("|") as [string, string, string];
      yield { key, skill, submitter, window: v as VerdictWindow };
    }
  }

  async *records(): AsyncGenerator<{ agentId: string; skill: string; rec: TrackRecord }> {
    for await (const [k, v] of this.d.iterator({ gte: REC, lt: REC + "\xff" })) {
      const [agentId, skill] = k.slice(REC.length).split("|") as [string, string];
      yield { agentId, skill, rec: v as TrackRecord };
    }
  }

  putPenalty(agentId: string, s: PenaltyState): Promise<void> {
    return this.d.put(PEN + agentId, s);
  }

  /** Nodes online now (roster.ts): after a crash, the coordinator waits for them before it auctions. */
  putNodeOnline(nodeId: string, since: number): Promise<void> {
    return this.d.put(NODE + nodeId, { since });
  }

  deleteNodeOnline(nodeId: string): Promise<void> {
    return this.d.del(NODE + nodeId);
  }

  async *nodesOnline(): AsyncGenerator<string> {
    for await (const k of this.d.keys({ gte: NODE, lt: NODE + "\xff" })) yield k.slice(NODE.length);
  }

  async *penalties(): AsyncGenerator<{ agentId: string; state: PenaltyState }> {
    for await (const [k, v] of this.d.iterator({ gte: PEN, lt: PEN + "\xff" })) yield { agentId: k.slice(PEN.length), state: v as PenaltyState };
  }
}
