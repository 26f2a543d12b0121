/**
 * Announces the coordinator on the LAN over mDNS/DNS-SD as `_colony._tcp`, so node daemons and
 * the CLI find the broker without configuration (docs/discovery.md). Best effort: a network
 * without multicast only loses discovery; explicit URLs keep working.
 */
import os from "node:os";
import { Bonjour, type Service } from "bonjour-service";
import { PROTOCOL_VERSION } from "../common/protocol.ts";
import type { Logger } from "../common/logger.ts";

/** DNS-SD service type (without the leading underscore and protocol), shared with common/discovery.ts. */
export const COLONY_SERVICE_TYPE = "colony";

export interface MdnsAdvertiserOptions {
  /** MQTT (TCP) port of the broker, advertised in the SRV record. */
  port: number;
  /** WebSocket port of the broker, if it has one (TXT `ws`). */
  wsPort?: number | undefined;
  fleetId: string;
  /**
   * Broker URL for TXT `url`. Default `mqtt://{host}:{port}`. A consumer replaces a host that is
   * this machine (or 0.0.0.0/localhost) with the address the answer came from, so only set this
   * for a broker on ANOTHER host (an external mosquitto).
   */
  brokerUrl?: string | undefined;
  /** DNS-SD instance name; default `colony-{fleetId}-{hostname}` (must be unique on the LAN). */
  name?: string | undefined;
  /** Host name in the SRV record; default os.hostname(). */
  host?: string | undefined;
  /** Interface address for multicast (multicast-dns `interface`); default: the OS's choice. */
  interface?: string | undefined;
  logger: Logger;
  /** How long start() waits for the first announcement before giving up waiting. Default 3000 ms. */
  upTimeoutMs?: number;
}

/** Builds the TXT record; keys are short because a TXT record should stay under ~200 bytes. */
export function advertisementTxt(opts: { port: number; wsPort?: number | undefined; fleetId: string; brokerUrl: string }): Record<string, string> {
  const txt: Record<string, string> = { proto: String(PROTOCOL_VERSION), fleet: opts.fleetId, url: opts.brokerUrl };
  if (opts.wsPort !== undefined) txt.ws = String(opts.wsPort);
  return txt;
}

export class MdnsAdvertiser {
  private bonjour: Bonjour | undefined;
  private service: Service | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private up = false;

  constructor(private readonly opts: MdnsAdvertiserOptions) {}

  /** True once the first announcement went out (probing done). */
  get published(): boolean {
    return this.up;
  }

  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (this.closing) return;
    const { logger } = this.opts;
    const host = this.opts.host ?? os.hostname();
    const brokerUrl = this.opts.brokerUrl ?? `mqtt://${host}:${this.opts.port}`;
    const name = this.opts.name ?? `colony-${this.opts.fleetId}-${host}`.slice(0, 63);
    // The error callback replaces bonjour-service's default, which throws from a socket callback
    // and would crash the coordinator over a multicast problem.
    // Bonjour's first argument goes to multicast-dns (typed as a service config upstream).
    const mdnsOpts = (this.opts.interface ? { interface: this.opts.interface } : {}) as ConstructorParameters<typeof Bonjour>[0];
    this.bonjour = new Bonjour(mdnsOpts, (err: Error) => {
      logger.warn({ err: { message: err.message } }, "mDNS error");
    });
    const mdns = (this.bonjour as unknown as { server?: { mdns?: NodeJS.EventEmitter } }).server?.mdns;
    // multicast-dns emits 'error' for EACCES/EADDRINUSE on port 5353; unhandled it would throw.
    mdns?.on("error", (err: Error) => logger.warn({ err: { message: err.message } }, "mDNS socket error; coordinator not discoverable"));
    mdns?.on("warning", (err: Error) => logger.debug({ err: { message: err.message } }, "mDNS warning"));

    const txt = advertisementTxt({ port: this.opts.port, wsPort: this.opts.wsPort, fleetId: this.opts.fleetId, brokerUrl });
    const service = this.bonjour.publish({ name, type: COLONY_SERVICE_TYPE, protocol: "tcp", port: this.opts.port, host, txt });
    this.service = service;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        logger.warn({ service: name, waitedMs: this.opts.upTimeoutMs ?? 3000 }, "mDNS announcement not confirmed yet; continuing");
        resolve();
      }, this.opts.upTimeoutMs ?? 3000);
      timer.unref();
      service.once("up", () => {
        clearTimeout(timer);
        this.up = true;
        logger.info({ service: name, type: `_${COLONY_SERVICE_TYPE}._tcp`, port: this.opts.port, fleetId: this.opts.fleetId }, "advertising coordinator over mDNS");
        resolve();
      });
    });
  }

  /** Sends goodbye packets (TTL 0) so browsers drop us at once, then closes the mDNS socket. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.starting?.catch(() => {});
      const bonjour = this.bonjour;
      if (!bonjour) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000); // goodbye is best effort; never hang shutdown on it
        bonjour.unpublishAll(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
      this.up = false;
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
