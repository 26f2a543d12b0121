import { defineErrors } from "../../common/errors.ts";

/** Error codes of the distillation job and its gate (trainer/distil/); documented in docs/errors.md. */
export const DistilErrors = defineErrors("distil", {
  DISTIL_SPEC_INVALID: "A distillation job's spec failed validation (every problem is listed), or the CLI's --parent flag is malformed.",
  DISTIL_EXPERIENCES_INVALID: "The experiences file could not be read, or a line is not JSON or not an experience; the message names the line.",
  DISTIL_NO_DATA: "After curation (verified successes of the parents, gate prompts removed) and verified sampling nothing is left to train on.",
  DISTIL_PARENT_INVALID: "A parent model could not be read as a GGUF llama model, or a LoRA job's base is missing.",
  DISTIL_CANCELLED: "The job was cancelled; training stopped after the current step and left a checkpoint that a new start of the same job resumes from.",
  DISTIL_WORKER_CRASHED: "The job's worker process exited without a result (killed, out of memory, a llama.cpp abort); the checkpoint, if any, is resumed by a new start.",
  DISTIL_WORKER_FAILED: "The job's worker reported an unexpected failure; the message carries the cause.",
  DISTIL_CHILD_INVALID: "A child another machine trained (a trainer node's upload) failed the model gate: it is never opened by llama.cpp, and the job ends without a child.",
  DISTIL_IPC_INVALID: "The worker sent a message that does not match the job's IPC schema.",
});
