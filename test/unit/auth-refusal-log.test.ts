// Refusals are logged, rate-limited per identity, and never carry a password.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger } from "../../common/logger.ts";
import { RefusalLog } from "../../coordinator/auth/refusal-log.ts";
import { issueCredential } from "../../coordinator/auth.ts";
import { startAuthBroker, rawConnect } from "../fixtures/auth-broker.ts";

function captureLogger() {
  const lines: any[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", destination }), lines };
}

test("at most 5 refusal lines per identity per minute, then a count of the suppressed ones", () => {
  const { logger, lines } = captureLogger();
  let now = 0;
  const log = new RefusalLog(logger, () => now);
  for (let i = 0; i < 12; i++) log.note("user:node.x", { i });
  log.note("user:node.y", { i: 0 });
  assert.equal(lines.filter((l) => l.msg === "MQTT access refused").length, 6);
  now += 60_001;
  log.note("user:node.x", { i: 99 });
  const summary = lines.find((l) => l.msg === "MQTT refusals suppressed in the last window");
  assert.equal(summary?.suppressed, 7);
  assert.equal(lines.at(-1).i, 99);
});

test("a flood of made-up usernames (a new key each) is capped too: 50 lines per minute in all, then a count", () => {
  const { logger, lines } = captureLogger();
  let now = 0;
  const log = new RefusalLog(logger, () => now);
  for (let i = 0; i < 1000; i++) log.note(`user:node.fake-${i}`, { i });
  assert.equal(lines.filter((l) => l.msg === "MQTT access refused").length, 50);
  now += 60_001;
  log.note("user:node.real", { i: -1 });
  const summary = lines.find((l) => l.msg === "MQTT refusals suppressed in the last window" && l.keys === "all");
  assert.equal(summary?.suppressed, 950);
  assert.equal(lines.at(-1).i, -1);
});

test("a refused connect is logged with the username but without the password", async () => {
  const { logger, lines } = captureLogger();
  const secret = randomBytes(32);
  const broker = await startAuthBroker({ secret, logger });
  try {
    const good = issueCredential(secret, "node", "pi-log");
    // Change the first character (to a different one: the password is random per run).
    const wrong = (good.password.startsWith("W") ? "X" : "W") + good.password.slice(1);
    await assert.rejects(rawConnect(broker.url, { username: good.username, password: wrong }));
    const refusal = lines.find((l) => l.msg === "MQTT access refused");
    assert.equal(refusal?.username, "node.pi-log");
    assert.equal(refusal?.reason, "bad username or password");
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(wrong) && !text.includes(good.password), "no password in the log");
  } finally {
    await broker.close();
  }
});
