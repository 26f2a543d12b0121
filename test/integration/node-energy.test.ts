// The measured cost of a task: a node with a RAPL meter (a fake powercap tree whose counter runs at
// 2 W idle and 12 W while the node works) reports the joules its task added above idle, with
// energySource "rapl"; without a meter the same task reports the power model's figure, "model".
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { powercapMeter } from "../../node/energy-meter.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, SMALL, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";

let h: Harness;
let dir: string;
let model: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-energy-"));
  model = await writeRandomModel(dir, "energy", SMALL);
  h = await startHarness();
});
after(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a node with a RAPL counter reports the joules its task added above idle", async () => {
  const zone = path.join(dir, "powercap", "intel-rapl:0");
  mkdirSync(zone, { recursive: true });
  writeFileSync(path.join(zone, "max_energy_range_uj"), String(2 ** 40));
  let uj = 0;
  writeFileSync(path.join(zone, "energy_uj"), "0");
  const node = await startNode({ nodeId: "n-rapl", url: h.url, cred: await h.nodeCred("n-rapl"), dataDir: path.join(dir, "n-rapl"), genomes: [genome("rapl-a", model, ["energy"])], energyMeter: powercapMeter(path.join(dir, "powercap")) });
  let last = performance.now();
  const counter = setInterval(() => {
    const t = performance.now();
    uj += (node.daemon.activeJobs > 0 ? 12 : 2) * (t - last) * 1000;
    last = t;
    writeFileSync(path.join(zone, "energy_uj"), String(Math.round(uj)));
  }, 2);
  try {
    // An idle second first, so the node knows its idle draw.
    await new Promise((r) => setTimeout(r, 1300));
    const client = await h.submitter();
    const r = await submitAndWait(client, { id: newTaskId(), prompt: "abc", skill: "energy", maxTokens: 300, deadlineMs: 60_000 }, { timeoutMs: 65_000 });
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    assert.equal(r.cost?.energySource, "rapl");
    const e = (await node.daemon.hot.recent("rapl-a"))[0]!;
    assert.equal(e.energySource, "rapl");
    // 10 W above idle for the task's compute time (the counter ticks every 2 ms and the busy flag
    // spans the queue too, so allow a wide band).
    const expected = 10 * ((r.timings.generateMs ?? 0) / 1000);
    assert.ok(r.cost!.energyJ! > expected * 0.5 && r.cost!.energyJ! < expected * 3 + 0.5, `${r.cost!.energyJ} J vs ~${expected.toFixed(3)} J`);
  } finally {
    clearInterval(counter);
    await node.close();
  }
});

test("without a meter the task's energy comes from the device profile's power model", async () => {
  const node = await startNode({ nodeId: "n-model", url: h.url, cred: await h.nodeCred("n-model"), dataDir: path.join(dir, "n-model"), genomes: [genome("model-a", model, ["energy2"])], profile: "raspberry-pi-4", energyMeter: "model" });
  try {
    const client = await h.submitter();
    const r = await submitAndWait(client, { id: newTaskId(), prompt: "abc", skill: "energy2", maxTokens: 50, deadlineMs: 60_000 }, { timeoutMs: 65_000 });
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    assert.equal(r.cost?.energySource, "model");
    // The Pi 4 profile: idle 2.7 W, 0.9 W per thread, and the model runs with its calibrated threads.
    const threads = node.daemon.pool.get("model-a")!.threads;
    const watts = Math.min(6.4, 2.7 + threads * 0.9) - 2.7;
    const floor = watts * (((r.timings.generateMs ?? 0) + 0) / 1000);
    assert.ok(r.cost!.energyJ! >= floor * 0.99, `${r.cost!.energyJ} J >= ${floor} J (generation alone)`);
  } finally {
    await node.close();
  }
});
