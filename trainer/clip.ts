/**
 * Global-norm gradient clipping: all gradients together are scaled by min(1, maxNorm / ||g||), so
 * one outlier batch cannot throw the weights far, while the direction of the update is kept.
 */
export function globalNorm(grads: ReadonlyMap<string, Float32Array>): number {
  // Accumulate in a double: millions of float32 squares would lose precision in a float sum.
  let sum = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sum += g[i]! * g[i]!;
  return Math.sqrt(sum);
}

/** Scales `grads` in place when their global norm exceeds maxNorm; returns the norm before clipping. */
export function clipGlobalNorm(grads: Map<string, Float32Array>, maxNorm: number): number {
  const norm = globalNorm(grads);
  if (maxNorm > 0 && norm > maxNorm && Number.isFinite(norm)) {
    const scale = maxNorm / norm;
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i]! *= scale;
  }
  return norm;
}
