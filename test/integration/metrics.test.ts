// The coordinator's Prometheus endpoint (coordinator/metrics/, docs/operations.md), scraped over
// HTTP after real tasks ran through the real market (embedded aedes with auth, a scripted node).
import { test } from "node:test";
import assert from "node:assert/strict";
import client from "prom-client";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { silentLogger } from "../../common/logger.ts";
import { encode, topics } from "../../common/protocol.ts";
import { submitterOf } from "../../coordinator/submitter.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { startScriptedNode, waitRegistered } from "../fixtures/scripted-node.ts";

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Exposition { types: Map<string, string>; samples: Sample[] }

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A strict parser of the Prometheus text format 0.0.4: throws on any line it does not understand. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("# HELP ")) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.match(type[1]!, METRIC_NAME);
      assert.ok(!types.has(type[1]!), `TYPE ${type[1]} twice`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? "";
    const re = /([^=,]+)="((?:[^"\\]|\\.)*)",?/gy;
    let lm: RegExpExecArray | null;
    let consumed = 0;
    while ((lm = re.exec(body))) {
      assert.match(lm[1]!, LABEL_NAME, line);
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      consumed = re.lastIndex;
    }
    assert.equal(consumed, body.length, `bad labels in ${line}`);
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === "NaN", line);
    samples.push({ name: m[1]!, labels, value });
  }
  return { types, samples };
}

function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const s = e.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === Object.keys(labels).length);
  return s?.value;
}

async function scrape(port: number): Promise<{ text: string; e: Exposition; contentType: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { text, e: parseExposition(text), contentType: res.headers.get("content-type") ?? "" };
}

async function runTasks(h: Harness, tasks: { id: string; prompt: string; skill?: string; check?: unknown }[]): Promise<void> {
  const s = await h.submitter();
  const user = submitterOf(s);
  const results = new Map<string, unknown>();
  s.on("message", (topic, payload) => {
    const id = topic.split("/")[5]!;
    if (topic.endsWith("/result")) results.set(id, JSON.parse(payload.toString()));
  });
  await s.subscribeAsync(topics.taskResult(user, "+"), { qos: 1 });
  for (const t of tasks) await s.publishAsync(topics.submit(user), encode(t), { qos: 1 });
  for (let i = 0; i < 1000 && results.size < tasks.length; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(results.size, tasks.length, `results for ${[...results.keys()].join(",")}`);
}

test("/metrics after real tasks: counters move by the right amounts, valid exposition, bounded labels", async (t) => {
  const h = await startHarness({ config: { metricsPort: 0 } });
  const node = await startScriptedNode({ url: h.url, nodeId: "metrics-n1", energyJ: 2.5, tokens: 7, ...(await h.nodeCred("metrics-n1")) });
  t.after(async () => {
    await node.stop();
    await h.close();
  });
  const port = h.coordinator.metricsPort!;
  assert.ok(port > 0);
  await waitRegistered((id) => h.coordinator.registry.isOnline(id), "metrics-n1");

  const ids = ["task-metrics-aaaa1", "task-metrics-aaaa2", "task-metrics-bbbb3", "task-metrics-cccc4"];
  await runTasks(h, [
    { id: ids[0]!, prompt: "1+1", skill: "add" },
    { id: ids[1]!, prompt: "2+2", skill: "add" },
    { id: ids[2]!, prompt: "abc", skill: "my-own-skill" },
    { id: ids[3]!, prompt: "xyz", skill: "reverse", check: { type: "exact", value: "not what it says" } },
  ]);

  // Something to drop and something to refuse.
  const sup = await h.superClient();
  await sup.publishAsync(topics.nodeBid("metrics-n1"), "{not json", { qos: 1 });
  await assert.rejects(connectMqtt({ url: h.url, username: "submitter.tester", password: "wrong-password-wrong-password-wrong-passwo", logger: silentLogger, connectTimeoutMs: 2000 }));
  await new Promise((r) => setTimeout(r, 100));

  const { text, e, contentType } = await scrape(port);
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);

  assert.equal(value(e, "colony_tasks_accepted_total", { skill: "add" }), 2);
  assert.equal(value(e, "colony_tasks_accepted_total", { skill: "other" }), 1);
  assert.equal(value(e, "colony_tasks_accepted_total", { skill: "reverse" }), 1);
  assert.equal(value(e, "colony_tasks_total", { outcome: "ok", skill: "add" }), 2);
  assert.equal(value(e, "colony_tasks_total", { outcome: "ok", skill: "other" }), 1);
  assert.equal(value(e, "colony_tasks_total", { outcome: "check_failed", skill: "reverse" }), 1);
  assert.equal(value(e, "colony_auctions_total"), 4);
  assert.equal(value(e, "colony_auctions_awarded_total"), 4);
  assert.equal(value(e, "colony_bids_total", { type: "bid" }), 4);
  assert.equal(value(e, "colony_bids_total", { type: "decline" }), 0);
  assert.equal(value(e, "colony_reauctions_total"), 0);
  assert.equal(value(e, "colony_penalties_total"), 0);
  // Every delivered attempt's joules and tokens, the failed check's included.
  assert.equal(value(e, "colony_energy_joules_total", { skill: "add" }), 5);
  assert.equal(value(e, "colony_energy_joules_total", { skill: "reverse" }), 2.5);
  assert.equal(value(e, "colony_tokens_total", { skill: "add" }), 14);
  assert.equal(value(e, "colony_nodes", { state: "online" }), 1);
  assert.equal(value(e, "colony_agents", { state: "awake" }), 1);
  assert.equal(value(e, "colony_auctions_open"), 0);
  assert.equal(value(e, "colony_models_pushed_total", { result: "stored" }), 0);
  // No model rolled out here: both outcomes exported at 0 (the rollout table's counts: test/unit/model-rollouts.test.ts).
  for (const outcome of ["done", "failed"]) assert.equal(value(e, "colony_model_rollouts_total", { outcome }), 0, outcome);
  for (const state of ["passed", "failed", "error", "cancelled"]) assert.equal(value(e, "colony_distil_jobs_total", { state }), 0, state);
  for (const outcome of ["placed", "fallback"]) assert.equal(value(e, "colony_distil_trainer_jobs_total", { outcome }), 0, outcome);
  assert.equal(value(e, "colony_messages_dropped_total", { reason: "bid.PAYLOAD_NOT_JSON" }), 1);
  assert.ok(value(e, "colony_mqtt_refusals_total", { action: "connect" })! >= 1);

  // Histograms: every bucket up to +Inf, cumulative, with _sum and _count.
  for (const [name, labels, count] of [["colony_award_latency_seconds", {}, 4], ["colony_task_duration_seconds", { status: "ok" }, 3], ["colony_task_duration_seconds", { status: "error" }, 1]] as const) {
    assert.equal(e.types.get(name), "histogram");
    const buckets = e.samples.filter((s) => s.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    assert.ok(buckets.length >= 10, `${name} buckets`);
    assert.equal(buckets.at(-1)!.labels.le, "+Inf");
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${name} cumulative`);
    assert.equal(buckets.at(-1)!.value, count);
    assert.equal(value(e, `${name}_count`, labels), count);
    assert.ok(value(e, `${name}_sum`, labels)! > 0);
  }

  // Conventions: colony_ prefix, counters end in _total, no task id anywhere in a label.
  for (const [name, type] of e.types) {
    if (!name.startsWith("colony_")) assert.match(name, /^(process|nodejs)_/, `${name}: only colony_ and the process collector`);
    if (type === "counter") assert.match(name, /_total$/, name);
  }
  for (const s of e.samples) for (const v of Object.values(s.labels)) for (const id of ids) assert.ok(!v.includes(id), `${s.name} carries task id ${id}`);
  assert.ok(!text.includes("task-metrics-"), "no task id anywhere in the exposition");
  assert.ok(!text.includes("1+1"), "no prompt anywhere in the exposition");

  // Only /metrics.
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
});

test("two coordinators in one process keep their own registries; the global one stays empty; close frees the port", async (t) => {
  const a = await startHarness({ config: { metricsPort: 0 } });
  const b = await startHarness({ config: { metricsPort: 0 } });
  const node = await startScriptedNode({ url: a.url, nodeId: "metrics-two", ...(await a.nodeCred("metrics-two")) });
  await waitRegistered((id) => a.coordinator.registry.isOnline(id), "metrics-two");
  t.after(async () => {
    await node.stop();
    await a.close();
    await b.close();
  });
  await runTasks(a, [{ id: "task-two-1", prompt: "hello", skill: "add" }]);
  assert.notEqual(a.coordinator.metrics!.registry, b.coordinator.metrics!.registry);
  const ea = (await scrape(a.coordinator.metricsPort!)).e;
  const eb = (await scrape(b.coordinator.metricsPort!)).e;
  assert.equal(value(ea, "colony_tasks_accepted_total", { skill: "add" }), 1);
  assert.equal(value(eb, "colony_tasks_accepted_total", { skill: "add" }), 0);
  assert.equal(value(eb, "colony_nodes", { state: "online" }), 0);
  assert.equal(client.register.getSingleMetric("colony_tasks_total"), undefined, "nothing on prom-client's global registry");

  const port = b.coordinator.metricsPort!;
  await b.coordinator.close();
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
});
