import { Level } from "level";
import type { Result, Submit, WireError, BidEstimateSchema } from "../common/protocol.ts";
import type { z } from "zod";
import type { PenaltyState } from "./penalties.ts";
import type { Record as TrackRecord } from "./scoring.ts";

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
  bid?: z.infer<typeof BidEstimateSchema>;
  /** pending | running | ok | check-failed | error | ack-timeout | refused | attempt-timeout | offline | no-bidders | deadline | restarted */
  outcome: string;
  error?: WireError;
  /** A done that arrived after this attempt was superseded: recorded, never published as final. */
  late?: { status: "ok" | "error"; at: number };
}

export interface TaskRecord {
  id: string;
  submit: Submit;
  /** The submit payload exactly as received (for the idempotent re-send rule). */
  raw: string;
  acceptedAt: number;
  deadlineAt: number;
  state: "open" | "done";
  attempts: AttemptRecord[];
  result?: Result;
  feedback?: { success: boolean; at: number };
}

const TASK = "task:";
const REC = "rec:";
const PEN = "pen:";

export class TaskStore {
  private db: Level<string, unknown> | undefined;
  constructor(private readonly location: string) {}

  async start(): Promise<void> {
    this.db = new Level<string, unknown>(this.location, { valueEncoding: "json" });
    await this.db.open();
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) await db.close();
  }

  private get d(): Level<string, unknown> {
    if (!this.db) throw new Error("task store is not open");
    return this.db;
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    return (await this.d.get(TASK + id)) as TaskRecord | undefined;
  }

  putTask(t: TaskRecord): Promise<void> {
    return this.d.put(TASK + t.id, t);
  }

  async *tasks(): AsyncGenerator<TaskRecord> {
    for await (const [, v] of this.d.iterator({ gte: TASK, lt: TASK + "\xff" })) yield v as TaskRecord;
  }

  putRecord(agentId: string, skill: string, rec: TrackRecord): Promise<void> {
    return this.d.put(`${REC}${agentId}|${skill}`, rec);
  }

  putRecords(items: readonly { agentId: string; skill: string; rec: TrackRecord }[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    return this.d.batch(items.map((i) => ({ type: "put" as const, key: `${REC}${i.agentId}|${i.skill}`, value: i.rec })));
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

  async *penalties(): AsyncGenerator<{ agentId: string; state: PenaltyState }> {
    for await (const [k, v] of this.d.iterator({ gte: PEN, lt: PEN + "\xff" })) yield { agentId: k.slice(PEN.length), state: v as PenaltyState };
  }
}
