import { defineErrors } from "../../common/errors.ts";

/** Error codes of the cold cache and its export (coordinator/mind/, `colony experience`); documented in docs/errors.md. */
export const MindErrors = defineErrors("mind", {
  EXPERIENCE_EXPORT_INVALID: "An experience export request failed validation (the message lists the problems); the coordinator answers with this code and keeps running.",
  EXPERIENCE_EXPORT_BUSY: "The coordinator is already running as many experience exports as it allows at once (2); ask again when one finished.",
  EXPERIENCE_EXPORT_FAILED: "The coordinator could not read its experiences for an export (a store error or a shutdown mid-export); the lines written before it are incomplete.",
  EXPERIENCE_EXPORT_DENIED: "The broker refused the export topics to this credential: only a coordinator credential (--data-dir on the coordinator's host, or --credentials of a coordinator) may export experiences.",
  EXPERIENCE_EXPORT_TIMEOUT: "No page of an experience export arrived within --timeout-ms (is the coordinator running, and recent enough to have a cold cache?).",
  EXPERIENCE_EXPORT_CORRUPT: "An export page or line did not match its schema, or a page was missing (the message says which); the output is incomplete.",
  MIND_UNAVAILABLE: "Distillation is off (`mind.enabled` false) or impossible in this fleet: an insecure coordinator has no signing key, so it cannot ship a model.",
  MIND_PARENT_UNKNOWN: "A parent named in a distillation request is not a living agent the coordinator knows (or its id is ambiguous: give its node).",
  MIND_PARENT_MODEL_UNKNOWN: "The coordinator holds no copy of a parent's model: its genome must name a model by content (`colony:<sha256>` or a `#sha256=` pin) that is in the coordinator's model store (docs/models.md).",
  MIND_TOO_FEW_EXPERIENCES: "The parents have fewer verified successes on a skill than `mind.minExperiencesPerSkill` in the cold cache (and no verified sampling is asked for).",
  MIND_NO_NODE: "A distilled child passed the gate and was signed, but no node was online to host it; spawn it later by hand or let the architect.",
  MIND_SPAWN_UNANSWERED: "The node chosen for a distilled child did not answer the spawn command; the model stays signed in the store.",
  MIND_TRAINER_LOST: "A trainer node given a distillation job went offline for too long, stopped answering, or uploaded a child that is not what it reported; the coordinator trains the job itself instead.",
  MIND_JOB_FAILED: "A distillation job failed for an unexpected reason on the coordinator (the message carries it).",
});
