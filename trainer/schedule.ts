/**
 * Learning-rate schedule: linear warmup to the peak, then a half cosine down to `minLr` at
 * `totalSteps`. Steps are 0-based: step 0 is the first update. Warmup keeps Adam's first updates
 * small while its second-moment estimate is still noisy; the cosine tail lets the last steps settle.
 */
export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Number of warmup steps; 0 starts at the peak. */
  warmupSteps: number;
  /** Total number of steps; the schedule reaches minLr on the last one. */
  totalSteps: number;
  /** Learning rate at the end of the decay. Default lr / 10. */
  minLr?: number;
}

export function learningRateAt(step: number, o: ScheduleOptions): number {
  const minLr = o.minLr ?? o.lr / 10;
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const decaySteps = o.totalSteps - o.warmupSteps - 1;
  if (decaySteps <= 0) return o.lr;
  const progress = Math.min(1, Math.max(0, (step - o.warmupSteps) / decaySteps));
  return minLr + 0.5 * (o.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
