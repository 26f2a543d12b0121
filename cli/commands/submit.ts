import type { Command } from "commander";

/** `colony submit "prompt"`: submit a task to the fleet's market and wait for its result. */
export function register(program: Command): void {
  program
    .command("submit")
    .description("submit a task to the fleet and print its result (exit code 1 on an error result)")
    .argument("<prompt>", "the prompt text")
    .option("--skill <skill>", "skill the task needs (agents register skills)")
    .option("--check-exact <value>", "success only if the output equals VALUE (trimmed)")
    .option("--check-regex <pattern>", "success only if the output matches PATTERN")
    .option("--max-tokens <n>", "most tokens to generate")
    .option("--deadline-ms <n>", "time budget from acceptance to result (default: the coordinator's, 60000)")
    .option("--min-accuracy <p>", "only agents whose calibrated accuracy may reach P (0-1)")
    .option("--private", "announce only to the nodes with an agent for --skill (no other node sees the prompt)")
    .option("--id <id>", "task id (default: 128 random bits; the id is the capability to read the result)")
    .option("--url <url>", "broker URL (default: credentials file, $COLONY_BROKER, mqtt://127.0.0.1:1883)")
    .option("--username <name>", "MQTT username (a submitter credential: colony credentials issue --submitter NAME)")
    .option("--password <pw>", "MQTT password")
    .option("--credentials <file>", "credentials JSON file (default $COLONY_CREDENTIALS)")
    .option("--events", "print the task's events to stderr as they arrive")
    .option("--no-wait-coordinator", "submit even if no online coordinator status is seen (it is checked for 2 s by default)")
    .option("--json", "print the whole result as one JSON line")
    .action(async (prompt: string, o: Record<string, string | boolean | undefined>) => {
      const { intArg } = await import("../../common/config.ts");
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { cliEnv } = await import("../env.ts");
      const { SubmitSchema } = await import("../../common/protocol.ts");
      const { connectClient, coordinatorState, newTaskId, submitAndWait } = await import("../../coordinator/submitter.ts");
      const { MarketErrors } = await import("../../coordinator/market/errors.ts");
      const s = (v: unknown) => (typeof v === "string" ? v : undefined);
      if (o.checkExact !== undefined && o.checkRegex !== undefined) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "give at most one of --check-exact and --check-regex");
      const minAccuracy = s(o.minAccuracy) === undefined ? undefined : Number(o.minAccuracy);
      const candidate = {
        id: s(o.id) ?? newTaskId(),
        prompt,
        skill: s(o.skill),
        maxTokens: intArg("--max-tokens", s(o.maxTokens)),
        deadlineMs: intArg("--deadline-ms", s(o.deadlineMs)),
        minAccuracy,
        private: o.private === true ? true : undefined,
        check: o.checkExact !== undefined ? { type: "exact" as const, value: s(o.checkExact)! } : o.checkRegex !== undefined ? { type: "regex" as const, pattern: s(o.checkRegex)! } : undefined,
      };
      const parsed = SubmitSchema.safeParse(Object.fromEntries(Object.entries(candidate).filter(([, v]) => v !== undefined)));
      if (!parsed.success) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      const env = cliEnv();
      const logger = createLogger({ level: env.logLevel ?? "warn", name: "submit" });
      (await import("../warnings.ts")).warnPasswordFlag(o.password);
      const client = await connectClient({ url: s(o.url), username: s(o.username), password: s(o.password), credentials: s(o.credentials) ?? env.credentials, defaultUrl: env.broker, logger });
      try {
        if (o.waitCoordinator !== false) {
          const state = await coordinatorState(client, 2000);
          if (state !== "online") throw new ColonyError(MarketErrors.COORDINATOR_OFFLINE, state === "offline" ? "the coordinator is offline (retained status)" : "no coordinator status on this broker within 2 s (is the coordinator running? --no-wait-coordinator skips this check)");
        }
        const result = await submitAndWait(client, { ...parsed.data, id: candidate.id }, {
          timeoutMs: (parsed.data.deadlineMs ?? 60_000) + 10_000,
          onEvent: o.events ? (e) => process.stderr.write(JSON.stringify(e) + "\n") : undefined,
        });
        if (o.json) process.stdout.write(JSON.stringify(result) + "\n");
        else if (result.status === "ok") process.stdout.write((result.output ?? "") + "\n");
        else process.stderr.write(`error ${result.error?.code}: ${result.error?.message}\n${result.attempts.map((a) => `  attempt ${a.attempt}: ${a.agentId ?? "-"}@${a.nodeId ?? "-"} ${a.outcome}${a.error ? ` (${a.error.code})` : ""}`).join("\n")}\n`);
        if (result.status !== "ok") process.exitCode = 1;
      } finally {
        await client.endAsync().catch(() => {});
      }
    });
}
