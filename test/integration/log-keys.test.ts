// Every line a one-machine fleet logs (debug level, mDNS on, a task, a refused login, a shutdown)
// is JSON with each key once: a log shipper keeps only one of two equal keys, so a duplicated
// `part` or `name` loses information. (The fleet's coordinator logged `part` twice, and the mDNS
// lines `name` twice, before.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { duplicateKeys } from "../fixtures/json-keys.ts";

test("duplicateKeys finds a key twice at any depth, and nothing in clean JSON", () => {
  assert.deepEqual(duplicateKeys('{"a":1,"b":{"c":"x\\"y","c":2},"a":[{"d":1,"d":2}]}'), ["b.c", "a", "a.d"]);
  assert.deepEqual(duplicateKeys(JSON.stringify({ a: 1, b: { a: 1 }, c: [{ a: 1 }, { a: 2 }], s: "\"a\":1,\"a\":2" })), []);
});

test("a fleet's log lines (debug, mDNS, a task, a refused login, shutdown) carry each key once", { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-logkeys-"));
  const child = spawn(process.execPath, ["bin/colony.mjs", "fleet", "--port", "0", "--data-dir", dir, "--mdns"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COLONY_LOG_LEVEL: "debug" } });
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const lines: string[] = [];
  readline.createInterface({ input: child.stderr! }).on("line", (l) => lines.push(l));
  const ready = await new Promise<{ url: string; submitter: { username: string; password: string } }>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on("line", (l) => l.includes('"ready":true') && resolve(JSON.parse(l)));
    child.once("exit", (code) => reject(new Error(`fleet exited ${code}: ${lines.slice(-20).join("\n")}`)));
  });
  const client = await connectMqtt({ url: ready.url, ...ready.submitter, logger: silentLogger });
  const r = await submitAndWait(client, { id: newTaskId(), prompt: "add 1 2 =", skill: "add", maxTokens: 8 }, { timeoutMs: 30_000 });
  assert.equal(r.status, "ok");
  await client.endAsync();
  await assert.rejects(connectMqtt({ url: ready.url, username: ready.submitter.username, password: "wrong", logger: silentLogger, connectTimeoutMs: 2000 }));
  child.kill("SIGTERM");
  assert.equal(await new Promise((res) => child.once("exit", res)), 0);
  const json = lines.filter((l) => l.startsWith("{"));
  assert.ok(json.length >= 10, `${json.length} JSON log lines`);
  assert.ok(json.some((l) => l.includes("MQTT access refused")), "the refused login was logged");
  const bad = json.map((l) => ({ l, dups: duplicateKeys(l) })).filter((x) => x.dups.length > 0);
  assert.deepEqual(bad.map((x) => `${x.dups.join(",")}: ${x.l.slice(0, 200)}`), []);
});
