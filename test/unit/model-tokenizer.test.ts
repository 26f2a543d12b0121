import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Llama, LlamaModel as CppModel } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { exportModelGguf } from "../../trainer/gguf-export.ts";
import { openLlama } from "../../trainer/llama/llamacpp-logits.ts";
import { LlamaModel } from "../../trainer/model.ts";
import { BOS_ID, BYTE_BASE, EOS_ID, FIRST_CHAR_ID, SPACE_MARK, Tokenizer } from "../../trainer/tokenizer.ts";

const TRAIN = ["hello world", "the quick brown fox jumps over the lazy dog.\n", "Answer: 42\tdone", "naïve café"];
const dir = mkdtempSync(path.join(tmpdir(), "colony-model-tok-"));
let llama: Llama;
let cpp: CppModel;
const tok = Tokenizer.fromTexts(TRAIN);

before(async () => {
  const model = LlamaModel.init(
    { vocabSize: tok.vocabSize, dim: 8, nLayers: 1, nHeads: 2, nKvHeads: 2, ffnDim: 8, contextLength: 32, normEps: 1e-5, ropeTheta: 10000 },
    new Rng(3),
  );
  const file = path.join(dir, "tok.gguf");
  await exportModelGguf(model, tok, file);
  llama = await openLlama();
  cpp = await llama.loadModel({ modelPath: file });
});

after(async () => {
  await cpp?.dispose();
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("vocabulary layout: specials, 256 byte tokens, then the characters seen (space as U+2581)", () => {
  assert.deepEqual(tok.tokens.slice(0, 3), ["<unk>", "<s>", "</s>"]);
  assert.equal(tok.tokens[BYTE_BASE], "<0x00>");
  assert.equal(tok.tokens[BYTE_BASE + 255], "<0xFF>");
  const chars = tok.tokens.slice(FIRST_CHAR_ID);
  assert.ok(chars.includes(SPACE_MARK) && !chars.includes(" "));
  assert.equal(new Set(chars).size, chars.length);
  assert.equal(chars.length, new Set(TRAIN.join("").replaceAll(" ", SPACE_MARK)).size);
  // Deterministic: the same texts give the same ids.
  assert.deepEqual(Tokenizer.fromTexts(TRAIN).tokens, tok.tokens);
});

test("encode/decode round-trips, with byte fallback for unseen characters", () => {
  for (const s of ["hello world", "  leading and trailing  ", "unseen: ZQX €😀 中文", "", "tab\tnew\nline"]) {
    assert.equal(tok.decode(tok.encode(s, { bos: true, eos: true })), s);
  }
  const ids = tok.encode("€");
  assert.deepEqual(ids, [0xe2, 0x82, 0xac].map((b) => BYTE_BASE + b));
  assert.deepEqual(tok.encode("he", { bos: true, eos: true }).slice(0, 1), [BOS_ID]);
  assert.equal(tok.encode("he", { eos: true }).at(-1), EOS_ID);
});

test("llama.cpp tokenizes exactly like encode(): seen, unseen, spaces, bytes, no leading space", () => {
  const rng = new Rng("tokenizer-fuzz");
  const alphabet = [...new Set(TRAIN.join(""))].concat(["€", "😀", "中", "Z", "é", "ß", "\u0000", "\r", "  ", "<s>", SPACE_MARK, "<0x41>"]);
  const cases = ["hello", " hello", "hello ", "  two  spaces  ", "x", " ", "\n", "café naïve", "emoji 😀 and 中文", "<s> is text here"];
  for (let i = 0; i < 150; i++) {
    let s = "";
    const n = rng.int(1, 20);
    for (let j = 0; j < n; j++) s += rng.pick(alphabet);
    cases.push(s);
  }
  for (const s of cases) {
    const ours = tok.encode(s);
    const theirs = cpp.tokenize(s);
    assert.deepEqual(Array.from(theirs), ours, `tokenize(${JSON.stringify(s)})`);
    // Equal to the input except that a literal U+2581 comes back as a space (SPM cannot tell them apart).
    assert.equal(cpp.detokenize(theirs), tok.decode(ours), `detokenize(${JSON.stringify(s)})`);
    assert.equal(tok.decode(ours), s.replaceAll(SPACE_MARK, " "));
  }
  // add_space_prefix = false: the first token of "hello" is "h", not "▁".
  assert.equal(tok.tokens[cpp.tokenize("hello")[0]!], "h");
  assert.equal(cpp.tokens.bos, BOS_ID);
  assert.equal(cpp.tokens.eos, EOS_ID);
});

test("GGUF tokenizer metadata round-trips and is validated", () => {
  const meta = tok.toGgufMetadata();
  assert.equal(meta["tokenizer.ggml.add_space_prefix"], false);
  assert.equal(meta["tokenizer.ggml.model"], "llama");
  const back = Tokenizer.fromGgufMetadata(meta as unknown as Record<string, unknown>);
  assert.deepEqual(back.tokens, tok.tokens);
  const broken = { ...meta, "tokenizer.ggml.tokens": meta["tokenizer.ggml.tokens"].slice(0, 10) };
  assert.throws(() => Tokenizer.fromGgufMetadata(broken), (e: unknown) => e instanceof ColonyError && e.code === "TOKENIZER_INVALID");
  const notChar = { ...meta, "tokenizer.ggml.tokens": [...meta["tokenizer.ggml.tokens"].slice(0, -1), "ab"] };
  assert.throws(() => Tokenizer.fromGgufMetadata(notChar), (e: unknown) => e instanceof ColonyError && e.code === "TOKENIZER_INVALID");
});

test("options and bad input", () => {
  const small = Tokenizer.fromTexts(["aaab"], { minCount: 2 });
  assert.deepEqual(small.tokens.slice(FIRST_CHAR_ID), ["a"]);
  assert.deepEqual(small.encode("b"), [BYTE_BASE + 0x62]);
  assert.equal(Tokenizer.fromTexts(["abcabc d"], { maxChars: 2 }).vocabSize, FIRST_CHAR_ID + 2);
  const isTok = (e: unknown) => e instanceof ColonyError && e.code === "TOKENIZER_INVALID";
  assert.throws(() => Tokenizer.fromTexts([]), isTok);
  // Lone surrogates never become tokens; they encode as U+FFFD's bytes, like the UTF-8 llama.cpp receives.
  const sur = Tokenizer.fromTexts(["a\uD800b"]);
  assert.deepEqual(sur.tokens.slice(FIRST_CHAR_ID), ["a", "b"]);
  assert.deepEqual(sur.encode("\uD800"), [0xef, 0xbf, 0xbd].map((b) => BYTE_BASE + b));
  assert.throws(() => Tokenizer.fromTexts(["x"], { minCount: 0 }), isTok);
  assert.throws(() => tok.decode([tok.vocabSize]), (e: unknown) => e instanceof ColonyError && e.code === "MODEL_TOKEN_INVALID");
});
