import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadModelGguf } from "../../trainer/gguf-export.ts";

function colony(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["bin/colony.mjs", ...args], { encoding: "utf8", env: { ...process.env, COLONY_LOG_LEVEL: "silent" }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("colony train: trains a tiny model, writes a loadable GGUF and a checkpoint, resumes", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "colony-cli-train-"));
  try {
    const data = path.join(dir, "d.jsonl");
    writeFileSync(data, Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `twice ${i} =`, completion: ` ${2 * i}` })).join("\n") + "\n");
    const out = path.join(dir, "m.gguf");
    const common = ["train", "--data", data, "--out", out, "--dim", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--context", "16", "--batch", "4", "--steps", "6", "--seed", "3"];
    const r = colony([...common, "--checkpoint-every", "2"]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(summary.steps, 6);
    assert.ok(Number.isFinite(summary.finalLoss));
    assert.ok(existsSync(out) && existsSync(`${out}.ckpt`));
    const loaded = await loadModelGguf(out);
    assert.equal(loaded.model.config.dim, 16);
    assert.equal(loaded.model.config.nKvHeads, 1);
    // Resuming the finished run with the same settings reloads its weights: the same GGUF comes out.
    const before = readFileSync(out);
    const same = colony([...common, "--resume", `${out}.ckpt`]);
    assert.equal(same.code, 0, same.stderr);
    assert.ok(readFileSync(out).equals(before));
    // Resuming the finished run at step 6 with more steps is refused: steps are part of the run's identity.
    const again = colony([...common.slice(0, -4), "--steps", "8", "--seed", "3", "--resume", `${out}.ckpt`]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /error TRAIN_CHECKPOINT_INVALID/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("colony train: malformed data and impossible shapes exit non-zero with a stable code", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "colony-cli-bad-"));
  try {
    const bad = path.join(dir, "bad.jsonl");
    writeFileSync(bad, '{"prompt":"a","completion":"b"}\n{"prompt": 3, "completion": "x"}\n');
    const out = path.join(dir, "m.gguf");
    let r = colony(["train", "--data", bad, "--out", out]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /error TRAIN_DATASET_LINE_INVALID: .*bad\.jsonl:2/);
    const empty = path.join(dir, "empty.jsonl");
    writeFileSync(empty, "\n\n");
    r = colony(["train", "--data", empty, "--out", out]);
    assert.match(r.stderr, /error TRAIN_DATASET_EMPTY/);
    r = colony(["train", "--data", bad, "--out", out, "--dim", "30", "--heads", "4"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /error TRAIN_SHAPE_INVALID: .*not divisible by --heads 4/);
    r = colony(["train", "--data", bad, "--out", out, "--heads", "4", "--kv-heads", "3"]);
    assert.match(r.stderr, /error TRAIN_SHAPE_INVALID: .*--heads 4 is not divisible by --kv-heads 3/);
    const long = path.join(dir, "long.jsonl");
    writeFileSync(long, JSON.stringify({ prompt: "x".repeat(100), completion: "y" }) + "\n");
    r = colony(["train", "--data", long, "--out", out, "--context", "32"]);
    assert.match(r.stderr, /error TRAIN_EXAMPLE_TOO_LONG: line 1/);
    r = colony(["train", "--data", long, "--out", out, "--lr", "fast"]);
    assert.match(r.stderr, /error CLI_ARGUMENT_INVALID/);
    assert.ok(!existsSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("colony train --lora-base: trains an adapter that llama.cpp loads", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "colony-cli-lora-"));
  try {
    const base = "models/seed-max-sort.gguf";
    const data = path.join(dir, "d.jsonl");
    // Teach the max specialist a new answer format: "min 4172 =" -> " 1".
    writeFileSync(data, Array.from({ length: 16 }, (_, i) => {
      const d = String(1000 + i * 617).slice(0, 4);
      return JSON.stringify({ prompt: `max ${d} =`, completion: " " + [...d].sort()[0] });
    }).join("\n") + "\n");
    const out = path.join(dir, "a.gguf");
    const r = colony(["train", "--data", data, "--out", out, "--lora-base", base, "--lora-rank", "2", "--steps", "8", "--batch", "4", "--lr", "0.01"]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.equal(summary.mode, "lora");
    const { loadModelGguf: load } = await import("../../trainer/gguf-export.ts");
    const { loadLoraGguf } = await import("../../trainer/lora.ts");
    const { model } = await load(base);
    const lora = await loadLoraGguf(out, model);
    assert.equal(lora.rank, 2);
    // B starts at 0, so any non-zero B proves the adapter trained.
    let nonZero = 0;
    for (const [name, t] of lora.params) if (name.endsWith(".lora_b")) for (const v of t) if (v !== 0) nonZero++;
    assert.ok(nonZero > 0);
    const { getLlama } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never" });
    try {
      const native = await llama.loadModel({ modelPath: base, gpuLayers: 0 });
      const ctx = await native.createContext({ contextSize: 64, threads: 1, lora: { adapters: [{ filePath: out, scale: 1 }] } });
      assert.ok(ctx.getSequence());
      await ctx.dispose();
      await native.dispose();
    } finally {
      await llama.dispose();
    }
    const bad = colony(["train", "--data", data, "--out", out, "--lora-base", base, "--lora-rank", "0"]);
    assert.match(bad.stderr, /error TRAIN_OPTIONS_INVALID/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("colony train: SIGINT stops after a step, saves a checkpoint and exits with TRAIN_INTERRUPTED", async () => {
  const { spawn } = await import("node:child_process");
  const { loadCheckpoint } = await import("../../trainer/checkpoint.ts");
  const dir = mkdtempSync(path.join(tmpdir(), "colony-cli-int-"));
  try {
    const data = path.join(dir, "d.jsonl");
    writeFileSync(data, JSON.stringify({ prompt: "a", completion: " b" }) + "\n");
    const out = path.join(dir, "m.gguf");
    const child = spawn(process.execPath, ["bin/colony.mjs", "train", "--data", data, "--out", out, "--dim", "8", "--layers", "1", "--heads", "2", "--context", "8", "--steps", "1000000", "--batch", "1"], {
      env: { ...process.env, COLONY_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on("data", (c: Buffer) => {
        const first = stderr === "";
        stderr += c.toString();
        // The first log line comes just before the loop starts.
        if (first) setTimeout(() => child.kill("SIGINT"), 300);
      });
      child.on("close", resolve);
    });
    assert.equal(code, 1, stderr);
    assert.match(stderr, /error TRAIN_INTERRUPTED: interrupted at step \d+/);
    assert.ok(!existsSync(out));
    const ck = loadCheckpoint(`${out}.ckpt`);
    assert.ok(ck.step >= 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
