import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { encodeGguf, writeGgufFile } from "../../gguf/writer.ts";
import { meta } from "../../gguf/meta.ts";
import { floatToHalf } from "../../gguf/f16.ts";
import { GgmlType, GgufValueType, type GgufTensor, type GgufValue } from "../../gguf/types.ts";

function sampleMetadata(): Array<[string, GgufValue]> {
  return [
    ["general.architecture", meta.str("llama")],
    ["general.name", meta.str("tiny ✓ model")],
    ["t.u8", meta.u8(255)],
    ["t.i8", meta.i8(-128)],
    ["t.u16", meta.u16(65535)],
    ["t.i16", meta.i16(-32768)],
    ["t.u32", meta.u32(4294967295)],
    ["t.i32", meta.i32(-2147483648)],
    ["t.u64", meta.u64((1n << 64n) - 1n)],
    ["t.i64", meta.i64(-(1n << 63n))],
    ["t.f32", meta.f32(0.5)],
    ["t.f64", meta.f64(0.1)],
    ["t.bool", meta.bool(false)],
    ["t.empty", meta.str("")],
    ["t.strs", meta.strs(["<unk>", "▁", "é", ""])],
    ["t.f32s", meta.f32s([1.5, -2.25])],
    ["t.i32s", meta.i32s([1, -1, 7])],
    ["t.u64s", meta.arr(GgufValueType.UINT64, [1n, 2n ** 40n])],
    ["t.bools", meta.arr(GgufValueType.BOOL, [true, false])],
    ["t.none", meta.arr(GgufValueType.INT8, [])],
  ];
}

function sampleTensors(): GgufTensor[] {
  const a = new Float32Array(6).map((_, i) => i - 2.5);
  const b = new Float32Array(5).map((_, i) => 1 / (i + 1));
  const c = new Float32Array(2 * 3 * 2 * 2).map((_, i) => i);
  return [
    { name: "token_embd.weight", dims: [3, 2], type: GgmlType.F32, data: a },
    { name: "blk.0.attn_norm.weight", dims: [5], type: GgmlType.F16, data: b },
    { name: "x".repeat(63), dims: [2, 3, 2, 2], type: GgmlType.F32, data: c },
  ];
}

// node-llama-cpp splits keys on dots into nested objects and returns small u64 values as numbers.
function lookup(obj: unknown, key: string): unknown {
  return key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], obj);
}
function norm(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number" && Number.isInteger(v)) return String(v);
  return v;
}

test("a written file is parsed by node-llama-cpp's own GGUF reader with the same metadata and tensor infos", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "colony-gguf-"));
  try {
    const file = path.join(dir, "sample.gguf");
    const metadata = sampleMetadata();
    const tensors = sampleTensors();
    await writeGgufFile(file, { metadata, tensors });
    const info = await readGgufFileInfo(file, { logWarnings: false });
    assert.equal(info.version, 3);
    assert.equal(Number(info.tensorCount), tensors.length);
    for (const [key, v] of metadata) {
      const expected = v.type === GgufValueType.FLOAT32 ? v.value : norm(v.value);
      assert.deepEqual(norm(lookup(info.metadata, key)), expected, key);
    }
    assert.equal(lookup(info.metadata, "general.alignment"), 32);
    const infos = info.tensorInfo!;
    assert.equal(infos.length, tensors.length);
    let prevEnd = 0;
    tensors.forEach((t, i) => {
      const ti = infos[i]!;
      assert.equal(ti.name, t.name);
      assert.deepEqual(ti.dimensions.map(Number), t.dims);
      assert.equal(Number(ti.ggmlType), t.type);
      const off = Number(ti.offset);
      assert.equal(off % 32, 0, "offsets are aligned");
      assert.ok(off >= prevEnd, "tensors do not overlap");
      prevEnd = off + t.data.length * (t.type === GgmlType.F32 ? 4 : 2);
    });
    assert.equal(Number(infos[0]!.fileOffset) % 32, 0, "data section starts aligned");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("header bytes, padding and tensor data are laid out as GGUF v3 says", () => {
  const tensors = sampleTensors();
  const buf = encodeGguf({ metadata: [["general.architecture", meta.str("llama")]], tensors, alignment: 64 });
  assert.equal(buf.toString("latin1", 0, 4), "GGUF");
  assert.equal(buf.readUInt32LE(4), 3);
  assert.equal(buf.readBigUInt64LE(8), 3n);
  assert.equal(buf.readBigUInt64LE(16), 2n, "general.alignment was added");
  assert.equal(buf.length % 64, 0);
  // Find the data section start: the first tensor holds -2.5, -1.5, ... as F32.
  const first = Buffer.alloc(8);
  first.writeFloatLE(-2.5, 0);
  first.writeFloatLE(-1.5, 4);
  const start = buf.indexOf(first);
  assert.ok(start > 0 && start % 64 === 0, `data starts at ${start}`);
  // Second tensor: F16 at the next multiple of 64 after 24 bytes.
  const f16Start = start + 64;
  for (let i = 0; i < 5; i++) assert.equal(buf.readUInt16LE(f16Start + 2 * i), floatToHalf(1 / (i + 1)));
  assert.equal(buf.readUInt16LE(f16Start + 10), 0, "padding is zero");
});

test("encoding is deterministic", () => {
  const a = encodeGguf({ metadata: sampleMetadata(), tensors: sampleTensors() });
  const b = encodeGguf({ metadata: new Map(sampleMetadata()), tensors: sampleTensors() });
  assert.ok(a.equals(b));
});

test("invalid input is refused with GGUF_WRITE_INVALID", () => {
  const t = (over: Partial<GgufTensor>): GgufTensor => ({ name: "w", dims: [2], type: GgmlType.F32, data: new Float32Array(2), ...over });
  const cases: Array<[string, () => unknown]> = [
    ["u8 out of range", () => encodeGguf({ metadata: [["k", meta.u8(256)]], tensors: [] })],
    ["i32 not integer", () => encodeGguf({ metadata: [["k", meta.i32(1.5)]], tensors: [] })],
    ["u64 negative", () => encodeGguf({ metadata: [["k", meta.u64(-1n)]], tensors: [] })],
    ["i64 too large", () => encodeGguf({ metadata: [["k", meta.i64(1n << 63n)]], tensors: [] })],
    ["u64 unsafe number", () => encodeGguf({ metadata: [["k", meta.u64(2 ** 60)]], tensors: [] })],
    ["bool not boolean", () => encodeGguf({ metadata: [["k", { type: GgufValueType.BOOL, value: 1 }]], tensors: [] })],
    ["lone surrogate", () => encodeGguf({ metadata: [["k", meta.str("a\ud800")]], tensors: [] })],
    ["array item out of range", () => encodeGguf({ metadata: [["k", meta.arr(GgufValueType.UINT8, [1, 300])]], tensors: [] })],
    ["duplicate key", () => encodeGguf({ metadata: [["k", meta.u8(1)], ["k", meta.u8(2)]], tensors: [] })],
    ["empty key", () => encodeGguf({ metadata: [["", meta.u8(1)]], tensors: [] })],
    ["bad alignment", () => encodeGguf({ metadata: [], tensors: [], alignment: 48 })],
    ["alignment disagrees", () => encodeGguf({ metadata: [["general.alignment", meta.u32(64)]], tensors: [], alignment: 32 })],
    ["alignment wrong type", () => encodeGguf({ metadata: [["general.alignment", meta.u64(64)]], tensors: [] })],
    ["name too long", () => encodeGguf({ metadata: [], tensors: [t({ name: "x".repeat(64) })] })],
    ["empty name", () => encodeGguf({ metadata: [], tensors: [t({ name: "" })] })],
    ["duplicate tensor", () => encodeGguf({ metadata: [], tensors: [t({}), t({})] })],
    ["5 dims", () => encodeGguf({ metadata: [], tensors: [t({ dims: [1, 1, 1, 1, 2] })] })],
    ["zero dim", () => encodeGguf({ metadata: [], tensors: [t({ dims: [0] , data: new Float32Array(0) })] })],
    ["data length", () => encodeGguf({ metadata: [], tensors: [t({ dims: [3] })] })],
    ["quantized type", () => encodeGguf({ metadata: [], tensors: [t({ type: 8 as GgmlType })] })],
  ];
  for (const [what, fn] of cases) {
    assert.throws(fn, (e: unknown) => e instanceof ColonyError && e.code === "GGUF_WRITE_INVALID", what);
  }
});
