/** What the market is built from (coordinator/coordinator.ts wires it; unit tests wire fakes). */
import type { Clock } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Logger } from "../../common/logger.ts";
import type { Outbox } from "../../common/protocol.ts";
import type { Registry } from "../registry.ts";
import type { CheckRunner } from "./checks.ts";
import type { MarketEventBus } from "./events.ts";
import type { SubmitterQuota } from "./quota.ts";
import type { Reputation } from "./reputation.ts";
import type { TaskStore } from "./task-store.ts";

export interface MarketSettings {
  bidWindowMs: number;
  maxAttempts: number;
  ackWithinMs: number;
  defaultDeadlineMs: number;
  defaultMaxTokens: number;
  /** Tasks are private unless their submit says otherwise (Submit.private). */
  privateAnnounces?: boolean;
}

export interface MarketParts {
  settings: MarketSettings;
  clock: Clock;
  rng: () => number;
  store: TaskStore;
  registry: Registry;
  /** Read only: the market scores with records and skips excluded agents; it never writes them. */
  reputation: Pick<Reputation, "record" | "totalTrials" | "excludedNow">;
  events: MarketEventBus;
  counters: Counters;
  out: Outbox;
  /** Runs the submitters' checks off the event loop (checks.ts). */
  checks: Pick<CheckRunner, "run">;
  /** Per-submitter limits on unfinished tasks and request rate (quota.ts). */
  quota: Pick<SubmitterQuota, "admitTask">;
  /**
   * Infers the niche of a task without a skill from its prompt (coordinator/evolution/niche-book.ts):
   * its track-record key instead of "*". Absent: every such task shares the key "*".
   */
  niches?: { classify(prompt: string): string };
  logger: Logger;
}
