/**
 * `colony distil --coordinator | --list | --cancel`: the running coordinator distils from its own cold
 * cache (docs/mind.md, "Distillation jobs on the coordinator"). The request goes on `mind/distil`
 * with a coordinator credential; the job is followed on the retained `mind/jobs` topic until it ends
 * (a bar at a terminal), and printed as one JSON line. Exit code 0 only for `passed`.
 */
import { randomBytes } from "node:crypto";
import type { MqttClient } from "mqtt";
import { ColonyError, CommonErrors } from "../../common/errors.ts";
import { channels, decode, encode, type DistilStart, type MindJob } from "../../common/protocol.ts";
import { ProgressBar } from "../../trainer/progress.ts";

const UNFINISHED = new Set(["queued", "running"]);

/** Follows `mind/jobs`; resolves with the job once `done(job)` says so, or rejects after `timeoutMs` of silence about it. */
function follow(client: MqttClient, jobId: string | undefined, done: (jobs: MindJob[]) => MindJob | MindJob[] | undefined, timeoutMs: number, onJob?: (j: MindJob) => void): Promise<MindJob | MindJob[]> {
  return new Promise((resolve, reject) => {
    let timer = setTimeout(() => reject(new ColonyError(CommonErrors.RETAINED_MISSING, `no news of ${jobId ? `job ${jobId}` : "distillation jobs"} on ${channels.mindJobs.topic()} within ${timeoutMs} ms (is the coordinator running, with a coordinator credential?)`)), timeoutMs);
    client.on("message", (topic, payload) => {
      if (topic !== channels.mindJobs.topic()) return;
      const d = decode(channels.mindJobs.schema, payload);
      if (!d.ok) return;
      const mine = jobId ? d.value.jobs.find((j) => j.jobId === jobId) : undefined;
      if (mine) {
        onJob?.(mine);
        clearTimeout(timer);
        timer = setTimeout(() => reject(new ColonyError(CommonErrors.RETAINED_MISSING, `job ${jobId} made no progress for ${timeoutMs} ms`)), timeoutMs);
      }
      const r = done(d.value.jobs);
      if (r) {
        clearTimeout(timer);
        resolve(r);
      }
    });
    client.subscribeAsync(channels.mindJobs.topic(), { qos: 1 }).then(
      (granted) => {
        if (granted.some((g) => g.qos === 128)) reject(new ColonyError(CommonErrors.RETAINED_MISSING, "the broker refused the jobs topic: distillation needs a coordinator credential (--data-dir on the coordinator's host)"));
      },
      (err: Error) => reject(new ColonyError(CommonErrors.RETAINED_MISSING, `the broker refused the jobs topic (${err.message}): distillation needs a coordinator credential (--data-dir on the coordinator's host)`)),
    );
  });
}

export async function distilOnCoordinator(client: MqttClient, req: Omit<DistilStart, "jobId"> & { jobId?: string }, o: { timeoutMs: number; progress: boolean }): Promise<MindJob> {
  const jobId = req.jobId ?? `distil-${randomBytes(6).toString("hex")}`;
  const start: DistilStart = { ...req, jobId };
  let bar: ProgressBar | undefined;
  let phase = "";
  const show = o.progress || process.stderr.isTTY === true;
  const following = follow(client, jobId, (jobs) => jobs.find((j) => j.jobId === jobId && !UNFINISHED.has(j.state)), o.timeoutMs, (j) => {
    const p = j.progress;
    if (!p || !show) return;
    if (p.phase !== phase) {
      bar?.done();
      phase = p.phase;
      bar = p.phase === "train" ? new ProgressBar({ totalSteps: p.total, force: o.progress }) : undefined;
      if (p.phase !== "train") process.stderr.write(`distil ${jobId}: ${p.phase}\n`);
    }
    bar?.update(p.step, p.loss ?? 0, 0);
  });
  // Subscribed first (in follow), so the job's first snapshot cannot be missed.
  await new Promise((r) => setTimeout(r, 50));
  await client.publishAsync(channels.mindDistil.topic(), encode(start), { qos: 1 });
  try {
    return (await following) as MindJob;
  } finally {
    bar?.done();
  }
}

export async function listJobs(client: MqttClient, timeoutMs: number): Promise<MindJob[]> {
  return (await follow(client, undefined, (jobs) => jobs, timeoutMs)) as MindJob[];
}

export async function cancelJob(client: MqttClient, jobId: string, timeoutMs: number): Promise<MindJob> {
  await client.publishAsync(channels.mindDistil.topic(), encode({ jobId, cancel: true }), { qos: 1 });
  return (await follow(client, jobId, (jobs) => jobs.find((j) => j.jobId === jobId && !UNFINISHED.has(j.state)), timeoutMs)) as MindJob;
}

/** One line per job for `--list`. */
export function renderJobs(jobs: readonly MindJob[]): string {
  if (jobs.length === 0) return "no distillation jobs";
  return jobs
    .map((j) => {
      const gate = j.gate ? ` gate ${j.gate.passed ? "passed" : "failed"} (union ${(j.gate.union.child * 100).toFixed(1)}% vs ${(j.gate.union.bestParent * 100).toFixed(1)}%)` : "";
      const model = j.model ? ` model ${j.model.lineage} v${j.model.version} ${j.model.sha256.slice(0, 12)}` : "";
      const child = j.child ? ` child ${j.child.agentId}@${j.child.nodeId} ${j.child.status}` : "";
      const p = j.progress ? ` ${j.progress.phase} ${j.progress.step}/${j.progress.total}` : "";
      const err = j.error ? ` ${j.error.code}: ${j.error.message}` : "";
      const where = j.trainer ? ` trained on ${j.trainer}` : "";
      return `${j.jobId} ${j.state}${p} [${j.skills.join(",")}] from ${j.parents.map((x) => x.agentId).join(", ")}${where}${gate}${model}${child}${err}`;
    })
    .join("\n");
}
