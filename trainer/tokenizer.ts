/**
 * A character-level SentencePiece-style ("SPM") vocabulary that llama.cpp tokenizes exactly like we do.
 *
 * Layout (fixed, so ids are stable across exports):
 *   0 = <unk> (type 2), 1 = <s> (type 3), 2 = </s> (type 3),
 *   3..258 = the 256 byte tokens <0x00>..<0xFF> (type 6): byte fallback for characters never seen,
 *   259.. = the single characters seen in the training texts (type 1), space written as "▁" (U+2581).
 *
 * Why llama.cpp agrees with this encoder: its SPM tokenizer splits the text into UTF-8 characters, then
 * merges adjacent symbols only when their concatenation is itself a vocabulary entry. Every entry
 * here is one character, so no merge can ever happen; each character maps to its own token, or, when
 * absent, to one byte token per UTF-8 byte. With `add_space_prefix = false` llama.cpp does not prepend
 * "▁" to the text (test/model-tokenizer.test.ts checks all of this against the real binary).
 */
import { ColonyError } from "../common/errors.ts";
import { ModelErrors } from "./llama/errors.ts";

export const SPACE_MARK = "\u2581";
export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const BYTE_BASE = 3;
export const FIRST_CHAR_ID = BYTE_BASE + 256;

/** llama.cpp token types (llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

export interface TokenizerOptions {
  /** Ignore characters seen fewer than this many times (they fall back to bytes). Default 1. */
  minCount?: number;
  /** Keep at most this many characters, the most frequent first. Default: no limit. */
  maxChars?: number;
}

/** The tokenizer part of a GGUF file's metadata, as plain JS values. */
export interface TokenizerGgufMetadata {
  "tokenizer.ggml.model": "llama";
  "tokenizer.ggml.tokens": string[];
  "tokenizer.ggml.scores": number[];
  "tokenizer.ggml.token_type": number[];
  "tokenizer.ggml.bos_token_id": number;
  "tokenizer.ggml.eos_token_id": number;
  "tokenizer.ggml.unknown_token_id": number;
  "tokenizer.ggml.add_bos_token": boolean;
  "tokenizer.ggml.add_eos_token": boolean;
  "tokenizer.ggml.add_space_prefix": boolean;
}

function byteTokenName(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

function invalid(message: string): ColonyError {
  return new ColonyError(ModelErrors.TOKENIZER_INVALID, message);
}

export class Tokenizer {
  /** Token strings by id (characters use "▁" for space). */
  readonly tokens: readonly string[];
  private readonly charToId: Map<string, number>;
  private readonly encoder = new TextEncoder();

  private constructor(chars: string[]) {
    const tokens = ["<unk>", "<s>", "</s>"];
    for (let b = 0; b < 256; b++) tokens.push(byteTokenName(b));
    this.charToId = new Map();
    for (const c of chars) {
      this.charToId.set(c, tokens.length);
      tokens.push(c);
    }
    this.tokens = Object.freeze(tokens);
  }

  /** Builds the vocabulary from the characters (Unicode code points) of `texts`. */
  static fromTexts(texts: Iterable<string>, opts: TokenizerOptions = {}): Tokenizer {
    const minCount = opts.minCount ?? 1;
    const maxChars = opts.maxChars ?? Number.POSITIVE_INFINITY;
    if (!Number.isInteger(minCount) || minCount < 1) throw invalid(`minCount must be an integer >= 1, got ${minCount}`);
    if (maxChars !== Number.POSITIVE_INFINITY && (!Number.isInteger(maxChars) || maxChars < 0)) {
      throw invalid(`maxChars must be an integer >= 0, got ${maxChars}`);
    }
    const counts = new Map<string, number>();
    let n = 0;
    for (const text of texts) {
      if (typeof text !== "string") throw invalid("fromTexts: every text must be a string");
      n++;
      for (const ch of text) {
        // A lone UTF-16 surrogate is not a character: it cannot be stored in GGUF (UTF-8) and reaches
        // llama.cpp as U+FFFD, so it stays out of the vocabulary and encodes through byte fallback.
        if (ch.length === 1 && (ch.charCodeAt(0) & 0xf800) === 0xd800) continue;
        const c = ch === " " ? SPACE_MARK : ch;
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
    }
    if (n === 0) throw invalid("fromTexts: no training text");
    // Most frequent first (so maxChars keeps the useful ones), ties in string order: deterministic.
    const chars = [...counts.entries()]
      .filter(([, k]) => k >= minCount)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, maxChars)
      .map(([c]) => c);
    return new Tokenizer(chars);
  }

  /** Rebuilds a tokenizer from GGUF metadata written by `toGgufMetadata` (validated). */
  static fromGgufMetadata(meta: Record<string, unknown>): Tokenizer {
    if (meta["tokenizer.ggml.model"] !== "llama") throw invalid(`tokenizer.ggml.model must be "llama", got ${String(meta["tokenizer.ggml.model"])}`);
    const tokens = meta["tokenizer.ggml.tokens"];
    const types = meta["tokenizer.ggml.token_type"];
    if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === "string")) throw invalid("tokenizer.ggml.tokens must be an array of strings");
    if (!Array.isArray(types) || types.length !== tokens.length) throw invalid("tokenizer.ggml.token_type must match tokens in length");
    if (tokens.length < FIRST_CHAR_ID || tokens[UNK_ID] !== "<unk>" || tokens[BOS_ID] !== "<s>" || tokens[EOS_ID] !== "</s>") {
      throw invalid("not a Colony character vocabulary: expected <unk>, <s>, </s> then 256 byte tokens");
    }
    for (let b = 0; b < 256; b++) {
      if (tokens[BYTE_BASE + b] !== byteTokenName(b) || Number(types[BYTE_BASE + b]) !== TokenType.BYTE) throw invalid(`byte token ${b} missing or misplaced`);
    }
    const chars = tokens.slice(FIRST_CHAR_ID) as string[];
    for (const c of chars) if ([...c].length !== 1) throw invalid(`token ${JSON.stringify(c)} is not a single character`);
    if (new Set(chars).size !== chars.length) throw invalid("duplicate character tokens");
    return new Tokenizer(chars);
  }

  get vocabSize(): number {
    return this.tokens.length;
  }
  get bosId(): number {
    return BOS_ID;
  }
  get eosId(): number {
    return EOS_ID;
  }
  get unkId(): number {
    return UNK_ID;
  }

  /** Token ids of `text`; `bos` prepends <s>, `eos` appends </s>. Never inserts a leading space. */
  encode(text: string, opts: { bos?: boolean; eos?: boolean } = {}): number[] {
    const ids: number[] = [];
    if (opts.bos) ids.push(BOS_ID);
    for (const ch of text) {
      const id = this.charToId.get(ch === " " ? SPACE_MARK : ch);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // Byte fallback, as llama.cpp does for a symbol that is not in the vocabulary. A lone surrogate
      // encodes as U+FFFD (EF BF BD) in both TextEncoder and llama.cpp's UTF-8 input.
      for (const b of this.encoder.encode(ch)) ids.push(BYTE_BASE + b);
    }
    if (opts.eos) ids.push(EOS_ID);
    return ids;
  }

  /** Text of `ids`: control tokens are dropped, byte tokens are reassembled into UTF-8. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
        throw new ColonyError(ModelErrors.MODEL_TOKEN_INVALID, `token id ${id} outside [0, ${this.tokens.length})`);
      }
      if (id < BYTE_BASE) continue;
      if (id < FIRST_CHAR_ID) {
        bytes.push(id - BYTE_BASE);
        continue;
      }
      const t = this.tokens[id]!;
      for (const b of this.encoder.encode(t === SPACE_MARK ? " " : t)) bytes.push(b);
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }

  /** GGUF tokenizer metadata that makes llama.cpp tokenize exactly like `encode`. */
  toGgufMetadata(opts: { addBos?: boolean } = {}): TokenizerGgufMetadata {
    const n = this.tokens.length;
    const scores: number[] = new Array(n);
    const types: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // Scores only rank merges, and single characters never merge; give them distinct, decreasing values.
      scores[i] = i < FIRST_CHAR_ID ? 0 : -(i - FIRST_CHAR_ID);
      types[i] = i === UNK_ID ? TokenType.UNKNOWN : i < BYTE_BASE ? TokenType.CONTROL : i < FIRST_CHAR_ID ? TokenType.BYTE : TokenType.NORMAL;
    }
    return {
      "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.tokens": [...this.tokens],
      "tokenizer.ggml.scores": scores,
      "tokenizer.ggml.token_type": types,
      "tokenizer.ggml.bos_token_id": BOS_ID,
      "tokenizer.ggml.eos_token_id": EOS_ID,
      "tokenizer.ggml.unknown_token_id": UNK_ID,
      "tokenizer.ggml.add_bos_token": opts.addBos ?? true,
      "tokenizer.ggml.add_eos_token": false,
      // Without this llama.cpp's SPM tokenizer prepends "▁" to every text it tokenizes.
      "tokenizer.ggml.add_space_prefix": false,
    };
  }
}
