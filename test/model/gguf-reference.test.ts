import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { meta } from "../../gguf/meta.ts";
import { readGguf, readGgufHeader } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { GgmlType, GgufValueType, type GgufValue } from "../../gguf/types.ts";

/*
 * Two files written by gguf-py 0.19.0 (llama.cpp's reference Python package, GGUFWriter), an
 * implementation independent of ours, embedded so the test needs no Python. Made with:
 *
 *   w = GGUFWriter(path, "llama"); w.add_custom_alignment(32)
 *   w.add_uint8("r.u8", 200); w.add_int8("r.i8", -100); w.add_uint16("r.u16", 60000)
 *   w.add_int16("r.i16", -30000); w.add_uint32("r.u32", 4000000000); w.add_int32("r.i32", -2000000000)
 *   w.add_uint64("r.u64", 2**63 + 7); w.add_int64("r.i64", -(2**62)); w.add_float32("r.f32", 0.1)
 *   w.add_float64("r.f64", 0.1); w.add_bool("r.bool", True); w.add_string("r.str", "héllo ▁ wörld")
 *   w.add_array("r.strs", ["<unk>", "▁a", ""]); w.add_array("r.ints", [1, -2, 3]); w.add_array("r.floats", [0.5, -1.25])
 *   w.add_tensor("t.f32", ((np.arange(24, dtype=np.float32) - 12) / 7).reshape(6, 4))
 *   w.add_tensor("t.f16", np.array([1, 0.5, -0.25, 65504, 1e-7, 3.14159], dtype=np.float32).astype(np.float16))
 *   # REF_WITH_Q8 only:
 *   w.add_tensor("t.q8", quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), Q8_0), raw_dtype=Q8_0)
 *   w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
 */
const REF_WITH_Q8 = Buffer.from(
  "R0dVRgMAAAADAAAAAAAAABEAAAAAAAAAFAAAAAAAAABnZW5lcmFsLmFyY2hpdGVjdHVyZQgAAAAFAAAAAAAAAGxsYW1hEQAAAAAA" +
  "AABnZW5lcmFsLmFsaWdubWVudAQAAAAgAAAABAAAAAAAAAByLnU4AAAAAMgEAAAAAAAAAHIuaTgBAAAAnAUAAAAAAAAAci51MTYC" +
  "AAAAYOoFAAAAAAAAAHIuaTE2AwAAANCKBQAAAAAAAAByLnUzMgQAAAAAKGvuBQAAAAAAAAByLmkzMgUAAAAAbMqIBQAAAAAAAABy" +
  "LnU2NAoAAAAHAAAAAAAAgAUAAAAAAAAAci5pNjQLAAAAAAAAAAAAAMAFAAAAAAAAAHIuZjMyBgAAAM3MzD0FAAAAAAAAAHIuZjY0" +
  "DAAAAJqZmZmZmbk/BgAAAAAAAAByLmJvb2wHAAAAAQUAAAAAAAAAci5zdHIIAAAAEQAAAAAAAABow6lsbG8g4paBIHfDtnJsZAYA" +
  "AAAAAAAAci5zdHJzCQAAAAgAAAADAAAAAAAAAAUAAAAAAAAAPHVuaz4EAAAAAAAAAOKWgWEAAAAAAAAAAAYAAAAAAAAAci5pbnRz" +
  "CQAAAAUAAAADAAAAAAAAAAEAAAD+////AwAAAAgAAAAAAAAAci5mbG9hdHMJAAAABgAAAAIAAAAAAAAAAAAAPwAAoL8FAAAAAAAA" +
  "AHQuZjMyAgAAAAQAAAAAAAAABgAAAAAAAAAAAAAAAAAAAAAAAAAFAAAAAAAAAHQuZjE2AQAAAAYAAAAAAAAAAQAAAGAAAAAAAAAA" +
  "BAAAAAAAAAB0LnE4AgAAACAAAAAAAAAAAgAAAAAAAAAIAAAAgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAt23b" +
  "v5Ikyb9u27a/SZKkvyVJkr8AAIC/t21bv27bNr8lSRK/t23bviVJkr4lSRK+AAAAACVJEj4lSZI+t23bPiVJEj9u2zY/t21bPwAA" +
  "gD8lSZI/SZKkP27btj+SJMk/ADwAOAC0/3sCAEhCAAAAAAAAAAAAAAAAAAAAAAAAAAAIIIGFiY2RlZmdoaWprbG1ub3CxsrO0tba" +
  "3uLm6u7y9vr+CCACBgoOEhYaHiImKi4yNjo+Q0dLT1NXW19jZ2tvc3d7fwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
  "base64",
);
const REF_F32_F16 = Buffer.from(
  "R0dVRgMAAAACAAAAAAAAABEAAAAAAAAAFAAAAAAAAABnZW5lcmFsLmFyY2hpdGVjdHVyZQgAAAAFAAAAAAAAAGxsYW1hEQAAAAAA" +
  "AABnZW5lcmFsLmFsaWdubWVudAQAAAAgAAAABAAAAAAAAAByLnU4AAAAAMgEAAAAAAAAAHIuaTgBAAAAnAUAAAAAAAAAci51MTYC" +
  "AAAAYOoFAAAAAAAAAHIuaTE2AwAAANCKBQAAAAAAAAByLnUzMgQAAAAAKGvuBQAAAAAAAAByLmkzMgUAAAAAbMqIBQAAAAAAAABy" +
  "LnU2NAoAAAAHAAAAAAAAgAUAAAAAAAAAci5pNjQLAAAAAAAAAAAAAMAFAAAAAAAAAHIuZjMyBgAAAM3MzD0FAAAAAAAAAHIuZjY0" +
  "DAAAAJqZmZmZmbk/BgAAAAAAAAByLmJvb2wHAAAAAQUAAAAAAAAAci5zdHIIAAAAEQAAAAAAAABow6lsbG8g4paBIHfDtnJsZAYA" +
  "AAAAAAAAci5zdHJzCQAAAAgAAAADAAAAAAAAAAUAAAAAAAAAPHVuaz4EAAAAAAAAAOKWgWEAAAAAAAAAAAYAAAAAAAAAci5pbnRz" +
  "CQAAAAUAAAADAAAAAAAAAAEAAAD+////AwAAAAgAAAAAAAAAci5mbG9hdHMJAAAABgAAAAIAAAAAAAAAAAAAPwAAoL8FAAAAAAAA" +
  "AHQuZjMyAgAAAAQAAAAAAAAABgAAAAAAAAAAAAAAAAAAAAAAAAAFAAAAAAAAAHQuZjE2AQAAAAYAAAAAAAAAAQAAAGAAAAAAAAAA" +
  "AAAAAAAAAAC3bdu/kiTJv27btr9JkqS/JUmSvwAAgL+3bVu/bts2vyVJEr+3bdu+JUmSviVJEr4AAAAAJUkSPiVJkj63bds+JUkS" +
  "P27bNj+3bVs/AACAPyVJkj9JkqQ/btu2P5IkyT8APAA4ALT/ewIASEIAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
  "base64",
);

const F16_SOURCE = [1, 0.5, -0.25, 65504, 1e-7, 3.14159];
const F32_SOURCE = Array.from({ length: 24 }, (_, i) => Math.fround(Math.fround(i - 12) / 7));

function sameMetadata(): Array<[string, GgufValue]> {
  return [
    ["general.architecture", meta.str("llama")],
    ["general.alignment", meta.u32(32)],
    ["r.u8", meta.u8(200)],
    ["r.i8", meta.i8(-100)],
    ["r.u16", meta.u16(60000)],
    ["r.i16", meta.i16(-30000)],
    ["r.u32", meta.u32(4000000000)],
    ["r.i32", meta.i32(-2000000000)],
    ["r.u64", meta.u64(2n ** 63n + 7n)],
    ["r.i64", meta.i64(-(2n ** 62n))],
    ["r.f32", meta.f32(0.1)],
    ["r.f64", meta.f64(0.1)],
    ["r.bool", meta.bool(true)],
    ["r.str", meta.str("héllo ▁ wörld")],
    ["r.strs", meta.strs(["<unk>", "▁a", ""])],
    ["r.ints", meta.i32s([1, -2, 3])],
    ["r.floats", meta.f32s([0.5, -1.25])],
  ];
}

test("our writer produces byte-for-byte the file llama.cpp's reference Python writer produces", () => {
  const mine = encodeGguf({
    metadata: sameMetadata(),
    tensors: [
      { name: "t.f32", dims: [4, 6], type: GgmlType.F32, data: Float32Array.from(F32_SOURCE) },
      // F16 conversion of 1e-7 (a half subnormal) and 3.14159 must round exactly like numpy.
      { name: "t.f16", dims: [6], type: GgmlType.F16, data: Float32Array.from(F16_SOURCE) },
    ],
  });
  assert.equal(mine.length, REF_F32_F16.length);
  assert.ok(mine.equals(REF_F32_F16), "bytes differ from gguf-py's");
});

test("our reader reads the reference file: every value, tensor info, F32/F16 data; Q8_0 header only", () => {
  const h = readGgufHeader(REF_WITH_Q8);
  for (const [k, v] of sameMetadata()) {
    const got = h.metadata.get(k);
    assert.ok(got, k);
    assert.equal(got.type, v.type, k);
    if (v.type === GgufValueType.FLOAT32) assert.equal(got.value, Math.fround(v.value as number));
    else if (v.type === GgufValueType.ARRAY) {
      assert.equal((got as { itemType: number }).itemType, v.itemType, k);
      assert.deepEqual(got.value, v.value.map((x) => (v.itemType === GgufValueType.FLOAT32 ? Math.fround(x as number) : x)), k);
    } else assert.deepEqual(got.value, v.value, k);
  }
  assert.deepEqual(
    h.tensorInfos.map((t) => [t.name, t.typeName, t.dims, t.offset, t.byteSize]),
    [
      ["t.f32", "F32", [4, 6], 0, 96],
      ["t.f16", "F16", [6], 96, 12],
      ["t.q8", "Q8_0", [32, 2], 128, 68],
    ],
  );
  assert.throws(() => readGguf(REF_WITH_Q8), (e: unknown) => e instanceof ColonyError && e.code === "GGUF_UNSUPPORTED_TENSOR_TYPE");
  const f = readGguf(REF_F32_F16);
  assert.deepEqual([...f.tensors[0]!.data], F32_SOURCE);
  assert.deepEqual([...f.tensors[1]!.data], [1, 0.5, -0.25, 65504, 1.1920928955078125e-7, 3.140625]);
});
