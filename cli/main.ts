import { readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";
import { Command, CommanderError } from "commander";
import { ColonyError } from "../common/errors.ts";

/**
 * Each file in cli/commands/ registers one subcommand; it must keep heavy imports (llama.cpp, the
 * broker) inside its action so `colony --help` stays fast.
 */
export interface CommandModule {
  register(program: Command): void;
}

const commandsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "commands");

export async function buildProgram(): Promise<Command> {
  const program = new Command("colony")
    .description("Colony: a fleet of small devices running language-model agents that bid for tasks")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  const files = readdirSync(commandsDir).filter((f) => f.endsWith(".ts")).sort();
  for (const file of files) {
    const mod = (await import(pathToFileURL(path.join(commandsDir, file)).href)) as CommandModule;
    mod.register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit with code 0; usage errors were already printed by commander.
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ColonyError) {
      process.stderr.write(`error ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}
