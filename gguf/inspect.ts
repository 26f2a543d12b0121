/**
 * Human and JSON views of a GGUF header for `colony gguf inspect`. Long arrays (vocabularies of
 * 100k+ tokens) and long strings (chat templates) are summarised so the output stays readable.
 */
import type { GgufHeader } from "./header.ts";
import { valueTypeName } from "./meta.ts";
import { GgufValueType, type GgufScalar, type GgufValue } from "./types.ts";

export interface InspectOptions {
  /** Array items shown before "...". Default 8. */
  arrayItems?: number;
  /** Characters of a string shown before it is cut. Default 120. */
  stringChars?: number;
  /** Include the per-tensor table. Default false. */
  tensors?: boolean;
}

/** Shortest decimal that reads back as the same float32 (1e-5, not 0.000009999999747378752). */
export function float32Text(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

function scalarText(v: GgufScalar, stringChars: number, type?: GgufValueType): string {
  if (type === GgufValueType.FLOAT32 && typeof v === "number") return String(float32Text(v));
  if (typeof v === "string") {
    const shown = v.length > stringChars ? v.slice(0, stringChars) : v;
    return JSON.stringify(shown) + (v.length > stringChars ? `... (${v.length} chars)` : "");
  }
  return String(v);
}

function scalarJson(v: GgufScalar, stringChars: number, type?: GgufValueType): string | number | boolean {
  if (type === GgufValueType.FLOAT32 && typeof v === "number" && Number.isFinite(v)) return float32Text(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string" && v.length > stringChars) return v.slice(0, stringChars) + `... (${v.length} chars)`;
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return v;
}

export function valueText(v: GgufValue, o: InspectOptions = {}): string {
  const items = o.arrayItems ?? 8;
  const chars = o.stringChars ?? 120;
  if (v.type !== GgufValueType.ARRAY) return scalarText(v.value, chars, v.type);
  const shown = v.value.slice(0, items).map((x) => scalarText(x, 40, v.itemType));
  const more = v.value.length > items ? `, ... ${v.value.length - items} more` : "";
  return `[${shown.join(", ")}${more}]`;
}

function typeText(v: GgufValue): string {
  return v.type === GgufValueType.ARRAY ? `${valueTypeName(v.itemType)}[${v.value.length}]` : valueTypeName(v.type);
}

function typeHistogram(h: GgufHeader): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of h.tensorInfos) out[t.typeName] = (out[t.typeName] ?? 0) + 1;
  return out;
}

export function inspectText(file: string, h: GgufHeader, o: InspectOptions = {}): string {
  const lines: string[] = [];
  const dataBytes = h.tensorInfos.reduce((n, t) => n + t.byteSize, 0);
  lines.push(`${file}: GGUF v${h.version}, ${h.fileSize} bytes, alignment ${h.alignment}, data at offset ${h.dataOffset}`);
  lines.push(`metadata (${h.metadata.size} keys):`);
  const keyWidth = Math.min(48, Math.max(0, ...[...h.metadata.keys()].map((k) => k.length)));
  const typeWidth = Math.max(0, ...[...h.metadata.values()].map((v) => typeText(v).length));
  for (const [k, v] of h.metadata) lines.push(`  ${k.padEnd(keyWidth)}  ${typeText(v).padEnd(typeWidth)}  ${valueText(v, o)}`);
  const hist = Object.entries(typeHistogram(h)).map(([t, n]) => `${n} ${t}`).join(", ");
  lines.push(`tensors: ${h.tensorInfos.length}${hist ? ` (${hist})` : ""}, ${dataBytes} bytes of data`);
  if (o.tensors && h.tensorInfos.length > 0) {
    const rows = h.tensorInfos.map((t) => [t.name, t.typeName, `[${t.dims.join(", ")}]`, String(t.offset), String(t.byteSize)]);
    const head = ["name", "type", "dims", "offset", "bytes"];
    const widths = head.map((hd, i) => Math.max(hd.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => "  " + r.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
    lines.push(fmt(head));
    for (const r of rows) lines.push(fmt(r));
  }
  return lines.join("\n") + "\n";
}

export function inspectJson(file: string, h: GgufHeader, o: InspectOptions = {}): Record<string, unknown> {
  const items = o.arrayItems ?? 8;
  const chars = o.stringChars ?? 120;
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of h.metadata) {
    if (v.type === GgufValueType.ARRAY) {
      metadata[k] = { type: "ARRAY", itemType: valueTypeName(v.itemType), length: v.value.length, head: v.value.slice(0, items).map((x) => scalarJson(x, chars, v.itemType)) };
    } else {
      metadata[k] = { type: valueTypeName(v.type), value: scalarJson(v.value, chars, v.type) };
    }
  }
  const out: Record<string, unknown> = {
    file,
    version: h.version,
    fileSize: h.fileSize,
    alignment: h.alignment,
    dataOffset: h.dataOffset,
    metadata,
    tensorCount: h.tensorInfos.length,
    tensorTypes: typeHistogram(h),
    tensorDataBytes: h.tensorInfos.reduce((n, t) => n + t.byteSize, 0),
  };
  if (o.tensors) out.tensors = h.tensorInfos.map((t) => ({ name: t.name, type: t.typeName, dims: t.dims, offset: t.offset, bytes: t.byteSize }));
  return out;
}
