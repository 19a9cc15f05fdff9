// SGD (momentum) and Adam with PyTorch 1.13's exact update rules, on tfjs Variables.
// Weight decay is per parameter (0 for those the recipe excludes) and is added to the gradient
// the optimizer receives, which the training loop has already unscaled.
import * as tf from '@tensorflow/tfjs-core';

export interface NamedParam {
  name: string;
  variable: tf.Variable;
  /** L2 coefficient added to this parameter's gradient (0: none). */
  weightDecay: number;
}

export interface Optimizer {
  /** Prefix of this optimizer's slots in a checkpoint: `optim.<name>.<param>.<slot>`. */
  readonly name: string;
  readonly params: readonly NamedParam[];
  /** Number of steps taken (skipped steps do not count, as with GradScaler). */
  stepCount: number;
  /** One update; `grads[i]` belongs to `params[i]`. Does not dispose the grads. */
  step(grads: readonly tf.Tensor[], lr: number): void;
  /**
   * The same update, bit for bit, from flat gradients (`grads[i]` holds `params[i]`'s values in
   * row-major order: e.g. views into the all-reduce buckets), fused into one pass per parameter
   * in JavaScript: one new array per parameter and per slot instead of one per tfjs op.
   */
  stepFlat(grads: readonly Float32Array[], lr: number): void;
  /** Slot tensors by checkpoint name (owned by the optimizer; do not dispose). */
  slots(): Map<string, tf.Tensor>;
  /** Restores slots (missing slots are an error when `stepCount > 0`). */
  loadSlots(tensors: ReadonlyMap<string, tf.Tensor>, stepCount: number): void;
  dispose(): void;
}

function checkGrads(name: string, params: readonly NamedParam[], grads: readonly tf.Tensor[]): void {
  if (grads.length !== params.length) {
    throw new Error(`${name}.step: ${grads.length} gradients for ${params.length} parameters`);
  }
  params.forEach((p, i) => {
    const g = grads[i]!;
    if (!tf.util.arraysEqual(g.shape, p.variable.shape)) {
      throw new Error(
        `${name}.step: gradient of ${p.name} has shape [${g.shape}], parameter [${p.variable.shape}]`,
      );
    }
  });
}

function checkFlat(name: string, params: readonly NamedParam[], grads: readonly Float32Array[]): void {
  if (grads.length !== params.length) {
    throw new Error(`${name}.stepFlat: ${grads.length} gradients for ${params.length} parameters`);
  }
  params.forEach((p, i) => {
    if (grads[i]!.length !== p.variable.size) {
      throw new Error(
        `${name}.stepFlat: gradient of ${p.name} has ${grads[i]!.length} values, parameter ${p.variable.size}`,
      );
    }
  });
}

const f = Math.fround;

/**
 * The values of a tensor, read only: for the cpu-derived backends the tensor's own storage (no
 * copy), for the others a download.
 */
function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

abstract class SlotOptimizer implements Optimizer {
  stepCount = 0;
  protected readonly state = new Map<string, tf.Variable>();

  constructor(
    readonly name: string,
    readonly params: readonly NamedParam[],
    private readonly slotNames: readonly string[],
  ) {
    const seen = new Set<string>();
    for (const p of params) {
      if (seen.has(p.name)) throw new Error(`${name}: parameter ${p.name} listed twice`);
      seen.add(p.name);
    }
  }

  protected key(param: NamedParam, slot: string): string {
    return `optim.${this.name}.${param.name}.${slot}`;
  }

  protected slot(param: NamedParam, slot: string): tf.Variable | undefined {
    return this.state.get(this.key(param, slot));
  }

  protected setSlot(param: NamedParam, slot: string, value: tf.Tensor): void {
    const k = this.key(param, slot);
    const v = this.state.get(k);
    if (v) v.assign(value);
    else this.state.set(k, tf.variable(value, false));
  }

  abstract step(grads: readonly tf.Tensor[], lr: number): void;
  abstract stepFlat(grads: readonly Float32Array[], lr: number): void;

  /** Replaces a slot (or creates it) with `next`, whose storage the slot takes over. */
  protected putSlot(param: NamedParam, slot: string, next: Float32Array): void {
    const t = tf.tensor(next, param.variable.shape, 'float32');
    this.setSlot(param, slot, t);
    t.dispose();
  }

  protected static putParam(param: NamedParam, next: Float32Array): void {
    const t = tf.tensor(next, param.variable.shape, 'float32');
    param.variable.assign(t);
    t.dispose();
  }

  slots(): Map<string, tf.Tensor> {
    return new Map(this.state);
  }

  loadSlots(tensors: ReadonlyMap<string, tf.Tensor>, stepCount: number): void {
    const next = new Map<string, tf.Tensor>();
    for (const p of this.params) {
      for (const s of this.slotNames) {
        const k = this.key(p, s);
        const t = tensors.get(k);
        if (!t) {
          if (stepCount > 0) throw new Error(`${this.name}: checkpoint lacks optimizer slot ${k}`);
          continue;
        }
        if (!tf.util.arraysEqual(t.shape, p.variable.shape)) {
          throw new Error(`${this.name}: slot ${k} has shape [${t.shape}], parameter [${p.variable.shape}]`);
        }
        next.set(k, t);
      }
    }
    this.dispose();
    for (const [k, t] of next) this.state.set(k, tf.variable(t, false));
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const v of this.state.values()) v.dispose();
    this.state.clear();
  }
}

/** torch.optim.SGD(momentum=m, dampening=0, nesterov=False): buf = m·buf + g (buf = g on the first step). */
export class SGD extends SlotOptimizer {
  constructor(
    params: readonly NamedParam[],
    readonly momentum: number,
    name = 'sgd',
  ) {
    super(name, params, momentum !== 0 ? ['momentum_buffer'] : []);
  }

  step(grads: readonly tf.Tensor[], lr: number): void {
    checkGrads(this.name, this.params, grads);
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        let d = grads[i]!;
        if (p.weightDecay !== 0) d = tf.add(d, tf.mul(p.variable, p.weightDecay));
        if (this.momentum !== 0) {
          const buf = this.slot(p, 'momentum_buffer');
          const next = buf ? tf.add(tf.mul(buf, this.momentum), d) : d;
          this.setSlot(p, 'momentum_buffer', next);
          d = next;
        }
        p.variable.assign(tf.sub(p.variable, tf.mul(d, lr)));
      });
    });
    this.stepCount += 1;
  }

  // Every operation rounds to f32 (Math.fround of the f64 result is the correctly rounded f32
  // result for +, −, ×, ÷ and √), and every scalar is first rounded to f32 as tfjs does when it
  // makes a scalar tensor: so this equals `step` bit for bit.
  stepFlat(grads: readonly Float32Array[], lr: number): void {
    checkFlat(this.name, this.params, grads);
    const rate = f(lr);
    const mom = f(this.momentum);
    this.params.forEach((p, i) => {
      const g = grads[i]!;
      const w = values(p.variable);
      const n = g.length;
      const wd = f(p.weightDecay);
      const next = new Float32Array(n);
      if (this.momentum === 0) {
        for (let k = 0; k < n; k++) {
          const d = wd !== 0 ? f(g[k]! + f(w[k]! * wd)) : g[k]!;
          next[k] = w[k]! - f(d * rate);
        }
      } else {
        const old = this.slot(p, 'momentum_buffer');
        const buf = old ? values(old) : null;
        const nb = new Float32Array(n);
        for (let k = 0; k < n; k++) {
          const d = wd !== 0 ? f(g[k]! + f(w[k]! * wd)) : g[k]!;
          const b = buf ? f(f(buf[k]! * mom) + d) : d;
          nb[k] = b;
          next[k] = w[k]! - f(b * rate);
        }
        this.putSlot(p, 'momentum_buffer', nb);
      }
      SlotOptimizer.putParam(p, next);
    });
    this.stepCount += 1;
  }
}

/** torch.optim.Adam (amsgrad=False) with bias correction, as torch 1.13's single-tensor path. */
export class Adam extends SlotOptimizer {
  constructor(
    params: readonly NamedParam[],
    readonly beta1: number,
    readonly beta2: number,
    readonly eps = 1e-8,
    name = 'adam',
  ) {
    super(name, params, ['exp_avg', 'exp_avg_sq']);
  }

  step(grads: readonly tf.Tensor[], lr: number): void {
    checkGrads(this.name, this.params, grads);
    const t = this.stepCount + 1;
    const bc1 = 1 - this.beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    const stepSize = lr / bc1;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        let g = grads[i]!;
        if (p.weightDecay !== 0) g = tf.add(g, tf.mul(p.variable, p.weightDecay));
        const m0 = this.slot(p, 'exp_avg') ?? tf.zerosLike(p.variable);
        const v0 = this.slot(p, 'exp_avg_sq') ?? tf.zerosLike(p.variable);
        const m = tf.add(tf.mul(m0, this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(v0, this.beta2), tf.mul(tf.mul(g, g), 1 - this.beta2));
        this.setSlot(p, 'exp_avg', m);
        this.setSlot(p, 'exp_avg_sq', v);
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), this.eps);
        p.variable.assign(tf.sub(p.variable, tf.mul(tf.div(m, denom), stepSize)));
      });
    });
    this.stepCount = t;
  }

  // As SGD.stepFlat: each operation of `step`, in its order, rounded to f32.
  stepFlat(grads: readonly Float32Array[], lr: number): void {
    checkFlat(this.name, this.params, grads);
    const t = this.stepCount + 1;
    const b1 = f(this.beta1);
    const b2 = f(this.beta2);
    const c1 = f(1 - this.beta1);
    const c2 = f(1 - this.beta2);
    const bc2Sqrt = f(Math.sqrt(1 - this.beta2 ** t));
    const stepSize = f(lr / (1 - this.beta1 ** t));
    const eps = f(this.eps);
    this.params.forEach((p, i) => {
      const g = grads[i]!;
      const w = values(p.variable);
      const n = g.length;
      const wd = f(p.weightDecay);
      const m0s = this.slot(p, 'exp_avg');
      const v0s = this.slot(p, 'exp_avg_sq');
      const m0 = m0s ? values(m0s) : null;
      const v0 = v0s ? values(v0s) : null;
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const next = new Float32Array(n);
      for (let k = 0; k < n; k++) {
        const gk = wd !== 0 ? f(g[k]! + f(w[k]! * wd)) : g[k]!;
        const mk = f(f((m0 ? m0[k]! : 0) * b1) + f(gk * c1));
        const vk = f(f((v0 ? v0[k]! : 0) * b2) + f(f(gk * gk) * c2));
        m[k] = mk;
        v[k] = vk;
        const denom = f(f(f(Math.sqrt(vk)) / bc2Sqrt) + eps);
        next[k] = w[k]! - f(f(mk / denom) * stepSize);
      }
      this.putSlot(p, 'exp_avg', m);
      this.putSlot(p, 'exp_avg_sq', v);
      SlotOptimizer.putParam(p, next);
    });
    this.stepCount = t;
  }
}
