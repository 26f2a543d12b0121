/**
 * The collective mind's wire surface (docs/mind.md). Only coordinator-role principals may use it:
 * the broker ACL lets nodes and submitters neither publish nor subscribe under `colony/v1/mind/`.
 *
 * Export of the cold cache: a request on `mind/experiences/export`, answered in pages on
 * `mind/replies/{requestId}` (QoS 1, in `seq` order). A page carries a slice of the export's JSONL
 * text (one experience per line, common/experience.ts), so one experience larger than a
 * page (a 48 KiB prompt and a long output) spans pages; the asker concatenates `data` in `seq`
 * order and validates each line. The last page has `done: true` with the count, or an error.
 */
import { z } from "zod";
import { IdSchema, WireErrorSchema } from "./primitives.ts";

/** JSON-encoded bytes of one page's `data` at most: the page stays under MAX_PAYLOAD_BYTES (64 KiB) with its envelope. */
export const MIND_PAGE_DATA_BYTES = 56 * 1024;

const Ms = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** CLI (coordinator credential) -> coordinator, `mind/experiences/export` (QoS 1). */
export const ExperienceExportRequestSchema = z.strictObject({
  /** Names the reply topic; chosen by the asker (a random id). */
  requestId: IdSchema,
  /** A skill key: a skill, a niche ("~c3") or "*". */
  skill: z.string().min(1).max(64).optional(),
  agent: z.strictObject({ nodeId: IdSchema, agentId: IdSchema }).optional(),
  /** Experiences with `since <= at < until` (coordinator clock, ms since the epoch). */
  since: Ms.optional(),
  until: Ms.optional(),
  /** Only verified successes (a machine check or the submitter's feedback said right). */
  verified: z.boolean().optional(),
  limit: z.number().int().min(1).max(100_000_000).optional(),
});
export type ExperienceExportRequest = z.infer<typeof ExperienceExportRequestSchema>;

/** Coordinator -> the asker, `mind/replies/{requestId}` (QoS 1). */
export const MindReplyPageSchema = z.strictObject({
  requestId: IdSchema,
  /** 0, 1, 2, ... with no gap. */
  seq: z.number().int().min(0),
  /** A slice of JSONL text; lines may span pages. */
  data: z.string().max(MIND_PAGE_DATA_BYTES).optional(),
  done: z.boolean(),
  /** On the last page: how many experiences the export held. */
  count: z.number().int().min(0).optional(),
  /** On the last page of a refused or failed export (the data before it, if any, is incomplete). */
  error: WireErrorSchema.optional(),
});
export type MindReplyPage = z.infer<typeof MindReplyPageSchema>;
