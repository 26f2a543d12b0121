import { ColonyError } from "../common/errors.ts";
import type { Example, Pair } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import type { LlamaTeacher } from "./teacher.ts";
import type { Tokenizer } from "./tokenizer.ts";
import type { TrainExample } from "./train.ts";

/**
 * Distillation from any GGUF model that llama.cpp runs.
 *
 * Sequence level: the teacher answers each prompt greedily and the student is trained on those
 * answers as if they were the data (works across vocabularies and architectures).
 * Logit level: the teacher's whole next-token distribution at every position becomes a soft target
 * (KL term in trainer/llama/loss.ts), which carries more information per example than the single
 * token it picked, but needs the two models to share one vocabulary, id for id.
 */

/** Teacher completions for `prompts` as training pairs; prompts the teacher answers with nothing are dropped. */
export async function teacherPairs(teacher: LlamaTeacher, prompts: readonly string[], maxTokens: number): Promise<Pair[]> {
  const out: Pair[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const completion = await teacher.complete(prompts[i]!, maxTokens);
    if (completion.length > 0) out.push({ prompt: prompts[i]!, completion, line: i + 1 });
  }
  return out;
}

/** Throws TRAIN_DISTILL_VOCAB_MISMATCH unless teacher and student tokenizers agree id for id. */
export function assertSameVocabulary(teacher: LlamaTeacher, student: Tokenizer): void {
  const meta = teacher.model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: readonly string[] } } };
  const tokens = meta.tokenizer?.ggml?.tokens;
  if (!tokens || tokens.length !== student.vocabSize) {
    throw new ColonyError(TrainErrors.TRAIN_DISTILL_VOCAB_MISMATCH, `teacher has ${tokens?.length ?? "no"} tokens, the student ${student.vocabSize}`);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] !== student.tokens[i]) {
      throw new ColonyError(TrainErrors.TRAIN_DISTILL_VOCAB_MISMATCH, `token ${i} is ${JSON.stringify(tokens[i])} for the teacher, ${JSON.stringify(student.tokens[i])} for the student`);
    }
  }
}

/**
 * Adds the teacher's next-token distributions to each example (softTargets [T, vocab]) with
 * `softWeight` (the KL share of the loss; the rest stays cross-entropy on the hard targets).
 */
export async function withSoftTargets(teacher: LlamaTeacher, student: Tokenizer, examples: readonly Example[], softWeight: number): Promise<TrainExample[]> {
  assertSameVocabulary(teacher, student);
  if (!(softWeight >= 0 && softWeight <= 1)) throw new ColonyError(TrainErrors.TRAIN_OPTIONS_INVALID, `softWeight must be in [0, 1], got ${softWeight}`);
  const out: TrainExample[] = [];
  for (const ex of examples) {
    const softTargets = await teacher.nextTokenDistributions(ex.tokens);
    out.push({ ...ex, softTargets, softWeight });
  }
  return out;
}
