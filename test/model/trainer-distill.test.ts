import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { getLlama, type Llama } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { getSkill, heldOutInstances } from "../../skills/index.ts";
import { encodePairs } from "../../trainer/dataset.ts";
import { teacherPairs, withSoftTargets } from "../../trainer/distill.ts";
import { LlamaModel } from "../../trainer/model.ts";
import { seedTokenizer, SEED_CONTEXT } from "../../trainer/seed-eval.ts";
import { LlamaTeacher } from "../../trainer/teacher.ts";
import { Tokenizer } from "../../trainer/tokenizer.ts";
import { train } from "../../trainer/train.ts";

// The teacher is a committed seed specialist run through llama.cpp.
const manifest = JSON.parse(readFileSync("models/seed-manifest.json", "utf8")) as { models: Array<{ file: string; skills: string[] }> };
const entry = manifest.models[0]!;
const skill = getSkill(entry.skills[0]!);
let llama: Llama;
let teacher: LlamaTeacher;

before(async () => {
  llama = await getLlama({ gpu: false, build: "never" });
  teacher = await LlamaTeacher.open(llama, path.join("models", entry.file), { threads: 1, contextSize: 64 });
});
after(async () => {
  await teacher.close();
  await teacher.close(); // idempotent
  await llama.dispose();
});

test("sequence level: the teacher's greedy answers become training pairs", async () => {
  const instances = heldOutInstances(skill, 10, "distill-test");
  const pairs = await teacherPairs(teacher, instances.map((i) => i.prompt), skill.maxAnswerChars + 2);
  assert.equal(pairs.length, 10);
  const right = pairs.filter((p, i) => skill.check(p.completion, instances[i]!)).length;
  assert.ok(right >= 8, `teacher got ${right}/10`);
});

test("logit level: soft targets are the teacher's distributions, aligned with its greedy choice", async () => {
  const tokenizer = seedTokenizer();
  const [inst] = heldOutInstances(skill, 1, "distill-soft");
  const answer = await teacher.complete(inst!.prompt, skill.maxAnswerChars + 2);
  const [ex] = encodePairs([{ prompt: inst!.prompt, completion: answer, line: 1 }], tokenizer, SEED_CONTEXT);
  const [soft] = await withSoftTargets(teacher, tokenizer, [ex!], 0.5);
  const V = tokenizer.vocabSize;
  const T = ex!.tokens.length;
  assert.equal(soft!.softTargets!.length, T * V);
  for (let t = 0; t < T; t++) {
    let sum = 0;
    for (let j = 0; j < V; j++) sum += soft!.softTargets![t * V + j]!;
    assert.ok(Math.abs(sum - 1) < 1e-4, `row ${t} sums to ${sum}`);
  }
  // Where the answer starts, the teacher's most likely token is the one it generated greedily.
  const t0 = ex!.mask.indexOf(1);
  let best = 0;
  for (let j = 1; j < V; j++) if (soft!.softTargets![t0 * V + j]! > soft!.softTargets![t0 * V + best]!) best = j;
  assert.equal(best, ex!.targets[t0]);

  // A student trained on the soft targets lowers its loss.
  const config = { vocabSize: V, dim: 16, nLayers: 1, nHeads: 2, nKvHeads: 2, ffnDim: 32, contextLength: SEED_CONTEXT, normEps: 1e-5, ropeTheta: 10000 };
  const student = LlamaModel.init(config, new Rng(1));
  const r = await train(student, [soft!], { steps: 20, batchSize: 1, lr: 1e-2, seed: 1, config, progress: false });
  assert.ok(r.losses.at(-1)! < r.losses[0]! * 0.7, `loss ${r.losses[0]} -> ${r.losses.at(-1)}`);
});

test("logit level refuses a student with another vocabulary", async () => {
  const other = Tokenizer.fromTexts(["xyz"]);
  const [ex] = encodePairs([{ prompt: "x", completion: "y", line: 1 }], other, 8);
  await assert.rejects(withSoftTargets(teacher, other, [ex!], 0.5), (e: unknown) => e instanceof ColonyError && e.code === "TRAIN_DISTILL_VOCAB_MISMATCH");
});
