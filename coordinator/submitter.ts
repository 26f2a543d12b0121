import { randomBytes } from "node:crypto";
import type { MqttClient } from "mqtt";
import { ColonyError, CommonErrors } from "../common/errors.ts";
import { connectMqtt, loadClientCredentials } from "../common/mqtt-connect.ts";
import type { Logger } from "../common/logger.ts";
import { ANONYMOUS, CoordinatorStatusSchema, decode, encode, ResultSchema, TaskEventSchema, topics, type Result, type Submit, type TaskEvent } from "../common/protocol.ts";
import { MarketErrors } from "./market/errors.ts";

/**
 * The submitter's side of the contract, used by `colony submit`, `colony task`, the tests and the
 * benchmark: subscribe to the task's events and result FIRST, then publish the submit.
 */
export interface ClientConnectionOptions {
  url?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Credentials JSON file (`colony credentials issue --out`); the CLI passes --credentials, else $COLONY_CREDENTIALS. Default: none. */
  credentials?: string | undefined;
  /** Broker URL when neither `url` nor the credentials file names one; the CLI passes $COLONY_BROKER. Default mqtt://127.0.0.1:1883. */
  defaultUrl?: string | undefined;
  logger: Logger;
}

export async function connectClient(o: ClientConnectionOptions): Promise<MqttClient> {
  const file = loadClientCredentials({ file: o.credentials });
  const url = o.url ?? file?.url ?? o.defaultUrl ?? "mqtt://127.0.0.1:1883";
  return connectMqtt({ url, username: o.username ?? file?.username, password: o.password ?? file?.password, logger: o.logger, connectTimeoutMs: 5000 });
}

/** A 128-bit random task id (unique across the fleet's submitters). */
export function newTaskId(): string {
  return randomBytes(16).toString("hex");
}

/** The folder a client's tasks live in: its MQTT username (an insecure fleet's clients have none: anonymous). */
export function submitterOf(client: MqttClient): string {
  return client.options.username || ANONYMOUS;
}

/**
 * Submits and resolves with the result (ok or error), or rejects on a `rejected` event (the
 * ColonyError carries the code) or after `timeoutMs`.
 */
export async function submitAndWait(client: MqttClient, submit: Submit & { id: string }, opts: { timeoutMs: number; onEvent?: (e: TaskEvent) => void }): Promise<Result> {
  const id = submit.id;
  const user = submitterOf(client);
  const evTopic = topics.taskEvents(user, id);
  const resTopic = topics.taskResult(user, id);
  let onMessage: ((topic: string, payload: Buffer) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<Result>((resolve, reject) => {
    onMessage = (topic, payload) => {
      if (topic === resTopic) {
        const r = decode(ResultSchema, payload);
        if (r.ok && r.value.id === id) resolve(r.value);
      } else if (topic === evTopic) {
        const e = decode(TaskEventSchema, payload);
        if (!e.ok) return;
        opts.onEvent?.(e.value);
        if (e.value.type === "rejected") reject(new ColonyError(e.value.error.code, e.value.error.message));
      }
    };
    client.on("message", onMessage);
    timer = setTimeout(() => reject(new ColonyError(MarketErrors.SUBMIT_TIMEOUT, `no result for task ${id} within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  });
  try {
    const granted = await client.subscribeAsync([evTopic, resTopic], { qos: 1 });
    if (granted.some((g) => g.qos === 128)) throw new ColonyError(CommonErrors.MQTT_AUTH_REFUSED, `the broker refused the subscription to task ${id}'s topics`);
    await client.publishAsync(topics.submit(user), encode(submit), { qos: 1 });
    return await done;
  } finally {
    clearTimeout(timer);
    client.off("message", onMessage!);
    await client.unsubscribeAsync([evTopic, resTopic]).catch(() => {});
  }
}

/** The retained coordinator presence, or undefined if none arrives within `waitMs`. */
export async function coordinatorState(client: MqttClient, waitMs: number): Promise<"online" | "offline" | undefined> {
  let onMessage: ((t: string, p: Buffer) => void) | undefined;
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      onMessage = (t, p) => {
        if (t !== topics.coordinatorStatus) return;
        const d = decode(CoordinatorStatusSchema, p);
        clearTimeout(timer);
        resolve(d.ok ? d.value.state : undefined);
      };
      client.on("message", onMessage);
      client.subscribeAsync(topics.coordinatorStatus, { qos: 1 }).catch(() => resolve(undefined));
    });
  } finally {
    client.off("message", onMessage!);
    await client.unsubscribeAsync(topics.coordinatorStatus).catch(() => {});
  }
}

export type Lookup = { kind: "result"; result: Result } | { kind: "running" } | { kind: "not-found"; message: string } | { kind: "no-answer" };

/**
 * One of this client's tasks: its retained result if the broker still holds it, else the answer to
 * a `get` (the stored result, `running`, or not found); `no-answer` if nothing arrives within
 * `waitMs` (no coordinator). A RATE_LIMITED refusal is thrown.
 */
export async function fetchResult(client: MqttClient, id: string, waitMs: number): Promise<Lookup> {
  const user = submitterOf(client);
  const resTopic = topics.taskResult(user, id);
  const evTopic = topics.taskEvents(user, id);
  let onMessage: ((t: string, p: Buffer) => void) | undefined;
  try {
    return await new Promise<Lookup>((resolve, reject) => {
      const timer = setTimeout(() => resolve({ kind: "no-answer" }), waitMs);
      const settle = (l: Lookup) => {
        clearTimeout(timer);
        resolve(l);
      };
      onMessage = (t, p) => {
        if (t === resTopic) {
          // An empty payload is the retained result being cleared (retention): the get answers.
          const r = decode(ResultSchema, p);
          if (r.ok && r.value.id === id) settle({ kind: "result", result: r.value });
        } else if (t === evTopic) {
          const e = decode(TaskEventSchema, p);
          if (!e.ok) return;
          if (e.value.type === "accepted") settle({ kind: "running" });
          else if (e.value.type === "rejected" && e.value.error.code === MarketErrors.TASK_NOT_FOUND) settle({ kind: "not-found", message: e.value.error.message });
          else if (e.value.type === "rejected") {
            clearTimeout(timer);
            reject(new ColonyError(e.value.error.code, e.value.error.message));
          }
        }
      };
      client.on("message", onMessage);
      // Subscribed first: the retained result (if any) and the get's answer both arrive after.
      client
        .subscribeAsync([resTopic, evTopic], { qos: 1 })
        .then(() => client.publishAsync(topics.taskGet(user, id), encode({}), { qos: 1 }))
        .catch(reject);
    });
  } finally {
    client.off("message", onMessage!);
    await client.unsubscribeAsync([resTopic, evTopic]).catch(() => {});
  }
}
