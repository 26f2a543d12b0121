/**
 * The live dashboard's HTTP server (opt-in: `dashboardPort`; docs/operations.md, "Dashboard"): on
 * its own port, never the MQTT one, it serves the page in `web/`, the browser build of mqtt.js from
 * node_modules (no CDN: the page works offline), and `GET /config.json`: the fleet id, the broker's
 * WebSocket port and a read-only **observer** credential issued from the fleet secret. The page then
 * reads the fleet over MQTT-over-WebSocket with that credential (coordinator/auth/acl.ts: the
 * coordinator's retained views and `colony/v1/dashboard/#`, no prompt, no submit, no node command).
 * So anyone who can reach this port can observe the fleet; bind it (`host`) or firewall it to the
 * people who should.
 *
 * Files are read once, on first request, and kept with their gzip (the page is ~100 KB gzipped).
 */
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { closeHttp, listenHttp } from "../../common/http-listen.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";

export interface DashboardConfigJson {
  fleetId: string;
  /** The broker's MQTT-over-WebSocket port, on the host the page was loaded from. */
  wsPort: number;
  /** Absent on an insecure fleet (no credentials at all). */
  username?: string;
  password?: string;
  /** Whether events carry prompts and outputs (config `dashboardShowPrompts`). */
  showPrompts: boolean;
}

export interface DashboardServerOptions {
  /** Address to listen on (the coordinator's `host`). */
  host: string;
  /** TCP port; 0 = any free port (read `port` after start). */
  port: number;
  fleetId: string;
  /** The broker's WebSocket port, once it listens. */
  wsPort: () => number | undefined;
  /** A fresh observer credential; undefined on an insecure fleet. */
  credential: () => { username: string; password: string } | undefined;
  /** Default false. */
  showPrompts?: boolean;
  logger: Logger;
}

interface Asset {
  type: string;
  body: Buffer;
  gz: Buffer;
}

const WEB_DIR = fileURLToPath(new URL("./web/", import.meta.url));
const require = createRequire(import.meta.url);
/** URL path -> file, and its content type. Nothing else is served. */
const ROUTES: Record<string, { file: () => string; type: string }> = {
  "/": { file: () => WEB_DIR + "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: () => WEB_DIR + "app.js", type: "text/javascript; charset=utf-8" },
  "/views.js": { file: () => WEB_DIR + "views.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: () => WEB_DIR + "app.css", type: "text/css; charset=utf-8" },
  // mqtt.js's own browser build (ES module, default export), resolved through the package's exports.
  "/vendor/mqtt.esm.js": { file: () => require.resolve("mqtt/dist/mqtt.esm"), type: "text/javascript; charset=utf-8" },
};

export class DashboardServer implements Lifecycle {
  private server: Server | undefined;
  private boundPort: number | undefined;
  private readonly assets = new Map<string, Promise<Asset>>();

  constructor(private readonly o: DashboardServerOptions) {}

  /** The port listened on, once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        this.o.logger.error({ err: { message: err.message } }, "dashboard request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      });
    });
    this.boundPort = await listenHttp(server, this.o.port, this.o.host);
    this.server = server;
    this.o.logger.info({ host: this.o.host, port: this.boundPort }, "dashboard on http");
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const path = (req.url ?? "/").split("?")[0]!;
    if (path === "/config.json") {
      const wsPort = this.o.wsPort();
      if (wsPort === undefined) {
        res.writeHead(503, { "content-type": "text/plain" }).end("the broker serves no WebSocket\n");
        return;
      }
      const cred = this.o.credential();
      const body: DashboardConfigJson = { fleetId: this.o.fleetId, wsPort, ...(cred ?? {}), showPrompts: this.o.showPrompts === true };
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : JSON.stringify(body));
      return;
    }
    const route = ROUTES[path];
    if (!route) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const asset = await this.asset(path, route);
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip ? asset.gz : asset.body;
    res.writeHead(200, {
      "content-type": asset.type, "content-length": body.length, "cache-control": "no-cache", vary: "accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  private asset(path: string, route: { file: () => string; type: string }): Promise<Asset> {
    let a = this.assets.get(path);
    if (!a) {
      a = readFile(route.file()).then((body) => ({ type: route.type, body, gz: gzipSync(body) }));
      // A failed read is not cached: the next request tries again.
      a.catch(() => this.assets.delete(path));
      this.assets.set(path, a);
    }
    return a;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await closeHttp(server);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
