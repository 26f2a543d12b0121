// The hot cache on a real LevelDB: bounded per agent (oldest dropped), verdicts fill experiences and
// move the per-skill accuracy, and everything survives a reopen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Level } from "level";
import { HotCache } from "../../node/hot-cache.ts";

test("hot cache keeps the newest N per agent, records verdicts once, and persists", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-hot-"));
  let db = new Level<string, unknown>(dir, { valueEncoding: "json" });
  try {
    let hot = new HotCache(db, 3);
    await hot.start();
    for (let i = 1; i <= 5; i++) {
      await hot.add({ taskId: `t${i}`, agentId: "a", skill: "add", prompt: `p${i}`, output: `o${i}`, at: 1000 + i, tokens: 2, latencyMs: 10, energyJ: 1 });
    }
    await hot.add({ taskId: "u1", agentId: "b", prompt: "q", output: "r", at: 999, tokens: 1, latencyMs: 5, energyJ: 0.5 });
    assert.equal(hot.count("a"), 3);
    assert.deepEqual((await hot.recent("a")).map((e) => e.taskId), ["t5", "t4", "t3"]);
    assert.equal(hot.count("b"), 1);
    // A dropped task's verdict is ignored; a kept one is recorded once.
    assert.equal(await hot.verdict("t1", true), false);
    assert.equal(hot.accuracy("a", "add", 0.5), 0.5);
    assert.equal(await hot.verdict("t5", false), true);
    assert.equal(await hot.verdict("t5", true), false, "second verdict ignored");
    assert.equal(await hot.verdict("t4", false, 0.1), true);
    assert.ok(Math.abs(hot.accuracy("a", "add", 0.5) - 1 / 4) < 1e-12);
    assert.equal(hot.accuracy("a", "sort", 0.5), 0.5, "per skill");
    await db.close();
    db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    hot = new HotCache(db, 3);
    await hot.start();
    assert.equal(hot.count("a"), 3);
    assert.ok(Math.abs(hot.accuracy("a", "add", 0.5) - 1 / 4) < 1e-12);
    assert.equal((await hot.recent("a"))[1]!.score, 0.1);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
