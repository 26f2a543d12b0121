import { defineErrors } from "../common/errors.ts";

/** Error codes of the trainer (dataset, shapes, checkpoints, distillation); documented in docs/errors.md. */
export const TrainErrors = defineErrors("trainer", {
  TRAIN_DATASET_UNREADABLE: "The training data file could not be read.",
  TRAIN_DATASET_EMPTY: "The training data file holds no example (only blank lines, or nothing).",
  TRAIN_DATASET_LINE_NOT_JSON: "A line of the JSONL training data is not valid JSON; the message names the line.",
  TRAIN_DATASET_LINE_INVALID: "A line of the training data is JSON but not an object with string fields prompt and completion (completion non-empty); the message names the line.",
  TRAIN_EXAMPLE_TOO_LONG: "An example's tokens (prompt + completion + EOS) do not fit the model's context length; the message names the line.",
  TRAIN_SHAPE_INVALID: "The model shape is impossible (e.g. dim not divisible by heads, heads not divisible by kv-heads, a size below 1).",
  TRAIN_OPTIONS_INVALID: "A training option (steps, batch, learning rate, threads, ...) is out of range.",
  TRAIN_CHECKPOINT_UNREADABLE: "A checkpoint file could not be read.",
  TRAIN_CHECKPOINT_INVALID: "A checkpoint file is corrupt, truncated, of an unknown version, or does not match the model being trained.",
  TRAIN_INTERRUPTED: "Training was stopped by SIGINT/SIGTERM; a checkpoint was saved and the message says how to resume.",
  TRAIN_LOSS_NOT_FINITE: "The training loss became NaN or infinite (learning rate too high, or bad data); training stopped.",
  TRAIN_DISTILL_VOCAB_MISMATCH: "Logit-level distillation needs the teacher and the student to share one vocabulary; they do not.",
  TRAIN_DISTILL_TEACHER_FAILED: "The teacher model could not be loaded or run through llama.cpp.",
});
