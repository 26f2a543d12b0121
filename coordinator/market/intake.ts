/**
 * A submit's way in: decode against the schema, compile its check, check its `replyTo`, resolve its
 * defaults once. Pure: what comes out is either a task to accept, a rejection to tell a submitter
 * about (the payload named a valid id), or a drop to count (nobody to tell).
 */
import { randomBytes } from "node:crypto";
import type { ColonyError } from "../../common/errors.ts";
import { decode, IdSchema, ROOT, SubmitSchema, topics, type Submit, type WireError } from "../../common/protocol.ts";
import { stableJson } from "../../common/stable-json.ts";
import { compileCheck, type CheckFn } from "./checks.ts";
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
  /** The submit in stable JSON: an exact re-send has the same text whatever its key order. */
  raw: string;
  check?: CheckFn | undefined;
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
  let check: CheckFn | undefined;
  try {
    if (submit.check) check = compileCheck(submit.check);
  } catch (err) {
    return { kind: "reject", id, error: (err as ColonyError).toWire() };
  }
  return {
    kind: "task", id, submit, raw: stableJson(submit), check,
    maxTokens: submit.maxTokens ?? defaults.defaultMaxTokens,
    deadlineMs: submit.deadlineMs ?? defaults.defaultDeadlineMs,
  };
}
