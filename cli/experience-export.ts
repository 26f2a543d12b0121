/**
 * The asking side of an experience export (common/protocol/mind.ts): subscribe to the reply topic,
 * publish the request, put the pages together in `seq` order and hand over each experience as one
 * JSONL line with `completion` (= its output), the shape `colony train --data` and `colony distil
 * --experiences` read. Every page and every line is validated; a missing page, a bad line or a
 * count that does not match is EXPERIENCE_EXPORT_CORRUPT, silence for `timeoutMs` is
 * EXPERIENCE_EXPORT_TIMEOUT, and a broker that refuses the topics is EXPERIENCE_EXPORT_DENIED.
 */
import { randomBytes } from "node:crypto";
import type { MqttClient } from "mqtt";
import { ColonyError } from "../common/errors.ts";
import { channels, decode, encode, type ExperienceExportRequest, type MindReplyPage } from "../common/protocol.ts";
import { MindErrors } from "../coordinator/mind/errors.ts";
import { ExperienceSchema } from "../common/experience.ts";

export interface ExportOutcome {
  count: number;
  pages: number;
}

export async function exportExperiences(
  client: MqttClient,
  filter: Omit<ExperienceExportRequest, "requestId">,
  writeLine: (line: string) => void | Promise<void>,
  opts: { timeoutMs?: number; requestId?: string } = {},
): Promise<ExportOutcome> {
  const requestId = opts.requestId ?? `exp-${randomBytes(8).toString("hex")}`;
  const replyTopic = channels.mindReply.topic(requestId);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const early = new Map<number, MindReplyPage>();
  let next = 0;
  let carry = "";
  let lines = 0;
  let work: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let settle!: { resolve: (o: ExportOutcome) => void; reject: (err: unknown) => void };
  const finished = new Promise<ExportOutcome>((resolve, reject) => (settle = { resolve, reject }));
  // Awaited below; this only keeps an early failure from counting as unhandled.
  finished.catch(() => {});
  let over = false;
  const fail = (err: unknown) => {
    if (over) return;
    over = true;
    settle.reject(err);
  };
  const corrupt = (message: string) => new ColonyError(MindErrors.EXPERIENCE_EXPORT_CORRUPT, message);
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => fail(new ColonyError(MindErrors.EXPERIENCE_EXPORT_TIMEOUT, `no export page within ${timeoutMs} ms (after ${next} pages); is the coordinator running?`)), timeoutMs);
  };

  const line = async (raw: string) => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw corrupt(`line ${lines + 1} of the export is not JSON`);
    }
    const e = ExperienceSchema.safeParse(value);
    if (!e.success) throw corrupt(`line ${lines + 1} of the export is not an experience: ${e.error.issues[0]?.message ?? ""}`);
    lines++;
    await writeLine(JSON.stringify({ ...e.data, completion: e.data.output }));
  };
  const take = async (page: MindReplyPage) => {
    if (page.error) throw new ColonyError(page.error.code, page.error.message);
    if (page.data) {
      carry += page.data;
      let nl: number;
      while ((nl = carry.indexOf("\n")) >= 0) {
        const raw = carry.slice(0, nl);
        carry = carry.slice(nl + 1);
        if (raw) await line(raw);
      }
    }
    if (!page.done) return;
    if (carry) throw corrupt("the export ended inside a line");
    if (page.count !== lines) throw corrupt(`the coordinator sent ${page.count ?? "?"} experiences, ${lines} arrived`);
    over = true;
    settle.resolve({ count: lines, pages: next });
  };
  const onMessage = (topic: string, payload: Buffer) => {
    if (topic !== replyTopic || over) return;
    arm();
    const d = decode(channels.mindReply.schema, payload);
    if (!d.ok) return fail(corrupt(`an export page is invalid: ${d.message}`));
    if (d.value.requestId !== requestId || d.value.seq < next) return;
    early.set(d.value.seq, d.value);
    if (early.size > 1000) return fail(corrupt(`export page ${next} never arrived`));
    // Pages are handled one after another, in seq order, each after the previous one was written.
    work = work.then(async () => {
      for (let p = early.get(next); p && !over; p = early.get(next)) {
        early.delete(next);
        next++;
        await take(p);
      }
    }).catch(fail);
  };

  client.on("message", onMessage);
  let subscribed = false;
  try {
    const denied = () => new ColonyError(MindErrors.EXPERIENCE_EXPORT_DENIED, "the broker refused the export's reply topic to this credential: use --data-dir on the coordinator's host or --credentials of a coordinator");
    // A refused subscription is a SUBACK with 128 (MQTT 3.1.1 §3.9.3), which mqtt.js reports as an error.
    const granted = await client.subscribeAsync(replyTopic, { qos: 1 }).catch(() => {
      throw denied();
    });
    if (granted.some((g) => g.qos === 128)) throw denied();
    subscribed = true;
    arm();
    const request: ExperienceExportRequest = { requestId, ...filter };
    await Promise.race([client.publishAsync(channels.mindExperienceExport.topic(), encode(request), { qos: channels.mindExperienceExport.qos }), finished]);
    return await finished;
  } finally {
    over = true;
    clearTimeout(timer);
    client.off("message", onMessage);
    if (subscribed) await client.unsubscribeAsync(replyTopic).catch(() => {});
  }
}
