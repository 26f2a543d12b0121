import type { Command } from "commander";
import { PROTOCOL_VERSION } from "../../common/protocol.ts";

export function register(program: Command): void {
  program
    .command("info")
    .description("print Colony's version, protocol version and runtime")
    .action(() => {
      process.stdout.write(JSON.stringify({ colony: "0.1.0", protocol: PROTOCOL_VERSION, node: process.version, platform: `${process.platform}-${process.arch}` }) + "\n");
    });
}
