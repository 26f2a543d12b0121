// Chaos: a node's network partitioned and healed, on both brokers (test/fixtures/chaos-partition.ts,
// docs/chaos.md). Needs root and iproute2 (network namespaces; only 10.201.x.x addresses).
import { test } from "node:test";
import { BROKERS, brokerSkip } from "../fixtures/chaos-fleet.ts";
import { partitionScenario } from "../fixtures/chaos-partition.ts";
import { needs, needsRoot } from "../fixtures/system-tools.ts";

const skip = needsRoot("create network namespaces") || needs("ip");

for (const broker of BROKERS) {
  test(`partition on ${broker}: a brief cut is not re-auctioned; a long one is, and the healed node's late done is recorded, never published`, { skip: skip || brokerSkip(broker), timeout: 240_000 }, async (t) => {
    await partitionScenario(t, broker);
  });
}
