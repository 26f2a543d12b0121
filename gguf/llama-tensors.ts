/**
 * The exact tensor set of a llama model, after models/llama.cpp `load_arch_tensors` (and
 * `create_tensor_qkv`) in the llama.cpp node-llama-cpp bundles: names, shapes (ggml order) and
 * which are optional. The gate compares the file with it both ways: every expected tensor
 * present with its shape, and no tensor it does not expect (llama.cpp refuses unused tensors;
 * the gate says which). The fused `attn_qkv` form and per-layer rope factor tensors are not
 * modelled: such files are refused as invalid (unexpected tensor).
 *
 * Types: 1-D tensors (norms, biases, rope frequencies) are F32, as every llama.cpp converter
 * writes them (they feed element-wise ops); weight matrices are F32, F16, BF16 or one of the
 * classic and K quantisations, whose CPU matrix products ggml implements. The i-quants, ternary
 * and MXFP4 types are outside what the gate models (unchecked); integer, F64, Q8_1 and Q8_K are
 * not weight formats (invalid).
 */
import type { GgufHeader } from "./header.ts";
import { ggmlTypeName } from "./ggml-types.ts";
import type { LlamaHparams } from "./llama-hparams.ts";
import { invalid, unchecked } from "./model-keys.ts";

type Role = "vector" | "matrix";
interface Expected {
  dims: number[];
  role: Role;
  optional: boolean;
}

// ggml type ids (ggml-types.ts).
const F32 = 0;
const WEIGHT_TYPES = new Set([0, 1, 30, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14]); // F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K
const UNMODELLED_WEIGHT_TYPES = new Set([16, 17, 18, 19, 20, 21, 22, 23, 29, 34, 35, 39]); // IQ*, TQ*, MXFP4

/** Every tensor llama.cpp creates for these hyperparameters, by name. */
export function expectedLlamaTensors(hp: LlamaHparams): Map<string, Expected> {
  const out = new Map<string, Expected>();
  const add = (name: string, dims: number[], optional = false) => out.set(name, { dims, role: dims.length === 1 ? "vector" : "matrix", optional });
  const { nEmbd, nVocab, nFf, nExpert, headDim } = hp;
  const qDim = headDim * hp.nHead;
  const kvDim = headDim * hp.nHeadKv;
  add("token_embd.weight", [nEmbd, nVocab]);
  add("output_norm.weight", [nEmbd]);
  // Absent = tied to the embedding.
  add("output.weight", [nEmbd, nVocab], true);
  add("rope_freqs.weight", [headDim / 2], true);
  for (let i = 0; i < hp.nLayer; i++) {
    const p = `blk.${i}.`;
    add(`${p}attn_norm.weight`, [nEmbd]);
    add(`${p}attn_q.weight`, [nEmbd, qDim]);
    add(`${p}attn_k.weight`, [nEmbd, kvDim]);
    add(`${p}attn_v.weight`, [nEmbd, kvDim]);
    add(`${p}attn_output.weight`, [qDim, nEmbd]);
    add(`${p}attn_q.bias`, [qDim], true);
    add(`${p}attn_k.bias`, [kvDim], true);
    add(`${p}attn_v.bias`, [kvDim], true);
    add(`${p}attn_output.bias`, [nEmbd], true);
    add(`${p}ffn_norm.weight`, [nEmbd]);
    if (nExpert === 0) {
      add(`${p}ffn_gate.weight`, [nEmbd, nFf]);
      add(`${p}ffn_up.weight`, [nEmbd, nFf]);
      add(`${p}ffn_down.weight`, [nFf, nEmbd]);
      add(`${p}ffn_gate.bias`, [nFf], true);
      add(`${p}ffn_up.bias`, [nFf], true);
      add(`${p}ffn_down.bias`, [nEmbd], true);
    } else {
      // Mixture of experts: the router and one stacked matrix per projection. llama.cpp makes
      // ffn_gate_exps optional, but its llama graph multiplies by it: required here.
      add(`${p}ffn_gate_inp.weight`, [nEmbd, nExpert]);
      add(`${p}ffn_gate_exps.weight`, [nEmbd, nFf, nExpert]);
      add(`${p}ffn_up_exps.weight`, [nEmbd, nFf, nExpert]);
      add(`${p}ffn_down_exps.weight`, [nFf, nEmbd, nExpert]);
    }
  }
  return out;
}

function checkType(name: string, type: number, role: Role): void {
  if (role === "vector") {
    if (type !== F32) throw invalid(`tensor ${name} is ${ggmlTypeName(type)}; 1-D tensors must be F32`);
  } else if (UNMODELLED_WEIGHT_TYPES.has(type)) {
    throw unchecked(`tensor ${name} is ${ggmlTypeName(type)}, a type the model gate does not model`);
  } else if (!WEIGHT_TYPES.has(type)) {
    throw invalid(`tensor ${name} is ${ggmlTypeName(type)}, not a weight type`);
  }
}

/** Compares the file's tensors with the expected set: names, shapes, types, nothing missing or extra. */
export function checkLlamaTensors(h: GgufHeader, hp: LlamaHparams): void {
  const expected = expectedLlamaTensors(hp);
  for (const t of h.tensorInfos) {
    const e = expected.get(t.name);
    if (!e) throw invalid(`unexpected tensor ${t.name} (not part of a llama model with ${hp.nLayer} layers and ${hp.nExpert} experts)`);
    if (t.dims.length !== e.dims.length || t.dims.some((d, i) => d !== e.dims[i])) {
      throw invalid(`tensor ${t.name} has dims [${t.dims.join(", ")}], expected [${e.dims.join(", ")}]`);
    }
    checkType(t.name, t.type, e.role);
  }
  const present = new Set(h.tensorInfos.map((t) => t.name));
  for (const [name, e] of expected) {
    if (!e.optional && !present.has(name)) throw invalid(`missing tensor ${name}`);
  }
}
