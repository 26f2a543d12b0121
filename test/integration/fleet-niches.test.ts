// `colony fleet` (npm start: the four seed agents on one node, real llama.cpp) and tasks WITHOUT a
// skill: "add a b =" and "reverse xyz =" prompts with a check, one after the other. The coordinator
// puts each prompt in a niche, the node picks its agent by the records it hears under that niche
// (exploring the others at first), so after a short learning phase the answers are right.
// With niches off (COLONY_UNLABELED_NICHES=false) this test fails: the node sends the tasks to one or
// two agents, and most answers come back wrong (docs/scoring.md, section 6).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { decode, encode, topics, ResultSchema, type Result } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import { submitterOf } from "../../coordinator/submitter.ts";
import { getSkill } from "../../skills/index.ts";
import { ColonyProcesses } from "../fixtures/colony-process.ts";

type Ready = { url: string; submitter: { username: string; password: string }; agents: string[] };

/** Tasks per skill; the verdict is taken on the last LAST of each. */
const PER_SKILL = 30;
const LAST = 10;

test("colony fleet: unlabeled add and reverse prompts with a check are answered right after a short learning phase", { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-fleet-niches-"));
  const procs = new ColonyProcesses();
  t.after(() => {
    procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const { ready } = await procs.startReady<Ready>(["fleet", "--port", "0", "--data-dir", dir], 90_000);
  const s = await connectMqtt({ url: ready.url, ...ready.submitter, logger: silentLogger });
  t.after(() => s.endAsync());
  const results = new Map<string, Result>();
  s.on("message", (_t, p) => {
    const m = decode(ResultSchema, p);
    if (m.ok) results.set(m.value.id, m.value);
  });
  const user = submitterOf(s);
  await s.subscribeAsync(topics.taskResult(user, "+"), { qos: 1 });

  const rng = new Rng("fleet-niches");
  const outcomes: Record<string, { right: boolean; agentId?: string | undefined }[]> = { add: [], reverse: [] };
  const t0 = performance.now();
  // One at a time: the node hears each verdict before the next announce, as it would learn in use.
  for (let i = 0; i < 2 * PER_SKILL; i++) {
    const skill = i % 2 === 0 ? "add" : "reverse";
    const sk = getSkill(skill);
    const inst = sk.generate(rng);
    const id = `niche-${i}`;
    await s.publishAsync(topics.submit(user), encode({ id, prompt: inst.prompt, maxTokens: sk.maxAnswerChars + 2, check: sk.toCheck(inst) }), { qos: 1 });
    for (let w = 0; w < 400 && !results.has(id); w++) await new Promise((r) => setTimeout(r, 25));
    const r = results.get(id);
    assert.ok(r, `a result for ${id} (${inst.prompt}) within 10 s`);
    // A wrong answer is a result too (CHECK_FAILED): it is what the node learns from.
    assert.ok(r.status === "ok" || r.error?.code === "CHECK_FAILED", JSON.stringify(r));
    outcomes[skill]!.push({ right: r.status === "ok" && r.checked === true, agentId: r.agentId });
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const line = (k: string) => outcomes[k]!.map((o) => (o.right ? "+" : "-")).join("");
  t.diagnostic(`${2 * PER_SKILL} unlabeled tasks in ${seconds} s; add ${line("add")}; reverse ${line("reverse")}`);
  for (const skill of ["add", "reverse"]) {
    const last = outcomes[skill]!.slice(-LAST);
    const right = last.filter((o) => o.right).length;
    assert.ok(right >= LAST - 1, `${skill}: ${right}/${LAST} of the last tasks right (${line(skill)}; agents ${last.map((o) => o.agentId).join(",")})`);
  }
});
