// A password given as a flag is visible to every user of the machine (ps, shell history): the CLI
// warns and names the alternative; with a credentials file it says nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runColony } from "../fixtures/colony-process.ts";


test("colony submit/task/status warn about --password and point to --credentials", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-pw-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // An unsupported URL scheme: each command fails at once (MQTT_CONNECT_FAILED), after the warning.
  const url = "bogus://127.0.0.1:1";
  for (const args of [["submit", "hi"], ["task", "t-1"], ["status"]]) {
    const r = await runColony([...args, "--url", url, "--username", "submitter.x", "--password", "secret"]);
    assert.notEqual(r.code, 0, args[0]);
    assert.match(r.stderr, /warning: a password on the command line is visible .* use --credentials FILE/, args[0]);
  }
  const file = path.join(dir, "cred.json");
  writeFileSync(file, JSON.stringify({ username: "submitter.x", password: "secret", url }), { mode: 0o600 });
  const quiet = await runColony(["status", "--credentials", file]);
  assert.doesNotMatch(quiet.stderr, /warning: a password/);
});
