/**
 * The shape every long-lived part shares (conventions.md): the constructor only assigns, start()
 * brings it up, close() is idempotent and clears its timers.
 */
export interface Lifecycle {
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A part with the name that logs and errors use for it. */
export type NamedPart = readonly [name: string, part: Lifecycle];

/**
 * Starts named parts in order and closes them in reverse, each close in its own try/catch so one
 * failing part does not keep the others open. A part that fails to start closes those started
 * before it, and the error names the part.
 */
export class PartGroup implements Lifecycle {
  private readonly started: NamedPart[] = [];
  private closing: Promise<void> | undefined;
  constructor(private readonly parts: readonly NamedPart[], private readonly onCloseError: (err: unknown, part: string) => void = () => {}) {}

  /** The parts' names in start order. */
  get names(): string[] {
    return this.parts.map(([name]) => name);
  }

  async start(): Promise<void> {
    for (const entry of this.parts) {
      try {
        await entry[1].start();
      } catch (err) {
        await this.close();
        if (err instanceof Error && !("part" in err)) Object.assign(err, { part: entry[0] });
        throw err;
      }
      this.started.push(entry);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const [name, part] of [...this.started].reverse()) {
        try {
          await part.close();
        } catch (err) {
          this.onCloseError(err, name);
        }
      }
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
