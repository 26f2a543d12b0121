// A machine without mosquitto or openssl: the tests that need them are reported as SKIPPED with the
// command that installs them (not as failures), the runner's summary counts the skips, and with
// COLONY_CI=1 (.ci/run) the same run fails. Runs scripts/run-tests.mjs on two real test files in a
// child process whose PATH holds only node and npm.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { onPath } from "../fixtures/system-tools.ts";

const FILES = ["coordinator-mosquitto.test", "auth-mosquitto-tls.test"];
let bin: string;

before(() => {
  bin = mkdtempSync(path.join(os.tmpdir(), "colony-bare-path-"));
  symlinkSync(process.execPath, path.join(bin, "node"));
  const npm = onPath("npm");
  if (npm) symlinkSync(npm, path.join(bin, "npm"));
});
after(() => rmSync(bin, { recursive: true, force: true }));

function runTests(extra: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, PATH: bin, ...extra };
  // This file itself runs under `node --test`: its child must be a runner of its own, not a reporter to ours.
  delete env.NODE_TEST_CONTEXT;
  if (!("COLONY_CI" in extra)) delete env.COLONY_CI;
  const child = spawn(process.execPath, ["scripts/run-tests.mjs", ...FILES], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

test("without mosquitto and openssl on PATH: the tests that need them are skipped with the install command, not failed", { timeout: 60_000 }, async () => {
  const r = await runTests({});
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const summary = /run-tests: 2 files, (\d+) tests, (\d+) failed, (\d+) skipped/.exec(r.stderr);
  assert.ok(summary, r.stderr.slice(-3000));
  const [, tests, failed, skipped] = summary.map(Number);
  assert.equal(failed, 0);
  // 8 market scenarios on mosquitto + 3 TLS tests.
  assert.equal(skipped, 11, r.stderr.slice(-3000));
  assert.equal(tests, skipped, "every test of the two files needs mosquitto");
  assert.match(r.stdout, /# SKIP needs mosquitto \(not on PATH\): install with `apt-get install -y mosquitto mosquitto-clients`/);
  assert.match(r.stdout, /# SKIP needs mosquitto, openssl \(not on PATH\): install with `apt-get install -y mosquitto mosquitto-clients openssl`/);
  assert.match(r.stderr, /run-tests: skipped: ok \d+ - mosquitto: .*# SKIP needs mosquitto/, "the summary lists each skip");
});

test("the same run with COLONY_CI=1 fails: in CI a skip is a failure", { timeout: 60_000 }, async () => {
  const r = await runTests({ COLONY_CI: "1" });
  assert.equal(r.code, 1, r.stderr.slice(-3000));
  assert.match(r.stderr, /run-tests: 2 files, \d+ tests, 0 failed, 11 skipped/);
  assert.match(r.stderr, /COLONY_CI=1 and a test was skipped/);
});
