import { createLogger } from "../../common/logger.ts";
import type { TrainJob } from "../../trainer/job.ts";
import { runTrainJob } from "../../trainer/run-job.ts";
import { cliEnv } from "../env.ts";

/**
 * The glue of `colony train` (cli/commands/train.ts loads it inside the action, so `colony --help`
 * does not load the trainer): a logger at COLONY_LOG_LEVEL (default info), Ctrl-C or SIGTERM aborting
 * the job, which then stops after the current step with a checkpoint (TRAIN_INTERRUPTED), and the
 * summary as one JSON line on stdout. The handlers are `once`: a second signal ends the process.
 */
export async function runTrainCommand(job: TrainJob): Promise<void> {
  const log = createLogger({ level: cliEnv().logLevel ?? "info", name: "train" });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const summary = await runTrainJob(job, { log, signal: abort.signal });
    process.stdout.write(JSON.stringify(summary) + "\n");
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
