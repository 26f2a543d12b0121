import { ColonyError } from "../common/errors.ts";
import { TrainErrors } from "./errors.ts";

/**
 * The model shape a user asks for on the command line, checked before any work starts so an
 * impossible shape fails in milliseconds with every problem listed, not deep inside the model.
 */
export interface ShapeRequest {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  context: number;
}

export function validateShape(s: ShapeRequest): void {
  const problems: string[] = [];
  for (const [name, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v < 1) problems.push(`--${name === "kvHeads" ? "kv-heads" : name} must be an integer >= 1, got ${v}`);
  }
  if (problems.length === 0) {
    if (s.dim % s.heads !== 0) problems.push(`--dim ${s.dim} is not divisible by --heads ${s.heads}`);
    else if ((s.dim / s.heads) % 2 !== 0) problems.push(`head size ${s.dim / s.heads} (dim/heads) must be even for rotary embeddings`);
    if (s.heads % s.kvHeads !== 0) problems.push(`--heads ${s.heads} is not divisible by --kv-heads ${s.kvHeads}`);
    if (s.kvHeads > s.heads) problems.push(`--kv-heads ${s.kvHeads} exceeds --heads ${s.heads}`);
  }
  if (problems.length) throw new ColonyError(TrainErrors.TRAIN_SHAPE_INVALID, `impossible model shape: ${problems.join("; ")}`, { problems });
}
