/**
 * The shape every long-lived part shares (conventions.md): the constructor only assigns, start()
 * brings it up, close() is idempotent and clears its timers.
 */
export interface Lifecycle {
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts parts in order and closes them in reverse, each close in its own try/catch so one failing
 * part does not keep the others open.
 */
export class PartGroup implements Lifecycle {
  private readonly started: Lifecycle[] = [];
  private closing: Promise<void> | undefined;
  constructor(private readonly parts: Lifecycle[], private readonly onCloseError: (err: unknown) => void = () => {}) {}

  async start(): Promise<void> {
    for (const part of this.parts) {
      try {
        await part.start();
      } catch (err) {
        await this.close();
        throw err;
      }
      this.started.push(part);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const part of [...this.started].reverse()) {
        try {
          await part.close();
        } catch (err) {
          this.onCloseError(err);
        }
      }
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Runs `shutdown` once on the first SIGINT or SIGTERM; a second signal exits at once. */
export function onShutdownSignal(shutdown: () => Promise<void>): () => void {
  let running = false;
  const handler = (signal: NodeJS.Signals) => {
    if (running) {
      process.exit(130);
    }
    running = true;
    shutdown().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`shutdown after ${signal} failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}
