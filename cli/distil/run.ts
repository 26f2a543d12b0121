import { rmSync } from "node:fs";
import path from "node:path";
import { startDistilJob } from "../../trainer/distil/job.ts";
import { parseDistilSpec, type DistilSpecInput } from "../../trainer/distil/spec.ts";
import { ProgressBar } from "../../trainer/progress.ts";

/**
 * The local `colony distil`: runs the job in its worker process with a progress bar on stderr and
 * the result as the last stdout line. Ctrl-C / SIGTERM cancel it (the worker keeps a checkpoint,
 * `--resume` continues); without `--resume` an earlier run's dataset and checkpoint are removed.
 */
export async function runDistilLocally(input: DistilSpecInput, opts: { resume: boolean; progress: boolean }): Promise<void> {
  const spec = parseDistilSpec(input);
  if (!opts.resume) for (const f of ["train.ckpt", "dataset.jsonl", "dataset.json"]) rmSync(path.join(spec.jobDir, f), { force: true });
  let bar: ProgressBar | undefined;
  let phase = "";
  let lastAt = performance.now();
  const job = startDistilJob(spec, {
    onProgress: (p) => {
      if (p.phase !== phase) {
        bar?.done();
        phase = p.phase;
        bar = p.phase === "train" ? new ProgressBar({ totalSteps: p.total, force: opts.progress }) : undefined;
        if (p.phase !== "train" && (opts.progress || process.stderr.isTTY)) process.stderr.write(`distil: ${p.phase}\n`);
      }
      const now = performance.now();
      // The bar counts tokens itself; the worker reports a rate, so give it the tokens of the interval.
      bar?.update(p.step, p.loss ?? 0, Math.round((p.tokensPerSecond * (now - lastAt)) / 1000));
      lastAt = now;
    },
  });
  const onSignal = () => void job.cancel();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const result = await job.done;
    bar?.done();
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    bar?.done();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
