#!/usr/bin/env node
// Runs every test/{unit,integration,model}/**/*.test.ts (or, with --chaos, test/chaos/) with node:test through tsx. Node 20's runner
// silently runs nothing when given a folder, so this script lists the files itself and fails when no
// test ran. With COLONY_CI=1 (set by .ci/run, which installs every system package the tests need) a
// skipped test of the default groups is a failure too: a skip there means a check silently did not
// happen. Not in the chaos suite, whose soak is skipped unless --soak is given.
// Usage: node scripts/run-tests.mjs [substring ...]   (filters test files by path, e.g. `unit`)
//        node scripts/run-tests.mjs --chaos [--soak] [substring ...]   (`npm run test:chaos`)
// The chaos suite (test/chaos/: faults injected into real processes, docs/chaos.md) takes minutes
// and needs root for its network namespaces and mounts: it is not part of the default run, which
// holds its fast subset (test/integration/chaos-fast.test.ts). `--soak` runs the hour-long soak
// (test/chaos/soak.test.ts, docs/chaos.md): passed to the chaos files as COLONY_CHAOS_SOAK=1.
import { readdirSync, statSync } from "node:fs";
import { spawn } from "node:child_process";
import path from "node:path";

const DEFAULT_GROUPS = ["unit", "integration", "model"];
const ALL_GROUPS = [...DEFAULT_GROUPS, "chaos"];
const args = process.argv.slice(2);
const chaos = args.includes("--chaos");
const soak = args.includes("--soak");
if (soak && !chaos) {
  console.error("run-tests: --soak belongs to the chaos suite: npm run test:chaos -- --soak");
  process.exit(1);
}
const GROUPS = chaos ? ["chaos"] : DEFAULT_GROUPS;

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

// A test file outside the groups would never run: refuse it instead of losing it.
const stray = walk("test").filter((f) => !ALL_GROUPS.some((g) => f.startsWith(path.join("test", g) + path.sep)));
if (stray.length) {
  console.error(`run-tests: test files outside test/{${ALL_GROUPS.join(",")}}/ would not run: ${stray.join(", ")}`);
  process.exit(1);
}
const filters = args.filter((a) => a !== "--chaos" && a !== "--soak");
const files = GROUPS.flatMap((g) => walk(path.join("test", g))).sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("run-tests: no test files matched");
  process.exit(1);
}
// Two files at a time: the machine has two cores and the llama.cpp tests pin their own threads.
const concurrency = process.env.COLONY_TEST_CONCURRENCY ?? "2";
const strictSkips = process.env.COLONY_CI === "1" && !chaos;
const nodeArgs = ["--import", "tsx", "--test", "--test-reporter=tap", `--test-concurrency=${concurrency}`, ...files];
const child = spawn(process.execPath, nodeArgs, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...(soak ? { COLONY_CHAOS_SOAK: "1" } : {}) } });
let tail = "";
const skipped = [];
let pending = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  const text = pending + chunk.toString();
  const lines = text.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines) if (/^\s*ok \d+ - .*# SKIP/.test(line)) skipped.push(line.trim());
  tail = (tail + chunk.toString()).slice(-4000);
});
child.on("close", (code) => {
  const tests = Number(/# tests (\d+)/.exec(tail)?.[1] ?? 0);
  const fail = Number(/# fail (\d+)/.exec(tail)?.[1] ?? 0);
  if (tests === 0) {
    console.error("run-tests: the runner executed no test");
    process.exit(1);
  }
  console.error(`run-tests: ${files.length} files, ${tests} tests, ${fail} failed, ${skipped.length} skipped, exit ${code}`);
  for (const s of skipped) console.error(`run-tests: skipped: ${s}`);
  if (strictSkips && skipped.length > 0) {
    console.error("run-tests: COLONY_CI=1 and a test was skipped: CI installs everything the tests need, so a skip is a failure here");
    process.exit(1);
  }
  process.exit(code ?? 1);
});
