// scripts/systemd/colony-{coordinator,node}.service, as install-*.sh writes them (the placeholders
// replaced), pass `systemd-analyze verify` without a warning, keep the hardening docs/install.md
// promises, never set MemoryDenyWriteExecute= (V8's JIT needs W+X pages), and take credentials from
// files only. Skipped with the install command where systemd-analyze is missing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { needs } from "../fixtures/system-tools.ts";

const repo = process.cwd();
const UNITS = ["colony-coordinator", "colony-node"];
const skip = needs("systemd-analyze");
let dir: string;

/** The unit as the installer writes it: ExecStart= is the repo's bin/colony.mjs (it must exist for verify). */
function installed(name: string): string {
  const text = readFileSync(path.join(repo, "scripts", "systemd", `${name}.service`), "utf8")
    .replaceAll("@COLONY_BIN@", path.join(repo, "bin", "colony.mjs"))
    .replaceAll("@COLONY_ROOT@", repo);
  const file = path.join(dir, `${name}.service`);
  writeFileSync(file, text);
  return file;
}

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-units-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function directives(name: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of readFileSync(path.join(repo, "scripts", "systemd", `${name}.service`), "utf8").split("\n")) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) m.set(kv[1]!, [...(m.get(kv[1]!) ?? []), kv[2]!]);
  }
  return m;
}

test("systemd-analyze verify accepts both units without a warning", { skip }, () => {
  for (const name of UNITS) {
    const r = spawnSync("systemd-analyze", ["verify", installed(name)], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    // Unknown or misspelt keys are only warnings ("Unknown key ... ignoring"): none allowed.
    assert.equal(r.stderr.trim(), "", `${name}: ${r.stderr}`);
  }
});

test("systemd-analyze security rates both units OK or better", { skip }, () => {
  for (const name of UNITS) {
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", installed(name)], { encoding: "utf8", timeout: 30_000 });
    const level = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout + r.stderr);
    assert.ok(level, r.stdout + r.stderr);
    // 1.5 (coordinator) and 1.8 (node) with systemd 252; "OK" is below 5.
    assert.ok(Number(level[1]) < 4, `${name}: exposure ${level[1]}`);
  }
});

test("both units: restart policy, user colony, state folder, hardening; no W^X ban; credentials from files", () => {
  for (const name of UNITS) {
    const d = directives(name);
    const one = (k: string) => d.get(k)?.[0];
    assert.equal(one("User"), "colony", name);
    assert.equal(one("Restart"), "always", name);
    assert.ok(one("RestartSec"), name);
    assert.match(one("StateDirectory") ?? "", /^colony\b/, name);
    assert.equal(one("NoNewPrivileges"), "yes", name);
    assert.equal(one("ProtectSystem"), "strict", name);
    assert.equal(one("ProtectHome"), "yes", name);
    assert.equal(one("PrivateTmp"), "yes", name);
    assert.match(one("ReadWritePaths") ?? "", /\/var\/lib\/colony/, name);
    assert.match(one("RestrictAddressFamilies") ?? "", /AF_NETLINK/, `${name}: systeminformation reads interfaces over netlink`);
    assert.equal(d.get("MemoryDenyWriteExecute"), undefined, `${name}: V8's JIT needs W+X memory`);
    assert.match(one("ExecStart") ?? "", /^@COLONY_BIN@ (coordinator|node)$/, `${name}: no flags, no password on the command line`);
    for (const env of d.get("Environment") ?? []) assert.doesNotMatch(env, /PASSWORD|SECRET/i, `${name}: ${env}`);
  }
  const node = directives("colony-node");
  assert.deepEqual(node.get("LoadCredential"), ["node.json:/etc/colony/node.json"]);
  assert.ok(node.get("Environment")!.includes("COLONY_CREDENTIALS=%d/node.json"));
});
