import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { wilson } from "../../common/gate-report.ts";
import { checkVersion, deriveSigningKey, keyIdOf, signManifest, verifySignedManifest, type ModelManifest } from "../../common/model-manifest.ts";
import { stableJson } from "../../common/stable-json.ts";

// Signed model manifests (common/model-manifest.ts): the fleet key is a pure function of the fleet
// secret, a signature covers every field, and each way a manifest can be wrong has its own code.

const SECRET = Buffer.alloc(32, 7);
const OTHER = Buffer.alloc(32, 8);
const sha = (c: string) => c.repeat(64);

function draft(over: Partial<ModelManifest> = {}): Omit<ModelManifest, "keyId"> {
  return {
    sha256: sha("a"), bytes: 1234, format: "gguf-model", name: "child-1", lineage: "arith", version: 3,
    parents: [{ agentId: "add-1", genome: sha("b"), model: sha("c") }, { agentId: "count-1" }], skills: ["add", "count"],
    datasetSha256: sha("d"), createdAt: 1_700_000_000_000,
    gate: {
      heldOut: { source: "generator", perSkill: 200, seed: "s" }, margin: 0.02,
      skills: [{ skill: "add", child: wilson(199, 200), parents: [{ agentId: "add-1", accuracy: wilson(200, 200) }], best: 1 }],
      union: { child: 0.995, bestParent: 1 }, passed: true, reasons: ["within margin"],
    },
    ...over,
  };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

test("the signing key is derived from the fleet secret: the same secret gives the same key, another secret another", () => {
  const a = deriveSigningKey(SECRET);
  const b = deriveSigningKey(Buffer.from(SECRET));
  const c = deriveSigningKey(OTHER);
  assert.equal(a.publicKey, b.publicKey);
  assert.equal(a.keyId, b.keyId);
  assert.notEqual(a.publicKey, c.publicKey);
  assert.match(a.publicKey, /^[A-Za-z0-9_-]{43}$/);
  assert.match(a.keyId, /^[0-9a-f]{16}$/);
  assert.equal(a.keyId, keyIdOf(a.publicKey));
  // The exported public key is the private key's: a signature by one verifies with the other.
  const s = signManifest(draft(), a.privateKey, a.keyId);
  const spki = createPublicKey(a.privateKey).export({ format: "der", type: "spki" });
  assert.equal(spki.subarray(12).toString("base64url"), a.publicKey);
  assert.ok(verify(null, Buffer.from(stableJson(s.manifest)), createPublicKey(a.privateKey), Buffer.from(s.signature, "base64url")));
});

test("a signed manifest verifies after a JSON round trip, whatever the key order", () => {
  const k = deriveSigningKey(SECRET);
  const s = signManifest(draft(), k.privateKey, k.keyId);
  assert.equal(s.manifest.keyId, k.keyId);
  const reordered = JSON.parse(JSON.stringify({ signature: s.signature, manifest: Object.fromEntries(Object.entries(s.manifest).reverse()) }));
  assert.deepEqual(verifySignedManifest(reordered, k.publicKey), s.manifest);
});

test("a changed manifest field, signature or key is refused with its code", () => {
  const k = deriveSigningKey(SECRET);
  const s = signManifest(draft(), k.privateKey, k.keyId);
  const clone = () => JSON.parse(JSON.stringify(s)) as { manifest: Record<string, unknown>; signature?: string };
  for (const [field, value] of [["version", 4], ["sha256", sha("e")], ["bytes", 1235], ["skills", ["add"]], ["lineage", "other"], ["createdAt", 1]] as const) {
    const t = clone();
    t.manifest[field] = value;
    assert.equal(code(() => verifySignedManifest(t, k.publicKey)), "MODEL_SIGNATURE_INVALID", field);
  }
  const gate = clone();
  (gate.manifest.gate as { passed: boolean }).passed = false;
  assert.equal(code(() => verifySignedManifest(gate, k.publicKey)), "MODEL_SIGNATURE_INVALID");
  // A flipped signature byte, a truncated one, another manifest's signature.
  const flipped = clone();
  const sig = Buffer.from(s.signature, "base64url");
  sig[10]! ^= 1;
  flipped.signature = sig.toString("base64url");
  assert.equal(code(() => verifySignedManifest(flipped, k.publicKey)), "MODEL_SIGNATURE_INVALID");
  const short = clone();
  short.signature = s.signature.slice(0, 40);
  assert.equal(code(() => verifySignedManifest(short, k.publicKey)), "MODEL_SIGNATURE_INVALID");
  const swapped = clone();
  swapped.signature = signManifest(draft({ version: 9 }), k.privateKey, k.keyId).signature;
  assert.equal(code(() => verifySignedManifest(swapped, k.publicKey)), "MODEL_SIGNATURE_INVALID");
});

test("an unsigned manifest is MODEL_UNSIGNED", () => {
  const k = deriveSigningKey(SECRET);
  const { manifest } = signManifest(draft(), k.privateKey, k.keyId);
  assert.equal(code(() => verifySignedManifest({ manifest }, k.publicKey)), "MODEL_UNSIGNED");
  assert.equal(code(() => verifySignedManifest({ manifest, signature: "" }, k.publicKey)), "MODEL_UNSIGNED");
});

test("a manifest signed by another fleet's key is MODEL_FOREIGN_KEY; relabelled with our keyId it does not verify", () => {
  const ours = deriveSigningKey(SECRET);
  const theirs = deriveSigningKey(OTHER);
  const s = signManifest(draft(), theirs.privateKey, theirs.keyId);
  assert.equal(code(() => verifySignedManifest(s, ours.publicKey)), "MODEL_FOREIGN_KEY");
  const relabelled = signManifest(draft(), theirs.privateKey, ours.keyId);
  assert.equal(code(() => verifySignedManifest(relabelled, ours.publicKey)), "MODEL_SIGNATURE_INVALID");
  assert.equal(code(() => verifySignedManifest(s, "not-a-key")), "MODEL_KEY_INVALID");
});

test("schema errors are MODEL_MANIFEST_INVALID", () => {
  const k = deriveSigningKey(SECRET);
  const s = signManifest(draft(), k.privateKey, k.keyId);
  const bad: unknown[] = [
    null, "text", [], {}, { signature: s.signature },
    { ...s, extra: 1 },
    { ...s, manifest: { ...s.manifest, sha256: "ABC" } },
    { ...s, manifest: { ...s.manifest, version: 0 } },
    { ...s, manifest: { ...s.manifest, format: "safetensors" } },
    { ...s, manifest: { ...s.manifest, skills: ["Not A Skill"] } },
    { ...s, manifest: { ...s.manifest, parents: [{ agentId: "a/b" }] } },
    { ...s, manifest: { ...s.manifest, unknown: true } },
    { ...s, manifest: { ...s.manifest, gate: { passed: true } } },
  ];
  for (const b of bad) assert.equal(code(() => verifySignedManifest(b, k.publicKey)), "MODEL_MANIFEST_INVALID", JSON.stringify(b)?.slice(0, 80));
  assert.throws(() => signManifest(draft({ version: 0 }), k.privateKey, k.keyId));
});

test("rollback: below the highest version is refused, above passes, equal only for the same model", () => {
  const k = deriveSigningKey(SECRET);
  const m = signManifest(draft({ version: 3 }), k.privateKey, k.keyId).manifest;
  assert.equal(code(() => checkVersion(m, undefined)), undefined);
  assert.equal(code(() => checkVersion(m, 2)), undefined);
  assert.equal(code(() => checkVersion(m, 4)), "MODEL_ROLLBACK");
  assert.equal(code(() => checkVersion(m, 3, m.sha256)), undefined);
  assert.equal(code(() => checkVersion(m, 3, sha("f"))), "MODEL_ROLLBACK");
  // Without the sha256 accepted at that version the caller cannot tell a re-send from a swap.
  assert.equal(code(() => checkVersion(m, 3)), undefined);
});
