import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { readGguf, readGgufFile, readGgufHeader, readGgufHeaderFromFile } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { meta } from "../../gguf/meta.ts";
import { GgmlType, GgufValueType } from "../../gguf/types.ts";
import { halfToFloat, floatToHalf } from "../../gguf/f16.ts";
import { Raw, sampleBytes, sampleFile } from "../fixtures/gguf-fixtures.ts";

function code(c: string, what = "") {
  return (e: unknown) => {
    assert.ok(e instanceof ColonyError, `${what}: expected ColonyError ${c}, got ${String(e)}`);
    assert.equal(e.code, c, `${what}: ${e.message}`);
    return true;
  };
}

test("writer -> reader round trip keeps every metadata value and tensor (F16 rounded once)", () => {
  const src = sampleFile();
  const file = readGguf(sampleBytes());
  assert.equal(file.version, 3);
  for (const [k, v] of src.metadata) {
    const got = file.metadata.get(k)!;
    assert.equal(got.type, v.type, k);
    if (v.type === GgufValueType.FLOAT64 || v.type === GgufValueType.ARRAY && v.itemType !== GgufValueType.FLOAT32) assert.deepEqual(got.value, v.value, k);
    if (v.type === GgufValueType.ARRAY) assert.equal((got as { itemType: number }).itemType, v.itemType);
  }
  assert.equal(file.metadata.get("t.i64")!.value, -5n);
  assert.equal(file.metadata.get("t.u64")!.value, 1n << 40n);
  assert.equal(file.metadata.get("general.alignment")!.value, 32);
  assert.equal(file.tensors.length, src.tensors.length);
  src.tensors.forEach((t, i) => {
    const got = file.tensors[i]!;
    assert.equal(got.name, t.name);
    assert.deepEqual(got.dims, t.dims);
    assert.equal(got.type, t.type);
    const expected = t.type === GgmlType.F16 ? t.data.map((x) => halfToFloat(floatToHalf(x))) : t.data;
    assert.deepEqual([...got.data], [...expected]);
  });
  // Re-encoding what was read gives the same bytes.
  assert.ok(encodeGguf({ metadata: file.metadata, tensors: file.tensors }).equals(sampleBytes()));
  const h = file.header;
  assert.equal(h.dataOffset % 32, 0);
  assert.deepEqual(h.tensorInfos.map((t) => t.typeName), ["F32", "F16", "F32"]);
  assert.deepEqual(h.tensorInfos.map((t) => t.byteSize), [96, 8, 32]);
});

test("the path-based reader reads only the header and agrees with the in-memory reader", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "colony-gguf-"));
  try {
    // A header larger than the first 64 KiB read, to exercise the grow-and-retry path.
    const big = meta.strs(Array.from({ length: 20000 }, (_, i) => `tok${i}`));
    const bytes = encodeGguf({ metadata: [["tokenizer.ggml.tokens", big]], tensors: sampleFile().tensors });
    assert.ok(bytes.length > 150_000);
    const p = path.join(dir, "m.gguf");
    await writeFile(p, bytes);
    const h = await readGgufHeaderFromFile(p);
    assert.deepEqual(h, readGgufHeader(bytes));
    const f = await readGgufFile(p);
    assert.equal(f.tensors.length, 3);
    await assert.rejects(readGgufHeaderFromFile(path.join(dir, "missing.gguf")), code("GGUF_FILE_UNREADABLE"));
    await writeFile(p, bytes.subarray(0, 1000));
    await assert.rejects(readGgufHeaderFromFile(p), code("GGUF_TRUNCATED"));
    await assert.rejects(readGgufHeaderFromFile(p, { maxFileBytes: 999 }), code("GGUF_LIMIT_EXCEEDED"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("quantised tensor types are accepted in headers, refused for data", () => {
  // Q8_0: 32 elements per 34-byte block.
  const r = new Raw().head(1, 0).tensorInfo("q", [64, 2], 8, 0).padTo(32);
  const bytes = Buffer.concat([r.build(), Buffer.alloc(4 * 34), Buffer.alloc(32 - ((4 * 34) % 32))]);
  const h = readGgufHeader(bytes);
  assert.equal(h.tensorInfos[0]!.typeName, "Q8_0");
  assert.equal(h.tensorInfos[0]!.byteSize, 136);
  assert.throws(() => readGguf(bytes), code("GGUF_UNSUPPORTED_TENSOR_TYPE"));
  const odd = new Raw().head(1, 0).tensorInfo("q", [48], 8, 0).padTo(32).build();
  assert.throws(() => readGgufHeader(Buffer.concat([odd, Buffer.alloc(64)])), code("GGUF_BAD_SHAPE"));
});

test("each kind of malformed file is refused with its own code", () => {
  const ok = sampleBytes();
  const u64max = (1n << 64n) - 1n;
  const cases: Array<[string, Uint8Array, string, object?]> = [
    ["empty", new Uint8Array(0), "GGUF_TRUNCATED"],
    ["bad magic", Buffer.concat([Buffer.from("GGML"), ok.subarray(4)]), "GGUF_BAD_MAGIC"],
    ["short bad magic", Buffer.from("PK"), "GGUF_BAD_MAGIC"],
    ["version 2", new Raw().head(0, 0, 2).build(), "GGUF_UNSUPPORTED_VERSION"],
    ["big-endian", new Raw().head(0, 0, 0x03000000).build(), "GGUF_UNSUPPORTED_VERSION"],
    ["header cut", ok.subarray(0, 20), "GGUF_TRUNCATED"],
    ["data cut", ok.subarray(0, ok.length - 40), "GGUF_TRUNCATED"],
    ["huge tensor count", new Raw().head(u64max, 0).build(), "GGUF_LIMIT_EXCEEDED"],
    ["huge kv count", new Raw().head(0, 1n << 40n).build(), "GGUF_LIMIT_EXCEEDED"],
    ["counts beyond file", new Raw().head(100, 100).build(), "GGUF_TRUNCATED"],
    ["kv count over custom limit", new Raw().head(0, 2).kvU32("a", 1).kvU32("b", 2).build(), "GGUF_LIMIT_EXCEEDED", { maxKvCount: 1 }],
    ["huge key length", new Raw().head(0, 1).u64(u64max).bytes(new Uint8Array(16)).build(), "GGUF_LIMIT_EXCEEDED"],
    ["key past end", new Raw().head(0, 1).u64(1000).bytes([0x61, 0, 0, 0, 0, 0]).build(), "GGUF_TRUNCATED"],
    ["empty key", new Raw().head(0, 1).str("").u32(4).u32(1).build(), "GGUF_BAD_STRING"],
    ["NUL in key", new Raw().head(0, 1).str("a\u0000b").u32(4).u32(1).build(), "GGUF_BAD_STRING"],
    ["non-UTF-8 key", new Raw().head(0, 1).str(new Uint8Array([0x61, 0xff])).u32(4).u32(1).build(), "GGUF_BAD_STRING"],
    ["non-UTF-8 value", new Raw().head(0, 1).str("k").u32(8).str(new Uint8Array([0xc3, 0x28])).build(), "GGUF_BAD_STRING"],
    ["string over limit", new Raw().head(0, 1).str("k").u32(8).str("abcdef").build(), "GGUF_LIMIT_EXCEEDED", { maxStringBytes: 5 }],
    ["unknown value type", new Raw().head(0, 1).str("k").u32(13).u32(0).build(), "GGUF_BAD_TYPE"],
    ["unknown item type", new Raw().head(0, 1).str("k").u32(9).u32(99).u64(0).build(), "GGUF_BAD_TYPE"],
    ["nested array", new Raw().head(0, 1).str("k").u32(9).u32(9).u64(0).build(), "GGUF_BAD_TYPE"],
    ["bool 2", new Raw().head(0, 1).str("k").u32(7).u8(2).build(), "GGUF_BAD_TYPE"],
    ["huge array", new Raw().head(0, 1).str("k").u32(9).u32(0).u64(u64max).build(), "GGUF_LIMIT_EXCEEDED"],
    ["array past end", new Raw().head(0, 1).str("k").u32(9).u32(10).u64(1000).build(), "GGUF_TRUNCATED"],
    ["string array past end", new Raw().head(0, 1).str("k").u32(9).u32(8).u64(1_000_000).build(), "GGUF_TRUNCATED"],
    ["duplicate key", new Raw().head(0, 2).kvU32("k", 1).kvU32("k", 2).build(), "GGUF_DUPLICATE"],
    ["alignment wrong type", new Raw().head(0, 1).str("general.alignment").u32(10).u64(32).build(), "GGUF_BAD_TYPE"],
    ["alignment 0", new Raw().head(0, 1).kvU32("general.alignment", 0).build(), "GGUF_BAD_OFFSET"],
    ["alignment 48", new Raw().head(0, 1).kvU32("general.alignment", 48).build(), "GGUF_BAD_OFFSET"],
    ["alignment huge", new Raw().head(0, 1).kvU32("general.alignment", 1 << 30).build(), "GGUF_LIMIT_EXCEEDED"],
    ["0 dims", new Raw().head(1, 0).str("t").u32(0).u32(0).u64(0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_SHAPE"],
    ["5 dims", new Raw().head(1, 0).tensorInfo("t", [1, 1, 1, 1, 1], 0, 0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_SHAPE"],
    ["n_dims huge", new Raw().head(1, 0).str("t").u32(0xffffffff).u64(1).u32(0).u64(0).build(), "GGUF_BAD_SHAPE"],
    ["zero dim", new Raw().head(1, 0).tensorInfo("t", [4, 0], 0, 0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_SHAPE"],
    ["element overflow", new Raw().head(1, 0).tensorInfo("t", [1n << 32n, 1n << 32n], 0, 0).padTo(32).build(), "GGUF_BAD_SHAPE"],
    ["elements beyond file", new Raw().head(1, 0).tensorInfo("t", [1n << 20n, 1n << 20n], 0, 0).padTo(32).build(), "GGUF_TRUNCATED"],
    ["unknown ggml type", new Raw().head(1, 0).tensorInfo("t", [4], 4, 0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_TYPE"],
    ["ggml type huge", new Raw().head(1, 0).tensorInfo("t", [4], 0xffffffff, 0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_TYPE"],
    ["misaligned offset", new Raw().head(2, 0).tensorInfo("a", [4], 0, 0).tensorInfo("b", [4], 0, 16).padTo(32).bytes(new Uint8Array(64)).build(), "GGUF_BAD_OFFSET"],
    ["overlap", new Raw().head(2, 0).tensorInfo("a", [16], 0, 0).tensorInfo("b", [4], 0, 32).padTo(32).bytes(new Uint8Array(96)).build(), "GGUF_BAD_OFFSET", { strictLayout: false }],
    ["gap (strict layout)", new Raw().head(2, 0).tensorInfo("a", [4], 0, 0).tensorInfo("b", [4], 0, 64).padTo(32).bytes(new Uint8Array(96)).build(), "GGUF_BAD_OFFSET"],
    ["offset beyond file", new Raw().head(1, 0).tensorInfo("a", [4], 0, 1n << 62n).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_TRUNCATED"],
    ["duplicate tensor", new Raw().head(2, 0).tensorInfo("a", [4], 0, 0).tensorInfo("a", [4], 0, 32).padTo(32).bytes(new Uint8Array(64)).build(), "GGUF_DUPLICATE"],
    ["tensor name too long", new Raw().head(1, 0).tensorInfo("x".repeat(64), [4], 0, 0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_STRING"],
    ["empty tensor name", new Raw().head(1, 0).tensorInfo("", [4], 0, 0).padTo(32).bytes(new Uint8Array(32)).build(), "GGUF_BAD_STRING"],
    ["key over limit", new Raw().head(0, 1).kvU32("abcdef", 1).build(), "GGUF_LIMIT_EXCEEDED", { maxKeyBytes: 5 }],
    ["trailing data", Buffer.concat([ok, Buffer.alloc(32)]), "GGUF_TRAILING_DATA"],
    ["trailing byte, no tensors", Buffer.concat([new Raw().head(0, 0).padTo(32).build(), Buffer.from([1])]), "GGUF_TRAILING_DATA"],
    ["file over limit", ok, "GGUF_LIMIT_EXCEEDED", { maxFileBytes: 100 }],
    ["header over limit", ok, "GGUF_LIMIT_EXCEEDED", { maxHeaderBytes: 64 }],
    ["tensor count over limit", ok, "GGUF_LIMIT_EXCEEDED", { maxTensorCount: 2 }],
    ["array over limit", ok, "GGUF_LIMIT_EXCEEDED", { maxArrayLength: 5 }],
  ];
  for (const [what, bytes, c, limits] of cases) {
    assert.throws(() => readGguf(bytes, limits), code(c, what), what);
  }
  // The relaxed options accept what they relax.
  assert.equal(readGguf(Buffer.concat([ok, Buffer.alloc(32)]), { allowTrailingData: true }).tensors.length, 3);
  const gap = new Raw().head(2, 0).tensorInfo("a", [4], 0, 0).tensorInfo("b", [4], 0, 64).padTo(32).bytes(new Uint8Array(96)).build();
  assert.equal(readGguf(gap, { strictLayout: false }).tensors.length, 2);
  // A file with no tensors may end right after its header or after the padding.
  const bare = new Raw().head(0, 1).kvU32("a", 1);
  assert.equal(readGguf(bare.build()).metadata.get("a")!.value, 1);
  assert.equal(readGguf(bare.padTo(32).build()).tensors.length, 0);
});
