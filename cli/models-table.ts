/** `colony models list`: the retained model catalog as a table (one line per model). */
import type { ModelCatalog } from "../common/protocol.ts";
import type { SignedManifest } from "../common/model-manifest.ts";

function size(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

function row(s: SignedManifest): string[] {
  const m = s.manifest;
  const gate = m.gate === undefined ? "-" : m.gate.passed ? "passed" : "failed";
  const parents = m.parents.map((p) => p.agentId).join(",") || "-";
  return [m.name, m.lineage, `v${m.version}`, m.sha256.slice(0, 12), size(m.bytes), m.skills.join(",") || "-", gate, parents, m.format === "gguf-lora" ? `lora on ${m.base?.slice(0, 12) ?? "?"}` : ""];
}

export function renderCatalog(cat: ModelCatalog): string {
  const rows = [["NAME", "LINEAGE", "VER", "SHA256", "SIZE", "SKILLS", "GATE", "PARENTS", ""], ...[...cat.models].sort((a, b) => (a.manifest.lineage < b.manifest.lineage ? -1 : a.manifest.lineage > b.manifest.lineage ? 1 : b.manifest.version - a.manifest.version)).map(row)];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  lines.push(`${cat.models.length} model${cat.models.length === 1 ? "" : "s"}, signed with key ${cat.keyId}${cat.omitted ? `; ${cat.omitted} older not in the catalog` : ""}`);
  return lines.join("\n");
}
