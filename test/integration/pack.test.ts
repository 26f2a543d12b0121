// `npm pack` makes a package that installs and runs `colony` outside the repo: the tarball holds the
// runtime folders, the seed models where node/agents/agents-file.ts looks for them, the device
// profiles, the systemd units and install scripts, and no tests or benchmarks; installed into a
// temp folder it runs `colony --version`, `colony gguf inspect` on a seed model, and finds its seed
// agents. Dependencies come from the npm cache (`--prefer-offline`); when npm cannot install them
// (no registry, cold cache) they are linked from this repo's node_modules, only those the packed
// package.json declares, so a runtime dependency left in devDependencies still fails. ~25 s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const repo = process.cwd();
let dir: string;
let tarball: string;
let files: string[];
let prefix: string;
let colony: string;
let installedBy: "npm" | "links";

async function installTarball(): Promise<void> {
  writeFileSync(path.join(prefix, "package.json"), JSON.stringify({ name: "colony-pack-test", private: true }));
  try {
    await run("npm", ["install", "--no-save", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: prefix, timeout: 150_000, maxBuffer: 1 << 24 });
    installedBy = "npm";
    return;
  } catch (err) {
    process.stderr.write(`pack.test: npm install of the tarball failed (${(err as Error).message.split("\n")[0]}); linking its declared dependencies from this repo's node_modules\n`);
  }
  const pkgDir = path.join(prefix, "node_modules", "colony");
  rmSync(path.join(prefix, "node_modules"), { recursive: true, force: true });
  mkdirSync(pkgDir, { recursive: true });
  await run("tar", ["xzf", tarball, "-C", pkgDir, "--strip-components=1"]);
  const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    const target = path.join(prefix, "node_modules", dep);
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(path.join(repo, "node_modules", dep), target);
  }
  mkdirSync(path.join(prefix, "node_modules", ".bin"), { recursive: true });
  symlinkSync(path.join("..", "colony", pkg.bin.colony), path.join(prefix, "node_modules", ".bin", "colony"));
  installedBy = "links";
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: repo, maxBuffer: 1 << 24 });
  const info = JSON.parse(stdout)[0];
  tarball = path.join(dir, info.filename);
  files = info.files.map((f: { path: string }) => f.path);
  prefix = path.join(dir, "prefix");
  mkdirSync(prefix);
  await installTarball();
  colony = path.join(prefix, "node_modules", ".bin", "colony");
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the tarball holds the runtime, seed models, profiles, units and install scripts; no tests or benchmarks", () => {
  const size = statSync(tarball).size;
  // 3.1 MB on 2026-12-03, 2.9 MB of it the four seed models.
  assert.ok(size < 8 * 2 ** 20, `tarball is ${size} bytes`);
  for (const f of ["bin/colony.mjs", "cli/main.ts", "node/agents/agents-file.ts", "models/seed-manifest.json", "firmware-configs/generic.json", "firmware-configs/raspberry-pi-5.json", "native/kernels/binding.cc", "scripts/systemd/colony-node.service", "scripts/systemd/colony-coordinator.service", "scripts/install-node.sh", "scripts/install-coordinator.sh", "docs/install.md"]) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  const manifest = JSON.parse(readFileSync(path.join(repo, "models", "seed-manifest.json"), "utf8"));
  for (const m of manifest.models) assert.ok(files.includes(`models/${m.file}`), `seed model ${m.file} is in the tarball`);
  assert.deepEqual(files.filter((f) => /^(test|bench)\//.test(f) || /\.test\.ts$/.test(f) || /^scripts\/(run-|make-)/.test(f)), []);
  const pkg = JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8"));
  assert.ok(pkg.dependencies.tsx, "tsx (bin/colony.mjs registers it) is a runtime dependency");
  assert.equal(pkg.devDependencies?.tsx, undefined);
});

test("installed from the tarball: colony --version, gguf inspect on a seed model, profile detect, the seed agents are found", { timeout: 60_000 }, async () => {
  const outside = { cwd: prefix, env: { ...process.env, COLONY_LOG_LEVEL: "silent", HOME: dir } };
  const version = await run(colony, ["--version"], outside);
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8")).version);
  const seed = path.join(prefix, "node_modules", "colony", "models", "seed-add.gguf");
  assert.ok(existsSync(seed), "the seed model is installed");
  const inspect = await run(colony, ["gguf", "inspect", seed], outside);
  assert.match(inspect.stdout, /general\.name\s+STRING\s+"seed-add"/);
  // The device profiles ship where node/profile.ts looks for them.
  const profile = await run(colony, ["profile", "detect", "--json"], outside);
  assert.match(JSON.parse(profile.stdout).profile, /^[a-z0-9-]+$/);
  // The default agents (one per seed model) resolve inside the installed package, not the repo.
  const probe = `const { loadAgents } = await import("colony/node/agents/agents-file.ts"); const s = loadAgents(undefined); console.log(JSON.stringify({ baseDir: s.baseDir, models: s.genomes.map((g) => g.model.split("#")[0]) }));`;
  const agents = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", probe], outside);
  const spec: { baseDir: string; models: string[] } = JSON.parse(agents.stdout.trim().split("\n").pop()!);
  assert.equal(spec.models.length, 4, agents.stdout);
  assert.ok(!spec.baseDir.startsWith(repo + path.sep), `${spec.baseDir} is inside the installed package, not the repo (installed by ${installedBy})`);
  for (const m of spec.models) assert.ok(existsSync(path.resolve(spec.baseDir, m)), `${m} is installed next to the manifest`);
});
