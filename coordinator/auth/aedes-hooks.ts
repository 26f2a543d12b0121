/**
 * Authentication and topic ACL hooks for aedes 1.x (signatures from aedes/types/instance.d.ts).
 * Pass the result straight to `Aedes.createBroker({ ...hooks, ... })`.
 */
import type { Client, PublishPacket, Subscription } from "aedes";
import { ColonyError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { checkPublish, checkSubscribe, type AclDecision } from "./acl.ts";
import { verifyCredential, type Principal } from "./credentials.ts";
import { AuthErrors } from "./errors.ts";
import { RefusalLog } from "./refusal-log.ts";

// CONNACK return codes of MQTT 3.1.1 [MQTT-3.2.2.3].
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

export interface AedesAuthOptions {
  /** The fleet secret (coordinator/auth/secret.ts). Required unless `insecure`. */
  secret?: Buffer | undefined;
  /**
   * Accept every client, anonymous ones included, with full rights: for a trusted network or a
   * demo only. Credentials, if sent, are ignored. Default false.
   */
  insecure?: boolean;
  logger: Logger;
  /** Clock for the refusal log's rate limit; default Date.now. */
  now?: () => number;
  /** Called on every refusal with its action (connect, will, publish, subscribe), unlike the log never rate-limited: metrics count them. */
  onRefusal?: ((action: "connect" | "will" | "publish" | "subscribe") => void) | undefined;
}

type AuthError = Error & { returnCode: number };
type AuthenticateFn = (client: Client, username: Readonly<string | undefined>, password: Readonly<Buffer | undefined>, done: (error: AuthError | null, success: boolean | null) => void) => void;
type AuthorizePublishFn = (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) => void;
type AuthorizeSubscribeFn = (client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void) => void;

export interface AedesAuthHooks {
  authenticate: AuthenticateFn;
  authorizePublish: AuthorizePublishFn;
  authorizeSubscribe: AuthorizeSubscribeFn;
  /** The principal a connected client authenticated as (undefined in insecure mode or before connect). */
  principalOf(client: Client): Principal | undefined;
}

function authError(message: string, returnCode: number): AuthError {
  return Object.assign(new Error(message), { returnCode });
}

export function createAedesAuthHooks(opts: AedesAuthOptions): AedesAuthHooks {
  const { logger } = opts;
  const insecure = opts.insecure === true;
  if (!insecure && (!opts.secret || opts.secret.length !== 32)) {
    throw new ColonyError(AuthErrors.FLEET_SECRET_INVALID, "createAedesAuthHooks needs the 32-byte fleet secret unless insecure is set");
  }
  const secret = opts.secret;
  const principals = new WeakMap<Client, Principal>();
  const log = new RefusalLog(logger, opts.now ?? Date.now);
  const refusals = {
    note: (key: string, fields: { action: "connect" | "will" | "publish" | "subscribe" } & Record<string, unknown>) => {
      opts.onRefusal?.(fields.action);
      log.note(key, fields);
    },
  };
  if (insecure) logger.warn({ insecure: true }, "MQTT authentication is OFF: any client on the network may publish and subscribe to anything");

  const authenticate: AuthenticateFn = (client, username, password, done) => {
    if (insecure) return done(null, true);
    if (username === undefined || username === "") {
      refusals.note("anonymous", { clientId: client.id.slice(0, 160), action: "connect", reason: "anonymous" });
      return done(authError("anonymous connections are refused", NOT_AUTHORIZED), false);
    }
    const principal = verifyCredential(secret!, username, password);
    if (!principal) {
      // Never log the password; the username is what the client claimed and is capped in length.
      refusals.note(`user:${username.slice(0, 160)}`, { username: username.slice(0, 160), clientId: client.id.slice(0, 160), action: "connect", reason: "bad username or password" });
      return done(authError("bad username or password", BAD_USERNAME_OR_PASSWORD), false);
    }
    // A last will is published when the client dies, on its behalf: check it like a publish now,
    // so a node cannot connect with a will that forges another node's "offline".
    const will = (client as unknown as { _will?: { topic: string; retain?: boolean } })._will;
    if (will) {
      const decision = checkPublish(principal, will.topic, will.retain === true);
      if (!decision.allowed) {
        refusals.note(`user:${username}`, { username, clientId: client.id.slice(0, 160), action: "will", topic: will.topic.slice(0, 256), reason: decision.reason });
        return done(authError(`last will refused: ${decision.reason}`, NOT_AUTHORIZED), false);
      }
    }
    // Client ids are not secret, and MQTT lets a new connection with an existing id take over the
    // old one [MQTT-3.1.4-2]: if any credential could use any id, it could kick the coordinator off,
    // lock a node out by connecting first under the node's id, or resume a node's persistent
    // session (its subscriptions and queued awards). So a client id belongs to one credential.
    const idProblem = checkClientId(client, username);
    if (idProblem) {
      refusals.note(`user:${username}`, { username, clientId: client.id.slice(0, 160), action: "connect", reason: idProblem });
      return done(authError(idProblem, IDENTIFIER_REJECTED), false);
    }
    principals.set(client, principal);
    return done(null, true);
  };

  /** A client id must carry its username: `{username}` or `{username}:{anything}` (':' cannot occur in a username). */
  const checkClientId = (client: Client, username: string): string | undefined => {
    if (client.id === username || client.id.startsWith(`${username}:`)) return undefined;
    return `client id ${JSON.stringify(client.id.slice(0, 160))} does not belong to ${username}: use "${username}" or "${username}:..."`;
  };

  const refuse = (client: Client, action: "publish" | "subscribe", topic: string, decision: AclDecision & { allowed: false }) => {
    const p = principals.get(client);
    const who = p ? `${p.role}.${p.name}` : "unknown";
    refusals.note(`user:${who}`, { principal: who, clientId: client.id.slice(0, 160), action, topic: topic.slice(0, 256), reason: decision.reason });
  };

  const authorizePublish: AuthorizePublishFn = (client, packet, callback) => {
    // client is null for messages the broker publishes itself (e.g. wills of a dead broker's
    // clients restored from persistence, which were checked when those clients connected).
    if (insecure || client === null) return callback(null);
    const principal = principals.get(client);
    if (!principal) return callback(new Error("publish from an unauthenticated client"));
    const decision = checkPublish(principal, packet.topic, packet.retain === true);
    if (decision.allowed) return callback(null);
    refuse(client, "publish", packet.topic, decision);
    // MQTT 3.1.1 has no negative PUBACK: aedes closes the connection of a client whose publish is
    // refused, so the message never reaches anyone.
    return callback(new Error(`publish refused: ${decision.reason}`));
  };

  const authorizeSubscribe: AuthorizeSubscribeFn = (client, subscription, callback) => {
    if (insecure) return callback(null, subscription);
    const principal = principals.get(client);
    if (!principal) return callback(new Error("subscribe from an unauthenticated client"));
    const decision = checkSubscribe(principal, subscription.topic);
    if (decision.allowed) return callback(null, subscription);
    refuse(client, "subscribe", subscription.topic, decision);
    // null = SUBACK return code 0x80 (failure) for this filter [MQTT-3.9.3]; the connection stays up.
    return callback(null, null);
  };

  return { authenticate, authorizePublish, authorizeSubscribe, principalOf: (client) => principals.get(client) };
}
