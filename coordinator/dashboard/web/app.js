// The live dashboard (docs/operations.md, "Dashboard"): reads /config.json (fleet id, the broker's
// WebSocket port, a read-only observer credential), connects with mqtt.js's browser build and keeps
// the retained fleet views and the dashboard feed in one state object; panels re-render on the next
// animation frame after a change. A subscription the broker refuses leaves its panel empty.
import mqtt from "/vendor/mqtt.esm.js";
import { agentsView, architectView, auctionsView, lineageView, modelsView, nodesView, plotView, tasksView } from "/views.js";

const ROOT = "colony/v1";
/** Retained views: topic -> state key. */
const VIEWS = {
  [`${ROOT}/coordinator/status`]: "status",
  [`${ROOT}/coordinator/stats`]: "stats",
  [`${ROOT}/dashboard/fleet`]: "fleet",
  [`${ROOT}/evolution/lineage`]: "lineage",
  [`${ROOT}/architect/decisions`]: "architect",
  [`${ROOT}/models/catalog`]: "catalog",
  [`${ROOT}/models/rollouts`]: "rollouts",
  [`${ROOT}/mind/jobs`]: "mindJobs",
};
const EVENTS = `${ROOT}/dashboard/events`;
const RECENT = `${ROOT}/dashboard/recent`;
/** Tasks kept in the page (the oldest leave first). */
const MAX_TASKS = 500;

const state = { config: undefined, tasks: new Map(), seen: new Set(), recentSeen: false };
/** For tests and the curious: when the first render happened and when each event reached the page. */
const probe = (window.__colonyDashboard = { firstRenderAt: undefined, shown: {}, errors: 0 });

const PANELS = {
  nodes: () => nodesView(state),
  agents: () => agentsView(state),
  auctions: () => auctionsView(state, Date.now()),
  plot: () => plotView(state),
  tasks: () => tasksView(state),
  lineage: () => lineageView(state),
  models: () => modelsView(state),
  architect: () => architectView(state, Date.now()),
};
const dirty = new Set();
let frame = 0;
const pendingShown = [];

function invalidate(...panels) {
  for (const p of panels) dirty.add(p);
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  for (const id of dirty) {
    const body = document.querySelector(`#${id} .body`);
    try {
      body.replaceChildren(PANELS[id]());
    } catch (err) {
      probe.errors++;
      body.replaceChildren(Object.assign(document.createElement("p"), { className: "empty", textContent: `cannot show this panel: ${err.message}` }));
    }
  }
  dirty.clear();
  const now = Date.now();
  for (const key of pendingShown.splice(0)) probe.shown[key] ??= now;
  if (probe.firstRenderAt === undefined) probe.firstRenderAt = performance.now();
}

function onEvent(e) {
  const key = `${e.kind}:${e.taskId}:${e.attempt ?? ""}:${e.at}`;
  if (state.seen.has(key)) return;
  state.seen.add(key);
  let t = state.tasks.get(e.taskId);
  if (!t) {
    t = { taskId: e.taskId, skill: e.skill, awards: [], failures: [] };
    state.tasks.set(e.taskId, t);
    if (state.tasks.size > MAX_TASKS) state.tasks.delete(state.tasks.keys().next().value);
  }
  if (e.kind === "opened") t.prompt = e.prompt;
  else if (e.kind === "awarded") t.awards.push(e);
  else if (e.kind === "failed") t.failures.push(e);
  else if (e.kind === "finished") t.finished = e;
  else if (e.kind === "feedback" && t.finished) t.finished = { ...t.finished, success: e.success };
  pendingShown.push(`${e.kind}:${e.taskId}`);
  invalidate("tasks", "auctions", "plot");
}

function onMessage(topic, payload) {
  const text = payload.toString();
  // An empty retained payload clears the view (MQTT 3.1.1 §3.3.1.3).
  const msg = text === "" ? undefined : JSON.parse(text);
  if (topic === EVENTS) {
    if (msg) onEvent(msg);
  } else if (topic === RECENT) {
    state.recentSeen = true;
    for (const e of msg?.events ?? []) onEvent(e);
    invalidate("tasks");
  } else if (VIEWS[topic]) {
    state[VIEWS[topic]] = msg;
    if (topic.endsWith("/coordinator/status")) showCoordinator(msg);
    invalidate(...Object.keys(PANELS).filter((p) => p !== "tasks" && p !== "plot"));
  }
}

function showCoordinator(msg) {
  const el = document.getElementById("coordinator");
  el.textContent = `coordinator: ${msg?.state ?? "unknown"}`;
  el.className = `pill ${msg?.state === "online" ? "ok" : "bad"}`;
}

function showConnection(text, ok) {
  const el = document.getElementById("conn");
  el.textContent = text;
  el.className = `pill ${ok ? "ok" : "bad"}`;
}

async function main() {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`config.json: ${res.status} ${await res.text()}`);
  const config = (state.config = await res.json());
  document.getElementById("fleet").textContent = config.fleetId;
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // The broker takes a client id only if it starts with the username (docs/security.md).
  const suffix = Math.random().toString(36).slice(2, 10);
  const client = mqtt.connect(`${scheme}://${host}:${config.wsPort}/mqtt`, {
    protocolVersion: 4, reconnectPeriod: 2000, connectTimeout: 10_000,
    clientId: config.username ? `${config.username}:web-${suffix}` : `dashboard-${suffix}`,
    ...(config.username ? { username: config.username, password: config.password } : {}),
  });
  client.on("connect", () => {
    showConnection("live", true);
    // One by one: a filter the broker refuses (an older ACL) must not cost the others.
    for (const topic of [...Object.keys(VIEWS), RECENT, EVENTS]) {
      client.subscribe(topic, { qos: 0 }, (err, granted) => {
        if (err || granted?.[0]?.qos === 128) console.warn(`not allowed to read ${topic}`);
      });
    }
  });
  client.on("reconnect", () => showConnection("reconnecting…", false));
  client.on("close", () => showConnection("disconnected", false));
  client.on("error", (err) => showConnection(`error: ${err.message}`, false));
  client.on("message", (topic, payload) => {
    try {
      onMessage(topic, payload);
    } catch (err) {
      console.warn(`bad message on ${topic}: ${err.message}`);
    }
  });
  invalidate(...Object.keys(PANELS));
}

main().catch((err) => {
  showConnection(`cannot start: ${err.message}`, false);
  console.error(err);
});
