/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"): Adam's update plus a weight
 * decay applied straight to the weights, not folded into the gradient, so the decay does not get
 * rescaled by Adam's per-weight step size.
 *
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * wd * p                                   (decoupled decay, only where decay(name))
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 */
export interface AdamWOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.95 (the usual choice for small language models; 0.999 reacts slowly). */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay. Default 0.01. */
  weightDecay?: number;
  /**
   * Which tensors are decayed. Default: every tensor with more than one row, i.e. not the RMSNorm
   * gains (decaying a gain pulls it towards 0, which is the wrong prior for a multiplier of 1).
   */
  decay?: (name: string, tensor: Float32Array) => boolean;
}

export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

const defaultDecay = (name: string): boolean => !name.includes("norm");

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly decay: (name: string, tensor: Float32Array) => boolean;
  /** Number of updates applied so far (Adam's t, used for bias correction). */
  step = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();

  constructor(params: ReadonlyMap<string, Float32Array>, opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.95;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.decay = opts.decay ?? defaultDecay;
    for (const [name, p] of params) {
      this.m.set(name, new Float32Array(p.length));
      this.v.set(name, new Float32Array(p.length));
    }
  }

  /** Applies one update to `params` in place from `grads` (same names and lengths). */
  update(params: Map<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.step++;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - Math.pow(b1, this.step);
    const bc2 = 1 - Math.pow(b2, this.step);
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue; // frozen tensor (e.g. the base weights under LoRA)
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decayFactor = this.decay(name, p) ? 1 - lr * this.weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = b1 * m[i]! + (1 - b1) * gi;
        const vi = b2 * v[i]! + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i]! * decayFactor - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
  }

  state(): AdamWState {
    return { step: this.step, m: this.m, v: this.v };
  }

  /** Restores moments and step from a checkpoint; lengths must match (checked by checkpoint.ts). */
  load(state: AdamWState): void {
    this.step = state.step;
    for (const [name, arr] of state.m) this.m.get(name)?.set(arr);
    for (const [name, arr] of state.v) this.v.get(name)?.set(arr);
  }
}
