import type { Command } from "commander";

/**
 * `colony profile detect` / `list`: the device profile `colony node` would pick on this machine
 * (node/profile.ts), so an installer (scripts/install-node.sh) can show it and pin it. Detection
 * only reads the hardware.
 */
export function register(program: Command): void {
  const profile = program.command("profile").description("device profiles (firmware-configs/): detect this machine's, list them");
  profile
    .command("detect")
    .description("print the device profile `colony node` picks on this machine, with the hardware it matched")
    .option("--json", "print one JSON object: {profile, threads, maxAgents, hardware}")
    .action(async (o: { json?: boolean }) => {
      const { readHardwareIdentity } = await import("../../node/probe.ts");
      const { detectProfile, profileThreads } = await import("../../node/profile.ts");
      const hw = await readHardwareIdentity();
      const p = detectProfile(hw);
      const threads = profileThreads(p, hw.physicalCores);
      if (o.json) return void process.stdout.write(JSON.stringify({ profile: p.name, threads, maxAgents: p.maxAgents ?? null, hardware: hw }) + "\n");
      const system = [hw.systemManufacturer, hw.systemModel].filter(Boolean).join(" ") || "unknown system";
      process.stdout.write(`${p.name}\n`);
      process.stderr.write(`matched ${system}, ${hw.cpuBrand ?? "unknown CPU"}, ${hw.arch}${hw.hasBattery ? ", battery" : ""}; ${threads} inference threads\n`);
    });
  profile
    .command("list")
    .description("list the device profiles shipped in firmware-configs/")
    .action(async () => {
      const { listProfiles } = await import("../../node/profile.ts");
      for (const p of listProfiles()) process.stdout.write(`${p.name}\n`);
    });
}
