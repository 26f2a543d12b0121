/**
 * Base class of every error Colony raises on purpose. `code` is stable (documented in
 * docs/errors.md and checked by test/errors.test.ts); `message` is for people and may change.
 * Each area (coordinator, node, gguf, trainer, ...) defines its codes in its own errors.ts and
 * registers them here, so one test can check that every code is unique and documented.
 */
export class ColonyError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(code: string, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ColonyError";
    this.code = code;
    if (details !== undefined) this.details = details;
  }
  /** The `{code, message}` shape that reaches a submitter or a peer. */
  toWire(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

const registry = new Map<string, { area: string; description: string }>();

/**
 * Registers an area's error codes and returns them as a frozen map (code -> code) so call sites
 * write `GgufErrors.TRUNCATED` instead of a bare string. Throws at import time on a duplicate code.
 */
export function defineErrors<const T extends Record<string, string>>(area: string, codes: T): { readonly [K in keyof T]: K } {
  const out: Record<string, string> = {};
  for (const [code, description] of Object.entries(codes)) {
    const prev = registry.get(code);
    if (prev && prev.area !== area) throw new Error(`error code ${code} defined twice (${prev.area}, ${area})`);
    registry.set(code, { area, description });
    out[code] = code;
  }
  return Object.freeze(out) as { readonly [K in keyof T]: K };
}

export function registeredErrors(): ReadonlyMap<string, { area: string; description: string }> {
  return registry;
}

export const CommonErrors = defineErrors("common", {
  CONFIG_INVALID: "A config file, environment variable or flag failed validation; every problem is listed.",
  CONFIG_FILE_UNREADABLE: "The config file named could not be read or is not valid JSON.",
  CLI_ARGUMENT_INVALID: "A command-line argument is missing or malformed.",
  ALREADY_CLOSED: "A component was used after close().",
  INTERNAL: "An unexpected failure; the message carries the cause.",
  PAYLOAD_TOO_LARGE: "An MQTT payload exceeded the protocol's size limit (64 KiB) and was dropped unread.",
  PAYLOAD_NOT_JSON: "An MQTT payload was not valid UTF-8 JSON.",
  PAYLOAD_INVALID: "An MQTT payload was JSON but did not match its topic's schema (the message lists the first problems).",
  MQTT_AUTH_REFUSED: "The MQTT broker refused the connection: bad or missing username/password, or not authorized.",
  MQTT_CONNECT_TIMEOUT: "No MQTT connection could be made within the connect timeout.",
  MQTT_CONNECT_FAILED: "The MQTT connection failed for another reason (bad URL, broker refused the protocol, network error).",
  CREDENTIALS_FILE_INVALID: "A client credentials file could not be read, is not valid JSON, or lacks username/password.",
  CREDENTIALS_FILE_INSECURE: "A client credentials file is readable by group or others; chmod 600 it.",
  DISCOVERY_TIMEOUT: "No Colony coordinator was found by mDNS within the timeout.",
  DISCOVERY_PROTOCOL_MISMATCH: "Only coordinators speaking another protocol version were found by mDNS.",
  RETAINED_MISSING: "A retained coordinator topic the command reads (stats, lineage, architect decisions) was absent or invalid: the coordinator is not running, that part is off, or the credential may not read it.",
});

/**
 * Pushing models over MQTT (docs/models.md, "Pushing models"): the coordinator's model server and
 * the node's fetcher and model store. The manifest's own codes (MODEL_UNSIGNED,
 * MODEL_SIGNATURE_INVALID, MODEL_FOREIGN_KEY, MODEL_ROLLBACK, ...) are ModelManifestErrors below.
 */
export const ModelTransferErrors = defineErrors("model-transfer", {
  MODEL_NOT_FOUND: "The coordinator's model store holds no model with that sha256.",
  MODEL_RANGE_INVALID: "A model-fetch asked for bytes outside the model (offset + length past its size).",
  MODEL_FETCH_BUSY: "The node has more model-fetch requests waiting at the coordinator than its bound allows; the request was refused (the fetcher asks again).",
  MODEL_FETCH_TIMEOUT: "A model transfer made no progress within the fetcher's timeout (the coordinator is gone or does not answer).",
  MODEL_CHUNK_CORRUPT: "A chunk's bytes did not match its sha256 again and again, beyond the fetcher's retries.",
  MODEL_TRUNCATED: "The fetched model's size differs from its manifest's, or the coordinator's total disagrees with the manifest.",
  MODEL_QUOTA: "The model does not fit the node's model disk quota (device profile modelDiskMB) or the disk's free space, even after removing models no agent uses.",
  MODEL_KEY_MISSING: "The node has no fleet model key (its credential's modelKey) to verify a signed model with.",
});

/**
 * Signed model manifests (common/model-manifest.ts, docs/models.md): what a node, the coordinator's
 * model store and `colony models verify` refuse a model for. MODEL_KEY_MISSING is with
 * ModelTransferErrors above.
 */
export const ModelManifestErrors = defineErrors("model-manifest", {
  MODEL_MANIFEST_INVALID: "A model manifest (or its signed envelope) does not match the manifest schema; the message lists the first problems.",
  MODEL_UNSIGNED: "A model manifest carries no signature.",
  MODEL_SIGNATURE_INVALID: "A model manifest's signature does not verify with the fleet's model key: the manifest or the signature was altered.",
  MODEL_FOREIGN_KEY: "A model manifest names a signing key (keyId) other than this fleet's: it was signed by another fleet or with a rotated fleet secret.",
  MODEL_ROLLBACK: "A model manifest's version is not above a version already accepted for its lineage (the same version with the same sha256 is accepted again).",
  MODEL_KEY_INVALID: "The fleet model key given (a credential's modelKey, --key) is not a 32-byte ed25519 public key in base64url.",
});
