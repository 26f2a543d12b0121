/**
 * Every agent's life, kept by the coordinator in its LevelDB (section `evo`, keys `life:{node}/{agent}`):
 * parents, generation, birth and death with the decision that caused each, its genome, and its
 * fitness history (the last `historyLength` architect cycles). Survives restarts; the coordinator
 * is its one writer. Founders (agents a node hosts from its agents file) are recorded when their
 * node first registers them; children when the architect spawns them.
 */
import type { Genome } from "../../common/genome.ts";
import type { Life, LineageSnapshot, NicheFitness } from "../../common/protocol.ts";
import type { TaskStore } from "../market/task-store.ts";
import type { OnlineStatus } from "../registry.ts";

export interface LifeRecord extends Life {
  /** The whole genome, when known (a child's always; a founder's when its node sent it). */
  spec?: Genome | undefined;
  history: { at: number; fitness: NicheFitness[] }[];
}

type Section = ReturnType<TaskStore["section"]>;

const LIFE = "life:";
export const lifeId = (nodeId: string, agentId: string) => `${nodeId}/${agentId}`;

export class Lineage {
  private readonly lives = new Map<string, LifeRecord>();

  constructor(private readonly db: Section, private readonly o: { historyLength?: number; snapshotDead?: number } = {}) {}

  async load(): Promise<void> {
    for await (const [key, value] of this.db.iterator({ gte: LIFE, lt: LIFE + "\uffff" })) {
      const life = value as LifeRecord;
      this.lives.set(key.slice(LIFE.length), life);
    }
  }

  get(nodeId: string, agentId: string): LifeRecord | undefined {
    return this.lives.get(lifeId(nodeId, agentId));
  }

  all(): LifeRecord[] {
    return [...this.lives.values()];
  }

  alive(): LifeRecord[] {
    return this.all().filter((l) => l.state === "alive" || l.state === "pending");
  }

  private async save(l: LifeRecord): Promise<void> {
    this.lives.set(lifeId(l.nodeId, l.agentId), l);
    await this.db.put(LIFE + lifeId(l.nodeId, l.agentId), l as never);
  }

  /**
   * A node's status: agents it hosts that the lineage does not know are founders (or children whose
   * ack was lost: confirmed); alive agents it no longer hosts left outside the architect's decisions.
   * Returns what changed.
   */
  async observe(nodeId: string, status: OnlineStatus, at: number): Promise<number> {
    let changed = 0;
    const hosted = new Set<string>();
    for (const a of status.agents) {
      hosted.add(a.agentId);
      const known = this.get(nodeId, a.agentId);
      if (known && known.state === "alive" && known.genome === a.genome) {
        if (!known.spec && a.spec) await this.save({ ...known, spec: a.spec }), changed++;
        continue;
      }
      if (known && (known.state === "pending" || known.state === "alive")) {
        await this.save({ ...known, state: "alive", genome: a.genome, spec: a.spec ?? known.spec });
      } else {
        const returned = known ? `registered again by node ${nodeId} after ${known.state === "retired" ? "retirement" : "a refusal"}` : undefined;
        await this.save({
          agentId: a.agentId, nodeId, genome: a.genome, spec: a.spec, parents: known?.parents ?? (a.parent ? [a.parent] : []), generation: known?.generation ?? a.generation ?? 0,
          state: "alive", bornAt: at, birth: returned ?? `founder: hosted by node ${nodeId} from its agents file`, fitness: known?.fitness ?? [], history: known?.history ?? [],
        });
      }
      changed++;
    }
    for (const l of this.lives.values()) {
      if (l.nodeId === nodeId && l.state === "alive" && !hosted.has(l.agentId)) {
        await this.save({ ...l, state: "retired", diedAt: at, death: `left node ${nodeId}'s agent set (not an architect decision)` });
        changed++;
      }
    }
    return changed;
  }

  async spawning(child: { nodeId: string; agentId: string; genome: string; spec: Genome; parents: string[]; generation: number; reason: string }, at: number): Promise<void> {
    const { genome, spec, parents, generation } = child;
    await this.save({ agentId: child.agentId, nodeId: child.nodeId, genome, spec, parents, generation, state: "pending", bornAt: at, birth: child.reason, fitness: [], history: [] });
  }

  async born(nodeId: string, agentId: string, genome: string | undefined, at: number): Promise<void> {
    const l = this.get(nodeId, agentId);
    if (l && l.state !== "alive") await this.save({ ...l, state: "alive", bornAt: at, genome: genome ?? l.genome, diedAt: undefined, death: undefined });
  }

  async ended(nodeId: string, agentId: string, state: "retired" | "refused", why: string, at: number): Promise<void> {
    const l = this.get(nodeId, agentId);
    if (l && (l.state === "alive" || l.state === "pending")) await this.save({ ...l, state, diedAt: at, death: why });
  }

  /** Each cycle's fitness, into the current figure and the bounded history. */
  async recordFitness(fitness: Map<string, NicheFitness[]>, at: number): Promise<void> {
    const keep = this.o.historyLength ?? 48;
    const ops: { type: "put"; key: string; value: never }[] = [];
    for (const [id, f] of fitness) {
      const l = this.lives.get(id);
      if (!l || l.state !== "alive") continue;
      const next: LifeRecord = { ...l, fitness: f, history: [...l.history, { at, fitness: f }].slice(-keep) };
      this.lives.set(id, next);
      ops.push({ type: "put", key: LIFE + id, value: next as never });
    }
    if (ops.length) await this.db.batch(ops);
  }

  /** The retained topic's payload: the living, then the most recently dead (bounded). */
  snapshot(at: number): LineageSnapshot {
    const all = this.all();
    const living = all.filter((l) => l.state === "alive" || l.state === "pending");
    const dead = all.filter((l) => l.state === "retired" || l.state === "refused").sort((a, b) => (b.diedAt ?? 0) - (a.diedAt ?? 0));
    const keepDead = dead.slice(0, this.o.snapshotDead ?? 200);
    const lives = [...living, ...keepDead].map(({ spec: _s, history: _h, ...life }) => life);
    return { at, lives, omitted: dead.length - keepDead.length };
  }
}
