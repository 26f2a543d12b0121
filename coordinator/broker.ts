import net from "node:net";
import os from "node:os";
import http from "node:http";
import { once } from "node:events";
import { Aedes } from "aedes";
import { WebSocketServer, createWebSocketStream } from "ws";
import type { Duplex } from "node:stream";
import { ColonyError, CommonErrors } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { memoryDuplexPair } from "../common/memory-duplex.ts";
import type { AedesAuthHooks } from "./auth.ts";

/** 0.0.0.0 and :: listen on every address: no client can dial them. */
export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/** What close() needs of an ioredis connection. */
interface RedisConnection {
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** A Redis URL without its password, for logs. */
const redisSafe = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");

/** An IPv6 literal goes in brackets inside a URL. */
function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

export interface EmbeddedBrokerOptions {
  host: string;
  /** TCP port; 0 = any free port (read `port` after start). */
  port: number;
  /** WebSocket port (MQTT over WebSocket, path /mqtt or /); unset = none. */
  wsPort?: number | undefined;
  /** Auth hooks (coordinator/auth.ts); unset = every client may do everything. */
  hooks?: Pick<AedesAuthHooks, "authenticate" | "authorizePublish" | "authorizeSubscribe"> | undefined;
  /**
   * Redis URL of a broker cluster (docs/scale.md): this broker becomes one member; every member with
   * the same Redis delivers every message to every member's subscribers (mqemitter-redis) and shares
   * retained messages and subscriptions (aedes-persistence-redis). Unset = a broker on its own.
   */
  redis?: string | undefined;
  logger: Logger;
}

/** Redis options (host, port, password, db) from a redis:// URL, for ioredis through the two aedes plugins. */
export function redisOptions(url: string): { host: string; port: number; password?: string; username?: string; db?: number } {
  const bad = (why: string) => new ColonyError(CommonErrors.CONFIG_INVALID, `Redis URL ${redisSafe(url)}: ${why} (expected redis://[user:password@]host[:port][/db])`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad("not a URL");
  }
  if (u.protocol !== "redis:") throw bad(`scheme ${u.protocol} is not redis:`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw bad("the database must be a number");
  return {
    host: u.hostname || "127.0.0.1", port: u.port ? Number(u.port) : 6379,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}), ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(db !== undefined ? { db } : {}),
  };
}

/**
 * The cluster plugins for aedes, loaded only when a Redis URL is given (a home fleet never loads
 * ioredis). Their three Redis connections are made here, so that their errors are logged (not
 * printed as ioredis' "Unhandled error event") and so that close() can end them: aedes closes the
 * emitter (which quits its two) but never its persistence.
 */
async function clusterPlugins(url: string, logger: Logger): Promise<{ mq: unknown; persistence: unknown; connections: RedisConnection[] }> {
  const o = redisOptions(url);
  const [{ Redis }, { default: mqemitterRedis }, { default: persistenceRedis }] = await Promise.all([import("ioredis"), import("mqemitter-redis"), import("aedes-persistence-redis")]);
  let lastLog = 0;
  const connections = [0, 1, 2].map(() =>
    new Redis(o).on("error", (err: Error) => {
      // ioredis retries for ever and reports every failed attempt: one line per 30 s is enough.
      if (Date.now() - lastLog < 30_000) return;
      lastLog = Date.now();
      logger.warn({ redis: redisSafe(url), err: { message: err.message } }, "broker cluster: Redis unreachable, retrying");
    }),
  );
  // The plugins leave some commands' promises unobserved (mqemitter-redis' quit, the persistence's
  // clean-up of clients aedes closed a moment ago): when the connection closes first, each one is an
  // unhandled rejection ("Connection is closed", seen in loaded test runs), fatal under strict
  // settings. Every command's promise gets an observer here; callers that await it still get its
  // error, and connection failures are logged above.
  for (const c of connections) {
    const send = c.sendCommand.bind(c);
    c.sendCommand = ((...args: Parameters<typeof send>) => {
      const p = send(...args);
      (p as Promise<unknown> | undefined)?.catch?.(() => {});
      return p;
    }) as typeof c.sendCommand;
  }
  const [sub, pub, db] = connections as [InstanceType<typeof Redis>, InstanceType<typeof Redis>, InstanceType<typeof Redis>];
  return { mq: mqemitterRedis({ subConn: sub, pubConn: pub }), persistence: persistenceRedis({ conn: db }), connections };
}

/**
 * The embedded aedes broker on TCP and, optionally, WebSocket. The coordinator's market talks to
 * it as an ordinary MQTT client, exactly as it talks to an external mosquitto: one code path,
 * with the connection in memory instead of over loopback TCP (connectInMemory).
 */
export class EmbeddedBroker {
  private broker: Aedes | undefined;
  private tcp: net.Server | undefined;
  private http: http.Server | undefined;
  private wss: WebSocketServer | undefined;
  private closing: Promise<void> | undefined;
  /** A cluster member's Redis connections (clusterPlugins). */
  private redisConnections: RedisConnection[] = [];
  port = 0;
  wsPort: number | undefined;

  constructor(private readonly opts: EmbeddedBrokerOptions) {}

  async start(): Promise<void> {
    const { hooks } = this.opts;
    const cluster = this.opts.redis ? await clusterPlugins(this.opts.redis, this.opts.logger) : undefined;
    this.redisConnections = cluster?.connections ?? [];
    this.broker = await Aedes.createBroker({
      ...(hooks ? { authenticate: hooks.authenticate, authorizePublish: hooks.authorizePublish, authorizeSubscribe: hooks.authorizeSubscribe } : {}),
      ...(cluster ? { mq: cluster.mq, persistence: cluster.persistence } : {}),
    } as Parameters<typeof Aedes.createBroker>[0]);
    this.broker.on("clientError", (client, err) => this.opts.logger.debug({ clientId: client?.id, err: { message: err.message } }, "MQTT client error"));
    // noDelay: MQTT messages are small and latency-bound; Nagle + delayed ACK would add ~40 ms stalls.
    this.tcp = net.createServer({ noDelay: true }, this.broker.handle);
    this.tcp.listen(this.opts.port, this.opts.host);
    await once(this.tcp, "listening");
    this.port = (this.tcp.address() as net.AddressInfo).port;
    if (this.opts.wsPort !== undefined) {
      this.http = http.createServer();
      this.wss = new WebSocketServer({ server: this.http });
      this.wss.on("connection", (socket, req) => {
        const stream = createWebSocketStream(socket);
        stream.on("error", () => socket.terminate());
        this.broker!.handle(stream as unknown as net.Socket, req);
      });
      this.http.listen(this.opts.wsPort, this.opts.host);
      await once(this.http, "listening");
      this.wsPort = (this.http.address() as net.AddressInfo).port;
    }
    this.opts.logger.info({ host: this.opts.host, port: this.port, wsPort: this.wsPort, ...(this.opts.redis ? { cluster: redisSafe(this.opts.redis) } : {}) }, "embedded MQTT broker listening");
  }

  /**
   * A new MQTT connection to this broker through an in-memory stream pair: the broker handles one
   * end like an accepted socket (same packet parser, authentication and ACL hooks), the caller
   * gets the other for its MQTT client. bench/auction.ts measures what it saves over TCP.
   */
  connectInMemory(): Duplex {
    const [clientEnd, brokerEnd] = memoryDuplexPair();
    // A broker that is not running refuses like a closed port: the client sees the stream close
    // and retries with its backoff (mqtt.js calls this on every reconnect; a throw would escape).
    if (!this.broker || this.broker.closed) brokerEnd.destroy();
    else this.broker.handle(brokerEnd as unknown as net.Socket);
    return clientEnd;
  }

  /**
   * How many retained messages the broker holds (in its memory: aedes' default persistence), for
   * the soak test and operators: results leave after `resultRetentionMs` (market/retention.ts).
   */
  async retainedCount(): Promise<number> {
    if (!this.broker) return 0;
    let n = 0;
    const stream = (this.broker as unknown as { persistence: { createRetainedStream(p: string): AsyncIterable<unknown> } }).persistence.createRetainedStream("#");
    for await (const _ of stream) n++;
    return n;
  }

  /** URL for clients on this machine: the address listened on (127.0.0.1 when that is every address). */
  get localUrl(): string {
    return `mqtt://${urlHost(isWildcard(this.opts.host) ? "127.0.0.1" : this.opts.host)}:${this.port}`;
  }

  /**
   * URL for clients on other machines: the address listened on, or, when that is every address, the
   * first non-internal IPv4 address of this host (127.0.0.1 on a host without one).
   */
  get lanUrl(): string {
    if (!isWildcard(this.opts.host)) return this.localUrl;
    const lan = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal);
    return `mqtt://${lan?.address ?? "127.0.0.1"}:${this.port}`;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.wss?.clients ?? []) c.terminate();
      if (this.wss) await new Promise<void>((r) => this.wss!.close(() => r()));
      if (this.http) await new Promise<void>((r) => this.http!.close(() => r()));
      if (this.broker) await new Promise<void>((r) => this.broker!.close(() => r()));
      // QUIT lets the commands already sent finish (disconnect() would reject them, unhandled, inside
      // the plugins); a Redis that does not answer is cut after a second.
      await Promise.all(this.redisConnections.map((c) => Promise.race([c.quit().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]).then(() => c.disconnect())));
      if (this.tcp) await new Promise<void>((r) => this.tcp!.close(() => r()));
    })();
    return this.closing;
  }
}
