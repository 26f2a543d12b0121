import type { Command } from "commander";

/**
 * `colony fleet` (npm start): a one-machine fleet in one process: the coordinator with its embedded
 * broker plus one local node daemon hosting the seed agents. Prints how to submit a task with real
 * credentials it issued.
 */
export function register(program: Command): void {
  program
    .command("fleet")
    .description("run a one-machine fleet: coordinator with embedded MQTT broker + a local node daemon with the seed agents")
    .option("--port <n>", "MQTT TCP port of the embedded broker (default 1883; 0 = any free port)")
    .option("--host <addr>", "address the broker listens on (default 127.0.0.1: this machine only)")
    .option("--data-dir <dir>", "coordinator data folder (task store, fleet secret); the node uses DIR/node (default ~/.colony)")
    .option("--node-id <id>", "id of the local node (default \"local\")")
    .option("--profile <name|file>", "device profile of the local node (default: detected)")
    .option("--agents <file>", "agents JSON file (default: one agent per seed model in models/seed-manifest.json)")
    .option("--threads <n>", "inference threads of the local node (default: the profile's)")
    .option("--dashboard-port <n>", "serve the live dashboard on http://HOST:N/ (0 = any port; default off, or COLONY_DASHBOARD_PORT); docs/operations.md")
    .option("--mdns", "advertise the broker on the LAN by mDNS so other nodes can join (default off)")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const t0 = Date.now();
      const path = await import("node:path");
      const { cliEnv } = await import("../env.ts");
      const { intArg } = await import("../../common/config.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { onShutdownSignal } = await import("../shutdown.ts");
      const { loadCoordinatorConfig } = await import("../../coordinator/config.ts");
      const { Coordinator } = await import("../../coordinator/coordinator.ts");
      const { issueCredential, loadOrCreateFleetSecret } = await import("../../coordinator/auth.ts");
      const { loadNodeConfig } = await import("../../node/config.ts");
      const { bootNode } = await import("../../node/boot.ts");
      const str = (v: unknown) => (typeof v === "string" ? v : undefined);
      const { env, dataDir: defaultDataDir } = cliEnv();
      const dataDir = str(o.dataDir) ?? defaultDataDir;
      const flags = { port: intArg("--port", str(o.port)), host: str(o.host) ?? "127.0.0.1", dataDir, mdns: o.mdns === true, dashboardPort: intArg("--dashboard-port", str(o.dashboardPort)) };
      // The fleet's own demo submitter is its owner: its verdicts count in full (docs/scoring.md),
      // with whoever COLONY_TRUSTED_SUBMITTERS names.
      const trustedSubmitters = [...new Set([...loadCoordinatorConfig({ env, flags }).trustedSubmitters, "submitter.demo"])];
      const cconfig = loadCoordinatorConfig({ env, flags: { ...flags, trustedSubmitters } });
      const logger = createLogger({ level: cconfig.logLevel, name: "fleet" });
      // `role`, not `part`: the coordinator's own parts log under `part` (a key must appear once per line).
      const coordinator = new Coordinator(cconfig, { logger: logger.child({ role: "coordinator" }) });
      await coordinator.start();
      let node: Awaited<ReturnType<typeof bootNode>> | undefined;
      onShutdownSignal(async () => {
        logger.info({}, "shutting down");
        await node?.close();
        await coordinator.close();
      });
      const secret = await loadOrCreateFleetSecret(dataDir);
      const nodeId = str(o.nodeId) ?? "local";
      const nodeCred = issueCredential(secret, "node", nodeId);
      const nconfig = loadNodeConfig({
        env,
        flags: {
          coordinator: coordinator.brokerUrl, username: nodeCred.username, password: nodeCred.password, nodeId, modelKey: coordinator.signingKey?.publicKey,
          profile: str(o.profile), agents: str(o.agents), threads: intArg("--threads", str(o.threads)), dataDir: path.join(dataDir, "node"),
        },
      });
      try {
        node = await bootNode(nconfig, logger.child({ role: "node" }));
      } catch (err) {
        await coordinator.close();
        throw err;
      }
      // "Ready" means a task submitted now finds the node: its status is in the coordinator's registry
      // (with MQTT as fast as it is, a submit right after the node's start could otherwise end NO_BIDDERS).
      for (const until = Date.now() + 10_000; !coordinator.registry.isOnline(nodeId) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 5));
      const sub = issueCredential(secret, "submitter", "demo");
      const host = new URL(coordinator.brokerUrl).hostname.replace(/^\[|\]$/g, "");
      const port = coordinator.port;
      const agents = node.daemon.pool.info();
      const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      // -i: a client id must carry the username (docs/security.md); mosquitto's clients pick their own otherwise.
      const auth = (role: string) => `-h ${host} -p ${port} -u ${q(sub.username)} -P ${q(sub.password)} -i ${q(`${sub.username}:${role}`)}`;
      const { getSkill, hasSkill } = await import("../../skills/index.ts");
      const { Rng } = await import("../../common/random.ts");
      const skill = agents.flatMap((a) => a.skills).find((s) => hasSkill(s)) ?? agents[0]?.skills[0] ?? "reverse";
      const example = hasSkill(skill) ? getSkill(skill).generate(new Rng(Date.now())).prompt : "hello";
      // A fresh id at every start: a task id is used once, and a pasted pair from an earlier start
      // must not print that run's retained result.
      const { randomBytes } = await import("node:crypto");
      const demoId = `demo-${randomBytes(4).toString("hex")}`;
      const json = JSON.stringify({ id: demoId, prompt: example, skill, maxTokens: 16 });
      // The CLI reads the credential from a file (0600), not from a password on the command line.
      const { chmodSync, writeFileSync } = await import("node:fs");
      const credFile = path.join(dataDir, "submitter-demo.json");
      writeFileSync(credFile, JSON.stringify({ ...sub, url: coordinator.brokerUrl }) + "\n", { mode: 0o600 });
      chmodSync(credFile, 0o600);
      // From the clone (npm start runs there) `npx colony` finds this package; elsewhere npx would
      // fetch an unrelated "colony" from the registry, so print the command this process was started with.
      const { fileURLToPath } = await import("node:url");
      const pkgRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
      const started = process.argv[1] ?? path.join(pkgRoot, "bin", "colony.mjs");
      const colonyCmd = path.resolve(process.cwd()) === pkgRoot ? "npx colony" : path.basename(started) === "colony" ? q(started) : `node ${q(started)}`;
      const lines = [
        `Colony fleet ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: broker ${coordinator.brokerUrl}, node ${nodeId} with ${agents.length} agents:`,
        ...agents.map((a) => `  ${a.agentId}  skills: ${a.skills.join(", ")}`),
        ``,
        `Submit a task and follow it with mosquitto (submitter credential "demo"; the events show`,
        `accepted or rejected, the winner, then the result; the subscriber stops after 20 s):`,
        `  mosquitto_sub ${auth("sub")} -v -t ${q(`colony/v1/submitters/${sub.username}/tasks/${demoId}/+`)} -W 20 &`,
        `  mosquitto_pub ${auth("pub")} -q 1 -t ${q(`colony/v1/submitters/${sub.username}/submit`)} -m ${q(json)}`,
        ``,
        `or with the colony CLI (the credential is in ${credFile}):`,
        `  ${colonyCmd} submit --credentials ${q(credFile)} --skill ${skill} ${q(example)}`,
        ``,
        ...(coordinator.dashboardPort !== undefined ? [`Dashboard: http://${host.includes(":") ? `[${host}]` : host}:${coordinator.dashboardPort}/ (read-only; anyone who can reach it can watch the fleet)`, ``] : []),
        `Ctrl-C stops the fleet.`,
      ];
      process.stderr.write(lines.join("\n") + "\n");
      process.stdout.write(JSON.stringify({ ready: true, url: coordinator.brokerUrl, port, nodeId, agents: agents.map((a) => a.agentId), submitter: sub, submitterFile: credFile, demoTaskId: demoId, dashboardPort: coordinator.dashboardPort }) + "\n");
    });
}
