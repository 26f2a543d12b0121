/**
 * Each agent's latest verified successes (prompt and output, judged by a check or by feedback, not
 * by plain delivery): the material of the few-shot variation operator. A small ring per agent, in
 * memory only: the collective mind's cold cache (issue 10) is the durable store of experiences.
 */
import type { MarketEventBus } from "../market/events.ts";

export interface Exemplar {
  prompt: string;
  output: string;
}

export class Exemplars {
  private readonly byAgent = new Map<string, Exemplar[]>();
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly events: MarketEventBus, private readonly perAgent = 8, private readonly maxChars = 512) {}

  start(): void {
    this.unsubscribe = [
      this.events.on("taskFinished", (e) => {
        const d = e.delivered;
        if (!d || !d.verdict.success || d.verdict.source === "delivery") return;
        if (e.prompt.length + d.output.length > this.maxChars) return;
        const key = `${d.nodeId}/${d.agentId}`;
        const ring = this.byAgent.get(key) ?? [];
        ring.push({ prompt: e.prompt, output: d.output });
        if (ring.length > this.perAgent) ring.shift();
        this.byAgent.set(key, ring);
      }),
    ];
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  of(nodeId: string, agentId: string): readonly Exemplar[] {
    return this.byAgent.get(`${nodeId}/${agentId}`) ?? [];
  }
}
