/**
 * A submit's way in: decode against the schema, validate its check, check its `replyTo`, resolve its
 * defaults once. Pure: what comes out is either a task to accept, a rejection to tell a submitter
 * about (the payload named a valid id), or a drop to count (nobody to tell).
 */
import { createHash, randomBytes } from "node:crypto";
import type { ColonyError } from "../../common/errors.ts";
import { decode, IdSchema, ROOT, SubmitSchema, topics, type Submit, type WireError } from "../../common/protocol.ts";
import { stableJson } from "../../common/stable-json.ts";
import { ownerOf, type TaskRecord } from "./task-store.ts";
import { validateCheck } from "./checks.ts";
import { MarketErrors } from "./errors.ts";

/**
 * A result copy goes only where its submitter could publish or read itself: its own folder, or a
 * topic outside `colony/` (a Home Assistant or Node-RED topic). The coordinator publishes with full
 * rights, so anything else would let a submitter write onto another task's result or a node's topic.
 */
export function replyToAllowed(topic: string, owner: string): boolean {
  return topic.startsWith(`${topics.submitterRoot(owner)}/`) || (topic.split("/")[0] !== "colony" && !topic.startsWith(`${ROOT}/`));
}

export interface IntakeDefaults {
  defaultDeadlineMs: number;
  defaultMaxTokens: number;
}

export interface AcceptedSubmit {
  kind: "task";
  id: string;
  submit: Submit & { id: string };
  /** sha256 of the submit in stable JSON: an exact re-send has the same digest whatever its key order. */
  digest: string;
  /** Resolved here and nowhere else: the announce and the award carry this value. */
  maxTokens: number;
  deadlineMs: number;
}

export type Intake = AcceptedSubmit | { kind: "reject"; id: string; error: WireError } | { kind: "drop"; reason: string };

export function takeSubmit(payload: Buffer, owner: string, defaults: IntakeDefaults): Intake {
  const d = decode(SubmitSchema, payload);
  if (!d.ok) {
    // Someone to tell only when the payload names a valid id; otherwise a counted drop.
    let id: unknown;
    if (d.code !== "PAYLOAD_TOO_LARGE") {
      try {
        id = (JSON.parse(payload.toString("utf8")) as { id?: unknown } | null)?.id;
      } catch {}
    }
    if (typeof id === "string" && IdSchema.safeParse(id).success) return { kind: "reject", id, error: { code: d.code, message: d.message } };
    return { kind: "drop", reason: `submit.${d.code}` };
  }
  const id = d.value.id ?? randomBytes(16).toString("hex");
  const submit = { ...d.value, id };
  if (submit.replyTo !== undefined && !replyToAllowed(submit.replyTo, owner)) {
    return { kind: "reject", id, error: { code: MarketErrors.REPLY_TO_FORBIDDEN, message: `replyTo ${submit.replyTo.slice(0, 100)} is neither in ${topics.submitterRoot(owner)}/ nor outside colony/` } };
  }
  try {
    if (submit.check) validateCheck(submit.check);
  } catch (err) {
    return { kind: "reject", id, error: (err as ColonyError).toWire() };
  }
  return {
    kind: "task", id, submit, digest: submitDigest(stableJson(submit)),
    maxTokens: submit.maxTokens ?? defaults.defaultMaxTokens,
    deadlineMs: submit.deadlineMs ?? defaults.defaultDeadlineMs,
  };
}

/** What identifies a submit for the idempotent re-send rule, without storing the prompt a second time. */
export function submitDigest(stableText: string): string {
  return createHash("sha256").update(stableText).digest("hex");
}

/**
 * Why a submit whose id is known must be refused, or undefined for an exact re-send by the same
 * submitter (idempotent: nothing re-runs). Records written before digests were kept carry the raw text.
 */
export function duplicateError(rec: TaskRecord, owner: string, digest: string): WireError | undefined {
  if (ownerOf(rec) !== owner) return { code: MarketErrors.DUPLICATE_TASK, message: `task id ${rec.id} is taken` };
  const known = rec.digest ?? (rec.raw !== undefined ? submitDigest(rec.raw) : undefined);
  if (known !== digest) return { code: MarketErrors.DUPLICATE_TASK, message: `task ${rec.id} already exists with a different payload` };
  return undefined;
}
