// The hot cache and the record cache on a real LevelDB: the hot cache is bounded per agent (oldest
// dropped) and files verdicts into experiences (a provisional delivery verdict is replaced, a check's
// is kept, feedback always wins); the record cache holds the coordinator's records as sent; both
// survive a reopen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Level } from "level";
import { RecordCache } from "../../node/agents/record-cache.ts";
import { HotCache } from "../../node/hot-cache.ts";

test("hot cache keeps the newest N per agent, files verdicts by their source, and persists", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-hot-"));
  let db = new Level<string, unknown>(dir, { valueEncoding: "json" });
  try {
    let hot = new HotCache(db, 3);
    await hot.start();
    for (let i = 1; i <= 5; i++) {
      await hot.add({ taskId: `t${i}`, agentId: "a", skill: "add", prompt: `p${i}`, output: `o${i}`, at: 1000 + i, tokens: 2, latencyMs: 10, energyJ: 1, energySource: "model" });
    }
    await hot.add({ taskId: "u1", agentId: "b", prompt: "q", output: "r", at: 999, tokens: 1, latencyMs: 5, energyJ: 0.5 });
    assert.equal(hot.count("a"), 3);
    assert.deepEqual((await hot.recent("a")).map((e) => e.taskId), ["t5", "t4", "t3"]);
    assert.equal(hot.count("b"), 1);
    // A dropped task's verdict is ignored.
    assert.equal(await hot.verdict("t1", { success: true, source: "check" }), false);
    // A check's verdict is kept against a later check; feedback replaces it.
    assert.equal(await hot.verdict("t5", { success: false, source: "check" }), true);
    assert.equal(await hot.verdict("t5", { success: true, source: "check" }), false, "second check verdict ignored");
    assert.equal(await hot.verdict("t5", { success: true, source: "feedback", score: 0.9 }), true, "feedback replaces");
    // A provisional delivery verdict is replaced by the next one.
    assert.equal(await hot.verdict("t4", { success: true, source: "delivery" }), true);
    assert.equal(await hot.verdict("t4", { success: false, source: "feedback", score: 0.1 }), true);
    await db.close();
    db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    hot = new HotCache(db, 3);
    await hot.start();
    assert.equal(hot.count("a"), 3);
    const [t5, t4] = await hot.recent("a");
    assert.deepEqual([t5!.success, t5!.verdictSource, t5!.score], [true, "feedback", 0.9]);
    assert.deepEqual([t4!.success, t4!.verdictSource, t4!.score], [false, "feedback", 0.1]);
    assert.equal(t5!.energySource, "model");
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("record cache keeps the coordinator's latest record per agent and skill, across a reopen", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-recs-"));
  let db = new Level<string, unknown>(dir, { valueEncoding: "json" });
  try {
    let recs = new RecordCache(db);
    await recs.start();
    assert.deepEqual(recs.get("a", "add"), { successes: 0, failures: 0 });
    await recs.put("a", "add", { successes: 3, failures: 1 });
    await recs.put("a", "add", { successes: 4, failures: 1 });
    await recs.put("a", undefined, { successes: 0, failures: 2 });
    assert.deepEqual(recs.get("a", "add"), { successes: 4, failures: 1 }, "replaced, not added up");
    await db.close();
    db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    recs = new RecordCache(db);
    await recs.start();
    assert.deepEqual(recs.get("a", "add"), { successes: 4, failures: 1 });
    assert.deepEqual(recs.get("a", undefined), { successes: 0, failures: 2 });
    assert.deepEqual(recs.get("a", "sort"), { successes: 0, failures: 0 });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
