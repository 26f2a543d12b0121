/**
 * Does logit-level distillation reach a given accuracy in fewer steps than output-only training
 * from the same teacher? Both students see the same prompts, the same teacher answers (greedy,
 * through llama.cpp), the same seed and schedule; the logit student also gets the teacher's full
 * next-token distributions (KL term, weight --soft-weight). Accuracy is exact match of the student's
 * greedy answer on held-out instances, checked every --eval-every steps.
 *
 *   npm run bench -- distill [--teacher models/seed-max-sort.gguf] [--skill sort] [--target 0.7]
 *                            [--steps 400] [--eval-every 50] [--dim 32] [--layers 2] [--prompts 1000]
 *
 * Last line: one-line JSON summary (stepsToTarget null = never reached within --steps).
 */
import { parseArgs } from "node:util";
import { getLlama } from "node-llama-cpp";
import { Rng } from "../common/random.ts";
import { getSkill, heldOutInstances, trainingInstances } from "../skills/index.ts";
import { encodePairs } from "../trainer/dataset.ts";
import { teacherPairs, withSoftTargets } from "../trainer/distill.ts";
import { setKernelThreads } from "../trainer/kernels.ts";
import { LlamaModel } from "../trainer/model.ts";
import { SEED_CONTEXT, seedTokenizer } from "../trainer/seed-eval.ts";
import { LlamaTeacher } from "../trainer/teacher.ts";
import { train, type TrainExample } from "../trainer/train.ts";

const { values } = parseArgs({
  options: {
    teacher: { type: "string", default: "models/seed-max-sort.gguf" },
    skill: { type: "string", default: "sort" },
    target: { type: "string", default: "0.7" },
    steps: { type: "string", default: "400" },
    "eval-every": { type: "string", default: "50" },
    "eval-count": { type: "string", default: "100" },
    dim: { type: "string", default: "32" },
    layers: { type: "string", default: "2" },
    prompts: { type: "string", default: "1000" },
    "soft-weight": { type: "string", default: "0.5" },
    batch: { type: "string", default: "16" },
    lr: { type: "string", default: "0.005" },
    threads: { type: "string", default: "1" },
    seed: { type: "string", default: "7" },
  },
});
const n = (k: keyof typeof values) => Number(values[k]);
setKernelThreads(n("threads"));
const skill = getSkill(values.skill!);
const tokenizer = seedTokenizer();
const llama = await getLlama({ gpu: false, build: "never" });
const teacher = await LlamaTeacher.open(llama, values.teacher!, { threads: n("threads"), contextSize: 64 });

const t0 = performance.now();
const prompts = trainingInstances(skill, n("prompts"), "distill-bench").map((i) => i.prompt);
const pairs = await teacherPairs(teacher, prompts, skill.maxAnswerChars + 2);
const hard = encodePairs(pairs, tokenizer, SEED_CONTEXT);
const soft = await withSoftTargets(teacher, tokenizer, hard, n("soft-weight"));
const teacherSeconds = (performance.now() - t0) / 1000;
const heldOut = heldOutInstances(skill, n("eval-count"), "distill-bench-eval");
let teacherRight = 0;
for (const inst of heldOut) if (skill.check(await teacher.complete(inst.prompt, skill.maxAnswerChars + 2), inst)) teacherRight++;
await teacher.close();
await llama.dispose();

function accuracy(model: LlamaModel): number {
  let ok = 0;
  for (const inst of heldOut) {
    const out = model.generate(tokenizer.encode(inst.prompt, { bos: true }), skill.maxAnswerChars + 2, tokenizer.eosId);
    if (skill.check(tokenizer.decode(out), inst)) ok++;
  }
  return ok / heldOut.length;
}

async function run(label: string, examples: TrainExample[]): Promise<{ stepsToTarget: number | null; curve: Array<[number, number]>; seconds: number }> {
  const config = { vocabSize: tokenizer.vocabSize, dim: n("dim"), nLayers: n("layers"), nHeads: 4, nKvHeads: 4, ffnDim: 3 * n("dim"), contextLength: SEED_CONTEXT, normEps: 1e-5, ropeTheta: 10000 };
  const model = LlamaModel.init(config, new Rng(n("seed")));
  const curve: Array<[number, number]> = [];
  let stepsToTarget: number | null = null;
  const every = n("eval-every");
  const t = performance.now();
  // Train in one run (same schedule for both), evaluating from the step callback.
  await train(model, examples, {
    steps: n("steps"), batchSize: n("batch"), lr: n("lr"), seed: n("seed"), config, progress: false,
    onStep: (s) => {
      if (stepsToTarget !== null || s.step % every !== 0) return;
      const acc = accuracy(model);
      curve.push([s.step, acc]);
      process.stderr.write(`${label} step ${s.step} loss ${s.loss.toFixed(4)} accuracy ${acc.toFixed(3)}\n`);
      if (acc >= n("target")) stepsToTarget = s.step;
    },
  });
  return { stepsToTarget, curve, seconds: (performance.now() - t) / 1000 };
}

const outputOnly = await run("output-only", hard);
const logit = await run("logit-kl", soft);
console.log(`teacher ${values.teacher} on ${skill.name}: held-out accuracy ${(teacherRight / heldOut.length).toFixed(3)}; teacher signals for ${pairs.length} prompts in ${teacherSeconds.toFixed(1)} s`);
console.log(`steps to ${values.target}: output-only ${outputOnly.stepsToTarget ?? "not reached"}, logit KL ${logit.stepsToTarget ?? "not reached"} (of ${values.steps})`);
console.log(
  JSON.stringify({
    bench: "distill",
    skill: skill.name,
    teacher: values.teacher,
    teacherAccuracy: teacherRight / heldOut.length,
    target: n("target"),
    maxSteps: n("steps"),
    student: { dim: n("dim"), layers: n("layers") },
    softWeight: n("soft-weight"),
    outputOnlyStepsToTarget: outputOnly.stepsToTarget,
    logitStepsToTarget: logit.stepsToTarget,
    outputOnlyCurve: outputOnly.curve,
    logitCurve: logit.curve,
  }),
);
