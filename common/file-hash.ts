/**
 * sha256 of files, streamed (models are up to tens of GB): hashing a file, and copying one while
 * hashing the bytes actually written, so what is verified is exactly what was copied.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Copies `from` to a new file `to` (created exclusively, mode 0600); returns the copied bytes' sha256 and count. */
export async function copyHashing(from: string, to: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(createReadStream(from), tap, createWriteStream(to, { flags: "wx", mode: 0o600 }));
  return { sha256: hash.digest("hex"), bytes };
}
