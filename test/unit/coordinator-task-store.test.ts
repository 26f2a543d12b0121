import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TaskStore, type TaskRecord } from "../../coordinator/market/task-store.ts";

// The task store's group commit against a real LevelDB: many writes in one batch, newest state
// wins, nothing asked for is lost on close, and a closed store refuses writes loudly.

function task(id: string): TaskRecord {
  return { id, submit: { id, prompt: "p" }, raw: "{}", acceptedAt: 1, deadlineAt: 2, state: "open", attempts: [] };
}

async function withStore(fn: (store: TaskStore, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-store-"));
  const store = new TaskStore(dir);
  await store.start();
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("concurrent task writes all land and read back", async () => {
  await withStore(async (store) => {
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.putTask(task(`t${i}`))));
    for (const i of [0, 150, 299]) assert.equal((await store.getTask(`t${i}`))?.id, `t${i}`);
    let n = 0;
    for await (const _ of store.tasks()) n++;
    assert.equal(n, 300);
  });
});

test("a record written several times before its batch lands is stored in its newest state", async () => {
  await withStore(async (store) => {
    const rec = task("live");
    const first = store.putTask(rec);
    rec.attempts.push({ attempt: 1, auctionId: "au-1", outcome: "pending" });
    const second = store.putTask(rec);
    rec.state = "done";
    // While a batch is in flight, the next write waits for it and then carries the newest state.
    await Promise.all([first, second, store.putTask(rec)]);
    const stored = await store.getTask("live");
    assert.equal(stored?.state, "done");
    assert.equal(stored?.attempts.length, 1);
  });
});

test("close writes what was asked for; a closed store rejects writes", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-store-"));
  try {
    const store = new TaskStore(dir);
    await store.start();
    const writes = Array.from({ length: 50 }, (_, i) => store.putTask(task(`c${i}`)));
    await store.close(); // not awaiting the writes first
    await Promise.all(writes);
    await assert.rejects(store.putTask(task("late")), /not open/);
    const again = new TaskStore(dir);
    await again.start();
    assert.equal((await again.getTask("c49"))?.id, "c49");
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
