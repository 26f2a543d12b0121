import { test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { readCliEnv } from "../../cli/env.ts";

test("cli env: defaults, and an empty variable counts as unset", () => {
  const want = { dataDir: path.join(os.homedir(), ".colony"), logLevel: undefined, broker: undefined, credentials: undefined };
  for (const source of [{}, { COLONY_DATA_DIR: "", COLONY_LOG_LEVEL: "", COLONY_BROKER: "", COLONY_CREDENTIALS: "" }]) {
    const { env: _, ...settings } = readCliEnv(source);
    assert.deepEqual(settings, want);
  }
});

test("cli env: reads its variables and freezes the result and its copy of the environment", () => {
  const source = { COLONY_DATA_DIR: "/d", COLONY_LOG_LEVEL: "debug", COLONY_BROKER: "mqtt://b:1", COLONY_CREDENTIALS: "/c.json", OTHER: "x" };
  const e = readCliEnv(source);
  const { env, ...settings } = e;
  assert.deepEqual(settings, { dataDir: "/d", logLevel: "debug", broker: "mqtt://b:1", credentials: "/c.json" });
  assert.ok(Object.isFrozen(e) && Object.isFrozen(env));
  assert.deepEqual(env, source);
  source.OTHER = "changed";
  assert.equal(env.OTHER, "x");
});

test("cli env: an unknown COLONY_LOG_LEVEL is CONFIG_INVALID", () => {
  assert.throws(
    () => readCliEnv({ COLONY_LOG_LEVEL: "loud" }),
    (err: unknown) => err instanceof ColonyError && err.code === "CONFIG_INVALID" && /COLONY_LOG_LEVEL/.test(err.message),
  );
});
