#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20's runner silently runs nothing
// when given a folder, so this script lists the files itself and fails when no test ran.
// Usage: node scripts/run-tests.mjs [substring ...]   (filters test files by path)
import { readdirSync, statSync } from "node:fs";
import { spawn } from "node:child_process";
import path from "node:path";

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk("test").sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("run-tests: no test files matched");
  process.exit(1);
}
// Two files at a time: the machine has two cores and the llama.cpp tests pin their own threads.
const concurrency = process.env.COLONY_TEST_CONCURRENCY ?? "2";
const args = ["--import", "tsx", "--test", "--test-reporter=tap", `--test-concurrency=${concurrency}`, ...files];
const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
let tail = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4000);
});
child.on("close", (code) => {
  const tests = Number(/# tests (\d+)/.exec(tail)?.[1] ?? 0);
  const fail = Number(/# fail (\d+)/.exec(tail)?.[1] ?? 0);
  if (tests === 0) {
    console.error("run-tests: the runner executed no test");
    process.exit(1);
  }
  console.error(`run-tests: ${tests} tests, ${fail} failed, exit ${code}`);
  process.exit(code ?? 1);
});
