// Model references with a pinned hash: `#sha256=<64 hex>` at the end of a path or URI.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { parseModelRef, resolveModel } from "../../node/llama/model-ref.ts";

const HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

test("parseModelRef splits off a trailing #sha256= pin and keeps node-llama-cpp's own #branch", () => {
  assert.deepEqual(parseModelRef("models/seed-add.gguf"), { source: "models/seed-add.gguf" });
  assert.deepEqual(parseModelRef(`hf:user/repo/model.Q4_K_M.gguf#sha256=${HEX}`), { source: "hf:user/repo/model.Q4_K_M.gguf", sha256: HEX });
  assert.deepEqual(parseModelRef(`hf:user/repo/m.gguf#dev#sha256=${HEX.toUpperCase()}`), { source: "hf:user/repo/m.gguf#dev", sha256: HEX });
  assert.deepEqual(parseModelRef(`https://example.com/m.gguf#sha256=${HEX}`), { source: "https://example.com/m.gguf", sha256: HEX });
  const bad = [`m.gguf#sha256=${HEX.slice(1)}`, `m.gguf#sha256=${HEX.slice(1)}z`, `m.gguf#sha256=`, `#sha256=${HEX}`, `m.gguf#sha256=${HEX}#dev`];
  for (const spec of bad) {
    assert.throws(() => parseModelRef(spec), (e: unknown) => e instanceof ColonyError && e.code === "MODEL_URI_INVALID", spec);
  }
});

test("resolveModel resolves a pinned local path against the agents file's folder and returns the pin", async () => {
  assert.deepEqual(await resolveModel(`m/seed.gguf#sha256=${HEX}`, "/agents", "/data/models"), { file: path.resolve("/agents/m/seed.gguf"), sha256: HEX });
  assert.deepEqual(await resolveModel("/abs/seed.gguf", "/agents", "/data/models"), { file: "/abs/seed.gguf" });
  await assert.rejects(resolveModel("m.gguf#sha256=xyz", "/agents", "/data/models"), (e: unknown) => e instanceof ColonyError && e.code === "MODEL_URI_INVALID");
});
