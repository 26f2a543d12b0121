/**
 * The Prometheus scrape endpoint of a process (the coordinator's, coordinator/metrics/; a node's,
 * node/metrics.ts): `GET /metrics` on its own HTTP port (never the MQTT one), so a firewall can
 * open it to the monitoring host alone. Anything else is 404.
 */
import { createServer, type Server } from "node:http";
import { closeHttp, listenHttp } from "./http-listen.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";

export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsHttpOptions {
  /** Address to listen on (the coordinator's `host`, a node's `metricsHost`). */
  host: string;
  /** TCP port; 0 = any free port (read `port` after start). */
  port: number;
  source: MetricsSource;
  logger: Logger;
}

export class MetricsHttpServer implements Lifecycle {
  private server: Server | undefined;
  private boundPort: number | undefined;

  constructor(private readonly o: MetricsHttpOptions) {}

  /** The port listened on, once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      if (path !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
        return;
      }
      this.o.source.text().then(
        (body) => res.writeHead(200, { "content-type": this.o.source.contentType }).end(req.method === "HEAD" ? undefined : body),
        (err: Error) => {
          this.o.logger.error({ err: { message: err.message } }, "metrics collection failed");
          res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
        },
      );
    });
    this.boundPort = await listenHttp(server, this.o.port, this.o.host);
    this.server = server;
    this.o.logger.info({ host: this.o.host, port: this.boundPort }, "metrics on /metrics");
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await closeHttp(server);
  }
}
