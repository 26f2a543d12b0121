/**
 * The highest manifest version this node has accepted per model lineage, kept in
 * `colony-models/versions.json` (`{lineage: {version, sha256}}`) so a restart does not forget it: a
 * model older than one already accepted in its lineage, or another model under the same version,
 * is a rollback (MODEL_ROLLBACK, common/model-manifest.ts checkVersion), whoever signed it. Written atomically
 * (temporary file + rename) after each accepted model.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

export class ModelVersions {
  private highest = new Map<string, { version: number; sha256: string }>();
  private readonly file: string;

  constructor(dir: string) {
    this.file = path.join(dir, "versions.json");
  }

  /** Reads the file; a missing or unreadable one starts empty (the first model of each lineage is accepted). */
  async load(): Promise<void> {
    try {
      const v: unknown = JSON.parse(await readFile(this.file, "utf8"));
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const [lineage, e] of Object.entries(v)) {
          const { version, sha256 } = (e ?? {}) as { version?: unknown; sha256?: unknown };
          if (typeof version === "number" && Number.isFinite(version) && typeof sha256 === "string") this.highest.set(lineage, { version, sha256 });
        }
      }
    } catch {}
  }

  /** The highest version accepted in `lineage` and the model's sha256, undefined before the first. */
  get(lineage: string): { version: number; sha256: string } | undefined {
    return this.highest.get(lineage);
  }

  async record(lineage: string, version: number, sha256: string): Promise<void> {
    if ((this.highest.get(lineage)?.version ?? -Infinity) >= version) return;
    this.highest.set(lineage, { version, sha256 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.highest)), { mode: 0o600 });
    await rename(tmp, this.file);
  }
}
