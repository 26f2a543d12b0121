/**
 * The rollout table: every model x node transfer the coordinator knows of, from a push (`pending`)
 * through the node's progress (`model-progress`: fetching, verifying, done, failed with a code) to
 * the fetch command's answer. Retained on `colony/v1/models/rollouts` (observers may read it: no
 * prompt, only states, byte counts and refusal codes), republished at most every `intervalMs`, and
 * read by `colony models push` for its progress bars and by the dashboard's models panel.
 *
 * A node can only write its own rows (the broker ACL, then inbound.ts's node-id check), only for a
 * model this store holds, and a message older than the row's (`seq` of the same transfer) is dropped.
 */
import type { Clock, Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import { channels, MAX_ROLLOUTS, MODEL_PROGRESS_INTERVAL_MS, type ModelProgress, type ModelRollouts, type Outbox, type Rollout, type WireError } from "../../common/protocol.ts";
import { ModelStoreErrors } from "./errors.ts";

export interface RolloutTableOptions {
  out: Outbox;
  clock: Clock;
  counters: Counters;
  /** Whether the store holds the model: progress for any other hash is dropped. */
  known: (sha256: string) => boolean;
  /** Least ms between two retained snapshots. Default 250 (MODEL_PROGRESS_INTERVAL_MS). */
  intervalMs?: number | undefined;
}

const FINISHED = new Set<Rollout["state"]>(["done", "failed"]);
const ORDER: Record<Rollout["state"], number> = { pending: 0, fetching: 1, verifying: 2, done: 3, failed: 3 };

interface Row extends Rollout {
  transferId?: string;
  seq?: number;
}

interface Watcher {
  resolve: (r: Rollout | undefined) => void;
  idleMs: number;
  timer: Timer;
}

export class RolloutTable implements Lifecycle {
  private readonly rows = new Map<string, Row>();
  /** Callers of `finished` by row key: resolved when the row finishes or its transfer goes quiet. */
  private readonly watchers = new Map<string, Set<Watcher>>();
  private timer: Timer | undefined;
  private omitted = 0;
  private started = false;

  constructor(private readonly o: RolloutTableOptions) {}

  async start(): Promise<void> {
    this.started = true;
    this.publish();
  }

  async close(): Promise<void> {
    this.started = false;
    this.timer?.cancel();
    this.timer = undefined;
    for (const set of this.watchers.values()) for (const w of set) this.unwatch(w, undefined);
    this.watchers.clear();
  }

  /**
   * Resolves with the row once it is done or failed, or undefined when its transfer is not running
   * (no row, or `pending`: the node never started) or sent no progress for `idleMs`. A push waits
   * on it when a node's fetch command went unanswered while its bytes still flow (a large model
   * outlasts the command's ack timeout).
   */
  finished(sha256: string, nodeId: string, idleMs: number): Promise<Rollout | undefined> {
    const k = key(sha256, nodeId);
    const row = this.rows.get(k);
    if (!row || row.state === "pending" || !this.started) return Promise.resolve(undefined);
    if (FINISHED.has(row.state)) return Promise.resolve(this.get(sha256, nodeId));
    return new Promise((resolve) => {
      const w: Watcher = { resolve, idleMs, timer: this.o.clock.setTimer(idleMs, () => this.unwatch(w, undefined, k)) };
      const set = this.watchers.get(k) ?? new Set();
      set.add(w);
      this.watchers.set(k, set);
    });
  }

  /** The rows now, oldest first. */
  list(): Rollout[] {
    return [...this.rows.values()].map(({ transferId: _t, seq: _s, ...r }) => r);
  }

  get(sha256: string, nodeId: string): Rollout | undefined {
    return this.list().find((r) => r.sha256 === sha256 && r.nodeId === nodeId);
  }

  /** A push asks these nodes for a model of `total` bytes: each row starts `pending` (a row in flight keeps its transfer). */
  begin(requestId: string, sha256: string, total: number, nodeIds: readonly string[]): void {
    const now = this.o.clock.now();
    for (const nodeId of nodeIds) {
      const row = this.rows.get(key(sha256, nodeId));
      if (row && !FINISHED.has(row.state)) {
        row.requestId = requestId;
        continue;
      }
      this.put({ sha256, nodeId, state: "pending", bytes: 0, total, requestId, startedAt: now, updatedAt: now });
    }
    this.changed();
  }

  /** A node's `model-progress`, decoded and checked to come from that node (inbound.ts). */
  onProgress(p: ModelProgress): void {
    if (!this.o.known(p.sha256)) return this.o.counters.drop("model-progress.unknown-model", { nodeId: p.nodeId });
    const row = this.rows.get(key(p.sha256, p.nodeId));
    const same = row?.transferId === p.transferId;
    if (row && same && (p.seq <= row.seq! || ORDER[p.state] < ORDER[row.state])) return this.o.counters.drop("model-progress.stale", { nodeId: p.nodeId });
    const now = this.o.clock.now();
    // A push's pending row (or a row still in flight) becomes this transfer; a finished row is replaced by a new one.
    const keep = row && (same || !FINISHED.has(row.state));
    this.put({
      sha256: p.sha256, nodeId: p.nodeId, state: p.state, bytes: p.bytes, total: p.total || row?.total || 0,
      ...(keep && row.requestId ? { requestId: row.requestId } : {}),
      ...(p.code ? { code: p.code } : {}), ...(p.message ? { message: p.message.slice(0, 300) } : {}),
      startedAt: keep ? row.startedAt : now, updatedAt: now, transferId: p.transferId, seq: p.seq,
    });
    if (FINISHED.has(p.state) && !(row && same && FINISHED.has(row.state))) this.o.counters.inc(`models.rollouts.${p.state}`);
    this.changed();
  }

  /**
   * The fetch command's answer for a pushed row: `fetched` / `exists` finish it as done, `refused`
   * and `no-answer` as failed with the error's code (the node's progress may never have come).
   */
  settle(sha256: string, nodeId: string, status: string, error?: WireError): void {
    const row = this.rows.get(key(sha256, nodeId));
    if (!row) return;
    const ok = status === "fetched" || status === "exists";
    const state = ok ? "done" : "failed";
    if (row.state === state) return;
    const code = ok ? undefined : (error?.code ?? (status === "no-answer" ? ModelStoreErrors.MODEL_PUSH_NO_ANSWER : ModelStoreErrors.MODEL_PUSH_FAILED));
    const { code: _c, message: _m, ...rest } = row;
    this.put({
      ...rest, state, bytes: ok ? row.total : row.bytes, updatedAt: this.o.clock.now(),
      ...(code ? { code } : {}), ...(!ok && error?.message ? { message: error.message.slice(0, 300) } : {}),
    });
    this.o.counters.inc(`models.rollouts.${state}`);
    this.changed();
  }

  /** Publishes now what changed (a push's reply follows its rows' final states on the same client, in order). */
  flush(): void {
    if (!this.timer) return;
    this.timer.cancel();
    this.timer = undefined;
    this.publish();
  }

  /** The retained snapshot: at most MAX_ROLLOUTS rows (put() evicts the oldest finished first). */
  snapshot(): ModelRollouts {
    return { at: this.o.clock.now(), rollouts: this.list(), omitted: this.omitted };
  }

  private put(row: Row): void {
    const k = key(row.sha256, row.nodeId);
    // Re-inserted, so the map's order is oldest change first.
    this.rows.delete(k);
    this.rows.set(k, row);
    for (const w of this.watchers.get(k) ?? []) {
      if (FINISHED.has(row.state)) this.unwatch(w, this.get(row.sha256, row.nodeId), k);
      else {
        // Progress: the transfer is alive, so the quiet period starts again.
        w.timer.cancel();
        w.timer = this.o.clock.setTimer(w.idleMs, () => this.unwatch(w, undefined, k));
      }
    }
    while (this.rows.size > MAX_ROLLOUTS) {
      const victim = [...this.rows].find(([, r]) => FINISHED.has(r.state))?.[0] ?? this.rows.keys().next().value!;
      this.rows.delete(victim);
      this.omitted++;
    }
  }

  private unwatch(w: Watcher, r: Rollout | undefined, k?: string): void {
    w.timer.cancel();
    if (k) this.watchers.get(k)?.delete(w);
    if (k && this.watchers.get(k)?.size === 0) this.watchers.delete(k);
    w.resolve(r);
  }

  private changed(): void {
    if (!this.started || this.timer) return;
    this.timer = this.o.clock.setTimer(this.o.intervalMs ?? MODEL_PROGRESS_INTERVAL_MS, () => {
      this.timer = undefined;
      this.publish();
    });
  }

  private publish(): void {
    if (this.started) this.o.out.send(channels.modelRollouts, [], this.snapshot());
  }
}

const key = (sha256: string, nodeId: string) => `${sha256}/${nodeId}`;
