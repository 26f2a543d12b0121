import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { memoryDuplexPair } from "../../common/memory-duplex.ts";

// The in-memory stream pair the coordinator uses to reach its embedded broker: it must behave
// like the two ends of a socket for aedes and mqtt.js.

test("bytes written on one end are read on the other, both ways", async () => {
  const [a, b] = memoryDuplexPair();
  a.write("ping");
  assert.equal(String((await once(b, "data"))[0]), "ping");
  b.write(Buffer.from([1, 2, 3]));
  assert.deepEqual([...((await once(a, "data"))[0] as Buffer)], [1, 2, 3]);
  a.destroy();
  await once(b, "close");
});

test("ending one end ends and closes both (no half-open connection)", async () => {
  const [a, b] = memoryDuplexPair();
  a.resume();
  b.resume();
  const closed = Promise.all([once(a, "close"), once(b, "close")]);
  a.end();
  await once(b, "end");
  await closed;
  assert.ok(a.destroyed && b.destroyed);
});

test("destroying either end closes both; the closed end refuses writes with an error", async () => {
  for (const which of [0, 1]) {
    const pair = memoryDuplexPair();
    const other = pair[1 - which]!;
    const closed = once(other, "close");
    pair[which]!.destroy();
    await closed;
    assert.ok(other.destroyed);
    other.on("error", () => {});
    const err = await new Promise<Error | null | undefined>((resolve) => other.write("x", resolve));
    assert.ok(err instanceof Error, "a write on a closed end reports an error");
  }
});

test("a writer waits while the reader does not read (backpressure), then goes on", async () => {
  const [a, b] = memoryDuplexPair();
  const chunk = Buffer.alloc(64 * 1024);
  let accepted = 0;
  while (accepted < 100 && a.write(chunk)) accepted++; // capped: without backpressure this would never stop
  // b's buffer (16 KiB high-water mark) is full and nobody reads it: a must report it is full
  // well before all memory is used.
  assert.ok(accepted < 4, `wrote ${accepted} chunks before backpressure`);
  const drained = once(a, "drain");
  let got = 0;
  b.on("data", (c: Buffer) => (got += c.length));
  await drained;
  assert.ok(got >= chunk.length);
  a.destroy();
});
