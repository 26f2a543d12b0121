/** The coordinator's model store (coordinator/models/model-store.ts, docs/models.md). */
import { defineErrors } from "../../common/errors.ts";

export const ModelStoreErrors = defineErrors("model-store", {
  MODEL_BASE_MISSING: "An adapter (gguf-lora) was added without a base model, or its base model (`base`, a sha256) is not in the coordinator's model store.",
  MODEL_STORE_BUSY: "The coordinator's model store is held by a running coordinator (its LevelDB is locked): `colony models add` works only while the coordinator is stopped.",
  MODEL_PUSH_FAILED: "`colony models push` failed on the coordinator for an unexpected reason (the message carries it); nodes that already fetched keep the model.",
  MODEL_PUSH_NO_ANSWER: "A node did not answer a push's fetch command within the command layer's timeout and retries, and its transfer (if it started) sent no progress for 30 s (it went offline, or stalled); its rollout row is failed with this code.",
  MODEL_PUSH_TIMEOUT: "`colony models push` got no answer from the coordinator within --timeout-ms (is it running, and is the credential a coordinator's?).",
  MODEL_LINEAGE_CONFLICT: "The model store already holds this file (same sha256) in another lineage; a model belongs to one lineage.",
});
