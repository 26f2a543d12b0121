import type { Command } from "commander";
import { readRetained, retainedOptions } from "../retained.ts";

/** `colony architect plan`: the architect's latest decisions and what held others back (retained `architect/decisions`). */
export function register(program: Command): void {
  const architect = program.command("architect").description("the architect that spawns, retires and keeps agents warm (docs/evolution.md)");
  retainedOptions(architect.command("plan"))
    .description("print the architect's latest cycle: its decisions with their reasons, and those a budget or a switch held back (with evolution.dryRun: what it would do)")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { ArchitectReportSchema, topics } = await import("../../common/protocol.ts");
      const { renderPlan } = await import("../lineage-tree.ts");
      const got = (await readRetained(o, [topics.architectDecisions], "architect")).get(topics.architectDecisions);
      if (got === undefined) throw new ColonyError(CommonErrors.RETAINED_MISSING, "no architect report on this broker (is the coordinator running with the architect on? it reports after its first cycle)");
      const r = ArchitectReportSchema.safeParse(got);
      if (!r.success) throw new ColonyError(CommonErrors.RETAINED_MISSING, `the retained report is not valid: ${r.error.issues[0]?.message ?? ""}`);
      process.stdout.write((o.json ? JSON.stringify(r.data) : renderPlan(r.data)) + "\n");
    });
}
