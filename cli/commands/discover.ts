import type { Command } from "commander";

/** `colony discover`: find the coordinator on the LAN by mDNS (docs/discovery.md). */
export function register(program: Command): void {
  program
    .command("discover")
    .description("find a Colony coordinator on the local network by mDNS and print its broker URL")
    .option("--fleet <id>", "only accept a coordinator of this fleet")
    .option("--timeout-ms <n>", "give up after this many ms (default 5000)")
    .option("--json", "print one JSON object")
    .action(async (o: { fleet?: string; timeoutMs?: string; json?: boolean }) => {
      const { intArg } = await import("../../common/config.ts");
      const { discoverCoordinator } = await import("../../common/discovery.ts");
      const found = await discoverCoordinator({ timeoutMs: intArg("--timeout-ms", o.timeoutMs) ?? 5000, fleetId: o.fleet });
      if (o.json) return void process.stdout.write(JSON.stringify(found) + "\n");
      process.stdout.write(`${found.url}   fleet ${found.fleetId || "(none)"}, protocol ${found.protocol}${found.wsPort ? `, ws port ${found.wsPort}` : ""}, "${found.name}"\n`);
    });
}
