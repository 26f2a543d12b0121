/**
 * Publishes the model store's catalog, retained on `colony/v1/models/catalog` (common/protocol/
 * models.ts): at start and after every change of the store. A payload must stay under
 * MAX_PAYLOAD_BYTES, so the newest version of each lineage goes first, then newer before older,
 * until the budget is used; the rest is counted in `omitted`.
 */
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { SignedManifest } from "../../common/model-manifest.ts";
import { channels, encode, MAX_CATALOG_MODELS, MAX_PAYLOAD_BYTES, type ModelCatalog, type Outbox } from "../../common/protocol.ts";
import type { ModelStore } from "./model-store.ts";

/** Room left for the envelope (`at`, `keyId`, `omitted`) and the commas. */
const ENVELOPE_BYTES = 256;

export function buildCatalog(models: SignedManifest[], keyId: string, at: number, maxBytes = MAX_PAYLOAD_BYTES): ModelCatalog {
  const newest = new Map<string, number>();
  for (const s of models) newest.set(s.manifest.lineage, Math.max(newest.get(s.manifest.lineage) ?? 0, s.manifest.version));
  const order = [...models].sort((a, b) => {
    const ha = newest.get(a.manifest.lineage) === a.manifest.version ? 0 : 1;
    const hb = newest.get(b.manifest.lineage) === b.manifest.version ? 0 : 1;
    return ha - hb || b.manifest.createdAt - a.manifest.createdAt || (a.manifest.sha256 < b.manifest.sha256 ? -1 : 1);
  });
  const picked: SignedManifest[] = [];
  let budget = maxBytes - ENVELOPE_BYTES;
  for (const s of order) {
    if (picked.length >= MAX_CATALOG_MODELS) break;
    const size = Buffer.byteLength(encode(s)) + 1;
    if (size > budget) continue;
    budget -= size;
    picked.push(s);
  }
  return { at, keyId, models: picked, omitted: models.length - picked.length };
}

export class CatalogPublisher implements Lifecycle {
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly o: { store: ModelStore; keyId: string; out: Outbox; now: () => number }) {}

  async start(): Promise<void> {
    this.unsubscribe = this.o.store.onChange(() => this.publish());
    this.publish();
  }

  publish(): void {
    this.o.out.send(channels.modelCatalog, [], buildCatalog(this.o.store.list(), this.o.keyId, this.o.now()));
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
