/**
 * The hardened GGUF v3 reader: the fleet's first line of defence before llama.cpp parses a file
 * it received. Every structural fault is a ColonyError with a GGUF_* code (gguf/errors.ts); any
 * other exception escaping from here is a bug (test/gguf-fuzz.test.ts hunts for them).
 *
 * - `readGgufHeader(bytes)` / `readGgufHeaderFromFile(path)`: metadata + tensor infos, layout
 *   checked against the file size; the path variant reads only the header's bytes.
 * - `readGguf(bytes)` / `readGgufFile(path)`: the same plus every tensor's data as Float32Array
 *   (F16 converted); other tensor types give GGUF_UNSUPPORTED_TENSOR_TYPE.
 */
import { open, readFile, stat } from "node:fs/promises";
import { ColonyError } from "../common/errors.ts";
import { Cursor, NeedMoreBytes } from "./cursor.ts";
import { GgufErrors } from "./errors.ts";
import { decodeHalves } from "./f16.ts";
import { parseHeader, type GgufHeader } from "./header.ts";
import { limitError, resolveLimits, type GgufLimits } from "./limits.ts";
import { GgmlType, type GgufFile, type GgufTensor } from "./types.ts";

export type { GgufHeader } from "./header.ts";
export type { GgufLimits } from "./limits.ts";
export { DEFAULT_LIMITS } from "./limits.ts";

/** A fully read file: the shared GgufFile shape plus what the header said about layout. */
export interface GgufReadResult extends GgufFile {
  header: GgufHeader;
}

function asBytes(buf: Uint8Array): Uint8Array {
  if (!(buf instanceof Uint8Array)) throw new TypeError("readGguf expects a Uint8Array or Buffer");
  return buf;
}

/** Parses and checks the header of a whole file held in memory. */
export function readGgufHeader(buf: Uint8Array, limits?: Partial<GgufLimits>): GgufHeader {
  const bytes = asBytes(buf);
  const lim = resolveLimits(limits);
  try {
    return parseHeader(new Cursor(bytes, bytes.length, lim.maxHeaderBytes), lim);
  } catch (err) {
    // Cannot happen with the whole file in memory; keep the promise that only ColonyErrors escape.
    if (err instanceof NeedMoreBytes) throw new ColonyError(GgufErrors.GGUF_TRUNCATED, "unexpected end of data");
    throw err;
  }
}

const ENDIAN_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function tensorData(bytes: Uint8Array, offset: number, elements: number, type: number): Float32Array {
  if (type === GgmlType.F16) return decodeHalves(bytes, offset, elements);
  const out = new Float32Array(elements);
  if (ENDIAN_LE) {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + elements * 4));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < elements; i++) out[i] = view.getFloat32(offset + 4 * i, true);
  }
  return out;
}

/** Parses a whole file held in memory, tensor data included (F32 and F16 only). */
export function readGguf(buf: Uint8Array, limits?: Partial<GgufLimits>): GgufReadResult {
  const bytes = asBytes(buf);
  const header = readGgufHeader(bytes, limits);
  // Check every type first so a bad file allocates nothing.
  for (const t of header.tensorInfos) {
    if (t.type !== GgmlType.F32 && t.type !== GgmlType.F16) {
      throw new ColonyError(GgufErrors.GGUF_UNSUPPORTED_TENSOR_TYPE, `tensor ${t.name} is ${t.typeName}; only F32 and F16 data can be read`, { name: t.name });
    }
  }
  const tensors: GgufTensor[] = header.tensorInfos.map((t) => ({
    name: t.name,
    dims: [...t.dims],
    type: t.type as GgmlType,
    data: tensorData(bytes, t.fileOffset, t.elements, t.type),
  }));
  return { version: 3, metadata: header.metadata, tensors, header };
}

function unreadable(path: string, err: unknown): ColonyError {
  const code = (err as NodeJS.ErrnoException)?.code;
  return new ColonyError(GgufErrors.GGUF_FILE_UNREADABLE, `cannot read ${path}: ${code ?? String(err)}`, { path }, { cause: err });
}

/**
 * Parses the header of a file on disk, reading only the bytes the header needs (starting with
 * 64 KiB and growing fourfold), so a multi-GB model costs a few small reads. `firstReadBytes` exists for
 * tests that exercise the growing.
 */
export async function readGgufHeaderFromFile(
  path: string,
  limits?: Partial<GgufLimits>,
  options: { firstReadBytes?: number } = {},
): Promise<GgufHeader> {
  const lim = resolveLimits(limits);
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw unreadable(path, err);
  }
  try {
    let size: number;
    try {
      size = (await fh.stat()).size;
    } catch (err) {
      throw unreadable(path, err);
    }
    if (size > lim.maxFileBytes) throw limitError("file size (bytes)", size, lim.maxFileBytes);
    let want = Math.min(size, Math.max(1, options.firstReadBytes ?? 64 * 1024));
    for (;;) {
      const buf = Buffer.alloc(want);
      let got = 0;
      try {
        while (got < want) {
          const { bytesRead } = await fh.read(buf, got, want - got, got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
      } catch (err) {
        throw unreadable(path, err);
      }
      if (got < want) throw new ColonyError(GgufErrors.GGUF_FILE_UNREADABLE, `${path} shrank while being read`, { path });
      try {
        return parseHeader(new Cursor(buf, size, lim.maxHeaderBytes), lim);
      } catch (err) {
        if (!(err instanceof NeedMoreBytes)) throw err;
        // The cursor already checked upTo <= file size and <= maxHeaderBytes; the guard makes
        // sure this loop always progresses even if that invariant were ever broken.
        // Grow fourfold: each retry parses from the start, so few retries beat small reads.
        const next = Math.min(size, Math.max(err.upTo, want * 4));
        if (next <= want) throw new ColonyError(GgufErrors.GGUF_TRUNCATED, `${path}: unexpected end of file at ${want} bytes`, { path });
        want = next;
      }
    }
  } finally {
    await fh.close();
  }
}

/** Reads and parses a whole file from disk, tensor data included (F32 and F16 only). */
export async function readGgufFile(path: string, limits?: Partial<GgufLimits>): Promise<GgufReadResult> {
  const lim = resolveLimits(limits);
  // Check the header first: a hostile or huge file is refused before it is read into memory.
  await readGgufHeaderFromFile(path, lim);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw unreadable(path, err);
  }
  if (size > lim.maxFileBytes) throw limitError("file size (bytes)", size, lim.maxFileBytes);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw unreadable(path, err);
  }
  return readGguf(bytes, lim);
}
