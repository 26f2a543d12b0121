/**
 * Training loss on the logits of a packed batch and its gradient with respect to the logits.
 *
 * Per counted position t (mask 1, the default):
 *   loss_t = (1 - w) * CE(target_t) + w * KL(teacher_t || softmax(z_t)),   w = softWeight (0 without softTargets)
 *   dloss_t/dz = (1 - w) * (q - onehot(target)) + w * (q - p)            (q = student probs, p = teacher probs)
 * The batch loss is the mean over all counted positions of all items, so the gradient carries 1/count.
 * Sums run in float64 (JS numbers); only the stored gradient is float32.
 */
import { ColonyError } from "../../common/errors.ts";
import { ModelErrors } from "./errors.ts";
import { fastExp } from "./ops.ts";

export interface BatchItem {
  tokens: number[];
  /** targets[t] is the token expected after tokens[0..t]; ignored (any integer) where mask is 0. */
  targets: number[];
  /** 1 = position t counts in the loss, 0 = skip (e.g. prompt tokens). Default: all count. */
  mask?: number[];
  /** [T, vocab] teacher probabilities for KL distillation (rows of skipped positions are ignored). */
  softTargets?: Float32Array;
  /** Weight of the KL term, in [0, 1]; the cross-entropy gets 1 - softWeight. Default 0.5 with softTargets. */
  softWeight?: number;
}

function bad(message: string): ColonyError {
  return new ColonyError(ModelErrors.MODEL_BATCH_INVALID, message);
}

/** Validates the batch's loss inputs (tokens are checked by the model) and counts the positions. */
export function countPositions(batch: readonly BatchItem[], vocab: number): number {
  let count = 0;
  batch.forEach((item, i) => {
    const T = item.tokens.length;
    if (!Array.isArray(item.targets) || item.targets.length !== T) throw bad(`item ${i}: targets length ${item.targets?.length} != tokens length ${T}`);
    if (item.mask !== undefined && item.mask.length !== T) throw bad(`item ${i}: mask length ${item.mask.length} != tokens length ${T}`);
    if (item.softTargets !== undefined && item.softTargets.length !== T * vocab) {
      throw bad(`item ${i}: softTargets length ${item.softTargets.length} != tokens x vocab = ${T * vocab}`);
    }
    if (item.softTargets) {
      for (const p of item.softTargets) if (!(p >= 0 && p <= 1)) throw bad(`item ${i}: softTargets hold ${p}, not a probability`);
    }
    const w = item.softWeight;
    if (w !== undefined && !(w >= 0 && w <= 1)) throw bad(`item ${i}: softWeight ${w} outside [0, 1]`);
    for (let t = 0; t < T; t++) {
      const m = item.mask ? item.mask[t] : 1;
      if (m !== 0 && m !== 1) throw bad(`item ${i}: mask[${t}] = ${m}, expected 0 or 1`);
      if (m === 0) continue;
      const y = item.targets[t]!;
      if (!Number.isInteger(y) || y < 0 || y >= vocab) throw bad(`item ${i}: targets[${t}] = ${y} outside [0, ${vocab})`);
      count++;
    }
  });
  return count;
}

/**
 * Writes dloss/dlogits into `dlogits` (same packing as `logits`, overwritten) and returns the summed
 * (not yet averaged) loss. `invCount` = 1 / total counted positions.
 */
export function lossAndGrad(
  logits: Float32Array, dlogits: Float32Array, batch: readonly BatchItem[], starts: readonly number[], vocab: number, invCount: number,
): number {
  let total = 0;
  dlogits.fill(0);
  batch.forEach((item, i) => {
    const soft = item.softTargets;
    const w = soft ? (item.softWeight ?? 0.5) : 0;
    for (let t = 0; t < item.tokens.length; t++) {
      if (item.mask && item.mask[t] === 0) continue;
      const o = (starts[i]! + t) * vocab;
      let max = -Infinity;
      for (let j = 0; j < vocab; j++) if (logits[o + j]! > max) max = logits[o + j]!;
      let sum = 0;
      for (let j = 0; j < vocab; j++) sum += fastExp(logits[o + j]! - max);
      const lse = max + Math.log(sum);
      const y = item.targets[t]!;
      let loss = (1 - w) * (lse - logits[o + y]!);
      // d/dz of -sum_j p_j log q_j is q * sum(p) - p: use the row's real sum, not 1, so the gradient
      // stays exact for teacher rows that do not sum to 1 in float32.
      let pSum = 0;
      if (soft) for (let j = 0; j < vocab; j++) pSum += soft[t * vocab + j]!;
      const qMul = 1 - w + w * pSum;
      for (let j = 0; j < vocab; j++) {
        const q = fastExp(logits[o + j]! - lse);
        let g = q * qMul - (j === y ? 1 - w : 0);
        if (soft) {
          const p = soft[t * vocab + j]!;
          g -= w * p;
          if (p > 0) loss += w * p * (Math.log(p) - (logits[o + j]! - lse));
        }
        dlogits[o + j] = g * invCount;
      }
      total += loss;
    }
  });
  return total;
}
