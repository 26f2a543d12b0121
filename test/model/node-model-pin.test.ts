// The node loads exactly the bytes it verified (a private copy named by its sha256), and a model
// reference may pin those bytes with #sha256=, for local files and for hf: downloads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { meta } from "../../gguf/meta.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { LlamaRuntime } from "../../node/llama/llama-runtime.ts";
import { resolveModel } from "../../node/llama/model-ref.ts";
import { tinyLlama, withMeta } from "../fixtures/gguf-fixtures.ts";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const code = (c: string) => (e: unknown) => e instanceof ColonyError && e.code === c;

/**
 * A good model and one that aborts llama.cpp (the llama.expert_used_count = 1), of the
 * same size: the good one's name is padded until both headers end in the same aligned block.
 */
function sameSizePair(): { good: Buffer; crasher: Buffer } {
  const crasher = encodeGguf(withMeta(tinyLlama(), "llama.expert_used_count", meta.u32(1)));
  for (let n = 0; n < 200; n++) {
    const good = encodeGguf(withMeta(tinyLlama(), "general.name", meta.str("x".repeat(n))));
    if (good.length === crasher.length) return { good, crasher };
  }
  throw new Error("no name length gives the same file size");
}

test("llama.cpp opens the node's verified copy; a file rewritten in place with the same size and mtime is checked again", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-pin-"));
  const verifiedDir = path.join(dir, "verified");
  const runtime = new LlamaRuntime({ threads: 1, gpuLayers: 0, modelsDir: dir, verifiedDir, logger: silentLogger });
  t.after(async () => {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await runtime.start();
  const { good, crasher } = sameSizePair();
  const file = path.join(dir, "agent.gguf");
  const when = 1_700_000_000; // whole seconds: mtimeMs reads back exactly
  writeFileSync(file, good);
  utimesSync(file, when, when);

  const model = await runtime.acquire(file);
  const copy = path.join(verifiedDir, `${sha256(good)}.gguf`);
  // node-llama-cpp reports the base name of the file it loaded: the copy, named by its sha256.
  assert.equal(model.filename, path.basename(copy), "llama.cpp must load the verified copy, not the agent's path");
  assert.equal(statSync(copy).mode & 0o777, 0o400);
  assert.equal(statSync(verifiedDir).mode & 0o777, 0o700);
  await runtime.release(file);

  // Swap the content, keep size and mtime: the old check skipped such a file and llama.cpp aborted the node.
  writeFileSync(file, crasher);
  utimesSync(file, when, when);
  await assert.rejects(runtime.acquire(file), (e: unknown) => code("MODEL_FILE_INVALID")(e) && /expert_used_count/.test((e as Error).message));
  assert.equal(runtime.isLoaded(file), false);
  // The refused bytes left no copy behind.
  assert.deepEqual(readdirSync(verifiedDir), [path.basename(copy)]);
  // A new valid version replaces the old copy, which no loaded model uses any more.
  const next = encodeGguf(tinyLlama(9));
  writeFileSync(file, next);
  await runtime.acquire(file);
  await runtime.release(file);
  assert.deepEqual(readdirSync(verifiedDir), [`${sha256(next)}.gguf`]);
});

test("a #sha256= pin on a local model: the right hash loads, a wrong one or a later change is MODEL_HASH_MISMATCH", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-pin-"));
  const runtime = new LlamaRuntime({ threads: 1, gpuLayers: 0, modelsDir: dir, logger: silentLogger });
  t.after(async () => {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await runtime.start();
  const bytes = encodeGguf(tinyLlama());
  writeFileSync(path.join(dir, "m.gguf"), bytes);
  const { file, sha256: pin } = await resolveModel(`m.gguf#sha256=${sha256(bytes).toUpperCase()}`, dir, dir);
  await assert.rejects(runtime.verify(file, "0".repeat(64)), code("MODEL_HASH_MISMATCH"));
  const facts = await runtime.verify(file, pin);
  assert.equal(facts.sha256, sha256(bytes));
  await runtime.acquire(file);
  await runtime.release(file);
  // A retrained file at the same path no longer matches the pin its genome carries.
  writeFileSync(file, encodeGguf(tinyLlama(7)));
  await assert.rejects(runtime.acquire(file), code("MODEL_HASH_MISMATCH"));
});

test("an hf: model from a mirror (a local HTTP server) is refused when its bytes do not match the #sha256= pin", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-pin-hf-"));
  const right = encodeGguf(tinyLlama());
  const served = new Map([["/user/repo/resolve/main/tiny.gguf", right], ["/user/repo/resolve/main/swapped.gguf", encodeGguf(tinyLlama(5))]]);
  const server = http.createServer((req, res) => {
    const body = served.get(req.url!.split("?")[0]!);
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": body.length, "content-type": "application/octet-stream" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const runtime = new LlamaRuntime({ threads: 1, gpuLayers: 0, modelsDir: dir, logger: silentLogger });
  t.after(async () => {
    server.close();
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const hfEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const pin = `#sha256=${sha256(right)}`;
  const ok = await resolveModel(`hf:user/repo/tiny.gguf${pin}`, dir, path.join(dir, "models"), { hfEndpoint });
  assert.equal((await runtime.verify(ok.file, ok.sha256)).sha256, sha256(right));
  // The mirror serves other bytes under a name the genome pinned: downloaded, then refused.
  const bad = await resolveModel(`hf:user/repo/swapped.gguf${pin}`, dir, path.join(dir, "models"), { hfEndpoint });
  await assert.rejects(runtime.verify(bad.file, bad.sha256), code("MODEL_HASH_MISMATCH"));
  await assert.rejects(resolveModel("hf:user/repo/missing.gguf", dir, path.join(dir, "models"), { hfEndpoint }), code("MODEL_FILE_INVALID"));
});
