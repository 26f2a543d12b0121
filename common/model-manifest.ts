/**
 * Signed model manifests (docs/models.md). Every model the coordinator's store holds (seed models,
 * distilled children, adapters) has a manifest: its sha256 and size, what it is, where it came from
 * (lineage, version, parents), what it serves (skills) and, for a distilled child, the gate's report.
 * The coordinator signs it with the fleet's model signing key; a node accepts a pushed model only
 * when the signature verifies with the public key its credentials carry (`modelKey`), the key is
 * this fleet's, and the version does not roll its lineage back.
 *
 * The signing key is ed25519, derived from the fleet secret (HKDF-SHA256), so it needs no file of
 * its own and its private half exists only where the secret does: the coordinator host. Rotating
 * the fleet secret rotates the key: every manifest must be signed again and every node needs its
 * new credentials (which carry the new public key).
 *
 * Shared by the coordinator and the node: imports only common/ and node:crypto.
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { ColonyError, ModelManifestErrors } from "./errors.ts";
import { GateReportSchema } from "./gate-report.ts";
import { IdSchema, Sha256Schema, SkillSchema } from "./protocol/primitives.ts";
import { stableJson } from "./stable-json.ts";

export const ModelFormatSchema = z.enum(["gguf-model", "gguf-lora"]);
export type ModelFormat = z.infer<typeof ModelFormatSchema>;

/** One parent of a model: the agent it came from, with that agent's genome and model hashes when known. */
export const ModelParentSchema = z.strictObject({
  agentId: IdSchema,
  genome: Sha256Schema.optional(),
  model: Sha256Schema.optional(),
});
export type ModelParent = z.infer<typeof ModelParentSchema>;

/** The first 16 hex digits of sha256(raw public key): names the key without being it. */
export const KeyIdSchema = z.string().regex(/^[0-9a-f]{16}$/, "must be 16 lower-case hex digits");
/** A raw 32-byte ed25519 public key in base64url (43 characters, no padding). */
export const PublicKeySchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a 32-byte ed25519 public key in base64url");

export const ModelManifestSchema = z.strictObject({
  /** sha256 of the file's bytes, lower-case hex: the model's identity in the store and on nodes. */
  sha256: Sha256Schema,
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  format: ModelFormatSchema,
  /** For an adapter (gguf-lora): the sha256 of the base model it applies to. */
  base: Sha256Schema.optional(),
  name: IdSchema,
  /** The line of models this one belongs to; `version` increases by one per model in it. */
  lineage: IdSchema,
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  parents: z.array(ModelParentSchema).max(16),
  skills: z.array(SkillSchema).max(64),
  /** sha256 of the training set (distillation), when there was one. */
  datasetSha256: Sha256Schema.optional(),
  /** The distillation gate's report (common/gate-report.ts); absent for seeds and imported models. */
  gate: GateReportSchema.optional(),
  /** When the store accepted the model (ms since the epoch). */
  createdAt: z.number().int().min(0),
  /** The signing key's id (keyIdOf). */
  keyId: KeyIdSchema,
});
export type ModelManifest = z.infer<typeof ModelManifestSchema>;

/** ed25519 signatures are 64 bytes: 86 base64url characters. */
const SignatureSchema = z.string().regex(/^[A-Za-z0-9_-]{86}$/, "must be a 64-byte ed25519 signature in base64url");

export const SignedManifestSchema = z.strictObject({
  manifest: ModelManifestSchema,
  /** base64url ed25519 signature over stableJson(manifest). */
  signature: SignatureSchema,
});
export type SignedManifest = z.infer<typeof SignedManifestSchema>;

// The same envelope with the signature optional (and any string), so an unsigned or garbled
// signature is told apart from a malformed manifest.
const EnvelopeSchema = z.strictObject({ manifest: ModelManifestSchema, signature: z.string().max(1024).optional() });

/** The fleet's model signing key. `privateKey` never leaves the coordinator's process. */
export interface SigningKey {
  privateKey: KeyObject;
  /** Raw 32-byte ed25519 public key, base64url (what node credentials carry as `modelKey`). */
  publicKey: string;
  keyId: string;
}

// RFC 8410: PKCS#8 for an ed25519 private key is this fixed prefix + the 32-byte seed; SPKI for a
// public key is this fixed prefix + the 32 raw bytes.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/**
 * The fleet's model signing key, derived from the fleet secret: ed25519 seed =
 * HKDF-SHA256(secret, salt "colony", info "colony model signing v1", 32 bytes). Deterministic, so
 * the coordinator derives it at every start and `colony credentials issue` derives the same public
 * key offline; a new fleet secret gives a new key.
 */
export function deriveSigningKey(fleetSecret: Buffer): SigningKey {
  const seed = Buffer.from(hkdfSync("sha256", fleetSecret, Buffer.from("colony"), Buffer.from("colony model signing v1"), 32));
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  const publicKey = spki.subarray(SPKI_ED25519_PREFIX.length).toString("base64url");
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** First 16 hex digits of sha256 over the raw public key bytes. */
export function keyIdOf(publicKey: string): string {
  return createHash("sha256").update(Buffer.from(publicKey, "base64url")).digest("hex").slice(0, 16);
}

/** Signs a manifest: sets its keyId and signs stableJson of the result. */
export function signManifest(m: Omit<ModelManifest, "keyId"> & { keyId?: string }, privateKey: KeyObject, keyId: string): SignedManifest {
  const manifest = ModelManifestSchema.parse({ ...m, keyId });
  return { manifest, signature: sign(null, Buffer.from(stableJson(manifest)), privateKey).toString("base64url") };
}

function publicKeyObject(publicKey: string): KeyObject {
  if (!PublicKeySchema.safeParse(publicKey).success) {
    throw new ColonyError(ModelManifestErrors.MODEL_KEY_INVALID, "the fleet model key is not a 32-byte ed25519 public key in base64url (43 characters)");
  }
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(publicKey, "base64url")]), format: "der", type: "spki" });
}

const short = (sha: string): string => sha.slice(0, 12);

/**
 * Checks a signed manifest as it came off the wire or a file and returns the manifest. Throws
 * ColonyError: MODEL_MANIFEST_INVALID (schema), MODEL_UNSIGNED (no signature), MODEL_FOREIGN_KEY
 * (keyId is not `publicKey`'s), MODEL_SIGNATURE_INVALID (the signature does not verify: the
 * manifest or the signature was altered), MODEL_KEY_INVALID (`publicKey` is not a key).
 * It does not hash the file: the caller compares `sha256` and `bytes` with the bytes it has.
 */
export function verifySignedManifest(raw: unknown, publicKey: string): ModelManifest {
  const key = publicKeyObject(publicKey);
  const p = EnvelopeSchema.safeParse(raw);
  if (!p.success) {
    const issues = p.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ColonyError(ModelManifestErrors.MODEL_MANIFEST_INVALID, `the signed model manifest is invalid: ${issues}`);
  }
  const { manifest, signature } = p.data;
  if (signature === undefined || signature === "") {
    throw new ColonyError(ModelManifestErrors.MODEL_UNSIGNED, `model ${short(manifest.sha256)} (${manifest.name}) has no signature`);
  }
  const ours = keyIdOf(publicKey);
  if (manifest.keyId !== ours) {
    throw new ColonyError(ModelManifestErrors.MODEL_FOREIGN_KEY, `model ${short(manifest.sha256)} (${manifest.name}) is signed with key ${manifest.keyId}, not this fleet's key ${ours}`, { keyId: manifest.keyId, fleetKeyId: ours });
  }
  const sig = Buffer.from(signature, "base64url");
  let ok = false;
  try {
    ok = sig.length === 64 && verify(null, Buffer.from(stableJson(manifest)), key, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw new ColonyError(ModelManifestErrors.MODEL_SIGNATURE_INVALID, `the signature of model ${short(manifest.sha256)} (${manifest.name}) does not verify with the fleet's model key`);
  return manifest;
}

/**
 * Refuses a rollback (MODEL_ROLLBACK): a version below the highest already accepted for the
 * manifest's lineage, or the same version with other content. `seenSha256` is the sha256 accepted
 * at `highestSeen`; with it, the same version passes only for the same model (idempotent re-sends);
 * a caller that does not keep it accepts an equal version (it cannot tell the two cases apart).
 */
export function checkVersion(m: ModelManifest, highestSeen: number | undefined, seenSha256?: string): void {
  if (highestSeen === undefined) return;
  const same = m.version === highestSeen && (seenSha256 === undefined || seenSha256 === m.sha256);
  if (m.version > highestSeen || same) return;
  throw new ColonyError(
    ModelManifestErrors.MODEL_ROLLBACK,
    `model ${short(m.sha256)} is version ${m.version} of lineage ${m.lineage}, which already has version ${highestSeen}${m.version === highestSeen ? " with other content" : ""}`,
    { lineage: m.lineage, version: m.version, highestSeen },
  );
}
