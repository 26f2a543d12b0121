import { defineErrors } from "../common/errors.ts";

/** Error codes of the node daemon (documented in docs/errors.md, section "Node"). */
export const NodeErrors = defineErrors("node", {
  PROFILE_INVALID: "A device profile failed validation; every problem is listed.",
  PROFILE_NOT_FOUND: "No device profile of that name exists in firmware-configs/ and no such file exists.",
  AGENTS_FILE_INVALID: "The agents file (or the seed manifest it was built from) failed validation; every problem is listed.",
  AGENTS_NONE: "The node has no agent to host: no agents file and no seed models.",
  MODEL_FILE_INVALID: "A model file is missing, its GGUF header is invalid or the model gate found a fault llama.cpp would refuse or crash on; it was refused before llama.cpp parsed it.",
  MODEL_UNSUPPORTED: "The model is outside what the node's model gate can fully check (an architecture other than llama, a tokenizer other than SPM, an adapter, an unmodelled key or tensor type); set allowUncheckedModels to load it at your own risk.",
  MODEL_HASH_MISMATCH: "The model file's sha256 differs from the #sha256= pinned in its model URI or path.",
  MODEL_URI_INVALID: "A model reference is malformed: its #sha256= suffix is not 64 hex digits, or nothing precedes it.",
  MODEL_LOAD_FAILED: "llama.cpp failed to load a model or create a context.",
  LLAMA_UNAVAILABLE: "The llama.cpp binding could not be loaded (no prebuilt binary for this platform).",
  AGENT_NOT_FOUND: "An award or command named an agent this node does not host.",
  MEMORY_RESERVE: "Loading the model would push free memory below the profile's reserve even after sleeping other agents.",
  TASK_CANCELLED: "The task was cancelled by the coordinator while it ran or waited.",
  TASK_DEADLINE: "The task's deadline passed before it finished on this node.",
  GENERATION_FAILED: "llama.cpp failed while generating the output.",
  PROMPT_EXCEEDS_CONTEXT: "The prompt (after the agent's prompt template) leaves no room in the agent's context for an answer.",
  NODE_NO_COORDINATOR: "Neither --coordinator nor mDNS discovery gave a broker URL.",
});
