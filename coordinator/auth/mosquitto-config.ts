/**
 * Generates a mosquitto 2.x config, password file and ACL file equivalent (as far as mosquitto can
 * express it) to the aedes hooks, for fleets that run Debian's mosquitto as their broker.
 * Gaps, also in docs/security.md: mosquitto's ACL cannot forbid `retain`, nor bind client ids to
 * users; and topics outside colony/ must be listed (`submitterTopics`) instead of being open to
 * submitters.
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { ROOT } from "../../common/protocol.ts";
import { NODE_PUBLISH_KINDS, NODE_SUBSCRIBE_TOPICS, OBSERVER_SUBSCRIBE_TOPICS, submitterFolder } from "./acl.ts";
import { issueCredential, type Role } from "./credentials.ts";
import { AuthErrors } from "./errors.ts";

// mosquitto_passwd's format since 2.0 ("$7$"): PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt,
// 64-byte hash, both base64. Checked against mosquitto_passwd 2.0.11 output.
const PBKDF2_ITERATIONS = 101;
const SALT_BYTES = 12;
const HASH_BYTES = 64;

export function mosquittoPasswordHash(password: string, salt: Buffer = randomBytes(SALT_BYTES)): string {
  const hash = pbkdf2Sync(password, salt, PBKDF2_ITERATIONS, HASH_BYTES, "sha512");
  return `$7$${PBKDF2_ITERATIONS}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

export interface MosquittoFleet {
  secret: Buffer;
  nodes: readonly string[];
  submitters: readonly string[];
  /** Read-only observers (Home Assistant, dashboards): the coordinator's fleet views, `colony/v1/ha/#` and `colony/v1/dashboard/#` (acl.ts OBSERVER_SUBSCRIBE_TOPICS). Default none. */
  observers?: readonly string[];
  /** Include the `coordinator` user (full access). Default true. */
  coordinator?: boolean;
  /**
   * Topic filters outside colony/ every submitter may read and write (e.g. `homeassistant/#`,
   * a replyTo topic). aedes allows all of outside-colony; mosquitto needs them listed. Default none.
   */
  submitterTopics?: readonly string[];
}

export interface IssuedUser {
  role: Role;
  name: string;
  username: string;
  password: string;
}

/** ACL lines for one user; mosquitto takes the first matching line, so denies precede the catch-all. */
function aclFor(user: IssuedUser, extraTopics: readonly string[]): string[] {
  const lines = [`user ${user.username}`];
  if (user.role === "coordinator") {
    lines.push("topic readwrite #");
  } else if (user.role === "node") {
    for (const kind of NODE_PUBLISH_KINDS) lines.push(`topic write ${ROOT}/nodes/${user.name}/${kind}`);
    lines.push(`topic read ${ROOT}/nodes/${user.name}/#`);
    for (const t of NODE_SUBSCRIBE_TOPICS) lines.push(`topic read ${t}`);
  } else if (user.role === "observer") {
    for (const t of OBSERVER_SUBSCRIBE_TOPICS) lines.push(`topic read ${t}`);
    for (const t of extraTopics) lines.push(`topic readwrite ${t}`);
  } else {
    // Its own folder only: mosquitto checks read rights per delivered message, so even a wildcard
    // subscription gets nothing from another submitter's folder.
    const folder = submitterFolder(user);
    lines.push(`topic write ${folder}/submit`, `topic write ${folder}/tasks/+/feedback`, `topic write ${folder}/tasks/+/get`, `topic read ${folder}/#`);
    lines.push(`topic read ${ROOT}/coordinator/status`);
    // mosquitto checks every `deny` line before any grant, so "all but colony/" cannot be said
    // (a `deny colony/#` would also hide the submitter's own results, and a bare `readwrite #`
    // would let it forge results). Topics outside colony/ are therefore granted one by one.
    for (const t of extraTopics) lines.push(`topic readwrite ${t}`);
  }
  return lines;
}

/**
 * Extra topics a submitter may use outside colony/ (replyTo targets, Home Assistant topics):
 * the first level must be a concrete name other than `colony` and not a `$` topic.
 */
export function assertOutsideColony(filter: string): void {
  const first = filter.split("/")[0]!;
  if (!filter || first === "colony" || first === "+" || first === "#" || filter.startsWith("$") || /[\s\u0000]/.test(filter)) {
    throw new ColonyError(AuthErrors.CREDENTIAL_NAME_INVALID, `submitter topic ${JSON.stringify(filter)} must be outside colony/ (first level a concrete name, no $ and no spaces)`);
  }
}

/** A TLS listener for mosquitto (server certificate; clients verify it against `cafile`). */
export interface MosquittoTls {
  port: number;
  cafile: string;
  certfile: string;
  keyfile: string;
}

export interface MosquittoListenerOptions {
  /** Plain-TCP listener port; default 1883. Set `plain: false` to have only the TLS listener. */
  port?: number;
  plain?: boolean;
  bind?: string;
  tls?: MosquittoTls;
}

export function renderMosquittoFiles(fleet: MosquittoFleet, files: { passwordFile: string; aclFile: string } & MosquittoListenerOptions) {
  const users: IssuedUser[] = [];
  const seen = new Set<string>();
  const add = (role: Role, name: string) => {
    const c = issueCredential(fleet.secret, role, name);
    if (seen.has(c.username)) return;
    seen.add(c.username);
    users.push({ role, name, ...c });
  };
  const extraTopics = fleet.submitterTopics ?? [];
  for (const t of extraTopics) assertOutsideColony(t);
  if (fleet.coordinator !== false) add("coordinator", "coordinator");
  for (const n of fleet.nodes) add("node", n);
  for (const s of fleet.submitters) add("submitter", s);
  for (const o of fleet.observers ?? []) add("observer", o);

  const passwd = users.map((u) => `${u.username}:${mosquittoPasswordHash(u.password)}`).join("\n") + "\n";
  const acl = ["# Generated by `colony credentials mosquitto`; see docs/security.md.", ...users.flatMap((u) => ["", ...aclFor(u, extraTopics)])].join("\n") + "\n";
  const conf = [
    "# Generated by `colony credentials mosquitto`; see docs/security.md.",
    "# Every client must authenticate; topic rights come from the ACL file.",
    "per_listener_settings false",
    "allow_anonymous false",
    "# Auctions are many small messages: with Nagle on, each waits ~40 ms for a delayed ACK (bench/auction.ts).",
    "set_tcp_nodelay true",
    `password_file ${files.passwordFile}`,
    `acl_file ${files.aclFile}`,
    ...(files.plain === false ? [] : ["", `listener ${files.port ?? 1883}${files.bind ? ` ${files.bind}` : ""}`]),
    ...(files.tls
      ? [
          "",
          "# TLS: clients connect with mqtts:// and verify the server against the CA.",
          `listener ${files.tls.port}${files.bind ? ` ${files.bind}` : ""}`,
          `cafile ${files.tls.cafile}`,
          `certfile ${files.tls.certfile}`,
          `keyfile ${files.tls.keyfile}`,
          "tls_version tlsv1.2",
        ]
      : []),
    "",
  ].join("\n");
  return { conf, passwd, acl, users };
}

/**
 * Writes mosquitto.conf, passwd and acl into `outDir` (0700; files 0600: passwd holds hashes and
 * the ACL names every node). Returns the paths and the issued credentials.
 */
export async function writeMosquittoFiles(outDir: string, fleet: MosquittoFleet, opts: MosquittoListenerOptions = {}) {
  const dir = path.resolve(outDir);
  const passwordFile = path.join(dir, "passwd");
  const aclFile = path.join(dir, "acl");
  const confFile = path.join(dir, "mosquitto.conf");
  const rendered = renderMosquittoFiles(fleet, { passwordFile, aclFile, ...opts });
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [file, text] of [[passwordFile, rendered.passwd], [aclFile, rendered.acl], [confFile, rendered.conf]] as const) {
      await writeFile(file, text, { mode: 0o600 });
      await chmod(file, 0o600);
    }
  } catch (err) {
    throw new ColonyError(AuthErrors.MOSQUITTO_CONFIG_FAILED, `cannot write mosquitto files into ${dir}: ${(err as Error).message}`, undefined, { cause: err });
  }
  return { confFile, passwordFile, aclFile, users: rendered.users };
}
