import { createHmac, timingSafeEqual } from "node:crypto";
import { ColonyError } from "../../common/errors.ts";
import { deriveSigningKey } from "../../common/model-manifest.ts";
import { AuthErrors } from "./errors.ts";
import { FLEET_SECRET_BYTES } from "./secret.ts";

/**
 * `observer`: read-only (Home Assistant, dashboards): the coordinator's status, its retained fleet
 * views (stats, lineage, architect decisions, model catalog, mind jobs) and the integration topics it
 * publishes (`colony/v1/ha/#`, `colony/v1/dashboard/#`), no prompt and no result (coordinator/auth/acl.ts).
 */
export type Role = "node" | "submitter" | "coordinator" | "observer";
export const ROLES: readonly Role[] = ["node", "submitter", "coordinator", "observer"];

/** Who a connection is, once its credential checked out. */
export interface Principal {
  role: Role;
  name: string;
}

export interface Credential {
  username: string;
  password: string;
}

/**
 * Names end up inside MQTT topics (`colony/v1/nodes/{name}/...`) and in mosquitto's password file,
 * whose `user:hash` lines cannot hold a ':' — so names are protocol ids without ':'.
 */
export const CREDENTIAL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Username = `role.name` (`node.pi-kitchen`, `submitter.alice`), or plain `coordinator`. The '.'
 * (not ':') keeps usernames legal in mosquitto's password file; the role is the text before the
 * first '.', so names may themselves contain dots.
 */
const USERNAME_SEP = ".";
const DEFAULT_COORDINATOR_NAME = "coordinator";

function assertSecret(secret: Buffer): void {
  if (!Buffer.isBuffer(secret) || secret.length !== FLEET_SECRET_BYTES) {
    throw new ColonyError(AuthErrors.FLEET_SECRET_INVALID, `fleet secret must be ${FLEET_SECRET_BYTES} bytes`);
  }
}

export function assertCredentialName(name: string): void {
  if (typeof name !== "string" || !CREDENTIAL_NAME_RE.test(name)) {
    throw new ColonyError(
      AuthErrors.CREDENTIAL_NAME_INVALID,
      `name ${JSON.stringify(name)} must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit`,
    );
  }
}

function assertRole(role: string): asserts role is Role {
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new ColonyError(AuthErrors.CREDENTIAL_ROLE_INVALID, `role ${JSON.stringify(role)} must be one of ${ROLES.join(", ")}`);
  }
}

export function usernameFor(role: Role, name: string): string {
  if (role === "coordinator" && name === DEFAULT_COORDINATOR_NAME) return "coordinator";
  return `${role}${USERNAME_SEP}${name}`;
}

/** The inverse of usernameFor; undefined for anything that is not a well-formed Colony username. */
export function parseUsername(username: string): Principal | undefined {
  if (username === "coordinator") return { role: "coordinator", name: DEFAULT_COORDINATOR_NAME };
  const sep = username.indexOf(USERNAME_SEP);
  if (sep <= 0) return undefined;
  const role = username.slice(0, sep);
  const name = username.slice(sep + 1);
  if (!(ROLES as readonly string[]).includes(role) || !CREDENTIAL_NAME_RE.test(name)) return undefined;
  return { role: role as Role, name };
}

function mac(secret: Buffer, role: Role, name: string): Buffer {
  return createHmac("sha256", secret).update(`${role}:${name}`).digest();
}

/**
 * Stateless credentials: the password is HMAC-SHA256(secret, "role:name") in base64url, so the
 * coordinator stores no user table and any holder of the secret can issue credentials offline.
 * Revoking one credential means rotating the secret (docs/security.md).
 */
export function issueCredential(secret: Buffer, role: Role, name: string = DEFAULT_COORDINATOR_NAME): Credential {
  assertSecret(secret);
  assertRole(role);
  assertCredentialName(name);
  return { username: usernameFor(role, name), password: mac(secret, role, name).toString("base64url") };
}

/**
 * A node's credentials file (`colony credentials issue --node ID --out FILE`, `colony fleet`): its
 * MQTT credential plus the fleet's model key, the public half of the key derived from the same
 * secret (common/model-manifest.ts), which pushed models' manifests must verify with.
 */
export function nodeCredentialFile(secret: Buffer, nodeId: string, url?: string): Credential & { url?: string; modelKey: string } {
  return { ...issueCredential(secret, "node", nodeId), ...(url !== undefined ? { url } : {}), modelKey: deriveSigningKey(secret).publicKey };
}

/**
 * Checks a username/password pair; returns the principal or undefined. The comparison is
 * constant-time over the MAC bytes, so response timing tells nothing about how close a guess was.
 */
export function verifyCredential(secret: Buffer, username: string | undefined, password: Buffer | string | undefined): Principal | undefined {
  if (typeof username !== "string" || password === undefined) return undefined;
  const principal = parseUsername(username);
  if (!principal) return undefined;
  // Compare the text, not decoded bytes: Node's base64url decoder skips stray characters, so
  // decoding would accept `password + "!"` as well.
  const expected = Buffer.from(mac(secret, principal.role, principal.name).toString("base64url"));
  const given = typeof password === "string" ? Buffer.from(password) : password;
  // Length is public (always 43 characters); timingSafeEqual throws on unequal lengths.
  if (given.length !== expected.length) return undefined;
  return timingSafeEqual(given, expected) ? principal : undefined;
}
