// The live dashboard in a real browser (Debian's chromium driven by playwright-core): a one-machine
// fleet (the coordinator with auth and the dashboard on port 0, a real node running two seed models
// on llama.cpp, and a scripted "ghost" node that wins the first auction and never acks, so the task
// is retried), the page connects with the observer credential from /config.json, shows the node
// and its agents, a submitted task with its winner and result, an agent falling asleep, and logs no
// console error, a model rollout's bar. Reports (does not assert) the page's transferred size, its first render and the
// delay between an event's publication and its showing on the page; saves a screenshot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { silentLogger } from "../../common/logger.ts";
import { AnnounceSchema, decode, encode, topics, type Bid, type Heartbeat, type NodeStatus } from "../../common/protocol.ts";
import { DashboardEventSchema, type DashboardEvent } from "../../common/protocol/dashboard.ts";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { Rng } from "../../common/random.ts";
import { getSkill } from "../../skills/index.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { genome, startNode } from "../fixtures/node-helpers.ts";
import { waitRegistered } from "../fixtures/scripted-node.ts";
import { needs, onPath } from "../fixtures/system-tools.ts";

const SEEDS = fileURLToPath(new URL("../../models/", import.meta.url));
const NODE = "dash-n1";
const GHOST = "dash-ghost";

/** A node (real MQTT client, node credential) that bids 1 ms and 0.01 J on every add task and never acks an award. */
async function startGhost(url: string, cred: { username?: string; password?: string }): Promise<{ close(): Promise<void> }> {
  const client = await connectMqtt({ url, ...cred, logger: silentLogger, clientId: `${cred.username}:ghost` });
  client.on("message", (topic, payload) => {
    const d = decode(AnnounceSchema, payload);
    if (topic !== topics.skillAnnounce("add") || !d.ok) return;
    const bid: Bid = { type: "bid", auctionId: d.value.auctionId, taskId: d.value.taskId, nodeId: GHOST, agentId: "ghost", estimate: { latencyMs: 1, energyJ: 0.01, accuracy: 0.99 } };
    client.publish(topics.nodeBid(GHOST), encode(bid), { qos: 0 });
  });
  await client.subscribeAsync([topics.skillAnnounce("add"), `colony/v1/nodes/${GHOST}/#`], { qos: 1 });
  const online: NodeStatus = { state: "online", nodeId: GHOST, protocol: 1, deviceClass: "ghost", slots: 1, agents: [{ agentId: "ghost", skills: ["add"], model: "none", state: "awake" }], models: [], at: Date.now() };
  await client.publishAsync(topics.nodeStatus(GHOST), encode(online), { qos: 1, retain: true });
  const beat = () => client.publish(topics.nodeHeartbeat(GHOST), encode({ nodeId: GHOST, at: Date.now(), busy: 0, queued: 0, agents: [{ agentId: "ghost", state: "awake" }], device: { batteryPercent: 64, charging: true, temperatureC: 41.5 } } satisfies Heartbeat), { qos: 0 });
  beat();
  const timer = setInterval(beat, 300);
  return {
    close: async () => {
      clearInterval(timer);
      // QoS 0 and a forced end: nothing waits on a broker that may be gone.
      client.publish(topics.nodeStatus(GHOST), encode({ state: "offline", nodeId: GHOST } satisfies NodeStatus), { qos: 0, retain: true });
      await client.endAsync(true);
    },
  };
}

test("the dashboard in chromium: nodes, agents, a task with its winner and result, an agent asleep, no console error", { skip: needs("chromium"), timeout: 120_000 }, async (t) => {
  const { chromium } = await import("playwright-core");
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-dashboard-"));
  // No wsPort: the dashboard turns the broker's WebSocket on by itself.
  const h = await startHarness({ config: { dashboardPort: 0, statsIntervalMs: 200, architect: false } });
  // Closed in reverse order of opening (the browser and the nodes before the broker).
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true }), () => h.close()];
  t.after(async () => {
    for (const close of cleanups.reverse()) await close();
  });
  const c = h.coordinator;
  assert.equal(typeof c.wsPort, "number", "the dashboard turned the WebSocket on");
  const base = `http://127.0.0.1:${c.dashboardPort}`;

  // /config.json hands out an observer credential; nothing but the page's files is served.
  const cfg = (await (await fetch(`${base}/config.json`)).json()) as { username: string; wsPort: number; showPrompts: boolean };
  assert.equal(cfg.username, "observer.dashboard");
  assert.equal(cfg.wsPort, c.wsPort);
  assert.equal(cfg.showPrompts, false);
  assert.equal((await fetch(`${base}/../package.json`)).status, 404);
  assert.equal((await fetch(`${base}/config.json`, { method: "POST" })).status, 405);

  const node = await startNode({
    nodeId: NODE, url: h.url, cred: await h.nodeCred(NODE), dataDir: path.join(dir, "node"), sleepAfterMs: 1500, calibrate: false, modelKey: c.signingKey!.publicKey,
    genomes: [genome("adder", path.join(SEEDS, "seed-add.gguf"), ["add"]), genome("reverser", path.join(SEEDS, "seed-reverse.gguf"), ["reverse"])],
  });
  cleanups.push(() => node.close());
  await waitRegistered((id) => c.registry.isOnline(id), NODE, 10_000);
  // A second node whose agent bids too well to lose and never acknowledges its award: the first
  // attempt ends ACK_TIMEOUT and the market retries on the real node (the page shows the retry and why).
  const ghost = await startGhost(h.url, await h.nodeCred(GHOST));
  cleanups.push(() => ghost.close());
  await waitRegistered((id) => c.registry.isOnline(id), GHOST, 5000);

  // The coordinator's own view of the feed, to time each event from its publication.
  const sup = await h.superClient();
  const published = new Map<string, DashboardEvent>();
  sup.on("message", (topic, payload) => {
    if (topic !== topics.dashboardEvents) return;
    const d = decode(DashboardEventSchema, payload);
    // The first of each kind per task (the page times the first too).
    if (d.ok && !published.has(`${d.value.kind}:${d.value.taskId}`)) published.set(`${d.value.kind}:${d.value.taskId}`, d.value);
  });
  await sup.subscribeAsync(topics.dashboardEvents, { qos: 0 });

  const browser = await chromium.launch({ executablePath: onPath("chromium")!, args: ["--no-sandbox", "--disable-gpu"] });
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const transferred: { url: string; bytes: number }[] = [];
  page.on("requestfinished", async (r) => {
    const s = await r.sizes().catch(() => undefined);
    if (s && r.url().startsWith(base)) transferred.push({ url: r.url().replace(base, ""), bytes: s.responseBodySize + s.responseHeadersSize });
  });

  const t0 = Date.now();
  await page.goto(`${base}/`);
  await page.locator(`#nodes tr[data-node="${NODE}"] td.ok`).waitFor({ timeout: 15_000 });
  // The ghost's device readings: battery with charging, temperature.
  await page.locator(`#nodes tr[data-node="${GHOST}"]`).getByText("64 % ⚡ charging").waitFor({ timeout: 5000 });
  assert.match(await page.locator(`#nodes tr[data-node="${GHOST}"]`).innerText(), /41\.5 °C/);
  const nodeShownMs = Date.now() - t0;
  const firstRenderMs = await page.evaluate(() => (window as unknown as { __colonyDashboard: { firstRenderAt: number } }).__colonyDashboard.firstRenderAt);
  for (const agent of ["adder", "reverser"]) await page.locator(`#agents tr[data-agent="${agent}"]`).waitFor({ timeout: 10_000 });
  assert.match(await page.locator("#coordinator").innerText(), /online/);

  // The adder's state as the page shows it, each change with the time it appeared.
  await page.evaluate(() => {
    const seen: { state: string | null; at: number }[] = [];
    (window as unknown as { __adderStates: typeof seen }).__adderStates = seen;
    setInterval(() => {
      const state = document.querySelector('#agents tr[data-agent="adder"]')?.getAttribute("data-state") ?? null;
      if (seen.at(-1)?.state !== state) seen.push({ state, at: Date.now() });
    }, 20);
  });

  // A task: its winner and result show up in the task stream and the auctions panel.
  const task = getSkill("add").generate(new Rng(7));
  const id = newTaskId();
  const sub = await h.submitter();
  const result = await submitAndWait(sub, { id, prompt: task.prompt, skill: "add", maxTokens: 16 }, { timeoutMs: 30_000 });
  assert.equal(result.status, "ok", JSON.stringify(result));
  const row = page.locator(`#tasks tr[data-task="${id}"][data-status="ok"]`);
  await row.waitFor({ timeout: 10_000 });
  assert.match(await row.locator("td.winner").innerText(), new RegExp(`adder@${NODE}`));
  assert.match(await row.innerText(), /#1 ack-timeout \(ACK_TIMEOUT\)/, "the retry and why");
  // The first auction: both bids with their scores and estimates, the ghost's first; the retry's reason.
  const first = page.locator(`#auctions tr[data-award="${id}#1"]`);
  await first.waitFor({ timeout: 5000 });
  assert.deepEqual(await first.locator("[data-bid]").evaluateAll((els) => els.map((e) => e.getAttribute("data-bid"))), [`ghost@${GHOST}`, `adder@${NODE}`]);
  assert.match(await first.innerText(), /ack-timeout: ACK_TIMEOUT/);
  await page.locator(`#auctions tr[data-award="${id}#2"] [data-bid="adder@${NODE}"]`).waitFor({ timeout: 5000 });
  const shown = await page.evaluate(() => (window as unknown as { __colonyDashboard: { shown: Record<string, number> } }).__colonyDashboard.shown);
  const latency = (kind: string) => {
    const e = published.get(`${kind}:${id}`);
    return e && shown[`${kind}:${id}`] ? shown[`${kind}:${id}`]! - e.at : undefined;
  };
  // The plot has a point; the prompt never reaches the page (dashboardShowPrompts is off).
  await page.locator("#plot [data-plot]").waitFor({ timeout: 5000 });
  assert.equal((await page.content()).includes(task.prompt), false, "the prompt is not on the page");

  // The agent that ran the task woke for it and falls asleep after sleepAfterMs idle: the page shows both.
  await page.waitForFunction(() => {
    const seen = (window as unknown as { __adderStates: { state: string | null }[] }).__adderStates;
    const woke = seen.findIndex((s) => s.state === "awake" || s.state === "busy" || s.state === "loading");
    return woke >= 0 && seen.slice(woke).some((s) => s.state === "asleep");
  }, undefined, { timeout: 15_000 });
  const states = await page.evaluate(() => (window as unknown as { __adderStates: { state: string | null; at: number }[] }).__adderStates);
  const finishedAt = published.get(`finished:${id}`)?.at ?? 0;
  const asleepAfter = states.find((s, i) => s.state === "asleep" && states.slice(0, i).some((x) => x.state !== "asleep" && x.state !== null));
  const sleepShownMs = asleepAfter ? asleepAfter.at - finishedAt : undefined;
  t.diagnostic(`adder on the page: ${states.map((s) => s.state).join(" -> ")}`);

  // A model rollout to the real node (a seed model of the store it does not hold as such): its row in
  // the models panel, from the retained rollout table, ends done with a full bar.
  const count = c.models!.list().find((m) => m.manifest.name === "seed-count")!.manifest.sha256;
  assert.equal((await c.evolution.commands.send(NODE, { kind: "fetch", agentId: "prefetch", sha256: count })).status, "fetched");
  const rollout = page.locator(`#models tr[data-rollout="${count.slice(0, 12)}@${NODE}"][data-state="done"]`);
  await rollout.waitFor({ timeout: 5000 });
  assert.equal(await rollout.locator("progress").getAttribute("value"), "100");
  assert.match(await rollout.innerText(), /seed-count v1/);

  const shot = path.join(mkdtempSync(path.join(os.tmpdir(), "colony-dashboard-shot-")), "dashboard.png");
  await page.screenshot({ path: shot, fullPage: true });
  const bytes = transferred.reduce((s, r) => s + r.bytes, 0);
  t.diagnostic(`screenshot: ${shot}`);
  t.diagnostic(`page transferred: ${(bytes / 1024).toFixed(1)} KiB in ${transferred.length} requests (${transferred.map((r) => `${r.url} ${(r.bytes / 1024).toFixed(1)}`).join(", ")})`);
  t.diagnostic(`first render ${firstRenderMs?.toFixed(0)} ms after navigation start; node shown ${nodeShownMs} ms after goto`);
  t.diagnostic(`event -> page: opened ${latency("opened")} ms, awarded ${latency("awarded")} ms, finished ${latency("finished")} ms; asleep shown ${sleepShownMs} ms after the task finished`);
  assert.deepEqual(problems, []);
});
