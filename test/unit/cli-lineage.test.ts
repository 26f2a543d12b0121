// `colony lineage` and `colony architect plan` renderings (cli/lineage-tree.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Life } from "../../common/protocol.ts";
import { renderLineage, renderPlan } from "../../cli/lineage-tree.ts";

const life = (agentId: string, parents: string[], extra: Partial<Life> = {}): Life => ({
  agentId, nodeId: "n1", parents, generation: parents.length ? 1 : 0, state: "alive", bornAt: 1, birth: "founder", fitness: [], ...extra,
});

test("lineage: children under parents with fitness; one agent shows ancestors, descendants, birth and death", () => {
  const snap = {
    at: 10, omitted: 2,
    lives: [
      life("seed-add", [], { fitness: [{ niche: "add@pi5", success: 0.96, trials: 212, energyPerSuccessJ: 0.41, wins: 37 }] }),
      life("kid", ["seed-add"], { bornAt: 5, birth: "demand for add", nodeId: "n2" }),
      life("grandkid", ["kid"], { bornAt: 6, state: "retired", death: "dominated", diedAt: 9 }),
      life("orphan", ["gone"], { bornAt: 2 }),
    ],
  };
  const all = renderLineage(snap);
  assert.match(all, /^seed-add@n1 g0 \[add@pi5 96%\/212 0\.41J w37\]\n  └ kid@n2 g1\n    └ grandkid@n1 g1 retired: dominated\norphan@n1 g1/m);
  assert.match(all, /3 living, 1 pending\/dead shown, 2 older dead omitted/);
  const one = renderLineage(snap, "kid");
  assert.match(one, /^seed-add@n1 g0 .*\n  └ kid@n2 g1\n    └ grandkid@n1 g1 retired: dominated\n  born: demand for add$/m);
  assert.match(renderLineage(snap, "nobody"), /no agent nobody in the lineage/);
});

test("plan: decisions and held-back ones with their reasons", () => {
  const text = renderPlan({
    at: Date.UTC(2026, 0, 1), cycle: 3, dryRun: true,
    decisions: [{ kind: "retire", agentId: "weak", nodeId: "n1", reason: "dominated" }],
    heldBack: [{ decision: { kind: "spawn", agentId: "c", nodeId: "n2", reason: "demand" }, why: "spawn is turned off" }],
  });
  assert.match(text, /cycle 3 .*dry run/);
  assert.match(text, /retire weak on n1: dominated/);
  assert.match(text, /spawn c on n2 \(spawn is turned off\): demand/);
});
