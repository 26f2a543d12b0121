/**
 * A typed, synchronous event emitter: the seam between a part that decides (the market) and the
 * parts that learn from its decisions (track records, penalties, verdicts to nodes; later the cold
 * cache, lineage, the architect, metrics, the dashboard). A subscriber is added where the parts are
 * wired (coordinator/coordinator.ts) without editing the emitter's owner.
 *
 * Synchronous on purpose: when `emit` returns every listener has seen the event, so the next
 * auction already scores with the record the last task changed. Listeners run in subscription
 * order; one that throws is reported to `onError` and the others still run: a broken observer must
 * never stall the market.
 */
export type Listener<T> = (event: T) => void;

export class TypedEmitter<E extends { [K in keyof E]: unknown }> {
  private readonly listeners = new Map<keyof E, Listener<never>[]>();
  constructor(private readonly onError: (err: unknown, event: keyof E) => void = () => {}) {}

  /** Subscribes; returns the unsubscribe function. */
  on<K extends keyof E>(name: K, fn: Listener<E[K]>): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(fn as Listener<never>);
    this.listeners.set(name, list);
    return () => {
      const l = this.listeners.get(name);
      const i = l?.indexOf(fn as Listener<never>) ?? -1;
      if (l && i >= 0) l.splice(i, 1);
    };
  }

  emit<K extends keyof E>(name: K, event: E[K]): void {
    const list = this.listeners.get(name);
    if (!list) return;
    for (const fn of [...list]) {
      try {
        (fn as Listener<E[K]>)(event);
      } catch (err) {
        this.onError(err, name);
      }
    }
  }

  listenerCount(name: keyof E): number {
    return this.listeners.get(name)?.length ?? 0;
  }
}
