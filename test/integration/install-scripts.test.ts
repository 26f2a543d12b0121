// scripts/install-node.sh and scripts/install-coordinator.sh (docs/install.md): they parse (`bash -n`),
// and `--dry-run` prints every step (package, user, folders, profile, credential, settings, unit,
// enable) and changes nothing; a credential's content is never printed; bad input is refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { listProfiles } from "../../node/profile.ts";

const repo = process.cwd();
const SCRIPTS = ["scripts/install-common.sh", "scripts/install-node.sh", "scripts/install-coordinator.sh"];
let dir: string;
let bin: string;
let unitDir: string;
const PASSWORD = "s3cret-never-printed";

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-install-"));
  // `colony` on PATH, as after `npm install -g`: the dry run then detects the profile for real.
  bin = path.join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(path.join(repo, "bin", "colony.mjs"), path.join(bin, "colony"));
  unitDir = path.join(dir, "units");
  mkdirSync(unitDir);
  writeFileSync(path.join(dir, "pi-kitchen.json"), JSON.stringify({ username: "node.pi-kitchen", password: PASSWORD, url: "mqtt://10.0.0.2:1883" }), { mode: 0o600 });
  writeFileSync(path.join(dir, "alice.json"), JSON.stringify({ username: "submitter.alice", password: PASSWORD }), { mode: 0o600 });
  writeFileSync(path.join(dir, "broker.env"), `COLONY_BROKER=mqtt://127.0.0.1:1884\nCOLONY_BROKER_PASSWORD=${PASSWORD}\n`, { mode: 0o600 });
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function script(name: string, args: string[], withColony = true) {
  const env = { ...process.env, PATH: withColony ? `${bin}${path.delimiter}${process.env.PATH}` : process.env.PATH, COLONY_SYSTEMD_DIR: unitDir, COLONY_LOG_LEVEL: "silent" };
  const r = spawnSync("bash", [path.join(repo, "scripts", name), ...args], { env, encoding: "utf8", timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("the install scripts parse (bash -n)", () => {
  for (const s of SCRIPTS) {
    const r = spawnSync("bash", ["-n", s], { encoding: "utf8" });
    assert.equal(r.status, 0, `${s}: ${r.stderr}`);
  }
});

test("install-node.sh --dry-run prints every step with the detected profile and changes nothing", () => {
  const etcBefore = existsSync("/etc/colony");
  const r = script("install-node.sh", ["--dry-run", "--credentials", path.join(dir, "pi-kitchen.json"), "--package", "./colony-0.1.0.tgz"]);
  assert.equal(r.code, 0, r.err + r.out);
  const steps = [
    /^\+ npm install --global .*\/colony-0\.1\.0\.tgz$/m,
    /^\+ useradd --system --user-group --home-dir \/var\/lib\/colony .* colony$/m,
    /^\+ install -d -m 0700 -o colony -g colony \/var\/lib\/colony$/m,
    /^\+ colony profile detect$/m,
    /^\+ write \/etc\/colony\/node\.json \(mode 0600, owner root:root\)$/m,
    /^\+ write \/etc\/colony\/node\.env \(mode 0600, owner root:root\)$/m,
    /^ {4}\| COLONY_NODE_ID=pi-kitchen$/m,
    new RegExp(`^\\+ write ${unitDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/colony-node\\.service`, "m"),
    /^ {4}\| ExecStart=\/\S+\/colony node$/m,
    /^ {4}\| LoadCredential=node\.json:\/etc\/colony\/node\.json$/m,
    /^\+ systemctl daemon-reload$/m,
    /^\+ systemctl enable --now colony-node\.service$/m,
  ];
  for (const s of steps) assert.match(r.out, s);
  // In order: package, user, profile, credential, settings, unit, enable.
  const at = steps.map((s) => r.out.search(s));
  assert.deepEqual([...at].sort((a, b) => a - b), at, "the steps come in order");
  const profile = /^ {4}\| COLONY_PROFILE=(\S+)$/m.exec(r.out)?.[1];
  assert.ok(profile && listProfiles().some((p) => p.name === profile), `detected a shipped profile: ${profile}`);
  assert.doesNotMatch(r.out, new RegExp(PASSWORD), "the credential is never printed");
  assert.doesNotMatch(r.out, /@COLONY_(BIN|ROOT)@/);
  assert.deepEqual(readdirSync(unitDir), [], "a dry run writes no unit");
  assert.equal(existsSync("/etc/colony"), etcBefore, "a dry run creates no /etc/colony");
});

test("install-node.sh: without colony installed the dry run says where it will detect the profile; --profile pins one", () => {
  const r = script("install-node.sh", ["--dry-run", "--credentials", path.join(dir, "pi-kitchen.json")], false);
  assert.equal(r.code, 0, r.err);
  if (!spawnSync("sh", ["-c", "command -v colony"]).stdout.length) assert.match(r.out, /the real run detects the profile here/);
  const pinned = script("install-node.sh", ["--dry-run", "--credentials", path.join(dir, "pi-kitchen.json"), "--profile", "raspberry-pi-5"]);
  assert.equal(pinned.code, 0, pinned.err);
  assert.match(pinned.out, /^ {4}\| COLONY_PROFILE=raspberry-pi-5$/m);
  assert.doesNotMatch(pinned.out, /^\+ colony profile detect$/m);
});

test("install-node.sh refuses a missing credential, a submitter credential and a node id that does not match", () => {
  const none = script("install-node.sh", ["--dry-run"]);
  assert.notEqual(none.code, 0);
  assert.match(none.err, /--credentials FILE is required/);
  const submitter = script("install-node.sh", ["--dry-run", "--credentials", path.join(dir, "alice.json")]);
  assert.notEqual(submitter.code, 0);
  assert.match(submitter.err, /not a node credential/);
  const other = script("install-node.sh", ["--dry-run", "--credentials", path.join(dir, "pi-kitchen.json"), "--node-id", "pi-garage"]);
  assert.notEqual(other.code, 0);
  assert.match(other.err, /does not match the credential's node pi-kitchen/);
  const unknown = script("install-node.sh", ["--frobnicate"]);
  assert.equal(unknown.code, 2);
});

test("install-coordinator.sh --dry-run: settings (a broker password from --env-file never printed), unit, enable", () => {
  const r = script("install-coordinator.sh", ["--dry-run", "--trusted-submitters", "submitter.alice"]);
  assert.equal(r.code, 0, r.err);
  for (const s of [
    /^\+ npm install --global --no-audit --no-fund colony$/m,
    /^\+ useradd --system /m,
    /^\+ write \/etc\/colony\/coordinator\.env \(mode 0600, owner root:root\)$/m,
    /^ {4}\| COLONY_HOST=0\.0\.0\.0$/m,
    /^ {4}\| COLONY_TRUSTED_SUBMITTERS=submitter\.alice$/m,
    /^ {4}\| ExecStart=\/\S+\/colony coordinator$/m,
    /^\+ systemctl enable --now colony-coordinator\.service$/m,
    /credentials issue --data-dir \/var\/lib\/colony --node NAME/,
  ]) assert.match(r.out, s);
  const withEnv = script("install-coordinator.sh", ["--dry-run", "--env-file", path.join(dir, "broker.env")]);
  assert.equal(withEnv.code, 0, withEnv.err);
  assert.doesNotMatch(withEnv.out, new RegExp(PASSWORD));
  assert.match(withEnv.out, /coordinator\.env \(mode 0600, owner root:root\)\n {4}\| \(credential, not shown\)/);
  assert.deepEqual(readdirSync(unitDir), []);
});

test("--uninstall --dry-run: stops and removes the unit; --purge also the settings, data and user", () => {
  const keep = script("install-node.sh", ["--dry-run", "--uninstall"]);
  assert.equal(keep.code, 0, keep.err);
  assert.match(keep.out, /^\+ systemctl disable --now colony-node\.service$/m);
  assert.match(keep.out, /^\+ rm -f .*\/colony-node\.service$/m);
  assert.match(keep.out, /kept: \/etc\/colony .* \/var\/lib\/colony/);
  assert.doesNotMatch(keep.out, /rm -rf/);
  const purge = script("install-coordinator.sh", ["--dry-run", "--uninstall", "--purge"]);
  assert.equal(purge.code, 0, purge.err);
  assert.match(purge.out, /^\+ rm -f \/etc\/colony\/coordinator\.env$/m);
  assert.match(purge.out, /^\+ rm -rf \/var\/lib\/colony \/var\/cache\/colony$/m);
  assert.match(purge.out, /^\+ userdel colony$/m);
});

test("install-node.sh for real (system commands stubbed, files under a temp root): credential and settings 0600, unit, enable", () => {
  // Stubs record their arguments; `colony profile detect` answers raspberry-pi-5.
  const stubs = path.join(dir, "stubs");
  const log = path.join(dir, "stubs.log");
  const root = path.join(dir, "root");
  mkdirSync(stubs);
  for (const d of ["etc/colony", "etc/systemd/system"]) mkdirSync(path.join(root, d), { recursive: true });
  for (const cmd of ["npm", "useradd", "install", "chown", "systemctl", "colony"]) {
    const answer = cmd === "colony" ? 'if [ "$1 $2" = "profile detect" ]; then echo raspberry-pi-5; fi\n' : cmd === "npm" ? 'if [ "$1" = root ]; then echo /usr/lib/node_modules; fi\n' : "";
    writeFileSync(path.join(stubs, cmd), `#!/bin/sh\necho "${cmd} $*" >> ${JSON.stringify(log)}\n${answer}`, { mode: 0o755 });
  }
  const env = { ...process.env, PATH: `${stubs}${path.delimiter}${process.env.PATH}`, COLONY_INSTALL_ROOT: root };
  const r = spawnSync("bash", [path.join(repo, "scripts", "install-node.sh"), "--credentials", path.join(dir, "pi-kitchen.json"), "--package", "colony@0.1.0"], { env, encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const mode = (f: string) => statSync(path.join(root, f)).mode & 0o777;
  assert.equal(mode("etc/colony/node.json"), 0o600);
  assert.equal(readFileSync(path.join(root, "etc/colony/node.json"), "utf8").trim(), readFileSync(path.join(dir, "pi-kitchen.json"), "utf8"));
  assert.equal(mode("etc/colony/node.env"), 0o600);
  assert.match(readFileSync(path.join(root, "etc/colony/node.env"), "utf8"), /^COLONY_PROFILE=raspberry-pi-5\nCOLONY_NODE_ID=pi-kitchen\n$/m);
  const unit = readFileSync(path.join(root, "etc/systemd/system/colony-node.service"), "utf8");
  assert.match(unit, new RegExp(`^ExecStart=${path.join(stubs, "colony").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} node$`, "m"));
  assert.match(unit, /^Documentation=file:\/usr\/lib\/node_modules\/colony\/docs\/install\.md$/m);
  assert.deepEqual(readdirSync(path.join(root, "etc/colony")).sort(), ["node.env", "node.json"], "no temp file left behind");
  const calls = readFileSync(log, "utf8").trim().split("\n");
  const order = ["npm install --global --no-audit --no-fund colony@0.1.0", "colony profile detect", "systemctl daemon-reload", "systemctl enable --now colony-node.service"].map((c) => calls.indexOf(c));
  assert.ok(order.every((i) => i >= 0), calls.join("\n"));
  assert.deepEqual([...order].sort((a, b) => a - b), order, calls.join("\n"));
  assert.equal(calls.filter((c) => c.startsWith("chown root:root ")).length, 3, "credential, settings and unit are chowned to root");
});

test("--help prints the usage", () => {
  for (const s of ["install-node.sh", "install-coordinator.sh"]) {
    const r = script(s, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /--dry-run/);
    assert.match(r.out, /--uninstall/);
  }
});
