/**
 * Answers `colony experience export` over MQTT (the running coordinator holds the LevelDB lock, so
 * the CLI cannot open the store itself). A request on `mind/experiences/export` is decoded against
 * its schema; the answer goes in pages on `mind/replies/{requestId}`, each a slice of the export's
 * JSONL text that stays under the payload limit (common/protocol/mind.ts). Each page is published
 * at QoS 1 and the next one waits for its PUBACK, so a large export streams from the store at the
 * pace of the broker instead of piling up in memory. Only coordinator-role principals can reach
 * these topics (broker ACL).
 */
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, decode, encode, IdSchema, MAX_PAYLOAD_BYTES, MIND_PAGE_DATA_BYTES, topics, type ExperienceExportRequest, type MindReplyPage, type WireError } from "../../common/protocol.ts";
import type { CoordinatorLink } from "../link.ts";
import { MindErrors } from "./errors.ts";
import type { ExperienceStore } from "./experiences.ts";

/** Exports running at once; another request is refused with EXPERIENCE_EXPORT_BUSY. */
const MAX_RUNNING = 2;

const encodedBytes = (s: string) => Buffer.byteLength(JSON.stringify(s));

/** Cuts text into slices whose JSON encoding fits `budget` bytes (never inside a surrogate pair). */
export function* slices(text: string, budget = MIND_PAGE_DATA_BYTES): Generator<string> {
  let i = 0;
  while (i < text.length) {
    let n = Math.min(text.length - i, budget);
    while (n > 1 && encodedBytes(text.slice(i, i + n)) > budget) n = Math.floor(n * 0.75);
    const last = text.charCodeAt(i + n - 1);
    if (n > 1 && last >= 0xd800 && last <= 0xdbff) n--;
    yield text.slice(i, i + n);
    i += n;
  }
}

export class ExperienceExport implements Lifecycle {
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private subscribed = false;

  constructor(private readonly p: { link: CoordinatorLink; experiences: ExperienceStore; counters: Counters; logger: Logger }) {}

  private readonly onMessage = (topic: string, payload: Buffer, packet?: { retain?: boolean }): void => {
    if (topic !== topics.mindExperienceExport) return;
    if (packet?.retain) return this.p.counters.drop("retained", { topic });
    const d = decode(channels.mindExperienceExport.schema, payload);
    if (!d.ok) {
      // A readable request id gets the reason; anything else is counted and dropped.
      const id = readRequestId(payload);
      if (id) this.reply({ requestId: id, seq: 0, done: true, error: { code: MindErrors.EXPERIENCE_EXPORT_INVALID, message: d.message } }).catch(() => {});
      return this.p.counters.drop(`mind-export.${d.code.toLowerCase()}`);
    }
    if (this.closed) return;
    if (this.running.size >= MAX_RUNNING) {
      this.p.counters.inc("mind.exports.busy");
      this.reply({ requestId: d.value.requestId, seq: 0, done: true, error: { code: MindErrors.EXPERIENCE_EXPORT_BUSY, message: `${MAX_RUNNING} exports are running; ask again later` } }).catch(() => {});
      return;
    }
    const run = this.run(d.value).finally(() => this.running.delete(run));
    this.running.add(run);
  };

  async start(): Promise<void> {
    this.p.link.client.on("message", this.onMessage);
    await this.p.link.client.subscribeAsync(topics.mindExperienceExport, { qos: 1 });
    this.subscribed = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.p.link.client.off("message", this.onMessage);
      if (this.subscribed) await this.p.link.client.unsubscribeAsync(topics.mindExperienceExport).catch(() => {});
    } catch {
      // The link is already closed.
    }
    await Promise.allSettled([...this.running]);
  }

  private reply(page: MindReplyPage): Promise<unknown> {
    const ch = channels.mindReply;
    return this.p.link.client.publishAsync(ch.topic(page.requestId), encode(page), { qos: ch.qos });
  }

  private async run(req: ExperienceExportRequest): Promise<void> {
    const { requestId } = req;
    let seq = 0;
    let count = 0;
    let buf = "";
    const sendText = async (text: string) => {
      for (const data of slices(text)) await this.reply({ requestId, seq: seq++, data, done: false });
    };
    this.p.counters.inc("mind.exports");
    try {
      const q = { skill: req.skill, agent: req.agent, since: req.since, until: req.until, verified: req.verified, limit: req.limit };
      for await (const e of this.p.experiences.query(q)) {
        if (this.closed) throw new Error("the coordinator is shutting down");
        buf += JSON.stringify(e) + "\n";
        count++;
        if (Buffer.byteLength(buf) >= MIND_PAGE_DATA_BYTES / 2) {
          await sendText(buf);
          buf = "";
        }
      }
      if (buf) await sendText(buf);
      await this.reply({ requestId, seq: seq++, done: true, count });
      this.p.logger.info({ requestId, count, pages: seq }, "experience export sent");
    } catch (err) {
      const error: WireError = { code: MindErrors.EXPERIENCE_EXPORT_FAILED, message: `export stopped after ${count} experiences: ${(err as Error).message}`.slice(0, 4096) };
      this.p.logger.warn({ requestId, err: { message: (err as Error).message } }, "experience export failed");
      await this.reply({ requestId, seq: seq++, done: true, error }).catch(() => {});
    }
  }
}

function readRequestId(payload: Buffer): string | undefined {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) return undefined;
  try {
    const v = JSON.parse(payload.toString("utf8")) as { requestId?: unknown };
    return IdSchema.safeParse(v?.requestId).success ? (v.requestId as string) : undefined;
  } catch {
    return undefined;
  }
}
