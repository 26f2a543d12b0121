// calibrateBest measures a model at 1 thread and at the runtime's maximum: it logs one "calibrated"
// line per model (the kept measurement and what each thread count made), not one per measurement
// (`npm start` printed every seed model's calibration twice).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { createLogger } from "../../common/logger.ts";
import { calibrateBest } from "../../node/llama/calibration.ts";

function fakeAgent(genMsByThreads: Record<number, number>) {
  let threads = 1;
  return {
    id: "seed-add",
    modelFile: "/models/seed-add.gguf",
    state: "asleep",
    contextSize: 32,
    async wake(o: { threads: number }) {
      threads = o.threads;
    },
    async sleep() {},
    tokenize: (s: string) => s.length,
    async measure(_prompt: string, genTokens: number) {
      return { promptTokens: 10, promptMs: 5, genTokens, genMs: genMsByThreads[threads]! };
    },
  };
}

test("calibrateBest: one info line per model with the thread count it keeps; each run at debug", async () => {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d) => (text += d));
  const logger = createLogger({ level: "debug", name: "t", destination: out, format: "json" });
  // 2 threads are slower here (as on 2 busy cores with a tiny model): 1 thread is kept.
  const best = await calibrateBest(fakeAgent({ 1: 10, 2: 1000 }) as never, { threads: 2 } as never, logger);
  assert.equal(best.threads, 1);
  const lines = text.trim().split("\n").map((l) => JSON.parse(l));
  const info = lines.filter((l) => l.msg === "calibrated");
  assert.equal(info.length, 1, text);
  assert.equal(info[0].level, 30);
  assert.equal(info[0].threads, 1);
  assert.deepEqual(info[0].tried.map((t: { threads: number }) => t.threads), [1, 2]);
  assert.equal(lines.filter((l) => l.msg === "calibration run" && l.level === 20).length, 2);
});
