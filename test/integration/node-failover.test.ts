// SIGKILL of a node process in the middle of a task: the coordinator sees its last will, re-auctions
// the task, another node finishes it, and the submitter gets exactly one result.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { decode, encode, topics, ResultSchema, TaskEventSchema, type Result, type TaskEvent } from "../../common/protocol.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { fakeProbe, genome, SMALL, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";
import { submitterOf } from "../../coordinator/submitter.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-failover-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("SIGKILL mid-task: re-auctioned to another node and finished exactly once", { timeout: 120_000 }, async () => {
  const h = await startHarness();
  const model = await writeRandomModel(dir, "small", SMALL, 3);
  const credFile = path.join(dir, "child-cred.json");
  writeFileSync(credFile, JSON.stringify(await h.nodeCred("n-child")));
  chmodSync(credFile, 0o600);
  const agentsFile = path.join(dir, "agents.json");
  writeFileSync(agentsFile, JSON.stringify({ agents: [{ id: "child-agent", model, skills: ["reverse"] }] }));
  const child = spawn(process.execPath, ["bin/colony.mjs", "node", "--coordinator", h.url, "--credentials", credFile, "--node-id", "n-child", "--agents", agentsFile, "--data-dir", path.join(dir, "child"), "--threads", "1", "--profile", "generic", "--no-calibrate"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, COLONY_LOG_LEVEL: "warn" },
  });
  let childErr = "";
  child.stderr.on("data", (c) => (childErr += c));
  // The backup node runs hot at first (it declines), so the child wins the first auction.
  const probe = fakeProbe();
  probe.inject({ temperatureC: 99 });
  const backup = await startNode({ nodeId: "n-backup", url: h.url, cred: await h.nodeCred("n-backup"), dataDir: path.join(dir, "backup"), genomes: [genome("backup-agent", model, ["reverse"])], probe, calibrate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`child node not ready: ${childErr.slice(-2000)}`)), 90_000);
      child.stdout.on("data", (c: Buffer) => {
        if (c.toString().includes('"ready":true')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.on("exit", (code) => reject(new Error(`child exited ${code}: ${childErr.slice(-2000)}`)));
    });
    const s = await h.submitter();
    const results: Result[] = [];
    const events: TaskEvent[] = [];
    let killed = false;
    s.on("message", (topic, p) => {
      if (topic === topics.taskResult(submitterOf(s), "fo-1")) {
        const m = decode(ResultSchema, p);
        if (m.ok) results.push(m.value);
      } else if (topic === topics.taskEvents(submitterOf(s), "fo-1")) {
        const m = decode(TaskEventSchema, p);
        if (!m.ok) return;
        events.push(m.value);
        // The child is generating: kill it without a chance to say goodbye; the backup cools down.
        if (m.value.type === "progress" && !killed) {
          killed = true;
          probe.inject({ temperatureC: undefined });
          child.kill("SIGKILL");
        }
      }
    });
    await s.subscribeAsync([topics.taskResult(submitterOf(s), "fo-1"), topics.taskEvents(submitterOf(s), "fo-1")], { qos: 1 });
    await s.publishAsync(topics.submit(submitterOf(s)), encode({ id: "fo-1", prompt: "reverse abc =", skill: "reverse", maxTokens: 400, deadlineMs: 300_000 }), { qos: 1 });
    for (let i = 0; i < 1000 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    // Anything doubled would arrive within this window.
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(killed, "the child was killed mid-task");
    assert.equal(results.length, 1, "exactly one result");
    const r = results[0]!;
    assert.equal(r.status, "ok", JSON.stringify(r));
    assert.equal(r.nodeId, "n-backup");
    assert.ok(r.attempts.length >= 2);
    assert.equal(r.attempts[0]!.nodeId, "n-child");
    const awarded = events.filter((e) => e.type === "awarded").map((e) => (e.type === "awarded" ? e.nodeId : ""));
    assert.deepEqual(awarded, ["n-child", "n-backup"]);
    assert.equal(backup.daemon.counters.get("tasks.done"), 1);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await backup.close();
    await h.close();
  }
});
