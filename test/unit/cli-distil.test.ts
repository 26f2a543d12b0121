import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import type { ColonyError } from "../../common/errors.ts";
import { parseParentFlag, specFromFlags, type DistilFlags } from "../../cli/distil/options.ts";
import { parseDistilSpec } from "../../trainer/distil/spec.ts";

test("--parent ID=MODEL.gguf[:skill,skill]", () => {
  assert.deepEqual(parseParentFlag("a1=models/seed-add.gguf:add,reverse"), { agentId: "a1", modelFile: path.resolve("models/seed-add.gguf"), skills: ["add", "reverse"] });
  assert.deepEqual(parseParentFlag("a1=/m/x.gguf"), { agentId: "a1", modelFile: "/m/x.gguf" });
  assert.throws(() => parseParentFlag("no-model"), (err: ColonyError) => err.code === "DISTIL_SPEC_INVALID");
});

test("flags become a valid spec; bad numbers are CLI_ARGUMENT_INVALID", () => {
  const f: DistilFlags = { experiences: "e.jsonl", parent: ["a=m.gguf:add"], skills: "add", out: "/tmp/c.gguf", mode: "full", steps: "10", batch: "8", lr: "0.001", seed: "3", threads: "1", sample: "4", temperature: "0.7", samplePrompts: "50", gatePerSkill: "20", gateMargin: "0.02", gateSeed: "g" };
  const s = parseDistilSpec(specFromFlags(f));
  assert.equal(s.jobDir, "/tmp/c.gguf.job");
  assert.equal(s.out, "/tmp/c.gguf");
  assert.deepEqual(s.sampling, { candidates: 4, temperature: 0.7, prompts: 50 });
  assert.deepEqual(s.gate, { perSkill: 20, margin: 0.02, seed: "g" });
  assert.throws(() => specFromFlags({ ...f, steps: "ten" }), (err: ColonyError) => err.code === "CLI_ARGUMENT_INVALID");
});

test("--list names the trainer node a job trained on, and nothing for this host", async () => {
  const { renderJobs } = await import("../../cli/distil/remote.ts");
  const base = { state: "running" as const, by: "operator" as const, skills: ["add"], parents: [{ agentId: "seed-add", nodeId: "pi" }], reason: "asked", createdAt: 1, updatedAt: 2 };
  const lines = renderJobs([{ ...base, jobId: "j-node", trainer: "pi-kitchen" }, { ...base, jobId: "j-here" }]).split("\n");
  assert.match(lines[0]!, /^j-node running \[add\] from seed-add trained on pi-kitchen$/);
  assert.equal(lines[1], "j-here running [add] from seed-add");
});
