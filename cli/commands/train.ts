import type { Command } from "commander";
import { ColonyError, CommonErrors } from "../../common/errors.ts";

/**
 * `colony train`: trains a small llama model (or a LoRA adapter on a base GGUF) from a JSONL file of
 * {"prompt","completion"} pairs and writes a GGUF that llama.cpp loads. Heavy modules load inside
 * the action so `colony --help` stays fast.
 */
interface TrainFlags {
  data: string;
  out: string;
  dim: string;
  layers: string;
  heads: string;
  kvHeads?: string;
  ffn?: string;
  context: string;
  steps: string;
  batch: string;
  lr: string;
  warmup?: string;
  seed: string;
  threads?: string;
  resume?: string;
  checkpoint?: string;
  checkpointEvery: string;
  loraBase?: string;
  loraRank: string;
  name?: string;
  progress?: boolean;
}

function num(name: string, value: string, integer: boolean): number {
  const ok = integer ? /^-?\d+$/.test(value) : /^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(value);
  if (!ok) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `--${name} must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(value)}`);
  return Number(value);
}

export function register(program: Command): void {
  program
    .command("train")
    .description("train a small llama model (or a LoRA adapter) on JSONL prompt/completion pairs and write a GGUF")
    .requiredOption("--data <file>", 'training data: JSONL, one {"prompt": "...", "completion": "..."} per line')
    .requiredOption("--out <file>", "GGUF file to write (the model, or the adapter with --lora-base)")
    .option("--dim <n>", "embedding width", "64")
    .option("--layers <n>", "number of transformer blocks", "2")
    .option("--heads <n>", "attention heads (must divide --dim, head size even)", "4")
    .option("--kv-heads <n>", "key/value heads (must divide --heads); default = --heads")
    .option("--ffn <n>", "feed-forward hidden width; default 3 x --dim")
    .option("--context <n>", "context length in tokens (every example must fit)", "64")
    .option("--steps <n>", "optimizer steps", "500")
    .option("--batch <n>", "examples per step", "16")
    .option("--lr <x>", "peak learning rate (warmup, then cosine to lr/10)", "0.003")
    .option("--warmup <n>", "warmup steps; default min(100, steps/10)")
    .option("--seed <n>", "seed for weights and data order (same seed + data -> identical model)", "1")
    .option("--threads <n>", "CPU threads for the trainer's kernels; default: all cores")
    .option("--resume <ckpt>", "resume from a checkpoint written by an earlier run with the same settings")
    .option("--checkpoint <file>", "where checkpoints go; default OUT.ckpt")
    .option("--checkpoint-every <n>", "save a checkpoint every N steps (0 = only at the end)", "0")
    .option("--lora-base <gguf>", "train a LoRA adapter on this base model instead of a new model")
    .option("--lora-rank <r>", "LoRA rank", "8")
    .option("--name <name>", "general.name written into the GGUF")
    .option("--progress", "draw the progress bar even when stderr is not a terminal")
    .action(async (f: TrainFlags) => {
      const { runTrainCommand } = await import("../train/run.ts");
      const shape = {
        dim: num("dim", f.dim, true),
        layers: num("layers", f.layers, true),
        heads: num("heads", f.heads, true),
        kvHeads: f.kvHeads === undefined ? num("heads", f.heads, true) : num("kv-heads", f.kvHeads, true),
        ffn: f.ffn === undefined ? 3 * num("dim", f.dim, true) : num("ffn", f.ffn, true),
        context: num("context", f.context, true),
      };
      await runTrainCommand({
        data: f.data,
        out: f.out,
        shape,
        steps: num("steps", f.steps, true),
        batch: num("batch", f.batch, true),
        lr: num("lr", f.lr, false),
        warmup: f.warmup === undefined ? undefined : num("warmup", f.warmup, true),
        seed: num("seed", f.seed, true),
        threads: f.threads === undefined ? undefined : num("threads", f.threads, true),
        resume: f.resume,
        checkpoint: f.checkpoint ?? `${f.out}.ckpt`,
        checkpointEvery: num("checkpoint-every", f.checkpointEvery, true),
        loraBase: f.loraBase,
        loraRank: num("lora-rank", f.loraRank, true),
        name: f.name,
        progress: f.progress === true,
      });
    });
}
