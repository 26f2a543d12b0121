import { readFileSync } from "node:fs";
import { ColonyError } from "../common/errors.ts";
import { Rng } from "../common/random.ts";
import { TrainErrors } from "./errors.ts";

/**
 * Training data: JSONL, one `{"prompt": "...", "completion": "..."}` object per line (blank lines
 * are skipped). Every problem names its 1-based line so a user can fix the file; the first problem
 * stops the load (a later line is rarely worth reading once the format is wrong).
 */
export interface Pair {
  prompt: string;
  completion: string;
  /** 1-based line in the source file (0 for pairs built in memory). */
  line: number;
}

/** What the dataset needs from a tokenizer (trainer/tokenizer.ts fits it). */
export interface TextCodec {
  encode(text: string): number[];
  readonly bosId: number;
  readonly eosId: number;
}

/** One training sequence: input tokens, next-token targets, and a 0/1 loss mask over positions. */
export interface Example {
  tokens: number[];
  targets: number[];
  /** 1 where the loss counts (completion tokens and EOS), 0 elsewhere. */
  mask: number[];
  line: number;
}

/** Largest accepted line, so a stray binary file fails with a clear code instead of eating memory. */
const MAX_LINE_CHARS = 1 << 20;

export function parseJsonl(text: string, source = "data"): Pair[] {
  const pairs: Pair[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = i + 1;
    if (raw.trim() === "") continue;
    if (raw.length > MAX_LINE_CHARS) {
      throw new ColonyError(TrainErrors.TRAIN_DATASET_LINE_INVALID, `${source}:${line}: line longer than ${MAX_LINE_CHARS} characters`, { line });
    }
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new ColonyError(TrainErrors.TRAIN_DATASET_LINE_NOT_JSON, `${source}:${line}: not valid JSON (${(err as Error).message})`, { line });
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ColonyError(TrainErrors.TRAIN_DATASET_LINE_INVALID, `${source}:${line}: expected an object {"prompt": string, "completion": string}`, { line });
    }
    const { prompt, completion } = value as Record<string, unknown>;
    if (typeof prompt !== "string") {
      throw new ColonyError(TrainErrors.TRAIN_DATASET_LINE_INVALID, `${source}:${line}: "prompt" must be a string`, { line });
    }
    if (typeof completion !== "string" || completion.length === 0) {
      throw new ColonyError(TrainErrors.TRAIN_DATASET_LINE_INVALID, `${source}:${line}: "completion" must be a non-empty string`, { line });
    }
    pairs.push({ prompt, completion, line });
  }
  if (pairs.length === 0) throw new ColonyError(TrainErrors.TRAIN_DATASET_EMPTY, `${source}: no example (the file is empty or blank)`);
  return pairs;
}

export function readJsonlFile(file: string): Pair[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ColonyError(TrainErrors.TRAIN_DATASET_UNREADABLE, `cannot read training data ${file}: ${(err as Error).message}`);
  }
  return parseJsonl(text, file);
}

/**
 * Tokenizes pairs as llama.cpp will see them at inference: BOS + prompt, then the completion and
 * EOS. The prompt and completion are encoded separately because at inference the prompt is
 * tokenized alone and the completion is produced token by token. The loss mask is 1 only where the
 * target is a completion token or the EOS: the model is taught to answer, not to write prompts.
 */
export function encodePairs(pairs: readonly Pair[], codec: TextCodec, contextLength: number, opts: { addBos?: boolean } = {}): Example[] {
  const addBos = opts.addBos ?? true;
  return pairs.map((p) => {
    const promptIds = (addBos ? [codec.bosId] : []).concat(codec.encode(p.prompt));
    const completionIds = codec.encode(p.completion).concat([codec.eosId]);
    const seq = promptIds.concat(completionIds);
    // The model reads seq[0..n-2] and predicts seq[1..n-1]; it needs n-1 context positions.
    if (seq.length - 1 > contextLength) {
      throw new ColonyError(
        TrainErrors.TRAIN_EXAMPLE_TOO_LONG,
        `line ${p.line}: ${seq.length} tokens (BOS + prompt + completion + EOS) do not fit the context length ${contextLength}`,
        { line: p.line, tokens: seq.length, contextLength },
      );
    }
    const tokens = seq.slice(0, -1);
    const targets = seq.slice(1);
    const mask = new Array<number>(targets.length).fill(0);
    for (let t = promptIds.length - 1; t < targets.length; t++) mask[t] = 1;
    return { tokens, targets, mask, line: p.line };
  });
}

/**
 * Fisher-Yates permutation of 0..n-1 drawn from a generator seeded with (seed, epoch): the data
 * order is a pure function of those two numbers, so a resumed run needs no generator state.
 */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Rng(`data-order:${seed}:${epoch}`).shuffle(Array.from({ length: n }, (_, i) => i));
  return Uint32Array.from(order);
}

/** Where the sampler stands; saved in checkpoints so a resumed run sees the same batches. */
export interface SamplerPosition {
  epoch: number;
  cursor: number;
}

/**
 * Draws batches of examples in a seeded shuffled order, epoch after epoch. A batch never spans two
 * epochs' permutations partially in a way that depends on history: the position (epoch, cursor)
 * fully determines the next batch, which is what makes resume identical to an uninterrupted run.
 */
export class BatchSampler {
  private perm: Uint32Array;
  position: SamplerPosition;
  constructor(private readonly examples: readonly Example[], readonly batchSize: number, readonly seed: number, position: SamplerPosition = { epoch: 0, cursor: 0 }) {
    this.position = { ...position };
    this.perm = epochPermutation(examples.length, seed, this.position.epoch);
  }

  next(): Example[] {
    const out: Example[] = [];
    while (out.length < this.batchSize) {
      if (this.position.cursor >= this.perm.length) {
        this.position = { epoch: this.position.epoch + 1, cursor: 0 };
        this.perm = epochPermutation(this.examples.length, this.seed, this.position.epoch);
      }
      out.push(this.examples[this.perm[this.position.cursor]!]!);
      this.position.cursor++;
    }
    return out;
  }
}
