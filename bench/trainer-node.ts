/**
 * `npm run bench -- trainer-node [--rounds 2] [--steps 200] [--prompts 150]`: the same distillation
 * job trained on the coordinator's host and on a trainer node (docs/mind.md, "Trainer nodes").
 *
 * What is compared, like for like: one job (parent seed-add, skill add, `--steps` steps of batch 16,
 * verified sampling of `--prompts` prompts with 1 candidate, a 50-instance gate, one thread
 * everywhere), its data coming only from the seeded sampler, so both runs train on the same dataset.
 * - here: a coordinator (embedded aedes, auth and ACLs on) with `mind.trainOn` "coordinator": one
 *   worker process curates, samples, trains, exports and gates;
 * - node: the same coordinator setup with `mind.trainOn` "nodes" and a node daemon (a real NodeDaemon
 *   with `trainer`, its speed measured for real) on loopback MQTT: the node fetches the parent's
 *   signed model and the experiences, trains in its worker, uploads the child; the coordinator
 *   checks it and gates it in its own worker.
 * Both on this one machine, so the node's compute is the host's: the ratio node / here is what
 * placing a job on a node costs (transfers, a second worker start, the upload check), not what a
 * faster node would gain. Also reported: the node's quote against the time it took (how good the
 * price is), and the measured training FLOP/s. Rounds alternate here / node. Last stdout line: JSON.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { decode, MindJobsSnapshotSchema, topics, type MindJob } from "../common/protocol.ts";
import { startHarness } from "../test/fixtures/coordinator-harness.ts";
import { ended, pinnedSeed } from "../test/fixtures/mind-fixtures.ts";
import { genome, startNode } from "../test/fixtures/node-helpers.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "2" }, steps: { type: "string", default: "200" }, prompts: { type: "string", default: "150" } } });
const ROUNDS = Number(values.rounds);
const STEPS = Number(values.steps);
const PROMPTS = Number(values.prompts);
const pinned = pinnedSeed("seed-add");

interface Run {
  where: "here" | "node";
  seconds: number;
  quoteSeconds?: number;
  trainSeconds?: number;
  gatePassed: boolean;
}

async function once(where: "here" | "node", round: number): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-trainer-node-"));
  const h = await startHarness({
    dataDir: path.join(dir, "coordinator"),
    config: { architect: false, mind: { enabled: true, threads: 1, steps: STEPS, batch: 16, maxExperiencesPerSkill: 200, minExperiencesPerSkill: 0, gatePerSkill: 50, margin: 0.01, sampling: false, trainOn: where === "here" ? "coordinator" : "nodes", quoteWindowMs: 3000, trainerOfflineMs: 120_000, keepJobs: 50 } },
  });
  const key = h.coordinator.signingKey!.publicKey;
  const nodes = [await startNode({ nodeId: "serve", url: h.url, cred: await h.nodeCred("serve"), dataDir: path.join(dir, "serve"), modelKey: key, genomes: [genome("seed-add", pinned, ["add"])], calibrate: false })];
  if (where === "node") nodes.push(await startNode({ nodeId: "trainer", url: h.url, cred: await h.nodeCred("trainer"), dataDir: path.join(dir, "trainer"), modelKey: key, genomes: [genome("seed-count", pinned, ["count"])], calibrate: false, trainer: { threads: 1 } }));
  const sup = await h.superClient();
  const seen = new Map<string, MindJob>();
  const phaseAt = new Map<string, number>();
  sup.on("message", (_t, payload) => {
    const d = decode(MindJobsSnapshotSchema, payload);
    if (!d.ok) return;
    for (const j of d.value.jobs) {
      seen.set(j.jobId, j);
      if (j.progress && !phaseAt.has(j.progress.phase)) phaseAt.set(j.progress.phase, Date.now());
    }
  });
  await sup.subscribeAsync(topics.mindJobs, { qos: 1 });
  try {
    if (where === "node") {
      // The trainer advertises its speed once measured; a job asked before that would stay here.
      const end = Date.now() + 60_000;
      while (!h.coordinator.registry.list().some((n) => n.status?.trainer)) {
        if (Date.now() > end) throw new Error("the trainer node never advertised its speed");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const jobId = `bench-${where}-${round}`;
    const t0 = Date.now();
    await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId, skills: ["add"], parents: [{ agentId: "seed-add" }], sampling: { candidates: 1, temperature: 0.5, prompts: PROMPTS }, spawn: false }), { qos: 1 });
    for (;;) {
      const j = ended(seen, jobId);
      if (j) {
        if (j.state !== "passed" && j.state !== "failed") throw new Error(`job ${jobId} ended ${j.state}: ${JSON.stringify(j.error)}`);
        const quote = /fastest quote of \S+ ([\d.]+) s/.exec(j.reason)?.[1];
        const trainStart = phaseAt.get("train");
        const trainEnd = phaseAt.get("export") ?? phaseAt.get("gate");
        return {
          where, seconds: (Date.now() - t0) / 1000, gatePassed: j.state === "passed",
          ...(quote ? { quoteSeconds: Number(quote) } : {}),
          ...(trainStart && trainEnd ? { trainSeconds: (trainEnd - trainStart) / 1000 } : {}),
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const n of nodes) await n.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs: Run[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const where of ["here", "node"] as const) {
    const run = await once(where, r);
    runs.push(run);
    console.log(`round ${r + 1} ${where.padEnd(4)}: ${run.seconds.toFixed(1)} s job${run.trainSeconds !== undefined ? `, ${run.trainSeconds.toFixed(1)} s training` : ""}${run.quoteSeconds !== undefined ? `, quoted ${run.quoteSeconds.toFixed(1)} s` : ""}, gate ${run.gatePassed ? "passed" : "failed"}`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const here = median(runs.filter((r) => r.where === "here").map((r) => r.seconds));
const node = median(runs.filter((r) => r.where === "node").map((r) => r.seconds));
const quoted = runs.filter((r) => r.quoteSeconds !== undefined);
const summary = {
  bench: "trainer-node", rounds: ROUNDS, steps: STEPS, prompts: PROMPTS, load: os.loadavg()[0]!.toFixed(1),
  hereSeconds: here, nodeSeconds: node, ratio: Number((node / here).toFixed(2)),
  quoteOverJob: quoted.length ? Number(median(quoted.map((r) => r.quoteSeconds! / r.seconds)).toFixed(2)) : null,
  quoteOverTraining: quoted.some((r) => r.trainSeconds) ? Number(median(quoted.filter((r) => r.trainSeconds).map((r) => r.quoteSeconds! / r.trainSeconds!)).toFixed(2)) : null,
};
console.log(`median job: here ${here.toFixed(1)} s, on a trainer node ${node.toFixed(1)} s (x${summary.ratio}); the node's quote / its job time: ${summary.quoteOverJob}, / its training phase: ${summary.quoteOverTraining}`);
console.log(JSON.stringify(summary));
