/**
 * The ecosystem benchmark's outputs: a markdown table per generation and baseline, and an SVG plot
 * (sealed accuracy and joules per task against generation, one line per baseline), hand-written so
 * the bench needs no plotting library.
 */
import type { Figures } from "./_ecosystem-baselines.ts";

export const BASELINES = ["fleet", "gen0-market", "random", "round-robin", "best-single", "fixed-roles", "oracle", "gen0-oracle"] as const;
export type Baseline = (typeof BASELINES)[number];

export interface GenerationReport {
  generation: number;
  agents: number;
  /** Figures per baseline on this generation's sealed matrix. */
  figures: Record<Baseline, Figures>;
  bestSingleAgent: string;
  gapClosed?: number | undefined;
  brier: number;
  ece: number;
  reauctionRate: number;
  streamAccuracy: number;
  awakeModelMB: number;
  nodeRssMB: number;
  bytesPushed: number;
  streamSeconds: number;
  evalSeconds: number;
  evolveSeconds?: number | undefined;
  decisions?: string[] | undefined;
  /** Per skill key, who won the second half of the stream. */
  routing?: string[] | undefined;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function markdown(gens: GenerationReport[], weakSkill: string, header: string): string {
  const lines = [header, "", "| gen | baseline | sealed accuracy [95% CI] | " + `${weakSkill} acc | mJ/task | ms/task | acc per kJ |`, "|---|---|---|---|---|---|---|"];
  for (const g of gens) {
    for (const b of BASELINES) {
      const f = g.figures[b];
      lines.push(`| ${g.generation} | ${b}${b === "best-single" ? ` (${g.bestSingleAgent})` : ""} | ${pct(f.accuracy)} [${pct(f.ci[0])}, ${pct(f.ci[1])}] | ${pct(f.perSkill[weakSkill]?.accuracy ?? 0)} | ${(1000 * f.joulesPerTask).toFixed(2)} | ${(1000 * f.secondsPerTask).toFixed(2)} | ${f.accuracyPerKJ.toFixed(0)} |`);
    }
  }
  lines.push("", "| gen | agents | gap closed | Brier | ECE | re-auction rate | stream accuracy | awake model MB | node RSS MB | bytes pushed (total) | stream s | eval s | evolve s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const g of gens) {
    lines.push(`| ${g.generation} | ${g.agents} | ${g.gapClosed === undefined ? "n/a" : pct(g.gapClosed)} | ${g.brier.toFixed(3)} | ${g.ece.toFixed(3)} | ${pct(g.reauctionRate)} | ${pct(g.streamAccuracy)} | ${g.awakeModelMB.toFixed(1)} | ${g.nodeRssMB.toFixed(0)} | ${g.bytesPushed} | ${g.streamSeconds.toFixed(0)} | ${g.evalSeconds.toFixed(0)} | ${g.evolveSeconds?.toFixed(0) ?? "-"} |`);
  }
  lines.push("", "Routing (winners of the second half of each generation's stream, per skill key):", "");
  for (const g of gens) lines.push(`- gen ${g.generation}: ${(g.routing ?? []).join("; ")}`);
  const decided = gens.filter((g) => g.decisions?.length);
  if (decided.length) {
    lines.push("", "Evolution after each generation:", "");
    for (const g of decided) for (const d of g.decisions!) lines.push(`- after gen ${g.generation}: ${d}`);
  }
  return lines.join("\n") + "\n";
}

const COLORS: Record<Baseline, string> = { fleet: "#d62728", "gen0-market": "#ff9896", random: "#7f7f7f", "round-robin": "#bcbd22", "best-single": "#1f77b4", "fixed-roles": "#9467bd", oracle: "#2ca02c", "gen0-oracle": "#98df8a" };

/** Two panels side by side: sealed accuracy and joules per task against generation. */
export function svgPlot(gens: GenerationReport[], title: string): string {
  const W = 460, H = 300, M = { l: 56, r: 12, t: 28, b: 40 };
  const xs = gens.map((g) => g.generation);
  const xMin = Math.min(...xs), xMax = Math.max(xMin + 1, ...xs);
  const panel = (ox: number, label: string, value: (f: Figures) => number, yMax: number, fmt: (v: number) => string) => {
    const x = (g: number) => ox + M.l + ((g - xMin) / (xMax - xMin)) * (W - M.l - M.r);
    const y = (v: number) => M.t + (1 - v / yMax) * (H - M.t - M.b);
    const out = [`<text x="${ox + W / 2}" y="16" text-anchor="middle" font-size="13">${label}</text>`];
    out.push(`<line x1="${ox + M.l}" y1="${y(0)}" x2="${ox + W - M.r}" y2="${y(0)}" stroke="#000"/><line x1="${ox + M.l}" y1="${M.t}" x2="${ox + M.l}" y2="${y(0)}" stroke="#000"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      out.push(`<text x="${ox + M.l - 4}" y="${y(v) + 4}" text-anchor="end" font-size="10">${fmt(v)}</text><line x1="${ox + M.l}" y1="${y(v)}" x2="${ox + W - M.r}" y2="${y(v)}" stroke="#eee"/>`);
    }
    for (const g of xs) out.push(`<text x="${x(g)}" y="${H - M.b + 14}" text-anchor="middle" font-size="10">${g}</text>`);
    out.push(`<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle" font-size="11">generation</text>`);
    for (const b of BASELINES) {
      const pts = gens.map((g) => `${x(g.generation).toFixed(1)},${y(value(g.figures[b])).toFixed(1)}`);
      const dash = b.startsWith("gen0") ? ' stroke-dasharray="5,3"' : "";
      out.push(`<polyline fill="none" stroke="${COLORS[b]}" stroke-width="2"${dash} points="${pts.join(" ")}"/>`);
      for (const p of pts) out.push(`<circle cx="${p.split(",")[0]}" cy="${p.split(",")[1]}" r="2.5" fill="${COLORS[b]}"/>`);
    }
    return out.join("\n");
  };
  const jMax = Math.max(0.001, ...gens.flatMap((g) => BASELINES.map((b) => g.figures[b].joulesPerTask))) * 1.1;
  const legend = BASELINES.map((b, k) => `<rect x="${16 + k * 112}" y="${H + 8}" width="12" height="4" fill="${COLORS[b]}"/><text x="${32 + k * 112}" y="${H + 14}" font-size="11">${b}</text>`).join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 44}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    panel(0, `${title}: sealed accuracy`, (f) => f.accuracy, 1, (v) => `${Math.round(v * 100)}%`),
    panel(W, "millijoules per task", (f) => 1000 * f.joulesPerTask, 1000 * jMax, (v) => v.toFixed(1)),
    legend,
    `</svg>`,
  ].join("\n") + "\n";
}
