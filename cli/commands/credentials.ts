import type { Command } from "commander";

/**
 * `colony credentials`: issue MQTT credentials from the fleet secret, and write a mosquitto
 * config for fleets that use an external broker (docs/security.md).
 */

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9._:/@=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function register(program: Command): void {
  const credentials = program.command("credentials").description("issue MQTT credentials from the fleet secret; generate mosquitto config");

  credentials
    .command("issue")
    .description("print the username and password of a node, submitter or the coordinator (creates the fleet secret if missing)")
    .option("--node <id>", "credentials for the node daemon with this node id")
    .option("--submitter <name>", "credentials for a submitter (a person, script or integration)")
    .option("--observer <name>", "read-only credentials (Home Assistant, dashboards): the coordinator's fleet views, colony/v1/ha/# and colony/v1/dashboard/#, no prompt (docs/operations.md)")
    .option("--coordinator", "credentials with full rights, for the coordinator's own clients")
    .option("--data-dir <dir>", "coordinator data folder holding fleet.secret (default: $COLONY_DATA_DIR or ~/.colony)")
    .option("--url <url>", "broker URL to put in the credentials file (omit it to let the node find the broker by mDNS)")
    .option("--out <file>", "also write a credentials JSON file (mode 0600) for --credentials / $COLONY_CREDENTIALS")
    .option("--json", "print one JSON object instead of text")
    .action(async (opts: { node?: string; submitter?: string; observer?: string; coordinator?: boolean; dataDir?: string; url?: string; out?: string; json?: boolean }) => {
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { loadOrCreateFleetSecret, issueCredential, nodeCredentialFile } = await import("../../coordinator/auth.ts");
      const { cliEnv } = await import("../env.ts");
      const chosen = [opts.node !== undefined, opts.submitter !== undefined, opts.observer !== undefined, opts.coordinator === true].filter(Boolean).length;
      if (chosen !== 1) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "give exactly one of --node ID, --submitter NAME, --observer NAME, --coordinator");
      let url: URL;
      try {
        url = new URL(opts.url ?? "mqtt://localhost:1883");
      } catch {
        throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `--url ${JSON.stringify(opts.url)} is not a URL`);
      }
      const secret = await loadOrCreateFleetSecret(opts.dataDir ?? cliEnv().dataDir);
      const cred =
        opts.node !== undefined ? issueCredential(secret, "node", opts.node)
        : opts.submitter !== undefined ? issueCredential(secret, "submitter", opts.submitter)
        : opts.observer !== undefined ? issueCredential(secret, "observer", opts.observer)
        : issueCredential(secret, "coordinator");
      // A node's file also carries the fleet's model key (docs/models.md): pushed models must verify with it.
      const file = opts.node !== undefined ? nodeCredentialFile(secret, opts.node, opts.url) : { username: cred.username, password: cred.password, ...(opts.url ? { url: opts.url } : {}) };
      if (opts.out) {
        const { writeFile, chmod } = await import("node:fs/promises");
        await writeFile(opts.out, JSON.stringify(file, null, 2) + "\n", { mode: 0o600 });
        await chmod(opts.out, 0o600);
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(file) + "\n");
        return;
      }
      // The client id must carry the username (docs/security.md): mosquitto's clients pick their own otherwise.
      const hostArgs = `-h ${shellQuote(url.hostname)} -p ${url.port || "1883"} -V mqttv311 -u ${shellQuote(cred.username)} -P ${shellQuote(cred.password)} -i ${shellQuote(`${cred.username}:try`)}`;
      const example =
        opts.node !== undefined
          ? `mosquitto_sub ${hostArgs} -t ${shellQuote(`colony/v1/nodes/${opts.node}/#`)} -v`
          : opts.observer !== undefined
          ? `mosquitto_sub ${hostArgs} -t ${shellQuote("colony/v1/ha/#")} -t ${shellQuote("homeassistant/#")} -v`
          : `mosquitto_pub ${hostArgs} -t ${shellQuote(`colony/v1/submitters/${cred.username}/submit`)} -m '{"id":"t-'"$(date +%s%N)"'","prompt":"Say hi"}'`;
      process.stdout.write(
        [`username: ${cred.username}`, `password: ${cred.password}`, ...("modelKey" in file ? [`modelKey: ${file.modelKey}`] : []), ...(opts.out ? [`written:  ${opts.out}`] : []), "", "try it:", `  ${example}`, ""].join("\n"),
      );
    });

  credentials
    .command("mosquitto")
    .description("write mosquitto.conf, a password file and an ACL file equivalent to Colony's built-in broker rules")
    .requiredOption("--out <dir>", "folder to write mosquitto.conf, passwd and acl into (created 0700)")
    .option("--node <id>", "a node to admit (repeatable)", collect, [] as string[])
    .option("--submitter <name>", "a submitter to admit (repeatable)", collect, [] as string[])
    .option("--observer <name>", "a read-only observer to admit, e.g. homeassistant (repeatable)", collect, [] as string[])
    .option("--submitter-topic <filter>", "a topic filter outside colony/ every submitter and observer may read and write, e.g. 'homeassistant/#' (repeatable)", collect, [] as string[])
    .option("--data-dir <dir>", "coordinator data folder holding fleet.secret (default: $COLONY_DATA_DIR or ~/.colony)")
    .option("--port <port>", "listener port in mosquitto.conf", "1883")
    .option("--bind <address>", "listener address in mosquitto.conf (default: all interfaces)")
    .option("--tls-port <port>", "add a TLS listener on this port (needs --cafile, --certfile, --keyfile)")
    .option("--cafile <file>", "CA certificate clients verify the broker against (TLS listener)")
    .option("--certfile <file>", "the broker's certificate (TLS listener)")
    .option("--keyfile <file>", "the broker's private key (TLS listener)")
    .option("--no-plain", "no plain-TCP listener: TLS only")
    .option("--json", "print the issued credentials as JSON")
    .action(async (opts: { out: string; node: string[]; submitter: string[]; observer: string[]; submitterTopic: string[]; dataDir?: string; port: string; bind?: string; json?: boolean; tlsPort?: string; cafile?: string; certfile?: string; keyfile?: string; plain: boolean }) => {
      const { intArg } = await import("../../common/config.ts");
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { loadOrCreateFleetSecret } = await import("../../coordinator/auth.ts");
      const { writeMosquittoFiles } = await import("../../coordinator/auth.ts");
      const { cliEnv } = await import("../env.ts");
      const port = intArg("--port", opts.port)!;
      if (port < 1 || port > 65535) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "--port must be 1-65535");
      let tls;
      if (opts.tlsPort !== undefined || opts.cafile || opts.certfile || opts.keyfile) {
        const tlsPort = intArg("--tls-port", opts.tlsPort);
        if (tlsPort === undefined || !opts.cafile || !opts.certfile || !opts.keyfile) {
          throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "a TLS listener needs all of --tls-port, --cafile, --certfile and --keyfile");
        }
        const abs = (await import("node:path")).resolve;
        tls = { port: tlsPort, cafile: abs(opts.cafile), certfile: abs(opts.certfile), keyfile: abs(opts.keyfile) };
      }
      if (!opts.plain && !tls) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "--no-plain needs a TLS listener (--tls-port ...)");
      const secret = await loadOrCreateFleetSecret(opts.dataDir ?? cliEnv().dataDir);
      const written = await writeMosquittoFiles(
        opts.out,
        { secret, nodes: opts.node, submitters: opts.submitter, observers: opts.observer, submitterTopics: opts.submitterTopic },
        { port, plain: opts.plain, ...(opts.bind ? { bind: opts.bind } : {}), ...(tls ? { tls } : {}) },
      );
      const users = written.users.map((u) => ({ role: u.role, name: u.name, username: u.username, password: u.password }));
      if (opts.json) {
        process.stdout.write(JSON.stringify({ confFile: written.confFile, passwordFile: written.passwordFile, aclFile: written.aclFile, users }) + "\n");
        return;
      }
      process.stdout.write(
        [
          `wrote ${written.confFile}`,
          `      ${written.passwordFile}`,
          `      ${written.aclFile}`,
          "",
          "run:  mosquitto -c " + written.confFile + "   (as a service: see docs/security.md)",
          "",
          "credentials:",
          ...users.map((u) => `  ${u.username.padEnd(28)} ${u.password}`),
          "",
        ].join("\n"),
      );
    });
}
