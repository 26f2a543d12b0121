// The terminal log format (common/log-format.ts) and where logs go: stderr only, compact text at a
// terminal, JSON lines when piped (journald, log shippers, tests); stdout stays machine-readable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { formatLogLine, prettyStream } from "../../common/log-format.ts";
import { createLogger } from "../../common/logger.ts";

const at = new Date(2026, 11, 3, 8, 21, 3, 123).getTime();

test("formatLogLine: time, level, scope, message, then key=value", () => {
  const line = JSON.stringify({ level: 30, time: at, name: "fleet", role: "node", msg: "calibrated", agentId: "seed-add", genTokensPerS: 1623.4567, threads: 1, tried: [{ threads: 1 }], note: "two words", ok: true });
  assert.equal(formatLogLine(line), '08:21:03.123 INFO  fleet/node: calibrated agentId=seed-add genTokensPerS=1623 threads=1 tried=[{"threads":1}] note="two words" ok=true\n');
  assert.equal(formatLogLine(JSON.stringify({ level: 40, time: at, name: "coordinator", part: "market", msg: "slow" }) + "\n"), "08:21:03.123 WARN  coordinator/market: slow\n");
});

test("formatLogLine: an error's type, code and message on the line, its stack frames below", () => {
  const err = { type: "ColonyError", code: "NO_BIDDERS", message: "no node bid", stack: "ColonyError: no node bid\n    at Market.award (market.ts:10:5)\n    at run (x.ts:1:1)" };
  const out = formatLogLine(JSON.stringify({ level: 50, time: at, name: "coordinator", msg: "attempt failed", taskId: "t1", err }));
  assert.equal(out, '08:21:03.123 ERROR coordinator: attempt failed taskId=t1 err="ColonyError NO_BIDDERS: no node bid"\n    at Market.award (market.ts:10:5)\n    at run (x.ts:1:1)\n');
});

test("formatLogLine: colors only when asked; long values cut; non-JSON passes through", () => {
  const line = JSON.stringify({ level: 30, time: at, name: "n", msg: "m", big: "x".repeat(500) });
  assert.doesNotMatch(formatLogLine(line), /\x1b\[/);
  assert.match(formatLogLine(line, { color: true }), /\x1b\[32mINFO /);
  assert.ok(formatLogLine(line).length < 220, "a 500-character value is cut");
  assert.equal(formatLogLine("not json"), "not json\n");
  assert.equal(formatLogLine("[1,2]"), "[1,2]\n");
  // A record whose level key was overwritten by a log call (a string) still prints.
  assert.match(formatLogLine(JSON.stringify({ level: "error", time: at, msg: "llama.cpp" })), /^08:21:03\.123 error llama\.cpp\n$/);
});

test("prettyStream reassembles lines split across writes", () => {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d) => (text += d));
  const s = prettyStream(out);
  const line = JSON.stringify({ level: 30, time: at, name: "a", msg: "hello" }) + "\n";
  s.write(line.slice(0, 10));
  s.write(line.slice(10) + line);
  assert.equal(text, "08:21:03.123 INFO  a: hello\n".repeat(2));
});

test("createLogger: JSON lines to a pipe, compact text to a terminal", () => {
  const capture = (isTTY: boolean) => {
    const out = Object.assign(new PassThrough(), { isTTY });
    let text = "";
    out.on("data", (d) => (text += d));
    createLogger({ name: "t", destination: out }).info({ k: 1 }, "hi");
    return text;
  };
  const piped = capture(false);
  assert.equal(JSON.parse(piped).msg, "hi");
  assert.match(capture(true), /^\d\d:\d\d:\d\d\.\d{3} \x1b\[32mINFO \x1b\[0m t: hi k=1\n$/);
});

test("logs never go to stdout: every logger, every format, a silent logger's child given a level", () => {
  const script = `
    const { createLogger, silentLogger } = await import("./common/logger.ts");
    for (const format of ["auto", "json", "pretty"]) {
      const l = createLogger({ level: "trace", name: "t", format });
      l.trace({}, "t"); l.debug({}, "d"); l.info({}, "i"); l.warn({}, "w"); l.error({ err: new Error("e") }, "e"); l.fatal({}, "f");
      l.child({ role: "r" }).info({}, "child");
    }
    silentLogger.child({}, { level: "info" }).info({}, "from silent");
    process.stdout.write("the only stdout line\\n");
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "the only stdout line\n");
  // 3 formats x 7 lines (+ the error's stack frames) + the silent logger's child.
  assert.equal(r.stderr.split("\n").filter((l) => /"msg":"child"| r: child$|t\/r: child/.test(l)).length, 3, r.stderr);
  assert.match(r.stderr, /from silent/);
});
