// Node config, agents file and seed manifest validation: every problem listed, with a code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { claimFor } from "../../common/genome.ts";
import { agentsFromManifest, DEFAULT_MANIFEST, loadAgents, parseAgentsFile } from "../../node/agents/agents-file.ts";
import { loadNodeConfig } from "../../node/config.ts";

test("node config: file < env < flags, and every problem at once", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-config-"));
  try {
    const file = path.join(dir, "node.json");
    writeFileSync(file, JSON.stringify({ nodeId: "from-file", threads: 3, heartbeatMs: 2000 }));
    const c = loadNodeConfig({ file, env: { COLONY_THREADS: "2", COLONY_NODE_ID: "from-env" }, flags: { nodeId: "from-flag" } });
    assert.equal(c.nodeId, "from-flag");
    assert.equal(c.threads, 2);
    assert.equal(c.heartbeatMs, 2000);
    assert.ok(Object.isFrozen(c));
    assert.throws(() => loadNodeConfig({ flags: { nodeId: "bad/id", threads: 0, heartbeatMs: 5, bogus: 1 } as never }), (err: unknown) => {
      assert.ok(err instanceof ColonyError && err.code === "CONFIG_INVALID");
      const problems = err.details!.problems as string[];
      assert.ok(problems.length >= 4, problems.join("\n"));
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("node config: allowUncheckedModels is off by default and set by COLONY_ALLOW_UNCHECKED_MODELS=1/true", () => {
  assert.equal(loadNodeConfig({}).allowUncheckedModels, false);
  assert.equal(loadNodeConfig({ env: { COLONY_ALLOW_UNCHECKED_MODELS: "1" } }).allowUncheckedModels, true);
  assert.equal(loadNodeConfig({ env: { COLONY_ALLOW_UNCHECKED_MODELS: "false" } }).allowUncheckedModels, false);
  assert.throws(() => loadNodeConfig({ env: { COLONY_ALLOW_UNCHECKED_MODELS: "maybe" } }), (err: unknown) => err instanceof ColonyError && err.code === "CONFIG_INVALID");
});

test("node config: the trainer capability is off by default; --trainer, COLONY_TRAINER=1 or {threads} in the file turns it on; anything else is CONFIG_INVALID", () => {
  assert.equal(loadNodeConfig({}).trainer, false);
  assert.equal(loadNodeConfig({ flags: { trainer: true } }).trainer, true);
  assert.equal(loadNodeConfig({ env: { COLONY_TRAINER: "1" } }).trainer, true);
  assert.equal(loadNodeConfig({ env: { COLONY_TRAINER: "false" } }).trainer, false);
  assert.deepEqual(loadNodeConfig({ flags: { trainer: { threads: 3 } } }).trainer, { threads: 3 });
  for (const bad of [{ threads: 0 }, { threads: 2, gpu: true }, "yes"]) {
    assert.throws(() => loadNodeConfig({ flags: { trainer: bad } }), (err: unknown) => err instanceof ColonyError && err.code === "CONFIG_INVALID", JSON.stringify(bad));
  }
});

test("node config: the node's metrics port is off by default, set by COLONY_NODE_METRICS_PORT (not the coordinator's COLONY_METRICS_PORT) or the flag", () => {
  assert.equal(loadNodeConfig({}).metricsPort, undefined);
  assert.equal(loadNodeConfig({ env: { COLONY_METRICS_PORT: "9464" } }).metricsPort, undefined);
  assert.equal(loadNodeConfig({ env: { COLONY_NODE_METRICS_PORT: "9465" } }).metricsPort, 9465);
  assert.equal(loadNodeConfig({ env: { COLONY_NODE_METRICS_PORT: "9465" }, flags: { metricsPort: 0 } }).metricsPort, 0);
  assert.equal(loadNodeConfig({}).metricsHost, "0.0.0.0");
  assert.throws(() => loadNodeConfig({ env: { COLONY_NODE_METRICS_PORT: "70000" } }), (err: unknown) => err instanceof ColonyError && err.code === "CONFIG_INVALID");
});

test("agents file: genomes validated with defaults; bad fields listed at once, then duplicate ids", () => {
  const spec = parseAgentsFile({ agents: [{ id: "a1", model: "m.gguf", skills: ["add"] }] }, "agents.json", "/x");
  const g = spec.genomes[0]!;
  assert.equal(g.kind, "completion");
  assert.equal(g.promptTemplate, "{prompt}");
  assert.equal(g.sampling.temperature, 0);
  assert.throws(
    () => parseAgentsFile({ agents: [{ id: "a1", model: "m", promptTemplate: "no placeholder" }, { id: "a1", model: "m", kind: "poem", skills: ["Bad Skill"] }] }, "agents.json", "/x"),
    (err: unknown) => {
      assert.ok(err instanceof ColonyError && err.code === "AGENTS_FILE_INVALID");
      const problems = (err.details!.problems as string[]).join("\n");
      assert.match(problems, /promptTemplate/);
      assert.match(problems, /kind/);
      assert.match(problems, /skills/);
      return true;
    },
  );
  // Refinements run once the entries are valid.
  assert.throws(() => parseAgentsFile({ agents: [{ id: "a1", model: "m" }, { id: "a1", model: "n" }] }, "agents.json", "/x"), /unique/);
  assert.throws(() => loadAgents(undefined, "/nonexistent/seed-manifest.json"), { code: "AGENTS_NONE" });
});

test("seed manifest: each seed agent claims the committed manifest's held-out accuracy for each of its skills", () => {
  // The real manifest, not a hand-made one: its figures live under heldOut.accuracy (they were once
  // read from a field that does not exist, and every seed agent claimed 0.5).
  const manifest = JSON.parse(readFileSync(DEFAULT_MANIFEST, "utf8")) as { models: { name: string; skills: string[]; heldOut: { accuracy: Record<string, number> } }[] };
  const spec = loadAgents(undefined);
  assert.equal(spec.genomes.length, manifest.models.length);
  for (const m of manifest.models) {
    const g = spec.genomes.find((x) => x.id === m.name)!;
    assert.deepEqual(g.skills, m.skills);
    assert.equal(g.model, `${(m as unknown as { file: string }).file}#sha256=${(m as unknown as { sha256: string }).sha256}`, "pinned to the manifest's hash");
    for (const skill of m.skills) {
      assert.equal(claimFor(g, skill), m.heldOut.accuracy[skill], `${m.name} claims its held-out ${skill} accuracy`);
      assert.notEqual(claimFor(g, skill), 0.5);
    }
  }
  const maxSort = spec.genomes.find((x) => x.id === "seed-max-sort")!;
  assert.equal(claimFor(maxSort, "sort"), manifest.models.find((m) => m.name === "seed-max-sort")!.heldOut.accuracy.sort);
  // A task without a skill: the lowest claim; a skill the model has no figure for: no claim (0.5).
  assert.equal(claimFor(maxSort, undefined), Math.min(...Object.values(manifest.models.find((m) => m.name === "seed-max-sort")!.heldOut.accuracy)));
  assert.equal(claimFor(maxSort, "add"), 0.5);
  // A model without held-out figures claims 0.5.
  const bare = agentsFromManifest({ version: 1, models: [{ name: "seed-x", file: "seed-x.gguf", skills: ["max"] }] }, "m.json", "/models");
  assert.equal(claimFor(bare.genomes[0]!, "max"), 0.5);
});
