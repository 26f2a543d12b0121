/** The small schemas every message family shares: ids, skills, hashes, reply topics, wire errors. */
import { z } from "zod";

// Ids appear inside topics, so they must not contain MQTT separators or wildcards.
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const IdSchema = z.string().regex(ID_RE, "must be 1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit");
export const SkillSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be 1-64 characters of [a-z0-9_-]");
/**
 * The niche the coordinator inferred for a task without a skill (coordinator/evolution/niches.ts):
 * "~" and 1-16 characters of [a-z0-9], e.g. "~c3". The "~" keeps it apart from every skill name.
 */
export const NicheSchema = z.string().regex(/^~[a-z0-9]{1,16}$/, 'must be "~" and 1-16 characters of [a-z0-9]');
/** A sha256 in lower-case hex (genome and model hashes). */
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, "must be a sha256 in lower-case hex");
/** A topic a result may be copied to: no wildcards, no `$` system topics, at most 256 bytes. */
export const ReplyTopicSchema = z
  .string()
  .min(1)
  .max(256)
  .refine((t) => !/[+#\u0000]/.test(t) && !t.startsWith("$"), "must be a plain topic without wildcards or a leading $");

export const WireErrorSchema = z.strictObject({ code: z.string().max(64), message: z.string().max(4096) });
export type WireError = z.infer<typeof WireErrorSchema>;

/** Most tokens a task may ask for (submit, announce and award alike). */
export const MAX_TOKENS_LIMIT = 8192;

/**
 * How a node obtained the joules it reports: `rapl` (the CPU package's energy counter),
 * `battery` (the battery's energy drain), `model` (the device profile's power model).
 */
export const EnergySourceSchema = z.enum(["rapl", "battery", "model"]);
export type EnergySource = z.infer<typeof EnergySourceSchema>;

/** What a node reports of its device (bids, heartbeats); absent sensors are absent fields. */
export const DeviceStateSchema = z.strictObject({
  cpuLoad: z.number().min(0).max(100).optional(),
  freeMemMB: z.number().min(0).optional(),
  batteryPercent: z.number().min(0).max(100).optional(),
  charging: z.boolean().optional(),
  temperatureC: z.number().min(-50).max(200).optional(),
});
