#!/usr/bin/env node
// Entry point of the `colony` command. The project runs its TypeScript through tsx so that a fresh
// clone needs no build step (npm 11 skips install scripts, see docs/development.md).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
await main(process.argv);
