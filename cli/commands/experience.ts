import type { Command } from "commander";

/** Parses --since/--until: an ISO 8601 date-time or milliseconds since the epoch. */
function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  return Number.isFinite(ms) && ms >= 0 ? ms : Number.NaN;
}

/**
 * `colony experience export`: the coordinator's cold cache (docs/mind.md) as JSONL, one experience
 * per line with `completion` (= its output), the format `colony train --data` and `colony distil
 * --experiences` read. Asked over MQTT with a coordinator credential (the running coordinator holds
 * the LevelDB lock).
 */
export function register(program: Command): void {
  const experience = program.command("experience").description("the coordinator's cold cache of experiences: every finished attempt (docs/mind.md)");
  experience
    .command("export")
    .description("write experiences as JSONL (one per line, with \"completion\" = output); --verified gives lines `colony train --data` can learn from")
    .option("--skill <key>", "only this skill key (a skill, a niche like ~c3, or *)")
    .option("--node <id>", "only the agent --agent on this node (give both)")
    .option("--agent <id>", "only this agent (with --node)")
    .option("--since <time>", "only experiences at or after TIME (ISO 8601 or ms since the epoch)")
    .option("--until <time>", "only experiences before TIME (ISO 8601 or ms since the epoch)")
    .option("--verified", "only verified successes (a machine check or the submitter's feedback said right)")
    .option("--limit <n>", "at most N experiences (the oldest first)")
    .option("--out <file>", "write to FILE (written whole, then renamed into place) instead of stdout")
    .option("--timeout-ms <n>", "fail when no page arrives for this long (default 10000)")
    .option("--url <url>", "broker URL (default: credentials file, $COLONY_BROKER, mqtt://127.0.0.1:1883)")
    .option("--username <name>", "MQTT username (a coordinator credential)")
    .option("--password <pw>", "MQTT password")
    .option("--credentials <file>", "credentials JSON file of a coordinator credential (default $COLONY_CREDENTIALS)")
    .option("--data-dir <dir>", "on the coordinator's host: issue a coordinator credential from this folder's fleet secret")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { intArg } = await import("../../common/config.ts");
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const s = (v: unknown) => (typeof v === "string" ? v : undefined);
      const bad = (m: string) => new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, m);
      const since = parseTime(s(o.since));
      const until = parseTime(s(o.until));
      if (Number.isNaN(since)) throw bad(`--since must be an ISO 8601 date-time or ms since the epoch, got ${JSON.stringify(o.since)}`);
      if (Number.isNaN(until)) throw bad(`--until must be an ISO 8601 date-time or ms since the epoch, got ${JSON.stringify(o.until)}`);
      if ((o.node === undefined) !== (o.agent === undefined)) throw bad("give --node and --agent together");
      const limit = intArg("--limit", s(o.limit));
      if (limit !== undefined && limit < 1) throw bad("--limit must be at least 1");
      const filter = {
        ...(o.skill !== undefined ? { skill: s(o.skill)! } : {}),
        ...(o.node !== undefined ? { agent: { nodeId: s(o.node)!, agentId: s(o.agent)! } } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(o.verified ? { verified: true } : {}),
        ...(limit !== undefined ? { limit } : {}),
      };
      const { ExperienceExportRequestSchema } = await import("../../common/protocol.ts");
      const checked = ExperienceExportRequestSchema.safeParse({ requestId: "x", ...filter });
      if (!checked.success) throw bad(`invalid export filter: ${checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);

      const { createWriteStream } = await import("node:fs");
      const { rename, rm } = await import("node:fs/promises");
      const { once } = await import("node:events").then((m) => m.default);
      const { connectWithOptions } = await import("../retained.ts");
      const { exportExperiences } = await import("../experience-export.ts");
      const out = s(o.out);
      const partial = out ? `${out}.partial` : undefined;
      const stream = partial ? createWriteStream(partial) : process.stdout;
      const client = await connectWithOptions(o, "experience");
      try {
        const got = await exportExperiences(client, filter, async (line) => {
          if (!stream.write(line + "\n")) await once(stream, "drain");
        }, { timeoutMs: intArg("--timeout-ms", s(o.timeoutMs)) ?? 10_000 });
        if (partial) {
          stream.end();
          await once(stream, "finish");
          await rename(partial, out!);
        }
        process.stderr.write(`exported ${got.count} experiences${out ? ` to ${out}` : ""}\n`);
      } catch (err) {
        if (partial) {
          stream.destroy();
          await rm(partial, { force: true });
        }
        throw err;
      } finally {
        await client.endAsync().catch(() => {});
      }
    });
}
