// The TLS listener of the generated mosquitto config: clients connect over mqtts:// with the
// fleet credentials and verify the broker against the CA; an unverifiable broker fails fast.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { issueCredential } from "../../coordinator/auth.ts";
import { writeMosquittoFiles } from "../../coordinator/auth.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { freePort, startMosquittoWithConfig, type MosquittoInstance } from "../fixtures/mosquitto.ts";
import { needs } from "../fixtures/system-tools.ts";

const skip = needs("mosquitto", "openssl");

const secret = randomBytes(32);
let dir: string;
let mosq: MosquittoInstance;
let tlsPort: number;

function openssl(...args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error("openssl is not installed: run `apt-get install openssl` (CI does this in .ci/run)");
    throw err;
  }
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-tls-"));
  // A throwaway CA and a server certificate for 127.0.0.1 (EC keys: fast to make).
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=Colony test CA");
  openssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext");
  tlsPort = await freePort();
  const files = await writeMosquittoFiles(
    path.join(dir, "mosq"),
    { secret, nodes: ["pi-tls"], submitters: [] },
    { plain: false, bind: "127.0.0.1", tls: { port: tlsPort, cafile: path.join(dir, "ca.crt"), certfile: path.join(dir, "server.crt"), keyfile: path.join(dir, "server.key") } },
  );
  assert.doesNotMatch(readFileSync(files.confFile, "utf8"), /^listener 1883/m, "plain: false writes no plain listener");
  mosq = await startMosquittoWithConfig(files.confFile);
});
after(async () => {
  await mosq?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a node connects over mqtts:// with the CA and its credentials", { skip }, async () => {
  const client = await connectMqtt({
    url: `mqtts://127.0.0.1:${tlsPort}`,
    ...issueCredential(secret, "node", "pi-tls"),
    tls: { ca: readFileSync(path.join(dir, "ca.crt")) },
    logger: silentLogger,
    connectTimeoutMs: 5000,
  });
  try {
    assert.equal(client.connected, true);
    await client.publishAsync("colony/v1/nodes/pi-tls/heartbeat", "{}", { qos: 1 });
  } finally {
    await client.endAsync();
  }
});

test("a broker certificate that does not verify fails at once with MQTT_CONNECT_FAILED", { skip }, async () => {
  const t0 = Date.now();
  await assert.rejects(
    connectMqtt({ url: `mqtts://127.0.0.1:${tlsPort}`, ...issueCredential(secret, "node", "pi-tls"), logger: silentLogger, connectTimeoutMs: 5000 }),
    (err: unknown) => err instanceof ColonyError && err.code === "MQTT_CONNECT_FAILED" && /TLS/.test(err.message),
  );
  assert.ok(Date.now() - t0 < 4000, "no retry loop until the 5 s timeout");
});

test("TLS does not replace authentication: wrong credentials are still refused", { skip }, async () => {
  await assert.rejects(
    connectMqtt({ url: `mqtts://127.0.0.1:${tlsPort}`, username: "node.pi-tls", password: "nope", tls: { ca: readFileSync(path.join(dir, "ca.crt")) }, logger: silentLogger, connectTimeoutMs: 5000 }),
    (err: unknown) => err instanceof ColonyError && err.code === "MQTT_AUTH_REFUSED",
  );
});
