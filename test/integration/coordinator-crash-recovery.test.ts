// A coordinator SIGKILLed and restarted at once (same port, same data folder) with a real
// `colony node` (seed agents) whose reconnect backoff grows to 5 s: tasks submitted in the first
// moments after the restart wait for the node the coordinator knew, instead of ending NO_BIDDERS
// because the restarted registry was still empty (it waited only 300 ms before).
import { test } from "node:test";
import { ColonyProcesses, freePort } from "../fixtures/colony-process.ts";
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { encode, topics, type Result } from "../../common/protocol.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { submitterOf } from "../../coordinator/submitter.ts";



const procs = new ColonyProcesses();

test("after a coordinator crash and restart, tasks submitted at once wait for the node it knew and finish ok", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-crash-"));
  const data = path.join(dir, "coordinator");
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  t.after(() => {
    procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const coordArgs = ["coordinator", "--data-dir", data, "--port", String(port), "--host", "127.0.0.1", "--no-mdns"];
  let coordinator = await procs.start(coordArgs);
  const secret = await loadOrCreateFleetSecret(data);
  const credFile = path.join(dir, "pi.json");
  const { writeFileSync } = await import("node:fs");
  writeFileSync(credFile, JSON.stringify({ ...issueCredential(secret, "node", "pi"), url }), { mode: 0o600 });
  await procs.start(["node", "--credentials", credFile, "--node-id", "pi", "--data-dir", path.join(dir, "pi")]);

  const submitter = await connectMqtt({ url, ...issueCredential(secret, "submitter", "alice"), logger: silentLogger, reconnectMinMs: 50, reconnectMaxMs: 100 });
  t.after(() => submitter.endAsync(true));
  const results = new Map<string, Result>();
  submitter.on("message", (topic, p) => topic.endsWith("/result") && results.set(topic.split("/")[5]!, JSON.parse(p.toString())));
  const submit = async (id: string) => {
    await submitter.subscribeAsync(topics.taskResult(submitterOf(submitter), id), { qos: 1 });
    await submitter.publishAsync(topics.submit(submitterOf(submitter)), encode({ id, prompt: "add 2 3 =", skill: "add", maxTokens: 8 }), { qos: 1 });
  };
  await submit("before-crash");
  for (let i = 0; i < 200 && !results.has("before-crash"); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(results.get("before-crash")?.status, "ok");

  // The crash: the embedded broker dies with the coordinator, the node starts backing off.
  coordinator.kill("SIGKILL");
  await once(coordinator, "exit");
  await new Promise((r) => setTimeout(r, 1500));
  coordinator = await procs.start(coordArgs);
  // Submitted as soon as the coordinator is back, before the node has reconnected.
  for (const id of ["after-1", "after-2", "after-3"]) await submit(id);
  for (let i = 0; i < 600 && ["after-1", "after-2", "after-3"].some((id) => !results.has(id)); i++) await new Promise((r) => setTimeout(r, 25));
  for (const id of ["after-1", "after-2", "after-3"]) {
    const r = results.get(id);
    assert.equal(r?.status, "ok", `${id}: ${JSON.stringify(r)}`);
    assert.equal(r?.nodeId, "pi");
  }
});
