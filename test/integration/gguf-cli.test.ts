import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { meta } from "../../gguf/meta.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { sampleBytes, sampleFile, tinyLlama } from "../fixtures/gguf-fixtures.ts";

function colony(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/colony.mjs", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("colony gguf inspect prints metadata, summarised arrays and the tensor table; gguf check vets models; bad files exit 1 with a code", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "colony-gguf-cli-"));
  try {
    const good = path.join(dir, "good.gguf");
    await writeFile(good, sampleBytes());
    const long = path.join(dir, "long.gguf");
    const tokens = Array.from({ length: 5000 }, (_, i) => `t${i}`);
    await writeFile(long, encodeGguf({ metadata: [["tokenizer.ggml.tokens", meta.strs(tokens)], ["llama.attention.layer_norm_rms_epsilon", meta.f32(1e-5)]], tensors: sampleFile().tensors }));
    const bad = path.join(dir, "bad.gguf");
    await writeFile(bad, sampleBytes().subarray(0, 300));

    const model = path.join(dir, "tiny.gguf");
    const m = tinyLlama();
    await writeFile(model, encodeGguf(m));
    const dup = path.join(dir, "dup.gguf");
    const toks = [...(m.metadata.find(([k]) => k === "tokenizer.ggml.tokens")![1].value as string[])];
    toks[280] = toks[281]!;
    await writeFile(dup, encodeGguf({ ...m, metadata: m.metadata.map(([k, v]) => [k, k === "tokenizer.ggml.tokens" ? meta.strs(toks) : v]) }));
    const qwen = path.join(dir, "qwen.gguf");
    await writeFile(qwen, encodeGguf({ ...m, metadata: m.metadata.map(([k, v]) => [k, k === "general.architecture" ? meta.str("qwen2") : v]) }));

    const [text, json, summarised, broken, missing, checked, checkedDup, checkedQwen, lenientQwen] = await Promise.all([
      colony(["gguf", "inspect", good, "--tensors"]),
      colony(["gguf", "inspect", good, "--json", "--tensors"]),
      colony(["gguf", "inspect", long, "--array-items", "3"]),
      colony(["gguf", "inspect", bad]),
      colony(["gguf", "inspect", path.join(dir, "missing.gguf"), "--json"]),
      colony(["gguf", "check", model, "--json"]),
      colony(["gguf", "check", dup]),
      colony(["gguf", "check", qwen]),
      colony(["gguf", "check", qwen, "--allow-unchecked"]),
    ]);

    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /GGUF v3, 928 bytes, alignment 32/);
    assert.match(text.stdout, /general\.architecture\s+STRING\s+"llama"/);
    assert.match(text.stdout, /t\.i64\s+INT64\s+-5/);
    assert.match(text.stdout, /tokenizer\.ggml\.tokens\s+STRING\[6\]/);
    assert.match(text.stdout, /tensors: 3 \(2 F32, 1 F16\), 136 bytes of data/);
    assert.match(text.stdout, /output_norm\.weight\s+F16\s+\[4\]\s+96\s+8/);
    assert.match(text.stdout, /blk\.0\.ffn_up\.weight\s+F32\s+\[4, 2, 1, 1\]\s+128\s+32/);

    assert.equal(json.code, 0, json.stderr);
    const j = JSON.parse(json.stdout);
    assert.equal(j.version, 3);
    assert.deepEqual(j.metadata["t.u64"], { type: "UINT64", value: String(1n << 40n) });
    assert.equal(j.metadata["tokenizer.ggml.tokens"].length, 6);
    assert.deepEqual(j.tensors[1], { name: "output_norm.weight", type: "F16", dims: [4], offset: 96, bytes: 8 });

    assert.equal(summarised.code, 0, summarised.stderr);
    assert.match(summarised.stdout, /STRING\[5000\]\s+\["t0", "t1", "t2", \.\.\. 4997 more\]/);
    assert.match(summarised.stdout, /FLOAT32\s+0\.00001\n/);
    assert.doesNotMatch(summarised.stdout, /t4999/);
    assert.doesNotMatch(summarised.stdout, /\[4, 6\]/, "no tensor table without --tensors");

    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^error GGUF_TRUNCATED: /);
    assert.equal(broken.stdout, "");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error GGUF_FILE_UNREADABLE: /);

    assert.equal(checked.code, 0, checked.stderr);
    assert.deepEqual(JSON.parse(checked.stdout), { file: model, ok: true, architecture: "llama", coverage: "full", tensors: 11, vocab: 297, bytes: JSON.parse(checked.stdout).bytes });
    assert.equal(checkedDup.code, 1);
    assert.match(checkedDup.stderr, /^error GGUF_MODEL_INVALID: .*duplicate/);
    // Another architecture is outside the gate: refused, or accepted with a note on request.
    assert.equal(checkedQwen.code, 1);
    assert.match(checkedQwen.stderr, /^error GGUF_MODEL_UNCHECKED: general.architecture "qwen2"/);
    assert.equal(lenientQwen.code, 0, lenientQwen.stderr);
    assert.match(lenientQwen.stdout, /^ok: .*qwen2 model, .*\(vocabulary checks only: general.architecture "qwen2"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
