import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { IdFilter } from "../../coordinator/market/id-filter.ts";
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

test("id filter: every added id is found (no false negatives); few unknown ids look known", () => {
  const f = new IdFilter();
  const n = 100_000;
  for (let i = 0; i < n; i++) f.add(`task-${i}-${(i * 2654435761) >>> 0}`);
  for (let i = 0; i < n; i++) assert.ok(f.mayHave(`task-${i}-${(i * 2654435761) >>> 0}`), `id ${i} lost`);
  let fp = 0;
  for (let i = 0; i < n; i++) if (f.mayHave(`other-${i}`)) fp++;
  assert.ok(fp / n < 0.002, `false positives ${fp} of ${n}`);
});

test("id filter in the store: an id stored before a restart is found after it, a pruned one reads as absent", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-ids-"));
  try {
    const rec = (id: string, finishedAt: number) => ({ id, submit: { id, prompt: "p" }, acceptedAt: finishedAt - 1, deadlineAt: finishedAt + 1, state: "done" as const, attempts: [], result: { id, status: "ok" as const, attempts: [], timings: { acceptedAt: finishedAt - 1, finishedAt, totalMs: 1 } } });
    const a = new TaskStore(dir);
    await a.start();
    await a.putTask(rec("old", 1000));
    await a.putTask(rec("kept", 5000));
    await a.close();
    const b = new TaskStore(dir);
    await b.start();
    assert.equal((await b.getTask("kept"))?.id, "kept");
    assert.equal(await b.getTask("never"), undefined);
    assert.equal(await b.pruneFinished(2000, 10), 1);
    assert.equal(await b.getTask("old"), undefined);
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
