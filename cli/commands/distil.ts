import type { Command } from "commander";

/**
 * `colony distil`: distils one child model from parent agents' experiences (and verified samples),
 * then gates it against every parent on held-out instances (docs/mind.md, "Distillation and the
 * gate"). Heavy modules load inside the action so `colony --help` stays fast.
 */
const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command("distil")
    .description("distil a child model from parent agents' verified experiences and gate it against them: locally (--experiences, --parent ID=MODEL), or by the running coordinator from its cold cache (--coordinator), which signs, pushes and spawns a child that passes")
    .option("--experiences <file>", "local: JSONL of experiences as `colony experience export` writes them")
    .option("--parent <ID=MODEL.gguf[:skill,skill]>", "local: a parent agent, its GGUF and the skills it claims (repeat)", collect, [])
    .option("--out <file>", "local: the child GGUF to write")
    .option("--coordinator", "ask the running coordinator (needs --data-dir on its host, or a coordinator credential)")
    .option("--parents <ids>", "coordinator: comma-separated parent agent ids (NODE/AGENT where an id is on two nodes)")
    .option("--list", "coordinator: print the newest distillation jobs")
    .option("--cancel <jobId>", "coordinator: cancel a job (it stops after its current step)")
    .option("--skills <a,b>", "the skills the child must serve")
    .option("--mode <full|lora>", "a new model (warm-started from the strongest parent) or a LoRA adapter on it", "full")
    .option("--steps <n>", "optimizer steps (local default 300; coordinator default: its mind.steps)", "300")
    .option("--batch <n>", "examples per step", "32")
    .option("--lr <x>", "peak learning rate", "0.002")
    .option("--seed <n>", "seed for curation, sampling and data order", "1")
    .option("--threads <n>", "CPU threads for the trainer and llama.cpp", "1")
    .option("--sample <k>", "verified sampling: candidates per prompt and parent (skills with a machine check)")
    .option("--temperature <t>", "sampling temperature", "0.8")
    .option("--sample-prompts <n>", "fresh generator prompts per skill for sampling", "200")
    .option("--gate-per-skill <n>", "held-out instances per skill in the gate", "200")
    .option("--gate-margin <x>", "largest allowed drop on a skill against its best parent", "0.01")
    .option("--gate-seed <s>", "seed of the held-out gate instances", "distil-gate")
    .option("--job-dir <dir>", "local: dataset and checkpoint directory; default OUT.job")
    .option("--job-id <id>", "job id; default from OUT (local) or random (coordinator)")
    .option("--resume", "local: continue the job in --job-dir from its checkpoint")
    .option("--no-spawn", "coordinator: sign and store a child that passes, but do not spawn it")
    .option("--progress", "draw the progress bar even when stderr is not a terminal")
    .option("--url <url>", "coordinator: broker URL (default: credentials file, $COLONY_BROKER, mqtt://127.0.0.1:1883)")
    .option("--credentials <file>", "coordinator: a coordinator credentials file")
    .option("--data-dir <dir>", "coordinator: on its host, issue a coordinator credential from this folder's fleet secret")
    .option("--timeout-ms <n>", "coordinator: give up when the job shows no progress for this long (default 600000)")
    .option("--json", "print jobs as JSON")
    .action(async (f, cmd: Command) => {
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const remote = f.coordinator === true || f.list === true || f.cancel !== undefined;
      if (!remote) {
        const missing = ["experiences", "skills", "out"].filter((k) => f[k] === undefined).concat(f.parent.length ? [] : ["parent"]);
        if (missing.length) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `a local distillation needs ${missing.map((m) => `--${m}`).join(", ")} (or --coordinator to ask the running coordinator)`);
        const { specFromFlags } = await import("../distil/options.ts");
        const { runDistilLocally } = await import("../distil/run.ts");
        return runDistilLocally(specFromFlags(f), { resume: f.resume === true, progress: f.progress === true });
      }
      const { intArg } = await import("../../common/config.ts");
      const { connectWithOptions } = await import("../retained.ts");
      const { cancelJob, distilOnCoordinator, listJobs, renderJobs } = await import("../distil/remote.ts");
      const timeoutMs = intArg("--timeout-ms", f.timeoutMs) ?? 600_000;
      const client = await connectWithOptions(f, "distil");
      try {
        if (f.list === true) {
          const jobs = await listJobs(client, Math.min(timeoutMs, 5000));
          return void process.stdout.write((f.json ? JSON.stringify(jobs) : renderJobs(jobs)) + "\n");
        }
        if (f.cancel !== undefined) {
          const job = await cancelJob(client, f.cancel, timeoutMs);
          return void process.stdout.write(JSON.stringify(job) + "\n");
        }
        if (f.skills === undefined || f.parents === undefined) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "--coordinator needs --skills and --parents");
        const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
        if (f.mode !== "full" && f.mode !== "lora") throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `--mode must be full or lora, got ${JSON.stringify(f.mode)}`);
        const n = (name: string, v: string) => {
          if (!/^\d+(\.\d+)?$/.test(v)) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `--${name} must be a number, got ${JSON.stringify(v)}`);
          return Number(v);
        };
        const job = await distilOnCoordinator(
          client,
          {
            ...(f.jobId ? { jobId: f.jobId } : {}),
            skills: String(f.skills).split(",").filter(Boolean),
            parents: String(f.parents).split(",").filter(Boolean).map((p) => (p.includes("/") ? { nodeId: p.split("/")[0]!, agentId: p.split("/")[1]! } : { agentId: p })),
            ...(given("mode") ? { mode: f.mode as "full" | "lora" } : {}),
            ...(given("steps") ? { steps: n("steps", f.steps) } : {}),
            ...(f.sample !== undefined ? { sampling: { candidates: n("sample", f.sample), temperature: n("temperature", f.temperature), prompts: n("sample-prompts", f.samplePrompts) } } : {}),
            ...(given("gatePerSkill") ? { gatePerSkill: n("gate-per-skill", f.gatePerSkill) } : {}),
            ...(given("gateMargin") ? { margin: n("gate-margin", f.gateMargin) } : {}),
            ...(f.spawn === false ? { spawn: false } : {}),
            reason: "asked by an operator (colony distil --coordinator)",
          },
          { timeoutMs, progress: f.progress === true },
        );
        process.stdout.write(JSON.stringify(job) + "\n");
        if (job.state !== "passed") process.exitCode = 1;
      } finally {
        await client.endAsync().catch(() => {});
      }
    });
}
