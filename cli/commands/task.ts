import type { Command } from "commander";

/** `colony task ID`: print a finished task's stored result. */
export function register(program: Command): void {
  program
    .command("task")
    .description("print a task's result: retained on the broker, else asked of the coordinator (tasks/{id}/get, from its store); with --data-dir read the store directly (coordinator stopped)")
    .argument("<id>", "task id")
    .option("--url <url>", "broker URL (default: credentials file, $COLONY_BROKER, mqtt://127.0.0.1:1883)")
    .option("--username <name>", "MQTT username")
    .option("--password <pw>", "MQTT password")
    .option("--credentials <file>", "credentials JSON file (default $COLONY_CREDENTIALS)")
    .option("--data-dir <dir>", "read the coordinator's task store directly (only while the coordinator is stopped: LevelDB is single-process)")
    .option("--json", "print the whole result as one JSON line")
    .action(async (id: string, o: Record<string, string | boolean | undefined>) => {
      const { ColonyError } = await import("../../common/errors.ts");
      const { MarketErrors } = await import("../../coordinator/market/errors.ts");
      const s = (v: unknown) => (typeof v === "string" ? v : undefined);
      let result: import("../../common/protocol.ts").Result | undefined;
      let state: string | undefined;
      let notFound: string | undefined;
      if (s(o.dataDir)) {
        const path = await import("node:path");
        const { TaskStore } = await import("../../coordinator/market/task-store.ts");
        const store = new TaskStore(path.join(s(o.dataDir)!, "tasks"));
        await store.start();
        try {
          const rec = await store.getTask(id);
          result = rec?.result;
          state = rec?.state;
        } finally {
          await store.close();
        }
      } else {
        const { createLogger } = await import("../../common/logger.ts");
        const { connectClient, fetchResult } = await import("../../coordinator/submitter.ts");
        const { cliEnv } = await import("../env.ts");
        const env = cliEnv();
        (await import("../warnings.ts")).warnPasswordFlag(o.password);
        const client = await connectClient({ url: s(o.url), username: s(o.username), password: s(o.password), credentials: s(o.credentials) ?? env.credentials, defaultUrl: env.broker, logger: createLogger({ level: "warn", name: "task" }) });
        try {
          const found = await fetchResult(client, id, 3000);
          if (found.kind === "result") result = found.result;
          else if (found.kind === "running") state = "open";
          else if (found.kind === "not-found") notFound = found.message;
          else notFound = `no answer about task ${id} within 3 s: is the coordinator running?`;
        } finally {
          await client.endAsync().catch(() => {});
        }
      }
      if (!result) throw new ColonyError(MarketErrors.TASK_NOT_FOUND, state === "open" ? `task ${id} is stored but not finished` : (notFound ?? `no result for task ${id}`));
      if (o.json) process.stdout.write(JSON.stringify(result) + "\n");
      else {
        process.stdout.write(`task ${result.id}: ${result.status}${result.error ? ` ${result.error.code}: ${result.error.message}` : ""}\n`);
        if (result.output !== undefined) process.stdout.write(`output: ${result.output}\n`);
        for (const a of result.attempts) process.stdout.write(`  attempt ${a.attempt}: ${a.agentId ?? "-"}@${a.nodeId ?? "-"} ${a.outcome}${a.error ? ` (${a.error.code})` : ""}\n`);
      }
      if (result.status !== "ok") process.exitCode = 1;
    });
}
