/**
 * The sealed evaluation: every living agent answers every sealed task through the node's own agent
 * code (node/agents/agent.ts on node/llama/llama-runtime.ts: the agent's genome, prompt template and
 * sampling, llama.cpp on one thread) in this process. Time is measured per task (prompt + generation,
 * the agent awake); joules come from the agent's node's device profile on that time, as the node
 * prices a finished task (node/cost-model.ts measuredCost with the node's injected probe readings).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { silentLogger } from "../common/logger.ts";
import { Agent } from "../node/agents/agent.ts";
import { measuredCost } from "../node/cost-model.ts";
import { LlamaRuntime } from "../node/llama/llama-runtime.ts";
import type { ProbeSnapshot } from "../node/probe.ts";
import { resolveProfile } from "../node/profile.ts";
import { getSkill } from "../skills/index.ts";
import type { Matrix } from "./_ecosystem-baselines.ts";
import type { LiveAgent } from "./_ecosystem-fleet.ts";
import type { NodeSpec, Task } from "./_ecosystem-population.ts";

/** `agents[i]` answers `tasks[j]`: ok[i][j], seconds[i][j], joules[i][j]. */
export async function sealedMatrix(agents: LiveAgent[], tasks: Task[], nodes: NodeSpec[], threads: number): Promise<Matrix> {
  const dir = mkdtempSync(path.join(tmpdir(), "ecosystem-eval-"));
  const runtime = new LlamaRuntime({ threads, gpuLayers: 0, modelsDir: dir, logger: silentLogger });
  await runtime.start();
  const m: Matrix = { agents: agents.map((a) => `${a.nodeId}/${a.agentId}`), tasks: tasks.map((t) => t.skill), ok: [], seconds: [], joules: [] };
  try {
    for (const a of agents) {
      const node = nodes.find((n) => n.nodeId === a.nodeId)!;
      const profile = resolveProfile(node.profile);
      const snapshot = { cpuLoad: 0, freeMemMB: 0, totalMemMB: 0, at: 0, ...node.inject } as ProbeSnapshot;
      const facts = await runtime.verify(a.modelFile);
      const adapter = a.adapterFile ? { file: (await runtime.verifyAdapter(a.adapterFile, undefined, facts)).verifiedFile } : undefined;
      const agent = new Agent(a.genome, facts, runtime, Date.now, { generation: a.generation, adapter });
      await agent.wake({ threads });
      const ok: boolean[] = [];
      const secs: number[] = [];
      const joules: number[] = [];
      for (const t of tasks) {
        const skill = getSkill(t.skill);
        // An agent asked outside its skills answers anyway: a baseline that routes blindly pays for it.
        const r = await agent.generate(t.prompt, { maxTokens: skill.maxAnswerChars + 2 }).catch(() => undefined);
        const ms = r ? r.promptMs + r.generateMs : 0;
        ok.push(Boolean(r && skill.check(r.text, t)));
        secs.push(ms / 1000);
        joules.push(measuredCost({ computeMs: ms, threads, snapshot, profile }).energyJ);
      }
      await agent.sleep();
      m.ok.push(ok);
      m.seconds.push(secs);
      m.joules.push(joules);
    }
  } finally {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return m;
}
