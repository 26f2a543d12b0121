/**
 * `colony models push` on the coordinator: a request on `models/push` (coordinator credentials only,
 * by the broker ACL) names a model in the store, or a file on this host to add (and sign) first;
 * every named node (default: every online node) gets a `fetch` command and fetches, verifies and
 * keeps the model (node/models/); the answer lists each node's outcome on
 * `models/push/replies/{requestId}`. Nodes fetch in parallel; a node that does not answer is
 * reported as such, never waited for forever (the command layer's timeout and retries).
 */
import type { Counters } from "../../common/counters.ts";
import { ColonyError, ModelTransferErrors } from "../../common/errors.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, decode, encode, type ModelPushReply, type ModelPushRequest, type WireError } from "../../common/protocol.ts";
import type { Commands } from "../evolution/commands.ts";
import type { CoordinatorLink } from "../link.ts";
import type { Registry } from "../registry.ts";
import { ModelStoreErrors } from "./errors.ts";
import type { ModelStore } from "./model-store.ts";
import type { RolloutTable } from "./rollouts.ts";

export interface PushDeskOptions {
  link: CoordinatorLink;
  store: ModelStore;
  commands: Pick<Commands, "send">;
  registry: Registry;
  /** Each node's row from pending to done or failed (the nodes' progress fills it in between). */
  rollouts: Pick<RolloutTable, "begin" | "settle" | "flush" | "finished">;
  /** How long a node's transfer may send no progress before an unanswered push gives it up. Default 30 000 ms. */
  quietMs?: number | undefined;
  counters: Counters;
  logger: Logger;
}

export class PushDesk implements Lifecycle {
  private readonly running = new Set<Promise<void>>();
  private subscribed = false;
  private closed = false;

  constructor(private readonly o: PushDeskOptions) {}

  private readonly onMessage = (topic: string, payload: Buffer, packet?: { retain?: boolean }): void => {
    if (topic !== channels.modelPush.topic()) return;
    if (packet?.retain) return this.o.counters.drop("retained", { topic });
    const d = decode(channels.modelPush.schema, payload);
    if (!d.ok) {
      const id = requestIdOf(payload);
      if (id) void this.reply({ requestId: id, results: [], error: { code: d.code, message: d.message.slice(0, 4096) } });
      return this.o.counters.drop(`model-push.${d.code.toLowerCase()}`);
    }
    if (this.closed) return;
    const run = this.push(d.value).finally(() => this.running.delete(run));
    this.running.add(run);
  };

  async start(): Promise<void> {
    this.o.link.client.on("message", this.onMessage);
    await this.o.link.client.subscribeAsync(channels.modelPush.topic(), { qos: 1 });
    this.subscribed = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      this.o.link.client.off("message", this.onMessage);
      if (this.subscribed) await this.o.link.client.unsubscribeAsync(channels.modelPush.topic()).catch(() => {});
    } catch {
      // The link is already closed.
    }
    await Promise.allSettled([...this.running]);
  }

  /** Adds the file (when given) and sends every node a fetch; resolves when all have answered. */
  async push(req: ModelPushRequest): Promise<void> {
    const { requestId } = req;
    try {
      let sha256 = req.sha256;
      let version: number | undefined;
      if (req.file !== undefined) {
        const signed = await this.o.store.add(req.file, { name: req.name!, ...(req.lineage ? { lineage: req.lineage } : {}), skills: req.skills! });
        sha256 = signed.manifest.sha256;
        version = signed.manifest.version;
      }
      const entry = this.o.store.get(sha256!);
      if (!entry) throw new ColonyError(ModelTransferErrors.MODEL_NOT_FOUND, `no model ${sha256} in the coordinator's store (colony models list)`);
      version ??= entry.signed.manifest.version;
      const nodes = req.nodes ?? this.o.registry.list().filter((n) => n.online).map((n) => n.nodeId);
      this.o.counters.inc("models.pushes");
      this.o.rollouts.begin(requestId, sha256!, entry.signed.manifest.bytes, nodes);
      const results = await Promise.all(
        nodes.map(async (nodeId) => {
          const out = await this.answer(nodeId, sha256!);
          this.o.rollouts.settle(sha256!, nodeId, out.status, out.error);
          return { nodeId, status: out.status, ...(out.error ? { error: out.error } : {}) };
        }),
      );
      this.o.logger.info({ requestId, sha256, results: results.map((r) => `${r.nodeId}:${r.status}`) }, "model pushed");
      // The rows' final states reach the asker before the reply: both QoS 1 on this one client, in order.
      this.o.rollouts.flush();
      await this.reply({ requestId, sha256: sha256!, version, results });
    } catch (err) {
      const code = err instanceof ColonyError ? err.code : ModelStoreErrors.MODEL_PUSH_FAILED;
      await this.reply({ requestId, results: [], error: { code, message: String((err as Error).message).slice(0, 4096) } });
    }
  }

  /**
   * A node's answer to its fetch command. A command unanswered within the command layer's timeout
   * and retries while the node's transfer still makes progress (a large model on a slow link) is
   * not given up: the outcome is then the rollout row's, once it finishes or goes quiet.
   */
  private async answer(nodeId: string, sha256: string): Promise<{ status: string; error?: WireError }> {
    const out = await this.o.commands.send(nodeId, { kind: "fetch", agentId: "prefetch", sha256 });
    if (out.status !== "no-answer") return { status: out.status, ...(out.status === "refused" && out.error ? { error: out.error } : {}) };
    const row = await this.o.rollouts.finished(sha256, nodeId, this.o.quietMs ?? 30_000);
    if (row?.state === "done") return { status: "fetched" };
    if (row?.state === "failed") return { status: "refused", error: { code: row.code ?? ModelStoreErrors.MODEL_PUSH_FAILED, message: row.message ?? "the node refused the model" } };
    return { status: "no-answer" };
  }

  private reply(r: ModelPushReply): Promise<unknown> {
    const ch = channels.modelPushReply;
    return this.o.link.client.publishAsync(ch.topic(r.requestId), encode(r), { qos: ch.qos }).catch((err) => this.o.logger.warn({ err }, "model push reply failed"));
  }
}

function requestIdOf(payload: Buffer): string | undefined {
  try {
    const v = JSON.parse(payload.toString("utf8")) as { requestId?: unknown };
    return typeof v.requestId === "string" && /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(v.requestId) ? v.requestId : undefined;
  } catch {
    return undefined;
  }
}
