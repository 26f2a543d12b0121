// Node config, agents file and seed manifest validation: every problem listed, with a code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { agentsFromManifest, loadAgents, parseAgentsFile } from "../../node/agents-file.ts";
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

test("seed manifest: one agent per model with its skills and its lowest accuracy as prior", () => {
  const spec = agentsFromManifest({ version: 1, models: [{ name: "seed-x", file: "seed-x.gguf", skills: ["max", "sort"], accuracy: { max: 0.99, sort: 0.96 } }] }, "m.json", "/models");
  assert.equal(spec.genomes[0]!.id, "seed-x");
  assert.deepEqual(spec.genomes[0]!.skills, ["max", "sort"]);
  assert.equal(spec.genomes[0]!.accuracyPrior, 0.96);
  // The committed manifest loads.
  assert.ok(loadAgents(undefined).genomes.length >= 1);
});
