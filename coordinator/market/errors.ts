import { defineErrors } from "../../common/errors.ts";

/**
 * Error codes of the coordinator's market. They reach submitters inside `rejected` events and
 * `error` results (`{code, message}`), and each failed attempt in a result lists one of them.
 */
export const MarketErrors = defineErrors("market", {
  DUPLICATE_TASK: "A submit reused the id of an accepted task with a different payload (an exact re-send is idempotent).",
  CHECK_INVALID: "A submit's check cannot be compiled: a bad regular expression or an invalid JSON schema.",
  REPLY_TO_FORBIDDEN: "A submit's replyTo names a topic under colony/ outside the submitter's own folder (the coordinator would publish there with its own rights).",
  RATE_LIMITED: "The submitter has too many unfinished tasks (maxOpenTasks) or sent requests faster than its rate (submitRate, submitBurst); the message says which and when to retry.",
  PROMPT_TOO_LONG: "The prompt does not fit the context of any agent that has the task's skill (every node declined with reason `context`).",
  NO_BIDDERS: "No online node placed an eligible bid (none online with the skill, all declined, all excluded, or none could meet the deadline / minAccuracy).",
  ACK_TIMEOUT: "The winning node did not acknowledge its award within ackWithinMs; the task was re-auctioned.",
  AWARD_REFUSED: "The winning node refused its award in its ack; the task was re-auctioned.",
  AGENT_ERROR: "The winning agent reported an error in its done message; the task was re-auctioned.",
  ATTEMPT_TIMEOUT: "The winning agent did not deliver within its attempt deadline (about twice its own latency estimate) while another node's agent could take the task; the task was re-auctioned.",
  NODE_OFFLINE: "The winning node went offline (last will or missed heartbeats) while holding the task; the task was re-auctioned.",
  DEADLINE_EXCEEDED: "The task's deadline passed before any attempt delivered a result.",
  ATTEMPTS_EXHAUSTED: "Every allowed attempt failed; the result lists each attempt and why it failed.",
  CHECK_FAILED: "The agent delivered an output but it did not pass the task's check (the output is still in the result).",
  CHECK_TIMEOUT: "The task's regex or JSON-schema check ran past its time budget (a catastrophic pattern); the output is in the result and the agent is not blamed.",
  COORDINATOR_RESTARTED: "The coordinator restarted while this attempt was running; the task was re-auctioned.",
  TASK_NOT_FOUND: "`colony task ID`: no task with this id is stored (or no result arrived from the broker in time).",
  SUBMIT_TIMEOUT: "`colony submit`: no result arrived within the deadline plus a grace period.",
  COORDINATOR_OFFLINE: "`colony submit`: the broker's retained coordinator status says offline (or none was seen), so nobody would take the task.",
});
