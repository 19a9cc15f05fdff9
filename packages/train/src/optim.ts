// SGD (momentum) and Adam with PyTorch 1.13's exact update rules, on tfjs Variables.
// Weight decay is per parameter (0 for those the recipe excludes) and is added to the gradient
// the optimizer receives, which the training loop has already unscaled.
import * as tf from '@tensorflow/tfjs-core';
import { hasTrainingKernel, TRAINING_KERNELS } from '@mtlface/model';

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
    const native = hasTrainingKernel(TRAINING_KERNELS.sgdStep);
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        if (native && p.variable.dtype === 'float32' && grads[i]!.dtype === 'float32') {
          // one pass: the same float32 operations as below, in C++ (bit-identical)
          const buf = this.momentum !== 0 ? this.slot(p, 'momentum_buffer') : undefined;
          const [param, next] = tf
            .engine()
            .runKernel(
              TRAINING_KERNELS.sgdStep,
              buf ? { param: p.variable, grad: grads[i]!, buf } : { param: p.variable, grad: grads[i]! },
              { weightDecay: p.weightDecay, momentum: this.momentum, lr },
            ) as tf.Tensor[];
          if (next) this.setSlot(p, 'momentum_buffer', next);
          p.variable.assign(param!);
          return;
        }
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
    const native = hasTrainingKernel(TRAINING_KERNELS.adamStep);
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        if (native && p.variable.dtype === 'float32' && grads[i]!.dtype === 'float32') {
          // one pass: the same float32 operations as below, in C++ (bit-identical)
          const m0 = this.slot(p, 'exp_avg');
          const v0 = this.slot(p, 'exp_avg_sq');
          const inputs: Record<string, tf.Tensor> = { param: p.variable, grad: grads[i]! };
          if (m0) inputs.m = m0;
          if (v0) inputs.v = v0;
          const [param, m, v] = tf.engine().runKernel(TRAINING_KERNELS.adamStep, inputs, {
            weightDecay: p.weightDecay,
            beta1: this.beta1,
            beta2: this.beta2,
            bc2Sqrt,
            eps: this.eps,
            stepSize,
          }) as tf.Tensor[];
          this.setSlot(p, 'exp_avg', m!);
          this.setSlot(p, 'exp_avg_sq', v!);
          p.variable.assign(param!);
          return;
        }
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
}
