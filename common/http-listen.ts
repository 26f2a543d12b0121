/**
 * Listening and closing for the coordinator's small HTTP servers (metrics, dashboard): listen
 * resolves with the bound port (port 0 = any) or rejects with the listen error (EADDRINUSE);
 * close drops keep-alive connections first, so a scraper or an open page cannot hold shutdown up.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export async function listenHttp(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function closeHttp(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
