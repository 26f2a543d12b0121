// Tasks without a skill, routed by the niche of their prompt (docs/scoring.md, "Tasks without a
// skill: niches"): two agents on two nodes, one always right on additions, the other on reversals,
// both bidding the same for every task. With niches the market learns from the checks (or the
// submitter's feedback) whom to send which prompt; without, every unlabeled task shares the key
// "*" and routing stays near chance. Harness: test/fixtures/market-harness.ts (fake clock).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { topics } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import { NicheClusterer } from "../../coordinator/evolution/niches.ts";
import { getSkill } from "../../skills/index.ts";
import { setup, USER } from "../fixtures/market-harness.ts";

type Harness = Awaited<ReturnType<typeof setup>>;
const ADD = { nodeId: "n-add", agentId: "n-add.a" };
const REV = { nodeId: "n-rev", agentId: "n-rev.a" };
/** The agent that answers a skill right; the other answers it wrong. */
const expert = (skill: string) => (skill === "add" ? ADD : REV);

function nichesPart() {
  const c = new NicheClusterer();
  return { niches: { classify: (p: string) => c.assign(p).key } };
}

/**
 * Runs `n` unlabeled tasks (add or reverse prompts, seeded) one after the other; each agent answers
 * right only on its own skill. `verdict`: the task carries the skill's check, or none and the
 * submitter sends feedback after the result. Returns, per task, whether it went to the expert.
 */
async function route(h: Harness, n: number, rng: Rng, verdict: "check" | "feedback", tag: string): Promise<{ skill: string; expert: boolean; niche?: string }[]> {
  const routed: { skill: string; expert: boolean; niche?: string }[] = [];
  for (let i = 0; i < n; i++) {
    const skill = rng.int(0, 1) === 0 ? "add" : "reverse";
    const inst = getSkill(skill).generate(rng);
    const id = `${tag}-${i}`;
    await h.submit({ id, prompt: inst.prompt, ...(verdict === "check" ? { check: getSkill(skill).toCheck(inst) } : {}) });
    const a = h.announces().find((x) => x.taskId === id);
    assert.ok(a, `announce of ${id}`);
    h.bid(ADD.nodeId, a, {}, ADD.agentId);
    h.bid(REV.nodeId, a, {}, REV.agentId);
    const winner = [ADD, REV].find((ag) => h.award(ag.nodeId).some((w) => w.taskId === id))!;
    const aw = h.award(winner.nodeId).find((w) => w.taskId === id);
    h.ack(winner.nodeId, aw);
    const right = winner === expert(skill);
    h.done(winner.nodeId, aw, right ? inst.answer : " wrong");
    await h.until(() => h.results(id).length === 1, `result of ${id}`);
    if (verdict === "feedback") await h.feedback.onFeedback(USER, id, { success: right });
    routed.push({ skill, expert: right, ...(a.niche ? { niche: a.niche } : {}) });
  }
  return routed;
}

const share = (xs: { expert: boolean }[]) => xs.filter((x) => x.expert).length / xs.length;

async function measure(niches: boolean, verdict: "check" | "feedback") {
  const h = await setup({}, undefined, {}, niches ? nichesPart() : {});
  h.node(ADD.nodeId, ADD.agentId);
  h.node(REV.nodeId, REV.agentId);
  const rng = new Rng(`market-niches-${verdict}`);
  await route(h, 40, rng, verdict, "learn");
  const late = await route(h, 100, rng, verdict, "eval");
  const byskill = (s: string) => share(late.filter((x) => x.skill === s));
  const r = { add: byskill("add"), reverse: byskill("reverse"), all: share(late), niches: new Set(late.map((x) => x.niche)), h };
  return r;
}

for (const verdict of ["check", "feedback"] as const) {
  test(`unlabeled add and reverse prompts go to the right agent once niches learned from ${verdict === "check" ? "checks" : "feedback"}; without niches, near chance`, async (t) => {
    const on = await measure(true, verdict);
    const off = await measure(false, verdict);
    const fmt = (r: typeof on) => `add ${r.add.toFixed(2)}, reverse ${r.reverse.toFixed(2)}, all ${r.all.toFixed(2)}`;
    // Reported for the record (docs/scoring.md quotes these figures).
    t.diagnostic(`routing after 40 learning tasks (${verdict}): niches on: ${fmt(on)}; off: ${fmt(off)}`);
    assert.ok(on.add >= 0.9 && on.reverse >= 0.9, `with niches: ${fmt(on)}`);
    assert.equal(on.niches.size, 2, "two niches, one per kind of prompt");
    assert.deepEqual([...off.niches], [undefined], "no niche on the announce without niches");
    assert.ok(off.all <= 0.7, `without niches routing stays near chance: ${fmt(off)}`);
    assert.ok(on.all - off.all >= 0.3, `a clear gap: on ${fmt(on)}, off ${fmt(off)}`);
    // The node that ran a task hears its verdict with the record under the niche, not under a skill.
    const v = on.h.on(topics.nodeVerdict(ADD.nodeId)).map((m) => m.msg).at(-1);
    assert.match(v.niche, /^~c\d+$/);
    assert.equal(v.skill, undefined);
    assert.deepEqual(v.record, on.h.reputation.record(ADD, v.niche));
    await on.h.close();
    await off.h.close();
  });
}

test("a labeled task keeps its skill as its key; an unlabeled one stores its niche and a restarted market resumes it under the same niche", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-niches-"));
  try {
    const h1 = await setup({}, dir, {}, nichesPart());
    h1.clock.advance(0); // a fresh store: nobody to wait for
    h1.node("n1");
    await h1.submit({ id: "lab", prompt: "add 1 2 =", skill: "add" });
    await h1.submit({ id: "unl", prompt: "add 1 2 =" });
    const [lab, unl] = h1.announces();
    assert.equal(lab.skill, "add");
    assert.equal(lab.niche, undefined, "a labeled task carries no niche");
    assert.equal((await h1.store.getTask("lab"))?.niche, undefined);
    assert.match(unl.niche, /^~c\d+$/);
    assert.equal((await h1.store.getTask("unl"))?.niche, unl.niche);
    await h1.close(true);
    // Restarted with a fresh clusterer: the task keeps the niche it was accepted with.
    const h2 = await setup({}, dir, {}, { niches: { classify: () => "~c999" } });
    h2.node("n1");
    h2.clock.advance(0);
    await new Promise((r) => setImmediate(r)); // the gate opens in a microtask
    const resumed = h2.announces().find((a) => a.taskId === "unl");
    assert.equal(resumed?.niche, unl.niche);
    await h2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
