// `colony fleet` (npm start) as a real process with the committed seed models: it gets ready, and
// tasks submitted over MQTT with the submitter credential it printed are won by the agent whose
// skill fits and pass the coordinator's check of the skill.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { decode, encode, topics, ResultSchema, type Result } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import { getSkill } from "../../skills/index.ts";
import { loadAgents } from "../../node/agents/agents-file.ts";

test("colony fleet: ready, prints working credentials; seed agents win their skills' tasks and pass the checks", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-fleet-seed-"));
  const child = spawn(process.execPath, ["bin/colony.mjs", "fleet", "--port", "0", "--data-dir", dir], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COLONY_LOG_LEVEL: "warn" } });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  try {
    const ready = await new Promise<{ url: string; submitter: { username: string; password: string }; agents: string[] }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fleet not ready in 90 s: ${stderr.slice(-2000)}`)), 90_000);
      readline.createInterface({ input: child.stdout }).on("line", (l) => {
        if (!l.includes('"ready":true')) return;
        clearTimeout(t);
        resolve(JSON.parse(l));
      });
      child.once("exit", (code) => reject(new Error(`fleet exited ${code}: ${stderr.slice(-2000)}`)));
    });
    assert.match(stderr, /mosquitto_pub -h 127\.0\.0\.1 -p \d+ -u 'submitter\.demo' -P '[^']+' -q 1 -t 'colony\/v1\/tasks\/submit'/);
    assert.match(stderr, /colony submit --url mqtt:\/\//);
    const spec = loadAgents(undefined);
    assert.deepEqual(ready.agents, spec.genomes.map((g) => g.id));

    const s = await connectMqtt({ url: ready.url, ...ready.submitter, logger: silentLogger });
    const results = new Map<string, Result>();
    s.on("message", (_t, p) => {
      const m = decode(ResultSchema, p);
      if (m.ok) results.set(m.value.id, m.value);
    });
    const rng = new Rng("fleet-seed");
    const tasks: Array<{ id: string; skill: string; agent: string }> = [];
    for (const g of spec.genomes) {
      for (const skill of g.skills) {
        for (let i = 0; i < 3; i++) {
          const inst = getSkill(skill).generate(rng);
          const id = `seed-${skill}-${i}`;
          tasks.push({ id, skill, agent: g.id });
          await s.subscribeAsync(topics.taskResult(id), { qos: 1 });
          await s.publishAsync(topics.submit, encode({ id, prompt: inst.prompt, skill, maxTokens: getSkill(skill).maxAnswerChars + 2, check: getSkill(skill).toCheck(inst) }), { qos: 1 });
        }
        // In waves: the local node's profile queues a few tasks and declines beyond (queue-full).
        for (let i = 0; i < 600 && results.size < tasks.length; i++) await new Promise((r) => setTimeout(r, 50));
      }
    }
    await s.endAsync();
    assert.equal(results.size, tasks.length, "every task has a result");
    let passed = 0;
    for (const t of tasks) {
      const r = results.get(t.id)!;
      assert.equal(r.status, "ok", JSON.stringify(r));
      assert.equal(r.agentId, t.agent, `${t.id} won by the agent with skill ${t.skill}`);
      if (r.checked) passed++;
    }
    // The seed models score >= 95% on held-out instances; allow one miss in a handful.
    assert.ok(passed >= tasks.length - 1, `${passed}/${tasks.length} passed their checks`);
    // SIGTERM shuts the fleet down cleanly.
    child.kill("SIGTERM");
    const code = await new Promise((r) => child.once("exit", r));
    assert.equal(code, 0, stderr.slice(-2000));
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
