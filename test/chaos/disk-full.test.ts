// Chaos: the coordinator's disk fills up while it stores tasks, on both brokers
// (test/fixtures/chaos-disk.ts, docs/chaos.md). Needs root (it mounts a small tmpfs).
import { test } from "node:test";
import { BROKERS, brokerSkip } from "../fixtures/chaos-fleet.ts";
import { diskFullScenario } from "../fixtures/chaos-disk.ts";
import { needsRoot } from "../fixtures/system-tools.ts";

for (const broker of BROKERS) {
  test(`disk full on ${broker}: the coordinator rejects submits with a code, loses and doubles nothing, and recovers when space returns`, { skip: needsRoot("mount a tmpfs") || brokerSkip(broker), timeout: 180_000 }, async (t) => {
    await diskFullScenario(t, broker);
  });
}
