/**
 * `colony distil` flags -> a distillation spec, in one place: the local run (cli/distil/run.ts) and
 * a later `--coordinator` mode share it. Pure: no file is touched here.
 */
import path from "node:path";
import { ColonyError, CommonErrors } from "../../common/errors.ts";
import { DistilErrors } from "../../trainer/distil/errors.ts";
import type { DistilParent, DistilSpecInput } from "../../trainer/distil/spec.ts";

export interface DistilFlags {
  experiences: string;
  parent: string[];
  skills: string;
  out: string;
  mode: string;
  steps: string;
  batch: string;
  lr: string;
  seed: string;
  threads: string;
  sample?: string;
  temperature: string;
  samplePrompts: string;
  gatePerSkill: string;
  gateMargin: string;
  gateSeed: string;
  jobDir?: string;
  jobId?: string;
  resume?: boolean;
  progress?: boolean;
}

function num(name: string, value: string, integer: boolean): number {
  const ok = integer ? /^\d+$/.test(value) : /^(\d+\.?\d*|\.\d+)(e-?\d+)?$/i.test(value);
  if (!ok) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `--${name} must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** `ID=MODEL.gguf[:skill,skill]`. */
export function parseParentFlag(value: string): DistilParent {
  const m = /^([^=]+)=(.+?)(?::([a-z0-9][a-z0-9_-]*(?:,[a-z0-9][a-z0-9_-]*)*))?$/.exec(value);
  if (!m) throw new ColonyError(DistilErrors.DISTIL_SPEC_INVALID, `--parent must be ID=MODEL.gguf[:skill,skill], got ${JSON.stringify(value)}`);
  return { agentId: m[1]!, modelFile: path.resolve(m[2]!), ...(m[3] ? { skills: m[3].split(",") } : {}) };
}

export function specFromFlags(f: DistilFlags): DistilSpecInput {
  const out = path.resolve(f.out);
  const spec: DistilSpecInput = {
    jobId: f.jobId ?? `distil-${path.basename(out).replace(/[^A-Za-z0-9._:-]/g, "_")}`,
    jobDir: path.resolve(f.jobDir ?? `${out}.job`),
    experiences: path.resolve(f.experiences),
    parents: f.parent.map(parseParentFlag),
    skills: f.skills.split(",").filter((s) => s !== ""),
    mode: f.mode as "full" | "lora",
    out,
    steps: num("steps", f.steps, true),
    batch: num("batch", f.batch, true),
    lr: num("lr", f.lr, false),
    seed: num("seed", f.seed, true),
    threads: num("threads", f.threads, true),
    gate: { perSkill: num("gate-per-skill", f.gatePerSkill, true), margin: num("gate-margin", f.gateMargin, false), seed: f.gateSeed },
  };
  if (f.sample !== undefined) {
    spec.sampling = { candidates: num("sample", f.sample, true), temperature: num("temperature", f.temperature, false), prompts: num("sample-prompts", f.samplePrompts, true) };
  }
  return spec;
}
