// Fleet secret file handling, stateless credentials and the pure ACL functions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { loadOrCreateFleetSecret, issueCredential, verifyCredential, parseUsername, checkPublish, checkSubscribe, type Principal } from "../../coordinator/auth.ts";
import { ColonyError } from "../../common/errors.ts";
import { loadClientCredentials } from "../../common/mqtt-connect.ts";

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), "colony-secret-"));
}
const code = (c: string) => (err: unknown) => err instanceof ColonyError && err.code === c;

test("the fleet secret is created 32 bytes, mode 0600 in a 0700 folder, and reused", async () => {
  const root = tmp();
  try {
    const dir = path.join(root, "data");
    const a = await loadOrCreateFleetSecret(dir);
    assert.equal(a.length, 32);
    assert.equal(statSync(path.join(dir, "fleet.secret")).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const b = await loadOrCreateFleetSecret(dir);
    assert.deepEqual(b, a);
    assert.deepEqual(readFileSync(path.join(dir, "fleet.secret")), a);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("two concurrent first starts agree on one secret", async () => {
  const dir = tmp();
  try {
    const all = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateFleetSecret(dir)));
    for (const s of all) assert.deepEqual(s, all[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a secret readable by group or others, or of the wrong length, is refused", async () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "fleet.secret");
    await loadOrCreateFleetSecret(dir);
    chmodSync(file, 0o640);
    await assert.rejects(loadOrCreateFleetSecret(dir), code("FLEET_SECRET_INSECURE"));
    chmodSync(file, 0o604);
    await assert.rejects(loadOrCreateFleetSecret(dir), code("FLEET_SECRET_INSECURE"));
    writeFileSync(file, randomBytes(16));
    chmodSync(file, 0o600);
    await assert.rejects(loadOrCreateFleetSecret(dir), code("FLEET_SECRET_INVALID"));
    // A folder others may write to could have the secret swapped under us.
    chmodSync(dir, 0o777);
    await assert.rejects(loadOrCreateFleetSecret(dir), code("FLEET_SECRET_INSECURE"));
    chmodSync(dir, 0o700);
    // 64 hex characters (a secret copied as text to another host) are accepted.
    const hex = randomBytes(32);
    writeFileSync(file, hex.toString("hex") + "\n");
    assert.deepEqual(await loadOrCreateFleetSecret(dir), hex);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("credentials are deterministic per (secret, role, name) and verify only as issued", () => {
  const secret = randomBytes(32);
  const a = issueCredential(secret, "node", "pi-kitchen");
  assert.deepEqual(a, issueCredential(secret, "node", "pi-kitchen"));
  assert.equal(a.username, "node.pi-kitchen");
  assert.match(a.password, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(issueCredential(secret, "submitter", "pi-kitchen").password, a.password, "role is bound into the MAC");
  assert.notEqual(issueCredential(randomBytes(32), "node", "pi-kitchen").password, a.password);
  assert.equal(issueCredential(secret, "coordinator").username, "coordinator");
  assert.deepEqual(verifyCredential(secret, a.username, a.password), { role: "node", name: "pi-kitchen" });
  assert.deepEqual(verifyCredential(secret, a.username, Buffer.from(a.password)), { role: "node", name: "pi-kitchen" });
  for (const bad of [a.password + "!", a.password + "A", a.password.slice(1), "", a.password.toUpperCase()]) {
    assert.equal(verifyCredential(secret, a.username, bad), undefined, bad);
  }
  assert.equal(verifyCredential(secret, "submitter.pi-kitchen", a.password), undefined);
  assert.equal(verifyCredential(secret, undefined, a.password), undefined);
  assert.throws(() => issueCredential(secret, "node", "a/b"), code("CREDENTIAL_NAME_INVALID"));
  assert.throws(() => issueCredential(secret, "node", "a:b"), code("CREDENTIAL_NAME_INVALID"));
  assert.throws(() => issueCredential(secret, "admin" as never, "x"), code("CREDENTIAL_ROLE_INVALID"));
  assert.throws(() => issueCredential(randomBytes(31), "node", "x"), code("FLEET_SECRET_INVALID"));
  assert.deepEqual(parseUsername("node.pi.kitchen"), { role: "node", name: "pi.kitchen" });
  for (const u of ["node", "node.", ".x", "admin.x", "node.a/b", "node.+", "coordinator."]) assert.equal(parseUsername(u), undefined, u);
});

test("ACL edge cases: wildcards cannot widen a grant", () => {
  const node: Principal = { role: "node", name: "pi-a" };
  const sub: Principal = { role: "submitter", name: "alice" };
  const coord: Principal = { role: "coordinator", name: "coordinator" };
  assert.equal(checkPublish(node, "colony/v1/nodes/pi-a/+", false).allowed, false);
  assert.equal(checkPublish(node, "colony/v1/nodes/pi-a/status/extra", false).allowed, false);
  assert.equal(checkPublish(node, "colony/v1/nodes/pi-a/award", false).allowed, false, "awards come from the coordinator only");
  assert.equal(checkSubscribe(node, "colony/v1/nodes/pi-a/+").allowed, true);
  assert.equal(checkSubscribe(node, "colony/v1/nodes/pi-a").allowed, false);
  const mine = "colony/v1/submitters/submitter.alice";
  assert.equal(checkSubscribe(sub, `${mine}/tasks/t1/+`).allowed, true);
  assert.equal(checkSubscribe(sub, `${mine}/#`).allowed, true, "wildcards inside its own folder match only its own topics");
  assert.equal(checkSubscribe(sub, "colony/v1/submitters/+/tasks/t1/result").allowed, false);
  assert.equal(checkSubscribe(sub, "colony/v1/submitters/submitter.alice2/#").allowed, false, "a folder whose name only starts with its own");
  assert.equal(checkSubscribe(sub, "colony/v1/tasks/t1/#").allowed, false);
  assert.equal(checkSubscribe(sub, "+/x").allowed, false);
  assert.equal(checkSubscribe(sub, "$SYS/broker/clients").allowed, false);
  assert.equal(checkPublish(sub, "colony2/x", true).allowed, true, "only the colony/ root is reserved");
  assert.equal(checkPublish(sub, `${mine}/tasks/+/feedback`, false).allowed, false);
  assert.equal(checkPublish(sub, `${mine}/tasks/t1/feedback`, false).allowed, true);
  assert.equal(checkPublish(sub, `${mine}/tasks/t1/result`, false).allowed, false, "results come from the coordinator only");
  assert.equal(checkPublish(sub, "colony/v1/submitters/submitter.alice2/submit", false).allowed, false);
  assert.equal(checkPublish(coord, `${mine}/tasks/t1/result`, true).allowed, true);
});

test("client credentials files are validated and must be private", () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ username: "node.a", password: "p", url: "mqtt://h:1883" }), { mode: 0o600 });
    assert.deepEqual(loadClientCredentials({ file }), { username: "node.a", password: "p", url: "mqtt://h:1883" });
    assert.deepEqual(loadClientCredentials({ env: { COLONY_CREDENTIALS: file } })?.username, "node.a");
    assert.equal(loadClientCredentials({ env: {} }), undefined);
    chmodSync(file, 0o644);
    assert.throws(() => loadClientCredentials({ file }), code("CREDENTIALS_FILE_INSECURE"));
    writeFileSync(file, JSON.stringify({ username: "node.a" }), { mode: 0o600 });
    chmodSync(file, 0o600);
    assert.throws(() => loadClientCredentials({ file }), code("CREDENTIALS_FILE_INVALID"));
    writeFileSync(file, "{nope");
    assert.throws(() => loadClientCredentials({ file }), code("CREDENTIALS_FILE_INVALID"));
    assert.throws(() => loadClientCredentials({ file: path.join(dir, "missing.json") }), code("CREDENTIALS_FILE_INVALID"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("`colony credentials issue --json --out` prints and writes what issueCredential gives", () => {
  const dir = tmp();
  try {
    const out = path.join(dir, "cred.json");
    const stdout = execFileSync(process.execPath, ["bin/colony.mjs", "credentials", "issue", "--submitter", "alice", "--data-dir", path.join(dir, "d"), "--json", "--out", out], { encoding: "utf8" });
    const printed = JSON.parse(stdout.trim().split("\n").at(-1)!);
    const secret = readFileSync(path.join(dir, "d", "fleet.secret"));
    assert.deepEqual({ username: printed.username, password: printed.password }, issueCredential(secret, "submitter", "alice"));
    assert.deepEqual(loadClientCredentials({ file: out }), printed);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
