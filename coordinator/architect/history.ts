/**
 * The architect's view of history at one instant, joined from what other parts keep in memory:
 * evolution's lineage (who lives, parents, generation, genome) and fitness book (per agent and
 * skill key), and the registry (device class, online, what each agent is doing). The policy gets
 * only this, so it stays a pure function.
 */
import type { Evolution } from "../evolution/evolution.ts";
import type { Registry } from "../registry.ts";
import type { FitnessView, History, NodeView, PolicyState } from "./policy.ts";
import type { EvolutionSettings } from "./settings.ts";

export interface HistorySources {
  now: number;
  seed: number;
  evolution: Pick<Evolution, "lineage" | "fitness" | "exemplars">;
  registry: Pick<Registry, "list">;
  settings: EvolutionSettings;
  state: PolicyState;
}

export function buildHistory(s: HistorySources): History {
  const nodes = new Map(s.registry.list().map((n) => [n.nodeId, n]));
  const fitness = new Map<string, (FitnessView & { lastWinAt?: number | undefined })[]>();
  for (const f of s.evolution.fitness.agents()) {
    const id = `${f.nodeId}/${f.agentId}`;
    const list = fitness.get(id) ?? [];
    list.push(f);
    fitness.set(id, list);
  }
  const agents = s.evolution.lineage
    .alive()
    .sort((a, b) => `${a.nodeId}/${a.agentId}`.localeCompare(`${b.nodeId}/${b.agentId}`))
    .map((l) => {
      const n = nodes.get(l.nodeId);
      const info = n?.status?.agents.find((a) => a.agentId === l.agentId);
      const activity = n?.heartbeat?.agents.find((a) => a.agentId === l.agentId)?.state ?? info?.state;
      const f = fitness.get(`${l.nodeId}/${l.agentId}`) ?? [];
      const wins = f.map((x) => x.lastWinAt ?? 0);
      return {
        agentId: l.agentId, nodeId: l.nodeId, deviceClass: n?.status?.deviceClass ?? "unknown", state: l.state === "pending" ? ("pending" as const) : ("alive" as const),
        activity, skills: l.spec?.skills ?? info?.skills ?? [], generation: l.generation, bornAt: l.bornAt,
        lastWinAt: wins.length ? Math.max(...wins) || undefined : undefined, spec: l.spec ?? info?.spec, fitness: f,
      };
    });
  const nodeViews: NodeView[] = [...nodes.values()].map((n) => ({
    nodeId: n.nodeId, deviceClass: n.status?.deviceClass ?? "unknown", online: n.online, agents: n.status?.agents.length ?? 0,
    models: [...new Set((n.status?.agents ?? []).map((a) => a.spec?.model ?? a.model))],
  }));
  const c = s.settings;
  return {
    now: s.now, seed: s.seed, agents, nodes: nodeViews, demand: s.evolution.fitness.demands(),
    material: (a) => ({ exemplars: s.evolution.exemplars.of(a.nodeId, a.agentId), claims: Object.fromEntries(a.fitness.filter((f) => f.trials > 0).map((f) => [f.skill, f.success])) }),
    config: { ...c, kinds: { spawn: c.kinds.includes("spawn"), retire: c.kinds.includes("retire"), wake: c.kinds.includes("wake"), distil: c.kinds.includes("distil") } },
    state: s.state,
  };
}
