/**
 * Text renderings of evolution's retained topics for `colony lineage` and `colony architect plan`:
 * pure functions of the payloads (tested in test/unit/cli-lineage.test.ts).
 */
import type { ArchitectReport, Life, LineageSnapshot, NicheFitness } from "../common/protocol.ts";

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function fitnessText(f: readonly NicheFitness[]): string {
  return f.map((x) => `${x.niche} ${pct(x.success)}/${Math.round(x.trials)}${x.energyPerSuccessJ !== undefined ? ` ${x.energyPerSuccessJ.toFixed(2)}J` : ""} w${x.wins}`).join(", ");
}

function line(l: Life): string {
  const died = l.state === "retired" || l.state === "refused" ? ` ${l.state}: ${l.death ?? ""}` : l.state === "pending" ? " (spawn pending)" : "";
  const fit = l.fitness.length ? ` [${fitnessText(l.fitness)}]` : "";
  return `${l.agentId}@${l.nodeId} g${l.generation}${fit}${died}`;
}

/**
 * The family tree: each life under its parent (by agent id; a parent no longer in the snapshot makes
 * its children roots). With `agent`, only that agent's ancestors and its descendants.
 */
export function renderLineage(snap: LineageSnapshot, agent?: string): string {
  const lives = [...snap.lives].sort((a, b) => a.bornAt - b.bornAt || a.agentId.localeCompare(b.agentId));
  const ids = new Set(lives.map((l) => l.agentId));
  const children = new Map<string, Life[]>();
  const roots: Life[] = [];
  for (const l of lives) {
    const p = l.parents.find((x) => ids.has(x));
    if (p) children.set(p, [...(children.get(p) ?? []), l]);
    else roots.push(l);
  }
  const out: string[] = [];
  const walk = (l: Life, depth: number, seen: Set<Life>) => {
    if (seen.has(l)) return;
    seen.add(l);
    out.push(`${"  ".repeat(depth)}${depth ? "└ " : ""}${line(l)}`);
    for (const c of children.get(l.agentId) ?? []) walk(c, depth + 1, seen);
  };
  if (agent === undefined) {
    const seen = new Set<Life>();
    for (const r of roots) walk(r, 0, seen);
  } else {
    const me = lives.filter((l) => l.agentId === agent);
    if (me.length === 0) return `no agent ${agent} in the lineage (${lives.length} lives; ${snap.omitted} older dead omitted)`;
    for (const m of me) {
      const chain: Life[] = [];
      for (let p = m.parents[0]; p !== undefined; ) {
        const parent = lives.find((l) => l.agentId === p);
        if (!parent || chain.includes(parent)) break;
        chain.unshift(parent);
        p = parent.parents[0];
      }
      chain.forEach((a, i) => out.push(`${"  ".repeat(i)}${i ? "└ " : ""}${line(a)}`));
      walk(m, chain.length, new Set(chain));
      out.push(`  born: ${m.birth}`);
      if (m.death) out.push(`  died: ${m.death}`);
    }
  }
  const living = lives.filter((l) => l.state === "alive").length;
  out.push(`${living} living, ${lives.length - living} pending/dead shown${snap.omitted ? `, ${snap.omitted} older dead omitted` : ""}`);
  return out.join("\n");
}

export function renderPlan(r: ArchitectReport): string {
  const out = [`architect cycle ${r.cycle} at ${new Date(r.at).toISOString()}${r.dryRun ? " (dry run: nothing was sent)" : ""}`];
  out.push(r.decisions.length ? "decisions:" : "decisions: none");
  for (const d of r.decisions) out.push(`  ${d.kind} ${d.agentId} on ${d.nodeId}: ${d.reason}`);
  if (r.heldBack.length) out.push("held back:");
  for (const h of r.heldBack) out.push(`  ${h.decision.kind} ${h.decision.agentId} on ${h.decision.nodeId} (${h.why}): ${h.decision.reason}`);
  return out.join("\n");
}
