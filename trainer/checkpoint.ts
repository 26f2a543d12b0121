import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { ColonyError } from "../common/errors.ts";
import { formatIssues } from "../common/config.ts";
import { TrainErrors } from "./errors.ts";

/**
 * Training checkpoints: everything a run needs to continue bit for bit where it stopped.
 *
 * Layout: "CLNYCKPT" | u32 version | u32 header bytes | header JSON (UTF-8) | tensor data.
 * The header lists each tensor (name, group param|m|v, element count) in data order, and a
 * sha256 of the data, so a truncated or flipped file is refused before any of it is used.
 * Files are written to a temporary name and renamed, so a crash mid-write leaves the old one.
 */
const MAGIC = "CLNYCKPT";
export const CHECKPOINT_VERSION = 1;
/** A header past this is not one we wrote; refusing early avoids parsing a huge bogus string. */
const MAX_HEADER_BYTES = 16 << 20;

const tensorEntry = z.object({
  name: z.string().min(1).max(256),
  group: z.enum(["param", "m", "v"]),
  length: z.number().int().nonnegative(),
});

const headerSchema = z.object({
  step: z.number().int().nonnegative(),
  optimizerStep: z.number().int().nonnegative(),
  config: z.record(z.string(), z.unknown()),
  train: z.record(z.string(), z.unknown()),
  sampler: z.object({ epoch: z.number().int().nonnegative(), cursor: z.number().int().nonnegative() }),
  rng: z.unknown().optional(),
  tensors: z.array(tensorEntry),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export type CheckpointHeader = z.infer<typeof headerSchema>;

export interface Checkpoint {
  step: number;
  optimizerStep: number;
  /** The model config (LlamaConfig, plus LoRA settings when training an adapter). */
  config: Record<string, unknown>;
  /** Training options that must not change across a resume (seed, batch, lr, steps...). */
  train: Record<string, unknown>;
  sampler: { epoch: number; cursor: number };
  /** State of any seeded generator the run uses besides the sampler. */
  rng?: unknown;
  params: Map<string, Float32Array>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export function saveCheckpoint(file: string, ck: Checkpoint): void {
  const tensors: Array<z.infer<typeof tensorEntry>> = [];
  const chunks: Buffer[] = [];
  for (const [group, map] of [["param", ck.params], ["m", ck.m], ["v", ck.v]] as const) {
    for (const [name, arr] of map) {
      tensors.push({ name, group, length: arr.length });
      chunks.push(Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength));
    }
  }
  const data = Buffer.concat(chunks);
  const header: CheckpointHeader = {
    step: ck.step,
    optimizerStep: ck.optimizerStep,
    config: ck.config,
    train: ck.train,
    sampler: ck.sampler,
    rng: ck.rng,
    tensors,
    sha256: createHash("sha256").update(data).digest("hex"),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(16);
  prefix.write(MAGIC, 0, "latin1");
  prefix.writeUInt32LE(CHECKPOINT_VERSION, 8);
  prefix.writeUInt32LE(headerBytes.length, 12);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, Buffer.concat([prefix, headerBytes, data]));
  renameSync(tmp, file);
}

function invalid(file: string, why: string): ColonyError {
  return new ColonyError(TrainErrors.TRAIN_CHECKPOINT_INVALID, `checkpoint ${file}: ${why}`);
}

export function loadCheckpoint(file: string): Checkpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw new ColonyError(TrainErrors.TRAIN_CHECKPOINT_UNREADABLE, `cannot read checkpoint ${file}: ${(err as Error).message}`);
  }
  if (buf.length < 16 || buf.toString("latin1", 0, 8) !== MAGIC) throw invalid(file, "not a Colony checkpoint (bad magic)");
  const version = buf.readUInt32LE(8);
  if (version !== CHECKPOINT_VERSION) throw invalid(file, `unsupported version ${version} (this build reads ${CHECKPOINT_VERSION})`);
  const headerLen = buf.readUInt32LE(12);
  if (headerLen > MAX_HEADER_BYTES || 16 + headerLen > buf.length) throw invalid(file, "truncated header");
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString("utf8", 16, 16 + headerLen));
  } catch {
    throw invalid(file, "header is not valid JSON");
  }
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) throw invalid(file, `bad header: ${formatIssues(parsed.error).slice(0, 3).join("; ")}`);
  const h = parsed.data;
  const dataStart = 16 + headerLen;
  const expectedBytes = h.tensors.reduce((s, t) => s + t.length * 4, 0);
  if (buf.length - dataStart !== expectedBytes) {
    throw invalid(file, `holds ${buf.length - dataStart} data bytes, header lists ${expectedBytes} (truncated or padded)`);
  }
  const data = buf.subarray(dataStart);
  if (createHash("sha256").update(data).digest("hex") !== h.sha256) throw invalid(file, "data checksum mismatch (corrupt file)");
  const groups = { param: new Map<string, Float32Array>(), m: new Map<string, Float32Array>(), v: new Map<string, Float32Array>() };
  let off = 0;
  for (const t of h.tensors) {
    if (groups[t.group].has(t.name)) throw invalid(file, `tensor ${t.name} listed twice in ${t.group}`);
    // Copy into a fresh, aligned Float32Array (the buffer offset need not be a multiple of 4).
    const arr = new Float32Array(t.length);
    new Uint8Array(arr.buffer).set(data.subarray(off, off + t.length * 4));
    groups[t.group].set(t.name, arr);
    off += t.length * 4;
  }
  for (const [name, p] of groups.param) {
    if (groups.m.get(name)?.length !== p.length || groups.v.get(name)?.length !== p.length) {
      // LoRA and frozen tensors: moments exist exactly for the trained tensors, so only check those present.
      if (groups.m.has(name) || groups.v.has(name)) throw invalid(file, `optimizer moments of ${name} do not match its length`);
    }
  }
  return { step: h.step, optimizerStep: h.optimizerStep, config: h.config, train: h.train, sampler: h.sampler, rng: h.rng, params: groups.param, m: groups.m, v: groups.v };
}

/** Checks that a checkpoint's tensors are exactly the model's (names and lengths). */
export function assertCheckpointMatches(file: string, ck: Checkpoint, params: ReadonlyMap<string, Float32Array>): void {
  for (const [name, p] of params) {
    const c = ck.params.get(name);
    if (!c) throw invalid(file, `lacks tensor ${name} of the model being trained`);
    if (c.length !== p.length) throw invalid(file, `tensor ${name} has ${c.length} values, the model has ${p.length}`);
  }
  for (const name of ck.params.keys()) if (!params.has(name)) throw invalid(file, `has tensor ${name} the model does not have`);
}
