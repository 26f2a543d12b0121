// Fuzzes the model gate against the real llama.cpp: hundreds of seeded mutations of a tiny llama
// model (and of a mixture-of-experts variant) go through the reader and the gate with the node's
// defaults; every file the gate accepts is then loaded and run by llama.cpp in a child process,
// where an abort fails the test instead of killing the runner. Before the gate was an allowlist,
// this found aborts on llama.expert_used_count without experts, expert_group_count, unknown rope
// scaling types, F16 norm weights, split.count and tokenizer model "none" (docs/gguf.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { checkModel } from "../../gguf/llama-check.ts";
import { meta } from "../../gguf/meta.ts";
import { readGgufHeader } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { tinyLlama } from "../fixtures/gguf-fixtures.ts";
import { makeMoe, mutateModel, type MutableModel } from "../fixtures/gguf-model-mutations.ts";
import { mutateBytes } from "../fixtures/gguf-mutate.ts";
import { loadInChildren } from "../fixtures/llama-load-runner.ts";

const MUTATIONS = 600;

interface Candidate {
  bytes: Buffer;
  how: string;
}

/** Seeded mutations; returns the files the gate accepts and the gate's messages for the others. */
function fuzzGate(bases: MutableModel[], rng: Rng): { accepted: Candidate[]; refused: string[] } {
  const accepted: Candidate[] = [];
  const refused: string[] = [];
  for (let i = 0; i < MUTATIONS; i++) {
    const { model, how } = mutateModel(rng.pick(bases), rng);
    let bytes: Buffer;
    try {
      bytes = encodeGguf(model);
    } catch (err) {
      // The writer refuses values its types cannot hold (e.g. a negative UINT32): not a file.
      assert.ok(err instanceof ColonyError && err.code === "GGUF_WRITE_INVALID", String(err));
      continue;
    }
    let what = how;
    if (rng.chance(0.1)) {
      // Raw damage in the first 4 KiB (metadata and tensor infos) for what the writer never makes.
      const m = mutateBytes(bytes.subarray(0, 4096), rng);
      bytes = Buffer.concat([m.bytes, bytes.subarray(4096)]);
      what += `; ${m.how}`;
    }
    try {
      checkModel(readGgufHeader(bytes));
      accepted.push({ bytes, how: what });
    } catch (err) {
      if (!(err instanceof ColonyError && err.code.startsWith("GGUF_"))) assert.fail(`mutation #${i} (${what}) threw a non-GGUF error: ${String(err)}`);
      refused.push(`${err.code}: ${err.message}`);
    }
  }
  return { accepted, refused };
}

test("fuzzed models: every file the model gate accepts loads in llama.cpp (child process) and none crashes it", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "colony-gate-fuzz-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const moe = tinyLlama(2);
  makeMoe(moe, 2, 1);
  const bases = [tinyLlama(1), moe];
  const { accepted, refused } = fuzzGate(bases, new Rng("model-gate-fuzz"));

  // The fuzzer has teeth: it made files of the classes that abort llama.cpp, and the gate refused them.
  for (const re of [/expert_used_count/, /rope\.scaling\.type/, /1-D tensors must be F32/, /split models/, /duplicate entry/, /expert_group_count/]) {
    assert.ok(refused.some((m) => re.test(m)), `no mutation was refused for ${re}`);
  }
  assert.ok(accepted.length >= 50, `only ${accepted.length} of ${MUTATIONS} mutations passed the gate`);

  // The runner itself must see an abort: the file (expert_used_count 1, no experts) passed
  // the old gate and aborts llama.cpp with GGML_ASSERT(n_expert_used_max <= hparams.n_expert).
  const crasher = tinyLlama(3);
  crasher.metadata.push(["llama.expert_used_count", meta.u32(1)]);
  const cases: Candidate[] = [
    { bytes: encodeGguf(crasher), how: "known crasher" },
    ...bases.map((b, i) => ({ bytes: encodeGguf(b), how: `unmutated base ${i}` })),
    ...accepted,
  ];
  const files = await Promise.all(cases.map(async (c, i) => {
    const file = path.join(dir, `m${i}.gguf`);
    await writeFile(file, c.bytes);
    return file;
  }));
  const outcomes = await loadInChildren(files, dir, { timeoutMs: 150_000, maxCrashes: 3 });
  assert.equal(outcomes[0]?.result, "crash", "the loader did not report the known crasher as a crash");
  assert.match(outcomes[0]!.detail ?? "", /SIGABRT|n_expert/);
  const bad = outcomes.slice(1).flatMap((o, i) => (o.result === "crash" || o.result === "load-error" ? [`${cases[i + 1]!.how}: ${o.result} ${o.detail}`] : []));
  assert.deepEqual(bad, [], "files the gate accepted crashed llama.cpp or were refused by it");
  assert.equal(outcomes.length, cases.length, "the loader gave up before the last file");
  assert.equal(outcomes[1]!.result, "ok", "the dense base model did not run");
  assert.equal(outcomes[2]!.result, "ok", "the mixture-of-experts base model did not run");
});
