// The fleet's model key travels with a node's credentials: `colony credentials issue --node` writes
// it (nodeCredentialFile), the credentials reader and the node config accept it, and a malformed one
// is refused where it is read, not when the first model arrives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { deriveSigningKey } from "../../common/model-manifest.ts";
import { loadClientCredentials } from "../../common/mqtt-connect.ts";
import { nodeCredentialFile } from "../../coordinator/auth.ts";
import { loadNodeConfig } from "../../node/config.ts";

const SECRET = Buffer.alloc(32, 5);

test("a node's credentials file carries the public model key of the fleet secret, and is read back with it", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-model-key-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = nodeCredentialFile(SECRET, "pi-1", "mqtt://10.0.0.2:1883");
  assert.equal(file.username, "node.pi-1");
  assert.equal(file.modelKey, deriveSigningKey(SECRET).publicKey);
  assert.equal(file.url, "mqtt://10.0.0.2:1883");
  assert.ok(!("url" in nodeCredentialFile(SECRET, "pi-1")));
  const good = path.join(dir, "good.json");
  writeFileSync(good, JSON.stringify(file), { mode: 0o600 });
  assert.equal(loadClientCredentials({ file: good })?.modelKey, file.modelKey);
  const bad = path.join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ ...file, modelKey: "short" }), { mode: 0o600 });
  assert.throws(() => loadClientCredentials({ file: bad }), { code: "CREDENTIALS_FILE_INVALID" });
});

test("the node config takes the model key from COLONY_MODEL_KEY or a flag and refuses a malformed one", () => {
  const key = deriveSigningKey(SECRET).publicKey;
  assert.equal(loadNodeConfig({ env: { COLONY_MODEL_KEY: key } }).modelKey, key);
  assert.equal(loadNodeConfig({ flags: { modelKey: key } }).modelKey, key);
  assert.equal(loadNodeConfig({ env: {} }).modelKey, undefined);
  assert.throws(() => loadNodeConfig({ env: { COLONY_MODEL_KEY: "not-a-key" } }), { code: "CONFIG_INVALID" });
});
