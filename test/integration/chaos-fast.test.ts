// The chaos suite's fast subset, in the default run (`npm test`), on the embedded broker: a node's
// network partitioned and healed, brief (no re-auction) and long (re-auction, late done recorded,
// never published); and the coordinator's disk full while it stores tasks (a code, nothing lost or
// doubled, recovery). The full suite, on both brokers and with more faults, is `npm run test:chaos`
// (test/chaos/, docs/chaos.md). Needs root and iproute2 (network namespaces, a tmpfs; CI has both).
import { test } from "node:test";
import { diskFullScenario } from "../fixtures/chaos-disk.ts";
import { partitionScenario } from "../fixtures/chaos-partition.ts";
import { needs, needsRoot } from "../fixtures/system-tools.ts";

test("chaos (fast): a partitioned node that heals: no double result, its late done recorded, never published", { skip: needsRoot("create network namespaces") || needs("ip"), timeout: 120_000 }, async (t) => {
  await partitionScenario(t, "aedes");
});

test("chaos (fast): disk full on the coordinator: submits rejected with a code, the running task's one result stored before it is published, recovery", { skip: needsRoot("mount a tmpfs"), timeout: 120_000 }, async (t) => {
  await diskFullScenario(t, "aedes");
});
