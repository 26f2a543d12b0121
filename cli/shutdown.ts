/**
 * Process signals belong to the command that owns the process, not to library parts: the
 * `colony coordinator`, `node` and `fleet` commands install this, and their roots' close() does the
 * work. Runs `shutdown` once on the first SIGINT or SIGTERM; a second signal exits at once.
 */
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
