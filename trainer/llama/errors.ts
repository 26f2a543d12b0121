import { defineErrors } from "../../common/errors.ts";

/**
 * Error codes of the TypeScript llama model (tokenizer, model, GGUF export/import, LoRA).
 * Kept apart from trainer/errors.ts (the training loop's codes) so both areas can evolve alone;
 * documented in docs/errors.md under "Model".
 */
export const ModelErrors = defineErrors("model", {
  MODEL_CONFIG_INVALID: "A LlamaConfig is impossible (a size below 1, dim not divisible by heads, heads not divisible by kv-heads, odd head size, non-positive eps or rope base).",
  MODEL_TOKEN_INVALID: "A token id is not an integer in [0, vocabSize), or a token sequence is empty.",
  MODEL_SEQUENCE_TOO_LONG: "A token sequence is longer than the model's context length.",
  MODEL_BATCH_INVALID: "A forwardBackward batch item is malformed: targets/mask/softTargets lengths do not match the tokens, or softWeight is outside [0, 1].",
  MODEL_PARAMS_INVALID: "A parameter or gradient map lacks a tensor the model needs, or a tensor has the wrong size.",
  MODEL_GGUF_INVALID: "A GGUF file cannot be loaded as a Colony llama model (missing metadata or tensor, wrong shape, unsupported tensor type).",
  TOKENIZER_INVALID: "Tokenizer input is unusable: no training text, bad options, or GGUF tokenizer metadata that is not a Colony character-level SPM vocabulary.",
  LORA_OPTIONS_INVALID: "LoRA options are impossible: rank below 1, alpha not positive, or a target tensor name the base model does not have.",
});
