/**
 * Finds a Colony coordinator on the LAN by browsing mDNS/DNS-SD for `_colony._tcp`
 * (coordinator/advertise.ts publishes it). Used by node daemons and the CLI when no broker URL is
 * configured. docs/discovery.md describes the records.
 */
import { isIPv4 } from "node:net";
import { Bonjour, type Service } from "bonjour-service";
import { ColonyError, CommonErrors } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { PROTOCOL_VERSION } from "./protocol.ts";

export interface DiscoverOptions {
  /** Give up after this many ms (DISCOVERY_TIMEOUT). Default 5000: a cold announcement takes ~1 s. */
  timeoutMs?: number;
  /** Only accept a coordinator of this fleet (TXT `fleet`). Default: the first one found. */
  fleetId?: string | undefined;
  /** multicast-dns interface address; default: the OS's choice. */
  interface?: string | undefined;
  logger?: Logger | undefined;
}

export interface DiscoveredCoordinator {
  /** Broker URL to connect to, with a reachable host substituted where needed. */
  url: string;
  fleetId: string;
  protocol: number;
  /** Host the URL points at (an IPv4 address when the answer carried one). */
  host: string;
  port: number;
  /** WebSocket port of the broker, when advertised. */
  wsPort?: number;
  /** DNS-SD instance name, for logs. */
  name: string;
}

// The service type shared with coordinator/advertise.ts (kept literal here so common/ does not
// import coordinator/).
const SERVICE_TYPE = "colony";

/** Hosts that name "the advertising machine itself" and must be replaced by a reachable address. */
function isSelfHost(host: string, srvHost: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  const s = srvHost.toLowerCase().replace(/\.$/, "");
  return h === "" || h === "0.0.0.0" || h === "::" || h === "[::]" || h === "localhost" || h.startsWith("127.") || h === s || h === s.replace(/\.local$/, "");
}

/**
 * Turns one DNS-SD answer into a connectable coordinator, or a reason to skip it. Exported for
 * unit tests. Address choice: an IPv4 A record of the service, else the address the answer came
 * from (bonjour's `referer`), else the SRV host name (a host on loopback only advertises no
 * addresses; the name then needs mDNS name resolution on the consumer, see docs/discovery.md).
 */
export function interpretService(service: Pick<Service, "name" | "host" | "port" | "addresses" | "referer" | "txt">): DiscoveredCoordinator | { skip: string; protocolMismatch?: boolean; fleetId?: string } {
  const txt = (service.txt ?? {}) as Record<string, unknown>;
  const fleetId = typeof txt.fleet === "string" ? txt.fleet : "";
  const protocol = Number(txt.proto);
  if (!Number.isInteger(protocol)) return { skip: "no protocol version in TXT" };
  if (protocol !== PROTOCOL_VERSION) return { skip: `speaks protocol ${protocol}, we speak ${PROTOCOL_VERSION}`, protocolMismatch: true, fleetId };
  if (!Number.isInteger(service.port) || service.port <= 0 || service.port > 65535) return { skip: "invalid port" };

  const v4 = (service.addresses ?? []).find((a) => isIPv4(a));
  const referer = service.referer?.family === "IPv4" ? service.referer.address : undefined;
  const reachable = v4 ?? referer ?? service.host;

  let url: URL;
  try {
    url = new URL(typeof txt.url === "string" && txt.url ? txt.url : `mqtt://${service.host}:${service.port}`);
  } catch {
    return { skip: `invalid broker URL in TXT: ${String(txt.url).slice(0, 100)}` };
  }
  if (!["mqtt:", "mqtts:", "ws:", "wss:"].includes(url.protocol)) return { skip: `unsupported broker URL scheme ${url.protocol}` };
  if (url.username || url.password) return { skip: "broker URL must not carry credentials" };
  if (isSelfHost(url.hostname, service.host ?? "")) url.hostname = reachable;
  const wsPort = Number(txt.ws);
  const out: DiscoveredCoordinator = {
    url: url.toString().replace(/\/$/, ""),
    fleetId,
    protocol,
    host: url.hostname,
    port: url.port ? Number(url.port) : service.port,
    name: service.name,
  };
  if (Number.isInteger(wsPort) && wsPort > 0 && wsPort <= 65535) out.wsPort = wsPort;
  return out;
}

/** Browses until a matching coordinator answers; rejects with DISCOVERY_TIMEOUT (or DISCOVERY_PROTOCOL_MISMATCH). */
export function discoverCoordinator(opts: DiscoverOptions = {}): Promise<DiscoveredCoordinator> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const logger = opts.logger;
  const mdnsOpts = (opts.interface ? { interface: opts.interface } : {}) as ConstructorParameters<typeof Bonjour>[0];
  let socketError: Error | undefined;
  const bonjour = new Bonjour(mdnsOpts, (err: Error) => {
    socketError = err;
  });
  const mdns = (bonjour as unknown as { server?: { mdns?: NodeJS.EventEmitter } }).server?.mdns;
  mdns?.on("error", (err: Error) => {
    socketError = err;
  });
  mdns?.on("warning", () => {});

  return new Promise<DiscoveredCoordinator>((resolve, reject) => {
    let done = false;
    const mismatches: string[] = [];
    const skipped: string[] = [];
    const finish = (err: Error | undefined, found?: DiscoveredCoordinator) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      browser.stop();
      bonjour.destroy(() => (err ? reject(err) : resolve(found!)));
    };
    const timer = setTimeout(() => {
      if (mismatches.length > 0) {
        finish(new ColonyError(CommonErrors.DISCOVERY_PROTOCOL_MISMATCH, `only coordinators of another protocol answered: ${mismatches.join("; ")}`));
        return;
      }
      const extra = [skipped.length ? `skipped: ${skipped.join("; ")}` : "", socketError ? `mDNS error: ${socketError.message}` : ""].filter(Boolean).join("; ");
      finish(new ColonyError(CommonErrors.DISCOVERY_TIMEOUT, `no Colony coordinator${opts.fleetId ? ` of fleet ${opts.fleetId}` : ""} answered mDNS within ${timeoutMs} ms${extra ? ` (${extra})` : ""}`));
    }, timeoutMs);

    const browser = bonjour.find({ type: SERVICE_TYPE, protocol: "tcp" }, (service: Service) => {
      const r = interpretService(service);
      if ("skip" in r) {
        // Another protocol only matters for the fleet we look for; for other fleets it is noise.
        const relevant = r.protocolMismatch && (opts.fleetId === undefined || r.fleetId === opts.fleetId);
        (relevant ? mismatches : skipped).push(`${service.name}: ${r.skip}`);
        logger?.debug({ service: service.name, reason: r.skip }, "mDNS: skipped a _colony._tcp answer");
        return;
      }
      if (opts.fleetId !== undefined && r.fleetId !== opts.fleetId) {
        skipped.push(`${service.name}: fleet ${r.fleetId}`);
        return;
      }
      logger?.info({ url: r.url, fleetId: r.fleetId, service: r.name }, "discovered coordinator over mDNS");
      finish(undefined, r);
    });
  });
}
