/**
 * The adapter gate: checks a LoRA adapter GGUF against the base model it will be applied to, after
 * the structural reader and before llama.cpp loads it (node-llama-cpp `createContext({ lora })`).
 * It mirrors what llama.cpp's llama_adapter_lora_init reads (llama-adapter.cpp): `general.type` =
 * "adapter", `adapter.type` = "lora", the base's architecture, an optional f32 `adapter.lora.alpha`,
 * and tensors in pairs `<base tensor>.lora_a` / `.lora_b` with A = [in, rank], B = [rank, out] for a
 * base tensor [in, out]. llama.cpp refuses a wrong shape with an exception rather than a crash, but
 * the node refuses such a file before any of it is mapped, with a message that names the tensor.
 *
 * It is an allowlist like the model gate: F32 and F16 tensors (what trainer/lora.ts exportLoraGguf
 * writes), no token-embedding adapters (llama.cpp transposes those: not modelled), no split files.
 */
import type { GgufHeader } from "./header.ts";
import { f32Key, invalid, strKey, unchecked } from "./model-keys.ts";
import { GgmlType } from "./types.ts";

const PAIR = /^(.+)\.lora_([ab])$/;

export interface LoraCheck {
  /** Base tensors that carry an adapter. */
  targets: string[];
  rank: number;
  alpha?: number | undefined;
}

/** Throws GGUF_MODEL_INVALID for a file llama.cpp would refuse, GGUF_MODEL_UNCHECKED for one the gate does not model. */
export function checkLoraAdapter(adapter: GgufHeader, base: GgufHeader): LoraCheck {
  if (strKey(adapter, "general.type", true) !== "adapter") throw invalid("general.type must be \"adapter\" in a LoRA adapter");
  if (strKey(adapter, "adapter.type", true) !== "lora") throw unchecked("adapter.type is not \"lora\": only LoRA adapters are modelled");
  const arch = strKey(adapter, "general.architecture", true);
  const baseArch = strKey(base, "general.architecture", true);
  if (arch !== baseArch) throw invalid(`the adapter is for architecture ${JSON.stringify(arch)}, the model is ${JSON.stringify(baseArch)}`);
  const split = [...adapter.metadata.keys()].find((k) => k.startsWith("split."));
  if (split) throw invalid(`${split}: split adapters are not supported`);
  const alpha = f32Key(adapter, "adapter.lora.alpha");
  const baseDims = new Map(base.tensorInfos.map((t) => [t.name, t.dims]));
  const pairs = new Map<string, { a?: readonly number[]; b?: readonly number[] }>();
  for (const t of adapter.tensorInfos) {
    const m = PAIR.exec(t.name);
    if (!m) throw invalid(`tensor ${t.name} is not named <base tensor>.lora_a or .lora_b`);
    if (t.type !== GgmlType.F32 && t.type !== GgmlType.F16) throw unchecked(`tensor ${t.name} has type ${t.typeName}; the adapter gate models F32 and F16`);
    if (t.dims.length !== 2) throw invalid(`tensor ${t.name} has ${t.dims.length} dimensions, a LoRA factor has 2`);
    const p = pairs.get(m[1]!) ?? {};
    p[m[2] as "a" | "b"] = t.dims;
    pairs.set(m[1]!, p);
  }
  if (pairs.size === 0) throw invalid("the adapter has no tensors");
  let rank = 0;
  for (const [target, { a, b }] of pairs) {
    if (!a || !b) throw invalid(`the LoRA pair for ${target} lacks its ${a ? "lora_b" : "lora_a"} tensor`);
    if (target === "token_embd.weight") throw unchecked("an adapter on token_embd.weight is not modelled by the gate");
    const w = baseDims.get(target);
    if (!w) throw invalid(`the adapter targets ${target}, which the model does not have`);
    if (w.length !== 2 || w[0] !== a[0] || w[1] !== b[1] || a[1] !== b[0]) {
      throw invalid(`the LoRA pair for ${target} has shapes A [${a.join(", ")}], B [${b.join(", ")}]; the model's tensor is [${w.join(", ")}] (A must be [in, rank], B [rank, out])`);
    }
    if (rank !== 0 && a[1] !== rank) throw invalid(`the adapter mixes ranks ${rank} and ${a[1]}`);
    rank = a[1]!;
  }
  return { targets: [...pairs.keys()].sort(), rank, alpha };
}
