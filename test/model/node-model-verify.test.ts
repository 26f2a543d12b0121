// The node checks a model file before llama.cpp parses it: the GGUF reader's limits plus the llama
// model check, which refuses files that llama.cpp was seen to crash on (docs/gguf.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { readGgufFile } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { GgufValueType } from "../../gguf/types.ts";
import { silentLogger } from "../../common/logger.ts";
import { meta } from "../../gguf/meta.ts";
import { LlamaRuntime, verifyModelFile } from "../../node/llama/llama-runtime.ts";
import { tinyLlama, withMeta } from "../fixtures/gguf-fixtures.ts";
import { writeRandomModel } from "../fixtures/node-helpers.ts";

test("verifyModelFile accepts a real model and refuses truncated and duplicate-token files with MODEL_FILE_INVALID", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-verify-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = await writeRandomModel(dir, "good");
  const facts = await verifyModelFile(good);
  assert.ok(facts.sizeMB > 0);
  // The training context is read from the header, so an agent knows its context before it wakes.
  assert.equal(facts.trainContext, 256);

  const file = await readGgufFile(good);
  const tokens = file.metadata.get("tokenizer.ggml.tokens");
  assert.ok(tokens && tokens.type === GgufValueType.ARRAY);
  // Two entries of the vocabulary with the same text: llama.cpp aborts the process on such a file.
  const dup = [...tokens.value];
  dup[dup.length - 1] = dup[dup.length - 2]!;
  const metadata = new Map(file.metadata);
  metadata.set("tokenizer.ggml.tokens", { type: GgufValueType.ARRAY, itemType: tokens.itemType, value: dup });
  const bad = path.join(dir, "dup.gguf");
  writeFileSync(bad, encodeGguf({ metadata, tensors: file.tensors }));
  await assert.rejects(verifyModelFile(bad), (err: any) => err.code === "MODEL_FILE_INVALID" && /GGUF_MODEL_INVALID/.test(err.message));

  const truncated = path.join(dir, "truncated.gguf");
  const bytes = encodeGguf({ metadata: file.metadata, tensors: file.tensors });
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(verifyModelFile(truncated), (err: any) => err.code === "MODEL_FILE_INVALID");
  await assert.rejects(verifyModelFile(path.join(dir, "missing.gguf")), (err: any) => err.code === "MODEL_FILE_INVALID");
});

test("a model outside the gate is MODEL_UNSUPPORTED; allowUncheckedModels admits it after the vocabulary checks, never a known fault", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-verify-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const qwen = path.join(dir, "qwen.gguf");
  writeFileSync(qwen, encodeGguf(withMeta(tinyLlama(), "general.architecture", meta.str("qwen2"))));
  await assert.rejects(verifyModelFile(qwen), (err: any) => err.code === "MODEL_UNSUPPORTED" && /qwen2/.test(err.message));
  const facts = await verifyModelFile(qwen, { allowUnchecked: true });
  assert.equal(facts.coverage, "basic");
  // The node's runtime, configured the same way, verifies (and would load) its private copy.
  const lenient = new LlamaRuntime({ threads: 1, gpuLayers: 0, modelsDir: dir, allowUncheckedModels: true, logger: silentLogger });
  t.after(() => lenient.close());
  assert.equal((await lenient.verify(qwen)).coverage, "basic");
  const crasher = path.join(dir, "crasher.gguf");
  writeFileSync(crasher, encodeGguf(withMeta(tinyLlama(), "llama.expert_used_count", meta.u32(1))));
  await assert.rejects(lenient.verify(crasher), (err: any) => err.code === "MODEL_FILE_INVALID" && /GGUF_MODEL_INVALID: llama.expert_used_count/.test(err.message));
});
