// A coordinator or a one-machine fleet bound to one address (not 127.0.0.1, not 0.0.0.0) prints and
// uses that address: before, `--host 127.0.0.2` printed mqtt://127.0.0.1:PORT where nothing listened,
// and `colony fleet --host ADDR` failed because its own node dialled 127.0.0.1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";

const HOST = "127.0.0.2";

async function start(args: string[]): Promise<{ child: ChildProcess; ready: { url: string; port: number }; stderr: () => string }> {
  const child = spawn(process.execPath, ["bin/colony.mjs", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COLONY_LOG_LEVEL: "error" } });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const ready = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready: ${stderr.slice(-2000)}`)), 90_000);
    readline.createInterface({ input: child.stdout! }).on("line", (l) => l.includes('"ready":true') && (clearTimeout(t), resolve(JSON.parse(l))));
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr.slice(-2000)}`)));
  });
  return { child, ready, stderr: () => stderr };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once("connect", () => (s.destroy(), resolve(false)));
    s.once("error", () => resolve(true));
  });
}

test(`colony coordinator --host ${HOST}: the ready line names ${HOST}, where it listens, and clients connect there`, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-host-"));
  const { child, ready } = await start(["coordinator", "--host", HOST, "--port", "0", "--data-dir", dir, "--no-mdns"]);
  t.after(async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(ready.url, `mqtt://${HOST}:${ready.port}`);
  assert.ok(await refused("127.0.0.1", ready.port), "nothing listens on 127.0.0.1");
  const c = await connectMqtt({ url: ready.url, ...issueCredential(await loadOrCreateFleetSecret(dir), "submitter", "h"), logger: silentLogger, connectTimeoutMs: 3000 });
  assert.equal(c.connected, true);
  await c.endAsync();
});

test(`colony fleet --host ${HOST}: its own node connects, and the printed commands name ${HOST}`, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-host-fleet-"));
  const { child, ready, stderr } = await start(["fleet", "--host", HOST, "--port", "0", "--data-dir", dir]);
  t.after(async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(ready.url, `mqtt://${HOST}:${ready.port}`);
  assert.ok((ready as unknown as { agents: string[] }).agents.length >= 1, "its node registered agents");
  assert.match(stderr(), new RegExp(`mosquitto_pub -h ${HOST.replace(/\./g, "\\.")} -p ${ready.port} `));
});
