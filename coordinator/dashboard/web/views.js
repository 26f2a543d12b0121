// The dashboard's panels: pure functions from the state app.js keeps to DOM nodes. Text from the
// fleet (ids, genomes' names, outputs) only ever goes through textContent, never innerHTML.

/** h("td", {class: "ok"}, "text", child) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const empty = (text) => h("p", { class: "empty" }, text);
const num = (v, digits = 0) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–");
const ago = (at, now) => (typeof at === "number" ? `${Math.max(0, Math.round((now - at) / 1000))} s ago` : "–");

function table(head, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))), h("tbody", {}, rows));
}

export function nodesView(s) {
  const nodes = s.fleet?.nodes ?? s.stats?.nodes;
  if (!nodes) return empty("no node data yet");
  if (nodes.length === 0) return empty("no node has registered");
  return table(["node", "class", "online", "load", "busy / slots", "free memory", "battery", "temperature", "tasks ok", "energy"],
    nodes.map((n) => {
      const d = n.device ?? {};
      const battery = d.batteryPercent === undefined ? "–" : `${num(d.batteryPercent)} %${d.charging ? " ⚡ charging" : ""}`;
      return h("tr", { "data-node": n.nodeId },
        h("td", {}, n.nodeId), h("td", {}, n.deviceClass ?? "–"),
        h("td", { class: n.online ? "ok" : "bad" }, n.online ? "online" : "offline"),
        h("td", {}, d.cpuLoad === undefined ? "–" : `${num(d.cpuLoad)} %`),
        h("td", {}, `${n.busy ?? "–"} / ${n.slots ?? "–"}${n.queued ? ` (+${n.queued} queued)` : ""}`),
        h("td", {}, d.freeMemMB === undefined ? "–" : `${num(d.freeMemMB)} MB`),
        h("td", {}, battery), h("td", {}, d.temperatureC === undefined ? "–" : `${num(d.temperatureC, 1)} °C`),
        h("td", {}, n.tasksDone ?? "–"), h("td", {}, n.energyJ === undefined ? "–" : `${num(n.energyJ, 1)} J`));
    }));
}

/** Agents from the fleet snapshot, with their track records (stats) and the retired ones (lineage). */
export function agentsView(s) {
  const rows = new Map();
  for (const n of s.fleet?.nodes ?? s.stats?.nodes ?? []) {
    for (const a of n.agents) rows.set(`${n.nodeId}/${a.agentId}`, { nodeId: n.nodeId, ...a, state: n.online ? a.state : "offline" });
  }
  for (const l of s.lineage?.lives ?? []) {
    const key = `${l.nodeId}/${l.agentId}`;
    if (l.state === "retired" && !rows.has(key)) rows.set(key, { nodeId: l.nodeId, agentId: l.agentId, state: "retired", skills: [], model: "", generation: l.generation });
  }
  if (rows.size === 0) return empty(s.fleet || s.stats ? "no agents" : "no agent data yet");
  const records = new Map();
  for (const r of s.stats?.agents ?? []) {
    const key = `${r.nodeId ?? "?"}/${r.agentId}`;
    const list = records.get(key) ?? [];
    list.push(r);
    records.set(key, list);
  }
  return table(["agent", "node", "state", "skills", "track record per skill", "claimed accuracy", "wins", "cost per success"],
    [...rows.values()].map((a) => {
      const rec = (records.get(`${a.nodeId}/${a.agentId}`) ?? []).map((r) => {
        const n = r.successes + r.failures;
        return `${r.skill}: ${n ? Math.round((100 * r.successes) / n) : "–"} % of ${num(n, 1)}${r.excludedUntil ? " (penalised)" : ""}`;
      });
      const claimed = Object.entries(a.claimed ?? {}).map(([k, v]) => `${k}: ${num(v * 100)} %`);
      const state = a.state === "asleep" ? "asleep" : a.state;
      const cls = state === "retired" || state === "offline" ? "mute" : state === "asleep" ? "warn" : "ok";
      return h("tr", { "data-agent": a.agentId, "data-state": state },
        h("td", {}, a.agentId, a.generation ? h("span", { class: "mute" }, ` g${a.generation}`) : ""), h("td", {}, a.nodeId),
        h("td", { class: cls }, state), h("td", { class: "wrap" }, (a.skills ?? []).join(", ") || "–"),
        h("td", { class: "wrap" }, rec.join("; ") || "–"), h("td", { class: "wrap" }, claimed.join("; ") || "–"),
        h("td", {}, a.wins ?? "–"), h("td", {}, a.successes ? `${num(a.energyJ / a.successes, 2)} J` : "–"));
    }));
}

export function auctionsView(s, now) {
  const open = s.stats?.openAuctions ?? [];
  const recent = [...s.tasks.values()].filter((t) => t.awards.length > 0 || t.failures.length > 0).slice(-8).reverse();
  if (!s.stats && recent.length === 0) return empty("no auction data yet");
  return h("div", {},
    open.length === 0 ? empty("no auction open") : table(["task", "attempt", "bids", "expected", "closes"],
      open.map((a) => h("tr", {}, h("td", {}, a.taskId), h("td", {}, a.attempt), h("td", {}, a.bids), h("td", {}, a.expected), h("td", {}, `${Math.max(0, a.closesAt - now)} ms`)))),
    recent.length === 0 ? "" : h("div", {}, h("h2", {}, "recent awards"), table(["task", "attempt", "winner", "bids (score, latency, energy, claimed, record)", "retry why"],
      recent.flatMap((t) => t.awards.map((w) => {
        const failed = t.failures.find((f) => f.attempt === w.attempt);
        const ranked = w.ranked ?? [{ nodeId: w.nodeId, agentId: w.agentId, estimate: w.estimate, score: w.score, eligible: true }];
        return h("tr", { "data-award": `${t.taskId}#${w.attempt}` }, h("td", {}, t.taskId.slice(0, 12)), h("td", {}, w.attempt), h("td", {}, `${w.agentId}@${w.nodeId}`),
          h("td", { class: "wrap" }, `${w.bids} bid${w.bids === 1 ? "" : "s"}: `, ranked.map((b, i) => h("div", { class: b.agentId === w.agentId && b.nodeId === w.nodeId ? "ok" : b.eligible ? "" : "mute", "data-bid": `${b.agentId}@${b.nodeId}` },
            `${i + 1}. ${b.agentId}@${b.nodeId} ${b.eligible ? `score ${num(b.score, 3)}` : `ineligible (${b.reason ?? "?"})`}, ${num(b.estimate.latencyMs)} ms, ${num(b.estimate.energyJ, 2)} J, ${num(b.estimate.accuracy * 100)} %`,
            b.accuracyMean === undefined ? "" : `, record ${num(b.accuracyMean * 100)} %`))),
          h("td", { class: failed ? "bad" : "" }, failed ? `${failed.outcome}: ${failed.code}` : ""));
      })))));
}

export function tasksView(s) {
  const tasks = [...s.tasks.values()].slice(-50).reverse();
  if (tasks.length === 0) return empty(s.recentSeen ? "no task yet" : "no task data yet");
  return table(["task", "skill", "status", "winner", "attempts", "retries", "latency", "energy", "tokens", ...(s.config?.showPrompts ? ["prompt", "output"] : [])],
    tasks.map((t) => {
      const f = t.finished;
      const status = f ? (f.status === "ok" ? (f.success === false ? "failed check" : "ok") : f.code ?? "error") : t.awards.length ? "running" : "bidding";
      const cls = !f ? "warn" : f.status === "ok" && f.success !== false ? "ok" : "bad";
      const winner = f?.agentId ? `${f.agentId}@${f.nodeId}` : t.awards.at(-1) ? `${t.awards.at(-1).agentId}@${t.awards.at(-1).nodeId}` : "–";
      return h("tr", { "data-task": t.taskId, "data-status": f ? f.status : "open" },
        h("td", {}, t.taskId), h("td", {}, t.skill ?? "–"), h("td", { class: cls }, status), h("td", { class: "winner" }, winner),
        h("td", {}, f?.attempts ?? t.awards.length), h("td", { class: "wrap" }, t.failures.map((x) => `#${x.attempt} ${x.outcome} (${x.code})`).join("; ")),
        h("td", {}, f ? `${num(f.totalMs)} ms` : "–"), h("td", {}, f?.energyJ === undefined ? "–" : `${num(f.energyJ, 2)} J`), h("td", {}, f?.tokens ?? "–"),
        ...(s.config?.showPrompts ? [h("td", { class: "wrap" }, t.prompt ?? ""), h("td", { class: "wrap" }, f?.output ?? "")] : []));
    }));
}

/** Three small line charts over time buckets of the finished tasks: throughput, success rate, joules per task. */
export function plotView(s) {
  const done = [...s.tasks.values()].map((t) => t.finished).filter(Boolean);
  if (done.length === 0) return empty("no finished task yet");
  const first = Math.min(...done.map((f) => f.at));
  const last = Math.max(...done.map((f) => f.at), first + 1);
  // About 30 buckets over the span, never under a second.
  const step = Math.max(1000, Math.ceil((last - first) / 30));
  const buckets = new Map();
  for (const f of done) {
    const b = Math.floor((f.at - first) / step);
    const x = buckets.get(b) ?? { n: 0, ok: 0, e: 0, en: 0 };
    x.n++;
    if (f.status === "ok" && f.success !== false) x.ok++;
    if (f.energyJ !== undefined) { x.e += f.energyJ; x.en++; }
    buckets.set(b, x);
  }
  const keys = [...buckets.keys()].sort((a, b) => a - b);
  const series = [
    { name: `tasks / ${step / 1000} s`, pts: keys.map((k) => [k, buckets.get(k).n]) },
    { name: "success rate", pts: keys.map((k) => [k, buckets.get(k).ok / buckets.get(k).n]) },
    { name: "J per task", pts: keys.filter((k) => buckets.get(k).en).map((k) => [k, buckets.get(k).e / buckets.get(k).en]) },
  ];
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => { const el = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v)); return el; };
  const W = 420, H = 60, maxX = Math.max(1, keys.at(-1));
  return h("div", { "data-plot": done.length }, series.map((ser) => {
    const box = svg("svg", { width: "100%", height: H + 16, viewBox: `0 0 ${W} ${H + 16}` });
    const maxY = Math.max(...ser.pts.map((p) => p[1]), 1e-9);
    const xy = ser.pts.map(([x, y]) => [(x / maxX) * (W - 8) + 4, H - (y / maxY) * (H - 8) + 4]);
    if (xy.length > 1) box.append(svg("polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#2563eb", "stroke-width": 1.5 }));
    for (const [x, y] of xy) box.append(svg("circle", { cx: x, cy: y, r: 2.5, fill: "#2563eb" }));
    const label = svg("text", { x: 2, y: H + 14 });
    label.textContent = `${ser.name} (max ${maxY < 10 ? maxY.toFixed(2) : Math.round(maxY)})`;
    box.append(label);
    return box;
  }));
}

export function lineageView(s) {
  const lives = s.lineage?.lives;
  if (!lives) return empty("no lineage published (the coordinator publishes it once agents register)");
  if (lives.length === 0) return empty("no agent yet");
  const byId = new Map(lives.map((l) => [l.agentId, l]));
  const children = new Map();
  const roots = [];
  for (const l of lives) {
    const p = l.parents.find((id) => byId.has(id));
    if (p) children.set(p, [...(children.get(p) ?? []), l]);
    else roots.push(l);
  }
  const item = (l, depth) => h("li", { "data-life": l.agentId },
    h("span", { class: l.state === "retired" ? "mute" : l.state === "alive" ? "ok" : "warn" }, `${l.agentId}`),
    h("span", { class: "mute" }, ` g${l.generation} on ${l.nodeId}, ${l.state}${l.death ? ` (${l.death})` : ""}`),
    depth < 32 && children.has(l.agentId) ? h("ul", {}, children.get(l.agentId).map((c) => item(c, depth + 1))) : "");
  return h("div", {}, h("ul", { class: "tree" }, roots.map((r) => item(r, 0))), s.lineage.omitted ? h("p", { class: "mute" }, `${s.lineage.omitted} older lives omitted`) : "");
}

/** A model x node rollout: a bar of bytes held over the model's size, the state, a refusal's code. */
function rolloutRow(r, names) {
  const p = r.total > 0 ? Math.min(100, Math.floor((100 * r.bytes) / r.total)) : r.state === "done" ? 100 : 0;
  const cls = r.state === "failed" ? "bad" : r.state === "done" ? "ok" : "warn";
  return h("tr", { "data-rollout": `${r.sha256.slice(0, 12)}@${r.nodeId}`, "data-state": r.state },
    h("td", {}, names.get(r.sha256) ?? r.sha256.slice(0, 12)), h("td", {}, r.nodeId),
    h("td", {}, h("progress", { max: 100, value: p }), ` ${p} %`),
    h("td", {}, r.total > 0 ? `${(r.bytes / 1e6).toFixed(1)} / ${(r.total / 1e6).toFixed(1)} MB` : "–"),
    h("td", { class: cls }, r.state), h("td", { class: "wrap" }, r.code ? `${r.code}${r.message ? `: ${r.message}` : ""}` : ""));
}

export function modelsView(s) {
  const models = s.catalog?.models;
  const jobs = s.mindJobs?.jobs;
  const rollouts = s.rollouts?.rollouts;
  if (!models && !jobs && !rollouts) return empty("no model catalog or distillation job published (an insecure fleet has no model store)");
  const names = new Map((models ?? []).map(({ manifest: m }) => [m.sha256, `${m.name} v${m.version}`]));
  return h("div", {},
    rollouts?.length ? h("div", {}, h("h2", {}, "rollouts"), table(["model", "node", "progress", "bytes", "state", "error"], [...rollouts].reverse().map((r) => rolloutRow(r, names)))) : "",
    models ? (models.length === 0 ? empty("no model in the catalog") : table(["model", "line", "version", "skills", "size", "parents"], models.map(({ manifest: m }) => h("tr", { "data-model": m.name },
      h("td", {}, m.name), h("td", {}, m.lineage), h("td", {}, m.version), h("td", { class: "wrap" }, m.skills.join(", ") || "–"),
      h("td", {}, `${(m.bytes / 1e6).toFixed(1)} MB`), h("td", { class: "wrap" }, m.parents.map((p) => p.agentId).join(", ") || "–"))))) : "",
    jobs ? (jobs.length === 0 ? empty("no distillation job") : table(["job", "state", "by", "skills", "progress", "reason"], jobs.map((j) => h("tr", {},
      h("td", {}, j.jobId), h("td", {}, j.state), h("td", {}, j.by), h("td", {}, j.skills.join(", ")),
      h("td", {}, j.progress ? JSON.stringify(j.progress).slice(0, 80) : "–"), h("td", { class: "wrap" }, j.reason))))) : "");
}

export function architectView(s, now) {
  const r = s.architect;
  if (!r) return empty("no architect decision published (architect off, or no cycle yet)");
  const row = (d, why) => h("tr", {}, h("td", {}, d.kind), h("td", {}, `${d.agentId}@${d.nodeId}`), h("td", { class: "wrap" }, d.reason), h("td", { class: "wrap mute" }, why ?? ""));
  return h("div", {}, h("p", { class: "mute" }, `cycle ${r.cycle}, ${ago(r.at, now)}${r.dryRun ? ", dry run" : ""}`),
    r.decisions.length + r.heldBack.length === 0 ? empty("nothing to do") : table(["decision", "agent", "reason", "held back"], [...r.decisions.map((d) => row(d)), ...r.heldBack.map((x) => row(x.decision, x.why))]));
}
