/**
 * A trainer node's price for a distillation job (docs/mind.md, "Trainer nodes"): the compute the
 * coordinator estimated (training and verified-sampling FLOPs) at the node's measured training
 * FLOP/s, plus the bytes to move at an assumed LAN rate (parent models it already holds move
 * nothing), and the energy at the device's training power. The coordinator prices its own host
 * with the same function (coordinator/mind/trainers.ts; a node in node/trainer/trainer-desk.ts), so the prices compare like for like.
 */
import type { TrainerCapability, TrainQuote, TrainWork } from "../common/protocol.ts";

/** Bytes per second assumed for the link to the coordinator (a modest Wi-Fi link; wired LANs are faster). */
export const LINK_BYTES_PER_SECOND = 10 * 2 ** 20;

export function priceJob(work: TrainWork, cap: Pick<TrainerCapability, "flopsPerSecond" | "watts">, holds: (sha256: string) => boolean, linkBytesPerSecond = LINK_BYTES_PER_SECOND): TrainQuote {
  const computeS = (work.trainFlops + work.sampleFlops) / Math.max(cap.flopsPerSecond, 1);
  const bytes = work.transferBytes + work.models.filter((m) => !holds(m.sha256)).reduce((n, m) => n + m.bytes, 0);
  const seconds = computeS + (linkBytesPerSecond > 0 ? bytes / linkBytesPerSecond : 0);
  return { seconds: Number(seconds.toFixed(3)), ...(cap.watts !== undefined ? { energyJ: Number((computeS * cap.watts).toFixed(1)) } : {}) };
}
