import type { Clock } from "../../common/clock.ts";

/**
 * Sitting out after failures: an agent that fails an attempt (error, missed ack, missed deadline,
 * node offline) is excluded from auctions for base * 2^(k-1) ms after its k-th consecutive failure,
 * capped; one success heals it (k = 0). Pure state plus an injected clock; the market persists it.
 */
export interface PenaltyState {
  consecutive: number;
  until: number;
}

export class Penalties {
  private readonly byAgent = new Map<string, PenaltyState>();
  constructor(private readonly clock: Clock, private readonly baseMs: number, private readonly maxMs: number) {}

  /** Records a failure; returns the new state (for the store). */
  fail(agentId: string): PenaltyState {
    const prev = this.byAgent.get(agentId);
    const consecutive = (prev?.consecutive ?? 0) + 1;
    const ms = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(consecutive - 1, 30));
    const state = { consecutive, until: this.clock.now() + ms };
    this.byAgent.set(agentId, state);
    return state;
  }

  succeed(agentId: string): PenaltyState {
    const state = { consecutive: 0, until: 0 };
    this.byAgent.set(agentId, state);
    return state;
  }

  load(agentId: string, state: PenaltyState): void {
    this.byAgent.set(agentId, state);
  }

  isExcluded(agentId: string): boolean {
    const s = this.byAgent.get(agentId);
    return s !== undefined && s.until > this.clock.now();
  }

  /** Agents sitting out now (listed in the announce). */
  excludedNow(): string[] {
    const now = this.clock.now();
    return [...this.byAgent].filter(([, s]) => s.until > now).map(([a]) => a);
  }

  get(agentId: string): PenaltyState | undefined {
    return this.byAgent.get(agentId);
  }
}
