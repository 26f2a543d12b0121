import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Level } from "level";
import { FakeClock } from "../../common/clock.ts";
import { Counters } from "../../common/counters.ts";
import { silentLogger } from "../../common/logger.ts";
import { Outbox, topics } from "../../common/protocol.ts";
import { TaskLookup } from "../../coordinator/market/lookup.ts";
import { MarketOutbox } from "../../coordinator/market/outbox.ts";
import { SubmitterQuota } from "../../coordinator/market/quota.ts";
import { Retention } from "../../coordinator/market/retention.ts";
import { TaskStore, type TaskRecord } from "../../coordinator/market/task-store.ts";

// Retention against a real LevelDB and a fake clock: results leave the broker after
// resultRetentionMs (an empty retained publish) but stay answerable by `get`; tasks leave the store
// after taskRetentionMs; a restart neither re-clears nor forgets what was cleared; a store written
// before the indexes existed is indexed once.

const T0 = 1_700_000_000_000;

function done(id: string, owner: string, finishedAt: number): TaskRecord {
  return {
    id, owner, submit: { id, prompt: "p" }, digest: "d", acceptedAt: finishedAt - 10, deadlineAt: finishedAt + 60_000, state: "done", attempts: [],
    result: { id, status: "ok", output: `out-${id}`, attempts: [], timings: { acceptedAt: finishedAt - 10, finishedAt, totalMs: 10 } },
  };
}

function open(id: string, owner: string): TaskRecord {
  return { id, owner, submit: { id, prompt: "p" }, digest: "d", acceptedAt: T0, deadlineAt: T0 + 600_000, state: "open", attempts: [] };
}

type Published = { topic: string; payload: string; retain: boolean | undefined };

function parts(store: TaskStore, clock: FakeClock) {
  const published: Published[] = [];
  const out = new MarketOutbox(new Outbox({ publish: (topic, payload, o) => void published.push({ topic, payload, retain: o.retain }) }));
  const counters = new Counters(silentLogger, () => clock.now());
  const retention = new Retention({ store, out, clock, counters, logger: silentLogger, settings: { resultRetentionMs: 2000, taskRetentionMs: 10_000 } });
  const lookup = new TaskLookup({ store, out, clock, counters, quota: new SubmitterQuota({ submitRate: 0, submitBurst: 1, maxOpenTasks: 0 }, clock, counters) });
  const clears = (id: string, owner: string) => published.filter((p) => p.topic === topics.taskResult(owner, id) && p.payload === "" && p.retain === true).length;
  const results = (id: string, owner: string) => published.filter((p) => p.topic === topics.taskResult(owner, id) && p.payload !== "");
  const events = (id: string, owner: string) => published.filter((p) => p.topic === topics.taskEvents(owner, id)).map((p) => JSON.parse(p.payload));
  return { published, retention, lookup, counters, clears, results, events };
}

test("results expire from the broker but stay answerable; tasks are pruned after their retention; a restart picks up where it stopped", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-retention-"));
  const clock = new FakeClock(T0 + 5000);
  let store = new TaskStore(dir);
  await store.start();
  try {
    await Promise.all([store.putTask(done("old", "submitter.a", T0)), store.putTask(done("mid", "submitter.b", T0 + 1000)), store.putTask(done("new", "submitter.a", T0 + 5000)), store.putTask(open("run", "submitter.a"))]);
    const p = parts(store, clock);
    await p.retention.start();
    // At start: results older than 2 s are cleared from the broker; the recent one is republished, retained.
    assert.equal(p.clears("old", "submitter.a"), 1);
    assert.equal(p.clears("mid", "submitter.b"), 1);
    assert.equal(p.clears("new", "submitter.a"), 0);
    assert.equal(p.results("new", "submitter.a").length, 1);
    assert.equal(p.results("new", "submitter.a")[0]!.retain, true);
    assert.equal(p.results("old", "submitter.a").length, 0, "an expired result is not republished");

    // Past its retention the recent one is cleared too, exactly once however many sweeps run.
    clock.advance(3000);
    await p.retention.sweep();
    clock.advance(3000);
    await p.retention.sweep();
    assert.equal(p.clears("new", "submitter.a"), 1);
    assert.equal(p.clears("old", "submitter.a"), 1);
    assert.equal(p.counters.get("results.expired"), 3);

    // Expired from the broker, still in the store: `get` answers with the result, not retained.
    await p.lookup.onGet("submitter.b", "mid");
    assert.deepEqual(p.results("mid", "submitter.b").map((r) => [JSON.parse(r.payload).output, r.retain]), [["out-mid", false]]);
    // Another submitter's task reads exactly like a missing one.
    await p.lookup.onGet("submitter.a", "mid");
    assert.equal(p.events("mid", "submitter.a")[0].error.code, "TASK_NOT_FOUND");
    // A running task: `accepted` again.
    await p.lookup.onGet("submitter.a", "run");
    assert.equal(p.events("run", "submitter.a")[0].type, "accepted");

    // Past the task retention (10 s after finishing) the task leaves the store; the open one stays.
    clock.advance(T0 + 11_500 - clock.now());
    await p.retention.sweep();
    assert.equal(await store.getTask("old"), undefined);
    assert.equal(await store.getTask("mid"), undefined);
    assert.equal((await store.getTask("new"))?.id, "new");
    assert.equal((await store.getTask("run"))?.state, "open");
    assert.equal(p.counters.get("tasks.pruned"), 2);
    await p.lookup.onGet("submitter.b", "mid");
    assert.equal(p.events("mid", "submitter.b").at(-1).error.code, "TASK_NOT_FOUND");
    await p.retention.close();

    // A restart: what was cleared is not cleared again, nothing expired is republished.
    await store.close();
    store = new TaskStore(dir);
    await store.start();
    const q = parts(store, clock);
    await q.retention.start();
    assert.equal(q.published.length, 0, JSON.stringify(q.published));
    const openIds: string[] = [];
    for await (const t of store.openTasks()) openIds.push(t.id);
    assert.deepEqual(openIds, ["run"]);
    await q.retention.close();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a store written before the open/finished indexes existed is indexed once at start", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-retention-legacy-"));
  try {
    // Written the way older versions wrote: task records only, no index keys, no meta.
    const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    await db.open();
    await db.batch([
      { type: "put", key: "task:legacy-done", value: { ...done("legacy-done", "submitter.a", T0), digest: undefined, raw: "{}" } },
      { type: "put", key: "task:legacy-open", value: open("legacy-open", "submitter.a") },
    ]);
    await db.close();
    const store = new TaskStore(dir);
    await store.start();
    try {
      const openIds: string[] = [];
      for await (const t of store.openTasks()) openIds.push(t.id);
      assert.deepEqual(openIds, ["legacy-open"]);
      const fin: string[] = [];
      for await (const e of store.finished(0, Number.MAX_SAFE_INTEGER)) fin.push(`${e.id}@${e.finishedAt}:${e.owner}`);
      assert.deepEqual(fin, [`legacy-done@${T0}:submitter.a`]);
      // A finished task leaves the open index in the same batch that stores it done.
      const rec = open("legacy-open", "submitter.a");
      await store.putTask({ ...rec, state: "done", result: done("legacy-open", "submitter.a", T0 + 1).result! });
      const still: string[] = [];
      for await (const t of store.openTasks()) still.push(t.id);
      assert.deepEqual(still, []);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
