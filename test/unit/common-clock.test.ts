// The clock helpers: the other machine's clock learned from `sentAt` stamps (constant skew, a message
// that sat in a queue, a clock that jumps), `every` on a fake clock, and the typed event emitter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { every, FakeClock, SenderClock, skewedClock } from "../../common/clock.ts";
import { TypedEmitter } from "../../common/events.ts";

test("SenderClock: a constant skew is learned; a delayed message stays late; a clock jump is followed", () => {
  const c = new SenderClock();
  assert.equal(c.toLocal(1000), 1000, "nothing seen yet: taken as is");
  // Our clock is 5 s ahead; transit 1-3 ms.
  for (const [sent, transit] of [[0, 3], [100, 1], [200, 2]] as const) c.observe(sent, sent + 5000 + transit);
  assert.equal(c.offsetMs, 5001);
  assert.equal(c.toLocal(10_000), 15_001);
  // A message that sat 10 s in a queue does not move the estimate: its times stay 10 s in the past.
  c.observe(300, 300 + 5000 + 10_000);
  assert.equal(c.offsetMs, 5001);
  // Our clock jumps back by 65 s (NTP): the next message already pulls the estimate down...
  c.observe(400, 400 + 5000 - 65_000 + 2);
  assert.equal(c.offsetMs, -59_998);
  // ...and a jump forward is followed after three messages in a row agree.
  c.observe(500, 500 + 30_000 + 2);
  c.observe(600, 600 + 30_000 + 1);
  assert.equal(c.offsetMs, -59_998, "two are not yet a jump: they could be delayed messages");
  c.observe(700, 700 + 30_000 + 3);
  assert.equal(c.offsetMs, 30_001);
});

test("every: runs on the clock until cancelled; skewedClock shifts now() only", () => {
  const clock = new FakeClock();
  let n = 0;
  const t = every(clock, 100, () => n++);
  clock.advance(350);
  assert.equal(n, 3);
  t.cancel();
  clock.advance(1000);
  assert.equal(n, 3);
  assert.equal(clock.pending, 0);
  const ahead = skewedClock(5000, clock);
  assert.equal(ahead.now(), clock.now() + 5000);
  let fired = false;
  ahead.setTimer(10, () => (fired = true));
  clock.advance(10);
  assert.ok(fired);
});

test("TypedEmitter: listeners in order, a throwing one is reported and the rest still run, unsubscribe works", () => {
  const errors: string[] = [];
  const bus = new TypedEmitter<{ a: number; b: string }>((err, ev) => errors.push(`${String(ev)}: ${(err as Error).message}`));
  const seen: string[] = [];
  const off = bus.on("a", (n) => seen.push(`first ${n}`));
  bus.on("a", () => {
    throw new Error("boom");
  });
  bus.on("a", (n) => seen.push(`third ${n}`));
  bus.emit("a", 1);
  assert.deepEqual(seen, ["first 1", "third 1"]);
  assert.deepEqual(errors, ["a: boom"]);
  off();
  bus.emit("a", 2);
  assert.deepEqual(seen, ["first 1", "third 1", "third 2"]);
  assert.equal(bus.listenerCount("a"), 2);
  assert.equal(bus.listenerCount("b"), 0);
});
