/**
 * The coordinator's part that gives each task without a skill its niche (niches.ts), and keeps the
 * clusters in the coordinator's LevelDB (`meta:niches`) so they survive a restart. The market calls
 * `classify` on its submit path, so nothing is written there: the state is saved at most once per
 * `saveEveryMs` (1 s), at once when a cluster opens (rare: at most `maxClusters` times), and on
 * close. A write lost in a crash only costs centroid moves since the last save; the niche of every
 * accepted task is stored with the task itself (TaskRecord.niche), so a resumed task keeps it.
 */
import type { Clock, Timer } from "../../common/clock.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import type { TaskStore } from "../market/task-store.ts";
import { NicheClusterer, type NicheOptions } from "./niches.ts";

const META_KEY = "niches";

export interface NicheBookOptions {
  store: Pick<TaskStore, "getMeta" | "putMeta">;
  clock: Clock;
  logger: Logger;
  /** Clusterer options (niches.ts); defaults DEFAULT_NICHE_OPTIONS. */
  niches?: Partial<NicheOptions>;
  /** Least time between two saves of the centroids. Default 1000. */
  saveEveryMs?: number;
}

export class NicheBook implements Lifecycle {
  private clusterer: NicheClusterer;
  private timer: Timer | undefined;
  private saving: Promise<void> | undefined;
  private dirty = false;
  private lastSave = -Infinity;
  private closed = false;

  constructor(private readonly o: NicheBookOptions) {
    this.clusterer = new NicheClusterer(o.niches);
  }

  async start(): Promise<void> {
    const stored = await this.o.store.getMeta(META_KEY);
    if (stored === undefined) return;
    try {
      this.clusterer = NicheClusterer.fromJSON(stored, this.o.niches);
      this.o.logger.info({ clusters: this.clusterer.size }, "niches restored");
    } catch (err) {
      // New clusters get new numbers: an old key's track records never apply to another niche.
      const next = typeof (stored as { next?: unknown }).next === "number" ? (stored as { next: number }).next : 1;
      this.clusterer = new NicheClusterer(this.o.niches, next);
      this.o.logger.warn({ err }, "stored niches unreadable; learning them afresh");
    }
  }

  /** The niche key of an unlabeled task's prompt ("~c1", ...); the prompt's cluster learns from it. */
  classify(prompt: string): string {
    const a = this.clusterer.assign(prompt);
    this.dirty = true;
    this.schedule(a.opened ? 0 : Math.max(0, this.lastSave + (this.o.saveEveryMs ?? 1000) - this.o.clock.now()));
    return a.key;
  }

  /** The clusters as they are now (tests, status). */
  state(): ReturnType<NicheClusterer["toJSON"]> {
    return this.clusterer.toJSON();
  }

  private schedule(inMs: number): void {
    if (this.closed) return;
    if (this.timer && inMs > 0) return;
    this.timer?.cancel();
    this.timer = this.o.clock.setTimer(inMs, () => {
      this.timer = undefined;
      void this.save();
    });
  }

  /** One save at a time; changes made while one runs are saved by the next. */
  private async save(): Promise<void> {
    if (this.saving) {
      await this.saving;
      return this.dirty ? this.save() : undefined;
    }
    if (!this.dirty) return;
    this.dirty = false;
    this.lastSave = this.o.clock.now();
    this.saving = this.o.store.putMeta(META_KEY, this.clusterer.toJSON()).catch((err) => {
      this.dirty = true;
      this.o.logger.error({ err }, "saving the niches failed");
    });
    try {
      await this.saving;
    } finally {
      this.saving = undefined;
    }
    if (this.dirty && !this.closed) this.schedule(Math.max(0, this.lastSave + (this.o.saveEveryMs ?? 1000) - this.o.clock.now()));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.save();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
