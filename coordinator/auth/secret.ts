import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { AuthErrors } from "./errors.ts";

/** Length of the fleet secret: an HMAC-SHA256 key as long as its output. */
export const FLEET_SECRET_BYTES = 32;
export const FLEET_SECRET_FILE = "fleet.secret";

/**
 * Accepts the raw 32 bytes Colony writes, or 64 hex characters (optionally newline-terminated) so
 * an operator can copy the secret to another host as text (`xxd -p -c 64 fleet.secret`).
 */
export function parseFleetSecret(bytes: Buffer, source: string): Buffer {
  if (bytes.length === FLEET_SECRET_BYTES) return Buffer.from(bytes);
  const text = bytes.toString("latin1").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  throw new ColonyError(
    AuthErrors.FLEET_SECRET_INVALID,
    `fleet secret ${source} holds ${bytes.length} bytes; expected ${FLEET_SECRET_BYTES} raw bytes or 64 hex characters`,
  );
}

function insecureBits(mode: number): number {
  // Group or others may read, write or traverse: anyone on the host could mint credentials.
  return mode & 0o077;
}

/**
 * Reads `dataDir/fleet.secret`, creating it (32 random bytes, mode 0600, folder 0700) on first use.
 * Refuses a secret that group or others can read, because whoever holds it can issue any
 * credential, the coordinator's included.
 */
export async function loadOrCreateFleetSecret(dataDir: string): Promise<Buffer> {
  const file = path.join(dataDir, FLEET_SECRET_FILE);
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `cannot create data folder ${dataDir}: ${(err as Error).message}`, undefined, { cause: err });
  }
  await assertFolderSafe(dataDir);
  const existing = await readSecretIfPresent(file);
  if (existing) return existing;

  // Write to a private temporary file, then link() it into place: link fails if another process
  // created the secret meanwhile, so two coordinators starting together agree on one secret and
  // nobody ever reads a half-written file.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, randomBytes(FLEET_SECRET_BYTES), { mode: 0o600, flag: "wx" });
    await chmod(tmp, 0o600); // the umask may have removed bits we asked for, never added; be explicit
    try {
      await link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  } catch (err) {
    throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `cannot create fleet secret ${file}: ${(err as Error).message}`, undefined, { cause: err });
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const created = await readSecretIfPresent(file);
  if (!created) throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `fleet secret ${file} vanished right after it was created`);
  return created;
}

/**
 * Reads `dataDir/fleet.secret`, which must exist (a broker member on another host uses the fleet's
 * secret, copied from the coordinator host; a new one would refuse every credential). Same checks
 * as loadOrCreateFleetSecret.
 */
export async function loadFleetSecret(dataDir: string): Promise<Buffer> {
  const file = path.join(dataDir, FLEET_SECRET_FILE);
  const existing = await readSecretIfPresent(file);
  if (!existing) throw new ColonyError(AuthErrors.FLEET_SECRET_MISSING, `no fleet secret at ${file}: copy fleet.secret from the coordinator's data folder (chmod 600), or pass --data-dir`);
  await assertFolderSafe(dataDir);
  return existing;
}

/**
 * A folder others may write to (without the sticky bit) lets them swap the secret file for one
 * they know, so they could mint credentials; refuse it like a readable secret.
 */
async function assertFolderSafe(dataDir: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(dataDir)).mode;
  } catch (err) {
    throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `cannot stat data folder ${dataDir}: ${(err as Error).message}`, undefined, { cause: err });
  }
  const sticky = (mode & 0o1000) !== 0;
  if ((mode & 0o022) !== 0 && !sticky) {
    throw new ColonyError(
      AuthErrors.FLEET_SECRET_INSECURE,
      `data folder ${dataDir} has mode ${(mode & 0o777).toString(8)}: others could replace the fleet secret. Run: chmod 700 ${dataDir}`,
    );
  }
}

async function readSecretIfPresent(file: string): Promise<Buffer | undefined> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `cannot stat fleet secret ${file}: ${(err as Error).message}`, undefined, { cause: err });
  }
  if (!info.isFile()) throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `fleet secret ${file} is not a regular file`);
  if (insecureBits(info.mode) !== 0) {
    throw new ColonyError(
      AuthErrors.FLEET_SECRET_INSECURE,
      `fleet secret ${file} has mode ${(info.mode & 0o777).toString(8).padStart(3, "0")}; anyone in its group or others could mint credentials. Run: chmod 600 ${file}`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new ColonyError(AuthErrors.FLEET_SECRET_UNREADABLE, `cannot read fleet secret ${file}: ${(err as Error).message}`, undefined, { cause: err });
  }
  return parseFleetSecret(bytes, file);
}
