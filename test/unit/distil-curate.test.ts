import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { curate, datasetSha256, experienceCandidate, parseExperienceLines, reservedGateSlice, type Candidate } from "../../trainer/distil/curate.ts";
import { parseDistilSpec } from "../../trainer/distil/spec.ts";
import { judgeGate, type GateSets } from "../../trainer/distil/gate.ts";
import { GateReportSchema } from "../../common/gate-report.ts";

const c = (skill: string, prompt: string, completion: string, over: Partial<Candidate> = {}): Candidate => ({ skill, prompt, completion, verified: true, agentId: "a", at: 0, ...over });
const base = { skills: ["add", "reverse"], agents: new Set(["a", "b"]), exclude: new Map<string, Set<string>>(), seed: 1 };

test("keeps verified successes of the parents on the job's skills only", () => {
  const r = curate([
    c("add", "add 1 2 =", " 3"),
    c("add", "add 2 2 =", " 4", { verified: false }),
    c("add", "add 3 2 =", " 5", { agentId: "stranger" }),
    c("sort", "sort 2 1 =", " 1 2"),
    c("reverse", "reverse ab =", " "),
    c("reverse", "reverse abc =", " cba", { agentId: "b" }),
  ], base);
  assert.deepEqual(r.pairs, [{ skill: "add", prompt: "add 1 2 =", completion: " 3" }, { skill: "reverse", prompt: "reverse abc =", completion: " cba" }]);
  assert.deepEqual(r.counts, { add: 1, reverse: 1 });
  assert.deepEqual(r.dropped, { unverified: 1, otherSkill: 1, otherAgent: 1, gate: 0, duplicate: 0, empty: 1, capped: 0 });
});

test("deduplicates by prompt+output and by prompt, keeping the earliest", () => {
  const r = curate([c("add", "add 1 2 =", " 3", { at: 5 }), c("add", "add 1 2 =", " 3", { at: 1, agentId: "b" }), c("add", "add 1 2 =", " 03", { at: 0 })], { ...base, skills: ["add"] });
  assert.deepEqual(r.pairs.map((p) => p.completion), [" 03"]);
  assert.equal(r.dropped.duplicate, 2);
});

test("never includes a gate prompt", () => {
  const r = curate([c("add", "add 1 2 =", " 3"), c("add", "add 9 9 =", " 18")], { ...base, skills: ["add"], exclude: new Map([["add", new Set(["add 9 9 ="])]]) });
  assert.deepEqual(r.pairs.map((p) => p.prompt), ["add 1 2 ="]);
  assert.equal(r.dropped.gate, 1);
});

test("balances skills: smallest x factor, or an explicit cap; the choice is seeded", () => {
  const many = Array.from({ length: 50 }, (_, i) => c("add", `add ${i} 0 =`, ` ${i}`));
  const few = Array.from({ length: 5 }, (_, i) => c("reverse", `reverse ${"abcde"[i]} =`, ` ${"abcde"[i]}`));
  const r = curate([...many, ...few], { ...base, balanceFactor: 2 });
  assert.deepEqual(r.counts, { add: 10, reverse: 5 });
  assert.equal(r.dropped.capped, 40);
  const same = curate([...few, ...many].reverse(), { ...base, balanceFactor: 2 });
  assert.equal(same.sha256, r.sha256, "input order does not change the dataset");
  const other = curate([...many, ...few], { ...base, balanceFactor: 2, seed: 2 });
  assert.notEqual(other.sha256, r.sha256, "another seed keeps other pairs");
  const capped = curate([...many, ...few], { ...base, perSkillCap: 3 });
  assert.deepEqual(capped.counts, { add: 3, reverse: 3 });
});

test("the sha256 is of the canonical dataset", () => {
  const r = curate([c("reverse", "reverse ab =", " ba"), c("add", "add 1 2 =", " 3")], base);
  assert.equal(r.sha256, datasetSha256([...r.pairs].reverse()));
  assert.match(r.sha256, /^[0-9a-f]{64}$/);
});

test("parses export lines, prefers the exported completion, and names a bad line", () => {
  const line = { taskId: "t1", attempt: 1, skill: "add", prompt: "add 1 2 =", output: "3", completion: " 3", verdict: { success: true, source: "feedback" }, cost: {}, agentId: "a", nodeId: "n", submitter: "u", at: 1 };
  const [e] = parseExperienceLines(JSON.stringify(line) + "\n\n");
  assert.equal(experienceCandidate(e!).completion, " 3");
  assert.equal(experienceCandidate(e!).verified, true);
  assert.equal(experienceCandidate({ ...e!, verdict: { success: true, source: "delivery" } }).verified, false, "a bare delivery is not proof");
  assert.throws(() => parseExperienceLines(JSON.stringify(line) + "\n{oops"), (err: ColonyError) => err.code === "DISTIL_EXPERIENCES_INVALID" && /:2:/.test(err.message));
  assert.throws(() => parseExperienceLines(JSON.stringify({ ...line, extra: 1 })), (err: ColonyError) => err.code === "DISTIL_EXPERIENCES_INVALID");
});

test("the reserved gate slice is deterministic and only verified successes", () => {
  const exps = Array.from({ length: 200 }, (_, i) => ({ skill: "~c3", prompt: `q${i}`, output: `a${i}`, verdict: { success: i % 3 !== 0, source: "check" as const } }));
  const a = reservedGateSlice(exps, "~c3", 10, "s");
  assert.equal(a.length, 10);
  assert.deepEqual(reservedGateSlice([...exps].reverse(), "~c3", 10, "s"), a);
  for (const x of a) assert.notEqual(Number(x.prompt.slice(1)) % 3, 0);
});

test("the spec fills defaults and lists every problem", () => {
  const s = parseDistilSpec({ jobId: "j1", jobDir: "/tmp/j", experiences: "e.jsonl", parents: [{ agentId: "a", modelFile: "m.gguf" }], skills: ["add"] });
  assert.equal(s.mode, "full");
  assert.deepEqual(s.gate, { perSkill: 200, margin: 0.01, seed: "distil-gate" });
  assert.ok(Object.isFrozen(s));
  assert.throws(() => parseDistilSpec({ jobId: "", parents: [], skills: ["Bad!"], steps: 0 }), (err: ColonyError) => err.code === "DISTIL_SPEC_INVALID" && /jobId/.test(err.message) && /parents/.test(err.message) && /steps/.test(err.message));
});

test("the gate passes a child that matches every best parent and fails one that drops a skill", () => {
  const sets: GateSets = { source: "generator", sets: [{ skill: "add", instances: Array(10).fill({ prompt: "", check: () => true }), maxTokens: 4 }, { skill: "reverse", instances: Array(10).fill({ prompt: "", check: () => true }), maxTokens: 4 }] };
  const row = (ok: number) => Array.from({ length: 10 }, (_, i) => i < ok);
  const parents = [{ agentId: "p-add", answers: [row(10), row(0)] }, { agentId: "p-rev", answers: [row(2), row(9)] }];
  const good = judgeGate({ sets, perSkill: 10, seed: "g", margin: 0.01, child: [row(10), row(9)], parents });
  assert.equal(good.passed, true);
  assert.deepEqual(good.union, { child: 0.95, bestParent: 0.55 });
  assert.equal(good.skills[1]!.best, 0.9);
  GateReportSchema.parse(good);
  const bad = judgeGate({ sets, perSkill: 10, seed: "g", margin: 0.01, child: [row(10), row(8)], parents });
  assert.equal(bad.passed, false);
  assert.match(bad.reasons.join(" "), /reverse/);
  const worse = judgeGate({ sets, perSkill: 10, seed: "g", margin: 1, child: [row(2), row(2)], parents });
  assert.equal(worse.passed, false, "the union rule holds even with a wide margin");
  assert.match(worse.reasons.join(" "), /union/);
});
