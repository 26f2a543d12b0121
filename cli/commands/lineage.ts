import type { Command } from "commander";
import { readRetained, retainedOptions } from "../retained.ts";

/** `colony lineage [AGENT]`: the agents' family tree with each one's niche fitness (retained `evolution/lineage`). */
export function register(program: Command): void {
  retainedOptions(program.command("lineage").argument("[agent]", "show this agent's ancestors and descendants only"))
    .description("print the agents' family tree: generation, niche fitness (success/trials, joules per success, wins), births and deaths with their reasons")
    .action(async (agent: string | undefined, o: Record<string, string | boolean | undefined>) => {
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { LineageSnapshotSchema, topics } = await import("../../common/protocol.ts");
      const { renderLineage } = await import("../lineage-tree.ts");
      const got = (await readRetained(o, [topics.evolutionLineage], "lineage")).get(topics.evolutionLineage);
      if (got === undefined) throw new ColonyError(CommonErrors.RETAINED_MISSING, "no lineage on this broker (is the coordinator running? use --data-dir or a coordinator credential)");
      const snap = LineageSnapshotSchema.safeParse(got);
      if (!snap.success) throw new ColonyError(CommonErrors.RETAINED_MISSING, `the retained lineage is not valid: ${snap.error.issues[0]?.message ?? ""}`);
      if (o.json) return void process.stdout.write(JSON.stringify(agent ? { ...snap.data, lives: snap.data.lives.filter((l) => l.agentId === agent) } : snap.data) + "\n");
      process.stdout.write(renderLineage(snap.data, agent) + "\n");
    });
}
