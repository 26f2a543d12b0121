/**
 * A Prometheus counter whose values are read from a process's Counters (common/counters.ts) when
 * scraped: one per label value, or one unlabeled. Counters only grow, so the exported value stays
 * monotonic. Used by the coordinator's and the node's metrics alike.
 */
import client from "prom-client";

export function counterFromReads(r: client.Registry, name: string, help: string, read: (() => number) | { label: string; values: Record<string, () => number> }): void {
  new client.Counter({
    name, help, registers: [r], labelNames: typeof read === "function" ? [] : [read.label],
    collect() {
      this.reset();
      if (typeof read === "function") return this.inc(read());
      for (const [value, get] of Object.entries(read.values)) this.inc({ [read.label]: value }, get());
    },
  });
}
