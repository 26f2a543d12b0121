/**
 * The node's own record of the life cycle commands it obeyed, in its LevelDB, so a restarted node
 * hosts the same population the coordinator left it with:
 *
 * - `spawned`: agent id -> the genome a spawn command gave, its lineage tag and when;
 * - `retired`: agent id -> when and why the coordinator retired it. An agent of the agents file
 *   that was retired stays retired after a restart (the file is the operator's, the node does not
 *   rewrite it); a spawn of the same id later brings it back.
 *
 * The node hosts: the agents file's genomes, less the retired ones and those a spawn replaced, plus
 * every spawned genome (`population`).
 */
import type { Level } from "level";
import { GenomeSchema, type Genome } from "../../common/genome.ts";
import type { Logger } from "../../common/logger.ts";
import { LineageTagSchema, type LineageTag } from "../../common/protocol.ts";

export interface SpawnedRecord {
  genome: Genome;
  lineage: LineageTag;
  at: number;
  /**
   * The local files the node found for the genome's model and adapter: a model found by its hash
   * under another path is found there again after a restart, even if what pinned it then is gone.
   */
  files?: LocalFiles | undefined;
}

export interface LocalFiles {
  model?: string | undefined;
  adapter?: string | undefined;
}

export interface RetiredRecord {
  at: number;
  reason: string;
}

/** One agent to host at start, with where it came from. */
export interface Member {
  genome: Genome;
  generation: number;
  spawned: boolean;
  files?: LocalFiles | undefined;
}

export class AgentStore {
  private readonly spawnedDb;
  private readonly retiredDb;
  private readonly spawnedById = new Map<string, SpawnedRecord>();
  private readonly retiredById = new Map<string, RetiredRecord>();

  constructor(db: Level<string, unknown>, private readonly log: Logger) {
    this.spawnedDb = db.sublevel<string, SpawnedRecord>("agents-spawned", { valueEncoding: "json" });
    this.retiredDb = db.sublevel<string, RetiredRecord>("agents-retired", { valueEncoding: "json" });
  }

  async start(): Promise<void> {
    for await (const [id, v] of this.spawnedDb.iterator()) {
      // Written by this code, but a downgrade or a damaged disk must not stop the node: skip and say so.
      const g = GenomeSchema.safeParse(v?.genome);
      const l = LineageTagSchema.safeParse(v?.lineage);
      if (g.success && l.success && g.data.id === id) this.spawnedById.set(id, { genome: g.data, lineage: l.data, at: Number(v.at) || 0, files: v.files });
      else this.log.error({ agentId: id }, "a stored spawned agent is unreadable: not hosted");
    }
    for await (const [id, v] of this.retiredDb.iterator()) this.retiredById.set(id, v);
  }

  async close(): Promise<void> {}

  spawned(id: string): SpawnedRecord | undefined {
    return this.spawnedById.get(id);
  }

  isRetired(id: string): boolean {
    return this.retiredById.has(id);
  }

  /** What the node hosts at start: the agents file less retired and respawned ids, plus every spawned genome. */
  population(fileGenomes: readonly Genome[]): Member[] {
    const fromFile = fileGenomes.filter((g) => !this.retiredById.has(g.id) && !this.spawnedById.has(g.id)).map((genome) => ({ genome, generation: 0, spawned: false }));
    const spawned = [...this.spawnedById.values()].map((r) => ({ genome: r.genome, generation: r.lineage.generation, spawned: true, files: r.files }));
    return [...fromFile, ...spawned];
  }

  async putSpawned(rec: SpawnedRecord): Promise<void> {
    const id = rec.genome.id;
    await this.spawnedDb.put(id, rec);
    if (this.retiredById.has(id)) await this.retiredDb.del(id);
    this.spawnedById.set(id, rec);
    this.retiredById.delete(id);
  }

  /** Marks an agent retired; a spawned one's genome is forgotten. */
  async retire(id: string, rec: RetiredRecord): Promise<void> {
    await this.retiredDb.put(id, rec);
    if (this.spawnedById.has(id)) await this.spawnedDb.del(id);
    this.retiredById.set(id, rec);
    this.spawnedById.delete(id);
  }
}
