import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { registeredErrors, ColonyError, CommonErrors } from "../../common/errors.ts";

// Every area keeps its codes in an errors.ts; import them all so the registry is complete.
function findErrorModules(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findErrorModules(p));
    else if (name === "errors.ts") out.push(p);
  }
  return out;
}

test("every error code is unique, upper snake case and documented in docs/errors.md", async () => {
  const modules = ["common", "coordinator", "node", "gguf", "trainer", "skills", "cli"].flatMap((d) => {
    try {
      return findErrorModules(d);
    } catch {
      return [];
    }
  });
  for (const m of modules) await import(pathToFileURL(path.resolve(m)).href);
  const doc = readFileSync("docs/errors.md", "utf8");
  const codes = [...registeredErrors().keys()];
  assert.ok(codes.length >= Object.keys(CommonErrors).length);
  const missing = codes.filter((c) => !doc.includes("`" + c + "`"));
  assert.deepEqual(missing, [], "codes missing from docs/errors.md");
  for (const c of codes) assert.match(c, /^[A-Z][A-Z0-9_]+$/);
  assert.equal(new Set(codes).size, codes.length);
});

test("ColonyError carries its code to the wire shape", () => {
  const err = new ColonyError(CommonErrors.CONFIG_INVALID, "bad");
  assert.deepEqual(err.toWire(), { code: "CONFIG_INVALID", message: "bad" });
  assert.ok(err instanceof Error);
});
