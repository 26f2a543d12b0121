#!/usr/bin/env node
// `npm run bench -- NAME [args]` runs bench/NAME.ts; each benchmark prints a one-line JSON summary last.
import { readdirSync } from "node:fs";
import { spawn } from "node:child_process";

const names = readdirSync("bench").filter((f) => f.endsWith(".ts") && !f.startsWith("_")).map((f) => f.slice(0, -3)).sort();
const [name, ...rest] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]\nbenchmarks: ${names.join(", ")}`);
  process.exit(name ? 1 : 0);
}
const child = spawn(process.execPath, ["--import", "tsx", `bench/${name}.ts`, ...rest], { stdio: "inherit" });
child.on("close", (code) => process.exit(code ?? 1));
