/**
 * The one way Colony processes connect to MQTT (coordinator's own client, node daemons, the CLI):
 * MQTT 3.1.1 so it works on aedes, mosquitto and any broker; reconnect with exponential backoff;
 * the returned promise settles on the FIRST connection attempt's outcome.
 */
import { readFileSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import mqtt, { MqttClient, type IClientOptions } from "mqtt";
import { z } from "zod";
import { ColonyError, CommonErrors } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { formatIssues } from "./config.ts";
import { PublicKeySchema } from "./model-manifest.ts";

export type { MqttClient };

export interface MqttWill {
  topic: string;
  payload: string | Buffer;
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

export interface ConnectMqttOptions {
  /** `mqtt://host:port`, `mqtts://host:port`, `ws://host:port/path`. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /**
   * Default: `{username or "colony"}:{8 random hex}`. With `clean: false` set a stable id; the
   * embedded broker then requires `{username}` or `{username}:{suffix}` (docs/security.md).
   */
  clientId?: string | undefined;
  will?: MqttWill | undefined;
  logger: Logger;
  /** How long the first connection may take, including retries while the broker is down. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * Clean session (MQTT 3.1.1 §3.1.2.4). Default true: Colony's messages are timely (awards,
   * bids, progress) and a restarted process re-subscribes and republishes its retained status, so
   * a broker-side session queueing stale messages for an offline client would only do harm.
   * Use false with a stable clientId for a client that must not miss QoS 1 messages while away.
   */
  clean?: boolean;
  /** Keepalive in seconds; default 30. The will fires at once on a closed socket regardless. */
  keepaliveS?: number;
  /** Reconnect backoff: first delay and cap, in ms. Default 500 and 30000, doubling, ±20% jitter. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** TLS options for mqtts:// (CA, client certificate), passed to mqtt.js unchanged. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean } | undefined;
  /**
   * Opens the connection's byte stream instead of dialling `url` (called again on every
   * reconnect): the coordinator's in-memory link to its embedded broker. `url` is then only
   * what logs and errors name.
   */
  stream?: (() => Duplex) | undefined;
}

const SCHEMES = new Set(["mqtt:", "mqtts:", "tcp:", "ssl:", "ws:", "wss:"]);

// Node's TLS verification error codes (DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID, ...).
const TLS_ERROR_RE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;

// CONNACK return codes that mean "your credentials are not accepted" [MQTT-3.2.2.3].
const AUTH_RETURN_CODES = new Set([4, 5]);

/**
 * Connects and resolves with a connected client. Rejects with MQTT_AUTH_REFUSED (bad credentials:
 * retrying cannot help), MQTT_CONNECT_TIMEOUT (broker unreachable for connectTimeoutMs; refused
 * TCP connections are retried until then) or MQTT_CONNECT_FAILED. After the first connection the
 * client reconnects on its own forever, with backoff; subscriptions are restored by mqtt.js.
 */
export function connectMqtt(opts: ConnectMqttOptions): Promise<MqttClient> {
  const { logger } = opts;
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const minDelay = opts.reconnectMinMs ?? 500;
  const maxDelay = Math.max(minDelay, opts.reconnectMaxMs ?? 30_000);
  const clientId = opts.clientId ?? `${opts.username ?? "colony"}:${randomBytes(4).toString("hex")}`;
  const safeUrl = redactUrl(opts.url);

  let scheme: string;
  try {
    scheme = new URL(opts.url).protocol;
  } catch {
    return Promise.reject(new ColonyError(CommonErrors.MQTT_CONNECT_FAILED, `broker URL ${JSON.stringify(safeUrl)} is not a URL`));
  }
  // mqtt.js quietly treats an unknown scheme as plain TCP; say what is wrong instead.
  if (!SCHEMES.has(scheme)) {
    return Promise.reject(new ColonyError(CommonErrors.MQTT_CONNECT_FAILED, `broker URL ${safeUrl} must start with mqtt://, mqtts://, ws:// or wss://`));
  }

  let client: MqttClient;
  try {
    const options: IClientOptions = {
      protocolVersion: 4,
      clientId,
      clean: opts.clean ?? true,
      keepalive: opts.keepaliveS ?? 30,
      username: opts.username,
      password: opts.password,
      will: opts.will,
      reconnectPeriod: minDelay,
      // Per-attempt CONNACK wait; the overall first-connect budget is enforced below.
      connectTimeout: Math.min(timeoutMs, 30_000),
      ...(opts.tls ?? {}),
    };
    const stream = opts.stream;
    client = stream ? new MqttClient(() => stream(), options) : mqtt.connect(opts.url, options);
  } catch (err) {
    return Promise.reject(new ColonyError(CommonErrors.MQTT_CONNECT_FAILED, `cannot connect to ${safeUrl}: ${(err as Error).message}`, undefined, { cause: err }));
  }

  // mqtt.js leaves Nagle on, and writes a packet in several pieces: the piece after the first waits
  // for the peer's delayed ACK, ~40 ms per small message (bench/latency.ts measured a submitter's
  // submit-to-result p50 at 52 ms with it). Every Colony client turns it off, on every (re)connect.
  const noDelay = () => (client.stream as { setNoDelay?: (v: boolean) => void } | undefined)?.setNoDelay?.(true);
  noDelay();
  client.on("connect", noDelay);

  // Exponential backoff: mqtt.js retries on a fixed interval, set when the socket closes. Runs
  // before mqtt.js's own 'close' handler, so the next interval uses the grown delay.
  let delay = minDelay;
  client.prependListener("close", () => {
    (client as unknown as { _clearReconnect?: () => void })._clearReconnect?.();
    client.options.reconnectPeriod = Math.round(delay * (0.8 + 0.4 * Math.random()));
    delay = Math.min(maxDelay, delay * 2);
  });

  return new Promise<MqttClient>((resolve, reject) => {
    let settled = false;
    let lastError: Error | undefined;
    const fail = (err: ColonyError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end(true);
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(new ColonyError(CommonErrors.MQTT_CONNECT_TIMEOUT, `no MQTT connection to ${safeUrl} within ${timeoutMs} ms${lastError ? ` (last error: ${lastError.message})` : ""}`));
    }, timeoutMs);

    client.on("connect", () => {
      delay = minDelay;
      client.options.reconnectPeriod = minDelay;
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        // From now on a refused reconnect (e.g. the fleet secret was rotated) keeps retrying at
        // the capped delay instead of giving up silently.
        client.options.reconnectOnConnackError = true;
        logger.info({ url: safeUrl, clientId }, "MQTT connected");
        resolve(client);
      } else {
        logger.info({ url: safeUrl, clientId }, "MQTT reconnected");
      }
    });
    client.on("offline", () => {
      if (settled) logger.warn({ url: safeUrl, clientId }, "MQTT connection lost; reconnecting");
    });
    client.on("error", (err: Error & { code?: unknown }) => {
      lastError = err;
      const authRefused = typeof err.code === "number" && AUTH_RETURN_CODES.has(err.code);
      if (!settled) {
        if (authRefused) {
          fail(new ColonyError(CommonErrors.MQTT_AUTH_REFUSED, `MQTT broker ${safeUrl} refused ${opts.username ? `user ${opts.username}` : "an anonymous connection"}: ${err.message}`));
        } else if (err.code === 2) {
          fail(new ColonyError(CommonErrors.MQTT_AUTH_REFUSED, `MQTT broker ${safeUrl} rejected client id ${clientId}: ${err.message}`));
        } else if (typeof err.code === "number") {
          fail(new ColonyError(CommonErrors.MQTT_CONNECT_FAILED, `MQTT broker ${safeUrl} refused the connection: ${err.message}`));
        } else if (typeof err.code === "string" && TLS_ERROR_RE.test(err.code)) {
          // A certificate that does not verify will not verify on the next try either.
          fail(new ColonyError(CommonErrors.MQTT_CONNECT_FAILED, `TLS handshake with ${safeUrl} failed: ${err.code}: ${err.message}`));
        }
        // Network errors (ECONNREFUSED, ...) are retried until the timeout.
        return;
      }
      logger.warn({ url: safeUrl, clientId, err: { message: err.message, code: err.code } }, "MQTT client error");
    });
  });
}

/**
 * Ends a client, first publishing its last words (a retained `offline` status) when it is
 * connected. Bounded: with the broker gone a QoS 1 publish would wait for a PUBACK forever, and a
 * process must be able to shut down while its broker is down.
 */
export async function closeClient(client: MqttClient, lastWords?: { topic: string; payload: string; retain: boolean }, timeoutMs = 1000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  let outcome: unknown = "skipped";
  if (lastWords && client.connected) {
    outcome = await Promise.race([client.publishAsync(lastWords.topic, lastWords.payload, { qos: 1, retain: lastWords.retain }).catch(() => "failed"), timeout]);
  }
  // Force the end when the last words did not get through: nothing else is waiting to be sent.
  const ended = client.endAsync(outcome === "timeout" || !client.connected).catch(() => {});
  await Promise.race([ended, timeout]);
  clearTimeout(timer);
  if (!client.disconnected) await client.endAsync(true).catch(() => {});
}

/** Drops any password embedded in a URL before it is logged or put in an error message. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.slice(0, 200);
  }
}

// ---------------------------------------------------------------------------------------------
// Client credentials file

export const ClientCredentialsSchema = z.strictObject({
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(256),
  /** Broker URL, if the issuer knew it; a flag or mDNS discovery may still override it. */
  url: z.string().min(1).max(512).optional(),
  /** A node's: the fleet's model key (base64url ed25519 public key) pushed models must be signed with (docs/models.md). */
  modelKey: PublicKeySchema.optional(),
});
export type ClientCredentials = z.infer<typeof ClientCredentialsSchema>;

/** Environment variable naming a credentials file, when no flag does. */
export const CREDENTIALS_ENV = "COLONY_CREDENTIALS";

/**
 * Reads the JSON credentials file `colony credentials issue --out FILE` writes. The path comes from
 * `file` (a flag) or else `env.COLONY_CREDENTIALS`; returns undefined when neither names one.
 * The caller's config module passes its environment (conventions: one reader of the environment).
 */
export function loadClientCredentials(opts: { file?: string | undefined; env?: Record<string, string | undefined> } = {}): ClientCredentials | undefined {
  const file = opts.file ?? opts.env?.[CREDENTIALS_ENV];
  if (!file) return undefined;
  let text: string;
  try {
    const info = statSync(file);
    if ((info.mode & 0o077) !== 0) {
      throw new ColonyError(CommonErrors.CREDENTIALS_FILE_INSECURE, `credentials file ${file} has mode ${(info.mode & 0o777).toString(8)}; run: chmod 600 ${file}`);
    }
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ColonyError) throw err;
    throw new ColonyError(CommonErrors.CREDENTIALS_FILE_INVALID, `cannot read credentials file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ColonyError(CommonErrors.CREDENTIALS_FILE_INVALID, `credentials file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ClientCredentialsSchema.safeParse(json);
  if (!parsed.success) {
    throw new ColonyError(CommonErrors.CREDENTIALS_FILE_INVALID, `credentials file ${file}: ${formatIssues(parsed.error).join("; ")}`);
  }
  return parsed.data;
}
