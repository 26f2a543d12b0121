import { readFileSync } from "node:fs";
import { z } from "zod";
import { ColonyError, CommonErrors } from "./errors.ts";

/**
 * Shared mechanics for the one config module of each process (coordinator/config.ts,
 * node/config.ts): defaults < config file < environment < flags, validated once against a zod
 * schema that reports every problem at once, then deep-frozen.
 */
export interface ConfigSources {
  /** Path of a JSON config file, if any. */
  file?: string | undefined;
  /** Values from the environment, already mapped to config keys by the caller. */
  env?: Record<string, unknown>;
  /** Values from command-line flags; undefined entries are ignored. */
  flags?: Record<string, unknown>;
}

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ColonyError(CommonErrors.CONFIG_FILE_UNREADABLE, `cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ColonyError(CommonErrors.CONFIG_FILE_UNREADABLE, `config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function withoutUndefined(obj: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj ?? {})) if (v !== undefined) out[k] = v;
  return out;
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** Formats zod issues as one line each: `path: message`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`);
}

export function loadConfig<S extends z.ZodType>(schema: S, sources: ConfigSources): Readonly<z.infer<S>> {
  const fromFile = sources.file ? readJsonFile(sources.file) : {};
  if (fromFile === null || typeof fromFile !== "object" || Array.isArray(fromFile)) {
    throw new ColonyError(CommonErrors.CONFIG_INVALID, `config file ${sources.file} must hold a JSON object`);
  }
  const merged = { ...(fromFile as Record<string, unknown>), ...withoutUndefined(sources.env), ...withoutUndefined(sources.flags) };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error);
    throw new ColonyError(CommonErrors.CONFIG_INVALID, `invalid configuration:\n  ${problems.join("\n  ")}`, { problems });
  }
  return deepFreeze(parsed.data);
}

/** Parses an integer-valued CLI flag or env var with a clear error naming it. */
export function intArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value)) {
    throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `${name} must be an integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
