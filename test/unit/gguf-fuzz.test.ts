import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { readGguf, readGgufHeader, readGgufHeaderFromFile } from "../../gguf/reader.ts";
import { checkLlamaModel } from "../../gguf/llama-check.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { sampleBytes, tinyLlama } from "../fixtures/gguf-fixtures.ts";
import { mutateBytes } from "../fixtures/gguf-mutate.ts";

function outcome(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    if (err instanceof ColonyError && err.code.startsWith("GGUF_")) return err.code;
    throw err;
  }
}

test("thousands of mutated files either parse or fail with a GGUF ColonyError, quickly and in bounded memory", () => {
  const seed = sampleBytes();
  const rng = new Rng("gguf-fuzz");
  const started = Date.now();
  const rssBefore = process.memoryUsage().rss;
  const counts = new Map<string, number>();
  const N = 10000;
  let slowest = 0;
  for (let i = 0; i < N; i++) {
    const { bytes, how } = mutateBytes(seed, rng);
    const t0 = performance.now();
    let result: string;
    try {
      result = outcome(() => readGguf(bytes));
      // The header-only reader must agree whenever the data was not the problem.
      const h = outcome(() => readGgufHeader(bytes));
      if (result !== "GGUF_UNSUPPORTED_TENSOR_TYPE") assert.equal(h, result, how);
    } catch (err) {
      assert.fail(`mutation #${i} (${how}) threw a non-Colony error: ${String((err as Error)?.stack ?? err)}`);
    }
    slowest = Math.max(slowest, performance.now() - t0);
    counts.set(result, (counts.get(result) ?? 0) + 1);
    if (i % 1000 === 0) assert.ok(Date.now() - started < 30_000, "fuzzing takes too long: a mutation may make the reader crawl");
  }
  const rssGrowth = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  const resourceMaxMB = process.resourceUsage().maxRSS / 1024;
  // A mutation that made the reader allocate by a forged count would show up here.
  assert.ok(rssGrowth < 200, `RSS grew by ${rssGrowth.toFixed(0)} MB`);
  assert.ok(resourceMaxMB < 1024, `peak RSS ${resourceMaxMB.toFixed(0)} MB`);
  assert.ok(slowest < 500, `slowest single parse took ${slowest.toFixed(0)} ms`);
  if (process.env.GGUF_FUZZ_VERBOSE) console.error(JSON.stringify([...counts]));
  // The fuzzer must reach many different checks, and some mutations (in data or padding) still parse.
  assert.ok((counts.get("ok") ?? 0) > 50, JSON.stringify([...counts]));
  assert.ok(counts.size >= 9, `only ${counts.size} outcomes: ${JSON.stringify([...counts])}`);
});

test("the path-based reader, reading in small growing chunks, agrees with the in-memory reader on mutated files", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "colony-gguf-fuzz-"));
  try {
    const seed = sampleBytes();
    const rng = new Rng("gguf-fuzz-file");
    const file = path.join(dir, "m.gguf");
    for (let i = 0; i < 150; i++) {
      const { bytes, how } = mutateBytes(seed, rng);
      await writeFile(file, bytes);
      const expected = outcome(() => readGgufHeader(bytes));
      let got: string;
      try {
        const h = await readGgufHeaderFromFile(file, undefined, { firstReadBytes: rng.int(1, 64) });
        assert.deepEqual(h, readGgufHeader(bytes), how);
        got = "ok";
      } catch (err) {
        if (!(err instanceof ColonyError)) assert.fail(`${how}: non-Colony error ${String(err)}`);
        got = err.code;
      }
      assert.equal(got, expected, how);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("mutated llama models: the model check after the reader also only ever throws GGUF ColonyErrors", () => {
  const model = encodeGguf(tinyLlama());
  const headerEnd = readGgufHeader(model).dataOffset;
  // Mutate only the header: that is where the model check looks.
  const seed = model.subarray(0, headerEnd);
  const data = model.subarray(headerEnd);
  const rng = new Rng("gguf-fuzz-model");
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const { bytes, how } = mutateBytes(seed, rng);
    const file = Buffer.concat([bytes, data]);
    let result: string;
    try {
      result = outcome(() => checkLlamaModel(readGgufHeader(file, { strictLayout: false, allowTrailingData: true })));
    } catch (err) {
      assert.fail(`mutation #${i} (${how}) threw a non-Colony error: ${String((err as Error)?.stack ?? err)}`);
    }
    counts.set(result, (counts.get(result) ?? 0) + 1);
  }
  if (process.env.GGUF_FUZZ_VERBOSE) console.error(JSON.stringify([...counts]));
  assert.ok((counts.get("GGUF_MODEL_INVALID") ?? 0) > 100, JSON.stringify([...counts]));
  assert.ok((counts.get("ok") ?? 0) > 100, JSON.stringify([...counts]));
});
