/**
 * Who an agent is, for the market: the node that hosts it, its id there, and its genome hash when
 * the node sent one. Agent ids are names chosen by nodes; two nodes may both call an agent
 * `seed-add`, and a node may rename its agents. So what the market learns (track record, penalty,
 * "already failed this task") is keyed by the agent's NODE and its GENOME: an agent renamed on
 * its node keeps its record and its penalty; the same genome on another node is another record
 * (different hardware, and no node can borrow another's record or shift failures onto it); an agent
 * id that another node also uses is a different agent.
 */
export interface AgentRef {
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
}

/** The key of an agent's record and penalty; without a genome hash, its node and id. */
export function recordKey(a: AgentRef): string {
  return a.genome ? `${a.nodeId}/g:${a.genome}` : `${a.nodeId}/a:${a.agentId}`;
}
