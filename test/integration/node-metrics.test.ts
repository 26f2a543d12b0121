// A node's own Prometheus endpoint: the real `colony node --metrics-port 0` process (one seed agent
// on llama.cpp, one thread) against a real coordinator (embedded aedes, auth on) runs a task and
// fetches a pushed model; `GET /metrics` then shows the task, its tokens and joules, the agents by
// state and the model bytes fetched, under `colony_node_` names; anything else is 404.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { ColonyProcesses } from "../fixtures/colony-process.ts";
import { waitRegistered } from "../fixtures/scripted-node.ts";

const SEEDS = fileURLToPath(new URL("../../models/", import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-metrics-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One sample's value from the text exposition: `name{labels} value`. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

test("colony node --metrics-port: tasks, tokens, joules, agents by state and model bytes fetched", { timeout: 120_000 }, async (t) => {
  const h = await startHarness({ config: { architect: false } });
  const procs = new ColonyProcesses();
  t.after(async () => {
    procs.killAll();
    await h.close();
  });
  const c = h.coordinator;
  const credFile = path.join(dir, "node.json");
  writeFileSync(credFile, JSON.stringify({ ...(await h.nodeCred("n-metrics")), modelKey: c.signingKey!.publicKey }));
  chmodSync(credFile, 0o600);
  const agentsFile = path.join(dir, "agents.json");
  writeFileSync(agentsFile, JSON.stringify({ agents: [{ id: "adder", model: path.join(SEEDS, "seed-add.gguf"), skills: ["add"] }] }));
  const { ready } = await procs.startReady<{ metricsPort?: number }>([
    "node", "--coordinator", h.url, "--credentials", credFile, "--node-id", "n-metrics", "--agents", agentsFile, "--data-dir", path.join(dir, "node"),
    "--threads", "1", "--profile", "generic", "--no-calibrate", "--metrics-port", "0",
  ]);
  assert.equal(typeof ready.metricsPort, "number");
  const base = `http://127.0.0.1:${ready.metricsPort}`;
  await waitRegistered((id) => c.registry.isOnline(id), "n-metrics", 10_000);

  const result = await submitAndWait(await h.submitter(), { id: newTaskId(), prompt: "12+30=", skill: "add", maxTokens: 8 }, { timeoutMs: 60_000 });
  assert.equal(result.status, "ok", JSON.stringify(result));
  const count = c.models!.list().find((m) => m.manifest.name === "seed-count")!.manifest;
  assert.equal((await c.evolution.commands.send("n-metrics", { kind: "fetch", agentId: "prefetch", sha256: count.sha256 })).status, "fetched");

  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  const text = await res.text();
  assert.equal(sample(text, "colony_node_tasks_total", 'status="ok"'), 1);
  assert.equal(sample(text, "colony_node_tasks_total", 'status="error"'), 0);
  assert.ok(sample(text, "colony_node_tokens_total")! >= 1, "tokens");
  assert.ok(sample(text, "colony_node_energy_joules_total")! > 0, "joules");
  assert.ok(sample(text, "colony_node_bids_total", 'type="bid"')! >= 1, "bids");
  const agents = ["awake", "asleep", "busy", "loading"].map((s) => sample(text, "colony_node_agents", `state="${s}"`) ?? NaN);
  assert.equal(agents.reduce((a, b) => a + b, 0), 1, `agents by state: ${agents.join(", ")}`);
  assert.equal(sample(text, "colony_node_model_fetch_bytes_total"), count.bytes);
  assert.equal(sample(text, "colony_node_models_fetched_total", 'result="stored"'), 1);
  assert.match(text, /^# TYPE colony_node_tasks_total counter$/m);
  assert.match(text, /^process_cpu_seconds_total /m);
  assert.equal((await fetch(`${base}/`)).status, 404);
});
