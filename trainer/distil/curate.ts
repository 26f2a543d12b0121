/**
 * Curation: from the parents' experiences (and verified samples), the training set of a distilled
 * child. Pure: text and records in, pairs + a sha256 out, so the same inputs give the same dataset
 * on any machine, and a resumed job can check that it trains on the data it started with.
 *
 * Rules, in order: only verified successes (a machine check or the submitter's feedback; a bare
 * delivery is not proof) of the parent agents on the job's skills; never a prompt of the gate's
 * held-out set; exact (prompt, completion) duplicates dropped, then at most one completion per
 * prompt (the earliest); each skill capped at the smallest skill's count x a factor (or an explicit
 * cap) so one chatty skill does not drown the others.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ColonyError } from "../../common/errors.ts";
import { formatIssues } from "../../common/config.ts";
import { hashString32, Rng } from "../../common/random.ts";
import { ExperienceSchema, isVerifiedSuccess, type Experience } from "../../common/experience.ts";
import { DistilErrors } from "./errors.ts";

/** One line of `colony experience export`: an experience plus the completion to train on. */
export const ExportedExperienceSchema = ExperienceSchema.extend({ completion: z.string().max(256 * 1024).optional() });
export type ExportedExperience = z.infer<typeof ExportedExperienceSchema>;

export interface DistilPair {
  prompt: string;
  completion: string;
  skill: string;
}

/** A candidate for the dataset: from an experience, or from verified sampling ("sample"). */
export interface Candidate extends DistilPair {
  verified: boolean;
  agentId: string;
  /** Orders duplicates: the earliest is kept. */
  at: number;
}

export interface CurateOptions {
  skills: readonly string[];
  /** Only these agents' candidates count (the parents). */
  agents: ReadonlySet<string>;
  /** Gate prompts by skill: never trained on. */
  exclude: ReadonlyMap<string, ReadonlySet<string>>;
  /** Default 2. */
  balanceFactor?: number;
  perSkillCap?: number;
  /** Seeds which pairs survive a cap. */
  seed: number;
}

export interface Curated {
  /** In canonical order: by skill, then prompt, then completion. */
  pairs: DistilPair[];
  sha256: string;
  counts: Record<string, number>;
  dropped: { unverified: number; otherSkill: number; otherAgent: number; gate: number; duplicate: number; empty: number; capped: number };
}

/** Parses an export file's text; a bad line is DISTIL_EXPERIENCES_INVALID naming the line. */
export function parseExperienceLines(text: string, source = "experiences"): ExportedExperience[] {
  const out: ExportedExperience[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new ColonyError(DistilErrors.DISTIL_EXPERIENCES_INVALID, `${source}:${i + 1}: not valid JSON (${(err as Error).message})`, { line: i + 1 });
    }
    const r = ExportedExperienceSchema.safeParse(value);
    if (!r.success) throw new ColonyError(DistilErrors.DISTIL_EXPERIENCES_INVALID, `${source}:${i + 1}: ${formatIssues(r.error).slice(0, 3).join("; ")}`, { line: i + 1 });
    out.push(r.data);
  }
  return out;
}

/** An experience as a dataset candidate: the exported completion when present, else the output. */
export function experienceCandidate(e: ExportedExperience): Candidate {
  return { prompt: e.prompt, completion: e.completion ?? e.output, skill: e.skill, verified: isVerifiedSuccess(e), agentId: e.agentId, at: e.at };
}

/**
 * The reserved gate slice of a skill that has no generator: verified successes whose prompt hashes
 * (with the gate seed) into 1 of 5 buckets, first `perSkill` in hash order. Deterministic and
 * independent of how many experiences there are, so curation can exclude exactly these prompts.
 */
export function reservedGateSlice(experiences: readonly Pick<Experience, "skill" | "prompt" | "output" | "verdict">[], skill: string, perSkill: number, seed: string): Array<{ prompt: string; output: string }> {
  const byPrompt = new Map<string, { prompt: string; output: string; h: number }>();
  for (const e of experiences) {
    if (e.skill !== skill || !isVerifiedSuccess(e) || byPrompt.has(e.prompt)) continue;
    const h = hashString32(`${seed}\u0000${skill}\u0000${e.prompt}`);
    if (h % 5 === 0) byPrompt.set(e.prompt, { prompt: e.prompt, output: e.output, h });
  }
  return [...byPrompt.values()].sort((a, b) => a.h - b.h || (a.prompt < b.prompt ? -1 : 1)).slice(0, perSkill).map(({ prompt, output }) => ({ prompt, output }));
}

function compare(a: DistilPair, b: DistilPair): number {
  if (a.skill !== b.skill) return a.skill < b.skill ? -1 : 1;
  if (a.prompt !== b.prompt) return a.prompt < b.prompt ? -1 : 1;
  return a.completion < b.completion ? -1 : a.completion > b.completion ? 1 : 0;
}

/** The canonical JSONL of a dataset (what is hashed and written to the job dir). */
export function canonicalJsonl(pairs: readonly DistilPair[]): string {
  return pairs.map((p) => JSON.stringify({ prompt: p.prompt, completion: p.completion, skill: p.skill })).join("\n") + (pairs.length ? "\n" : "");
}

export function datasetSha256(pairs: readonly DistilPair[]): string {
  return createHash("sha256").update(canonicalJsonl([...pairs].sort(compare))).digest("hex");
}

export function curate(candidates: readonly Candidate[], o: CurateOptions): Curated {
  const dropped = { unverified: 0, otherSkill: 0, otherAgent: 0, gate: 0, duplicate: 0, empty: 0, capped: 0 };
  const skills = new Set(o.skills);
  // Earliest first, ties broken by content, so "the first" does not depend on the input order.
  const ordered = [...candidates].sort((a, b) => a.at - b.at || compare(a, b));
  const bySkill = new Map<string, DistilPair[]>(o.skills.map((s) => [s, []]));
  const seenPrompt = new Set<string>();
  const seenPair = new Set<string>();
  for (const c of ordered) {
    if (!skills.has(c.skill)) dropped.otherSkill++;
    else if (!o.agents.has(c.agentId)) dropped.otherAgent++;
    else if (!c.verified) dropped.unverified++;
    else if (c.completion.trim() === "") dropped.empty++;
    else if (o.exclude.get(c.skill)?.has(c.prompt)) dropped.gate++;
    else {
      const pairKey = `${c.skill}\u0000${c.prompt}\u0000${c.completion}`;
      const promptKey = `${c.skill}\u0000${c.prompt}`;
      if (seenPair.has(pairKey) || seenPrompt.has(promptKey)) {
        dropped.duplicate++;
        continue;
      }
      seenPair.add(pairKey);
      seenPrompt.add(promptKey);
      bySkill.get(c.skill)!.push({ prompt: c.prompt, completion: c.completion, skill: c.skill });
    }
  }
  const sizes = [...bySkill.values()].map((l) => l.length).filter((n) => n > 0);
  const cap = o.perSkillCap ?? (sizes.length ? Math.floor(Math.min(...sizes) * (o.balanceFactor ?? 2)) : 0);
  const pairs: DistilPair[] = [];
  const counts: Record<string, number> = {};
  for (const skill of [...o.skills].sort()) {
    let list = bySkill.get(skill)!.sort(compare);
    if (list.length > cap) {
      dropped.capped += list.length - cap;
      list = new Rng(`distil-curate:${o.seed}:${skill}`).shuffle(list).slice(0, cap).sort(compare);
    }
    counts[skill] = list.length;
    pairs.push(...list);
  }
  return { pairs, sha256: createHash("sha256").update(canonicalJsonl(pairs)).digest("hex"), counts, dropped };
}
