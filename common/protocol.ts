/**
 * The wire contract of Colony, protocol v1: every MQTT topic, one zod schema per message, and the
 * typed channel map that ties them together. docs/protocol.md documents each with an example;
 * keep the two in step. One file per message family under common/protocol/:
 *
 * - topics.ts      every topic and the topic parsers
 * - primitives.ts  ids, skills, hashes, reply topics, wire errors, device state
 * - task.ts        the submitter surface: submit, feedback, task events, result
 * - market.ts      coordinator <-> node: announce, bid, award, ack, progress, done, cancel, verdict
 * - fleet.ts       presence: node status and heartbeat, coordinator status and stats
 * - lifecycle.ts   coordinator -> node commands (spawn, retire, wake, fetch) and acks; lineage; the architect's decisions
 * - models.ts    the retained model catalog (signed manifests, common/model-manifest.ts)
 * - models.ts      the model catalog; model fetch / chunk header / report (model-frame.ts: the binary chunk frame)
 * - mind.ts        the collective mind: cold cache export request and reply pages (coordinator-only)
 * - mind-jobs.ts   distillation jobs: start/cancel requests and the retained jobs snapshot (coordinator-only)
 * - training.ts    training on a trainer node: its capability, quotes, the job, progress and the child's upload
 * - channels.ts    topic -> payload map and the typed Outbox
 * - codec.ts       bytes <-> messages (`decode` is the one place bytes become typed messages)
 *
 * Every message is validated once, where it crosses MQTT; inside, code trusts the type.
 */
export * from "./protocol/topics.ts";
export * from "./protocol/primitives.ts";
export * from "./protocol/task.ts";
export * from "./protocol/market.ts";
export * from "./protocol/fleet.ts";
export * from "./protocol/lifecycle.ts";
export * from "./protocol/models.ts";
export * from "./protocol/model-frame.ts";
export * from "./protocol/mind.ts";
export * from "./protocol/mind-jobs.ts";
export * from "./protocol/training.ts";
export * from "./protocol/channels.ts";
export * from "./protocol/codec.ts";
