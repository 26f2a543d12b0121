import type { Command } from "commander";
import { readRetained, retainedOptions } from "../retained.ts";

/**
 * `colony models`: the coordinator's signed model store (docs/models.md). `list` reads the
 * retained catalog; `verify` checks a model file and its signed manifest offline, as a node would;
 * `add` puts a model into the store of a coordinator that is not running.
 */
export function register(program: Command): void {
  const models = program.command("models").description("the coordinator's signed model store: list the catalog, verify a model offline, add a model");

  retainedOptions(models.command("list"))
    .description("print the models the coordinator serves (retained colony/v1/models/catalog): name, lineage, version, sha256, size, skills, gate, parents")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { ModelCatalogSchema, topics } = await import("../../common/protocol.ts");
      const { renderCatalog } = await import("../models-table.ts");
      const got = (await readRetained(o, [topics.modelCatalog], "models")).get(topics.modelCatalog);
      if (got === undefined) throw new ColonyError(CommonErrors.RETAINED_MISSING, "no model catalog on this broker (is the coordinator running, and not --insecure? use --data-dir or a node or coordinator credential)");
      const cat = ModelCatalogSchema.safeParse(got);
      if (!cat.success) throw new ColonyError(CommonErrors.RETAINED_MISSING, `the retained model catalog is not valid: ${cat.error.issues[0]?.message ?? ""}`);
      if (o.json) return void process.stdout.write(JSON.stringify(cat.data) + "\n");
      process.stdout.write(renderCatalog(cat.data) + "\n");
    });

  models
    .command("verify")
    .argument("<file>", "the model (.gguf)")
    .description("check a model and its signed manifest offline as a node would: signature, fleet key, size, sha256, GGUF gate; exits 1 with the refusal's code")
    .requiredOption("--manifest <file>", "the signed manifest JSON ({manifest, signature})")
    .option("--credentials <file>", "a node credentials file carrying the fleet's modelKey")
    .option("--key <base64url>", "the fleet's model key itself")
    .option("--base <file>", "for an adapter: its base model")
    .option("--json", "print the verified manifest as one JSON line")
    .action(async (file: string, o: { manifest: string; credentials?: string; key?: string; base?: string; json?: boolean }) => {
      const { readFile } = await import("node:fs/promises");
      const { ColonyError, CommonErrors, ModelTransferErrors } = await import("../../common/errors.ts");
      const { loadClientCredentials } = await import("../../common/mqtt-connect.ts");
      const { verifyModelOffline } = await import("../models-verify.ts");
      if (o.key !== undefined && o.credentials !== undefined) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "give --key or --credentials, not both");
      const key = o.key ?? (o.credentials !== undefined ? loadClientCredentials({ file: o.credentials })?.modelKey : undefined);
      if (!key) throw new ColonyError(ModelTransferErrors.MODEL_KEY_MISSING, o.credentials ? `${o.credentials} carries no modelKey (issue it again: colony credentials issue --node ID --out FILE)` : "give the fleet's model key: --credentials NODE.json or --key B64");
      let signed: unknown;
      try {
        signed = JSON.parse(await readFile(o.manifest, "utf8"));
      } catch (err) {
        throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `--manifest ${o.manifest}: ${(err as Error).message}`);
      }
      const m = await verifyModelOffline(file, signed, key, { base: o.base });
      if (o.json) return void process.stdout.write(JSON.stringify(m) + "\n");
      const gate = m.gate === undefined ? "no gate report" : `gate ${m.gate.passed ? "passed" : "FAILED"}`;
      process.stdout.write(`ok: ${m.name} v${m.version} of ${m.lineage} (${m.sha256.slice(0, 12)}, ${m.bytes} bytes), signed with fleet key ${m.keyId}, ${gate}\n`);
    });

  models
    .command("add")
    .argument("<file>", "the model (.gguf)")
    .description("add a model to the coordinator's store and sign its manifest; only while the coordinator is stopped (it holds the store)")
    .requiredOption("--name <name>", "the model's name")
    .requiredOption("--skills <list>", "comma-separated skills it serves")
    .option("--lineage <lineage>", "its line of models (default: --name); the version is the lineage's next")
    .option("--lora-base <sha256>", "the file is a LoRA adapter on this model of the store")
    .option("--data-dir <dir>", "coordinator data folder (default: $COLONY_DATA_DIR or ~/.colony)")
    .option("--json", "print the signed manifest as one JSON line")
    .action(async (file: string, o: { name: string; skills: string; lineage?: string; loraBase?: string; dataDir?: string; json?: boolean }) => {
      const path = await import("node:path");
      const { ColonyError } = await import("../../common/errors.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { deriveSigningKey } = await import("../../common/model-manifest.ts");
      const { loadOrCreateFleetSecret } = await import("../../coordinator/auth.ts");
      const { TaskStore } = await import("../../coordinator/market/task-store.ts");
      const { ModelStore } = await import("../../coordinator/models/model-store.ts");
      const { ModelStoreErrors } = await import("../../coordinator/models/errors.ts");
      const { cliEnv } = await import("../env.ts");
      const env = cliEnv();
      const dataDir = o.dataDir ?? env.dataDir;
      const key = deriveSigningKey(await loadOrCreateFleetSecret(dataDir));
      const tasks = new TaskStore(path.join(dataDir, "tasks"));
      try {
        await tasks.start();
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        if (cause?.code !== "LEVEL_LOCKED") throw err;
        throw new ColonyError(ModelStoreErrors.MODEL_STORE_BUSY, `cannot open the coordinator's store in ${dataDir} (is the coordinator running? stop it first): ${(err as Error).message}`, undefined, { cause: err });
      }
      const store = new ModelStore({ dir: path.join(dataDir, "models"), tasks, key, logger: createLogger({ level: env.logLevel ?? "warn", name: "models" }) });
      try {
        await store.start();
        const skills = o.skills.split(",").map((s) => s.trim()).filter(Boolean);
        const signed = await store.add(file, { name: o.name, lineage: o.lineage, skills, ...(o.loraBase ? { format: "gguf-lora" as const, base: o.loraBase } : {}) });
        if (o.json) return void process.stdout.write(JSON.stringify(signed) + "\n");
        const m = signed.manifest;
        process.stdout.write(`added ${m.name} v${m.version} of ${m.lineage}: ${m.sha256} (${m.bytes} bytes), signed with key ${m.keyId}; the coordinator serves it from its next start\n`);
      } finally {
        await store.close();
        await tasks.close();
      }
    });

  retainedOptions(models.command("push"))
    .argument("<model>", "a model of the store (its sha256, or a unique prefix of 8+ hex digits from `colony models list`) or, with --name and --skills, a .gguf file on the coordinator's host to add first")
    .description("roll a model out: every online node (or --node) fetches it over MQTT, verifies hash, signature and version, and keeps it; shows each node's progress (bars on a terminal, plain lines otherwise) and prints each node's answer")
    .option("--node <id...>", "only these nodes")
    .option("--name <name>", "for a file: the model's name")
    .option("--skills <list>", "for a file: comma-separated skills it serves")
    .option("--lineage <lineage>", "for a file: its line of models (default: --name)")
    .option("--timeout-ms <n>", "how long to wait for the nodes' answers (default 120000)")
    .action(async (model: string, o: Record<string, string | boolean | string[] | undefined>) => {
      const path = await import("node:path");
      const { randomBytes } = await import("node:crypto");
      const { intArg } = await import("../../common/config.ts");
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { channels, decode, encode, ModelCatalogSchema, topics } = await import("../../common/protocol.ts");
      const { ModelStoreErrors } = await import("../../coordinator/models/errors.ts");
      const { connectWithOptions } = await import("../retained.ts");
      const { RolloutProgress } = await import("../rollout-progress.ts");
      const str = (v: unknown) => (typeof v === "string" ? v : undefined);
      const isHash = /^[0-9a-f]{8,64}$/i.test(model);
      if (!isHash && (str(o.name) === undefined || str(o.skills) === undefined)) {
        throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "a file needs --name and --skills (or give a model's sha256 from `colony models list`)");
      }
      const client = await connectWithOptions(o as Record<string, string | boolean | undefined>, "models");
      try {
        let sha256: string | undefined;
        if (isHash) {
          // A prefix is resolved against the retained catalog, so an operator can paste what `list` prints.
          sha256 = model.toLowerCase();
          if (sha256.length < 64) {
            const got = (await (await import("../retained.ts")).readRetained({ ...(o as Record<string, string | boolean | undefined>) }, [topics.modelCatalog], "models")).get(topics.modelCatalog);
            const cat = ModelCatalogSchema.safeParse(got);
            const hits = cat.success ? cat.data.models.filter((m) => m.manifest.sha256.startsWith(sha256!)) : [];
            if (hits.length !== 1) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `${model} matches ${hits.length} models of the catalog; give more of its sha256`);
            sha256 = hits[0]!.manifest.sha256;
          }
        }
        const requestId = `push-${randomBytes(8).toString("hex")}`;
        const nodes = Array.isArray(o.node) ? o.node : undefined;
        const request = isHash
          ? { requestId, sha256, ...(nodes ? { nodes } : {}) }
          : { requestId, file: path.resolve(model), name: str(o.name)!, skills: str(o.skills)!.split(",").map((x) => x.trim()).filter(Boolean), ...(str(o.lineage) ? { lineage: str(o.lineage) } : {}), ...(nodes ? { nodes } : {}) };
        const replyTopic = channels.modelPushReply.topic(requestId);
        const timeoutMs = intArg("--timeout-ms", str(o.timeoutMs)) ?? 120_000;
        // Each node's row of the rollout table for this request (none with --json: one JSON line only).
        const progress = o.json ? undefined : new RolloutProgress();
        const reply = await new Promise<unknown>((resolve, reject) => {
          const timer = setTimeout(() => reject(new ColonyError(ModelStoreErrors.MODEL_PUSH_TIMEOUT, `no answer from the coordinator within ${timeoutMs} ms`)), timeoutMs);
          client.on("message", (topic, payload) => {
            if (topic === channels.modelRollouts.topic()) {
              const d = payload.length ? decode(channels.modelRollouts.schema, payload) : undefined;
              if (d?.ok) progress?.update(d.value.rollouts.filter((r) => r.requestId === requestId));
              return;
            }
            if (topic !== replyTopic) return;
            clearTimeout(timer);
            const d = decode(channels.modelPushReply.schema, payload);
            resolve(d.ok ? d.value : { requestId, results: [], error: { code: d.code, message: d.message } });
          });
          client
            .subscribeAsync([replyTopic, ...(progress ? [channels.modelRollouts.topic()] : [])], { qos: 1 })
            .then((granted) => {
              if (granted.some((g) => g.qos === 128)) throw new ColonyError(ModelStoreErrors.MODEL_PUSH_FAILED, "the broker refused the reply topic: `colony models push` needs a coordinator credential (--data-dir on the coordinator's host)");
              return client.publishAsync(channels.modelPush.topic(), encode(request as never), { qos: 1 });
            })
            .catch((err) => {
              clearTimeout(timer);
              // aedes answers a refused subscription with an error SUBACK (mqtt.js rejects), mosquitto with 0x80.
              const denied = !(err instanceof ColonyError) && /subscribe/i.test(String((err as Error)?.message));
              reject(denied ? new ColonyError(ModelStoreErrors.MODEL_PUSH_FAILED, "the broker refused the reply topic: `colony models push` needs a coordinator credential (--data-dir on the coordinator's host)") : err);
            });
        });
        progress?.done();
        const r = reply as { sha256?: string; version?: number; results: { nodeId: string; status: string; error?: { code: string; message: string } }[]; error?: { code: string; message: string } };
        if (r.error) throw new ColonyError(r.error.code, r.error.message);
        if (o.json) process.stdout.write(JSON.stringify(r) + "\n");
        else {
          process.stdout.write(`model ${r.sha256} (version ${r.version}) to ${r.results.length} node(s):\n`);
          for (const x of r.results) process.stdout.write(`  ${x.nodeId}: ${x.status}${x.error ? ` ${x.error.code} ${x.error.message}` : ""}\n`);
        }
        if (r.results.some((x) => x.status !== "fetched" && x.status !== "exists")) process.exitCode = 1;
      } finally {
        await client.endAsync().catch(() => {});
      }
    });
}
