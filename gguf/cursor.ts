/**
 * A bounds-checked little-endian reader over a prefix of a GGUF file. It knows the real file size,
 * so it can tell "the file is too short" (GGUF_TRUNCATED, final) from "this prefix is too short"
 * (NeedMoreBytes, the path-based reader then reads further and parses again).
 */
import { ColonyError } from "../common/errors.ts";
import { GgufErrors } from "./errors.ts";
import { limitError } from "./limits.ts";

/** Internal signal: the parser needs the file's first `upTo` bytes. Never escapes the reader. */
export class NeedMoreBytes {
  constructor(readonly upTo: number) {}
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class Cursor {
  pos = 0;
  private readonly view: DataView;

  /**
   * @param bytes the file, or its first bytes
   * @param fileSize the whole file's size in bytes
   * @param maxEnd parsing beyond this offset is a limit violation (the header limit)
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly fileSize: number,
    private readonly maxEnd: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Checks that `n` more bytes exist (n may be a huge bigint-derived number). */
  need(n: number, what: string): void {
    if (!(n >= 0) || n > this.fileSize - this.pos) {
      throw new ColonyError(GgufErrors.GGUF_TRUNCATED, `${what}: needs ${n} bytes at offset ${this.pos}, the file has ${this.fileSize - this.pos} left`, { offset: this.pos });
    }
    if (this.pos + n > this.maxEnd) throw limitError("header size (bytes)", this.pos + n, this.maxEnd);
    if (this.pos + n > this.bytes.length) throw new NeedMoreBytes(this.pos + n);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 length-prefixed UTF-8 string of at most `maxBytes` bytes, checked before it is read. */
  str(what: string, maxBytes: number, tooLong: "limit" | "format" = "limit"): string {
    const start = this.pos;
    const len = this.u64(`${what} length`);
    if (len > BigInt(maxBytes)) {
      // A configurable limit, or a rule of the format itself (tensor names fit ggml's 64-byte field).
      if (tooLong === "format") throw new ColonyError(GgufErrors.GGUF_BAD_STRING, `${what} at offset ${start} is ${len} bytes, at most ${maxBytes} allowed`, { offset: start });
      throw limitError(`${what} length (bytes) at offset ${start}`, len, maxBytes);
    }
    const n = Number(len);
    this.need(n, what);
    // Vocabularies are mostly short ASCII strings: decoding those by hand is several times faster
    // than a TextDecoder call each, and ASCII is always valid UTF-8.
    if (n <= 32) {
      let s = "";
      let i = this.pos;
      for (; i < this.pos + n && this.bytes[i]! < 0x80; i++) s += String.fromCharCode(this.bytes[i]!);
      if (i === this.pos + n) {
        this.pos += n;
        return s;
      }
    }
    try {
      const s = utf8.decode(this.bytes.subarray(this.pos, this.pos + n));
      this.pos += n;
      return s;
    } catch {
      throw new ColonyError(GgufErrors.GGUF_BAD_STRING, `${what} at offset ${start} is not valid UTF-8`, { offset: start });
    }
  }
}
