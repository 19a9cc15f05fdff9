import { util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DnnlAddon } from './addon.js';
import { allocOutput, overwritable } from './pool.js';
import { f32, outputOf } from './tensors.js';

/** An output that is `t`'s data, updated in place: one more reference to it, as the cpu Reshape returns. */
function sameData(backend: MathBackendCPU, t: TensorInfo): TensorInfo {
  backend.incRef(t.dataId);
  return { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
}

/**
 * Kernels of the training step that only the `native` backend has (the model and the optimizer
 * check `tf.getKernel(name, backend)` and keep their composite ops elsewhere). Every input is
 * float32; channels are the last axis.
 *
 * - batchNormTrain: inputs {x, scale, offset}, attrs {eps} → [y, mean, invStd, variance (biased)]
 * - batchNormTrainGrad: inputs {x, dy, scale, mean, invStd} → [dx, dScale, dOffset]
 * - batchNormPreluTrain: inputs {x, scale, offset, alpha}, attrs {eps} → [z, mean, invStd, variance]:
 *   z = prelu(batch norm(x)), the batch norm's output never stored
 * - batchNormPreluTrainGrad: inputs {x, dy, scale, offset, alpha, mean, invStd} → [dx, dScale, dOffset, dAlpha]
 * - preluGrad: inputs {x, alpha, dy} → [dx, dAlpha] (alpha of shape [C])
 * - sgdStep: inputs {param, grad, buf?}, attrs {weightDecay, momentum, lr} → [param'] or [param', buf']
 * - adamStep: inputs {param, grad, m?, v?}, attrs {weightDecay, beta1, beta2, bc2Sqrt, eps, stepSize}
 *   → [param', m', v']
 */
export const TRAINING_KERNELS = {
  batchNormTrain: 'MtlBatchNormTrain',
  batchNormTrainGrad: 'MtlBatchNormTrainGrad',
  batchNormPreluTrain: 'MtlBatchNormPreluTrain',
  batchNormPreluTrainGrad: 'MtlBatchNormPreluTrainGrad',
  preluGrad: 'MtlPreluGrad',
  sgdStep: 'MtlSgdStep',
  adamStep: 'MtlAdamStep',
} as const;

function check(name: string, inputs: Record<string, TensorInfo | undefined>, like: TensorInfo): void {
  for (const [k, t] of Object.entries(inputs)) {
    if (t === undefined) continue;
    if (t.dtype !== 'float32') throw new Error(`${name}: ${k} is ${t.dtype}, expected float32`);
    if (!util.arraysEqual(t.shape, like.shape))
      throw new Error(`${name}: ${k} has shape [${t.shape}], expected [${like.shape}]`);
  }
}

function channelsOf(name: string, x: TensorInfo, perChannel: Record<string, TensorInfo>): number {
  const c = x.shape[x.shape.length - 1] ?? 0;
  if (x.shape.length < 1 || c < 1) throw new Error(`${name}: x of shape [${x.shape}] has no channel axis`);
  for (const [k, t] of Object.entries(perChannel)) {
    if (t.dtype !== 'float32' || t.shape.length !== 1 || t.shape[0] !== c)
      throw new Error(`${name}: ${k} has shape [${t.shape}] (${t.dtype}), expected float32 [${c}]`);
  }
  if (x.dtype !== 'float32') throw new Error(`${name}: x is ${x.dtype}, expected float32`);
  return c;
}

export function trainingKernels(addon: DnnlAddon): KernelConfig[] {
  const batchNormTrain: KernelFunc = (args) => {
    const { x, scale, offset } = args.inputs as Record<string, TensorInfo>;
    const { eps } = args.attrs as { eps: number };
    const backend = args.backend as MathBackendCPU;
    const c = channelsOf(TRAINING_KERNELS.batchNormTrain, x!, { scale: scale!, offset: offset! });
    const y = allocOutput(backend, util.sizeFromShape(x!.shape));
    const [mean, invStd, variance] = [0, 1, 2].map(() => new Float32Array(c)) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    addon.batchNormForward(
      f32(backend, x!),
      f32(backend, scale!),
      f32(backend, offset!),
      y,
      mean,
      invStd,
      variance,
      c,
      eps,
    );
    return [
      outputOf(backend, x!.shape, y),
      outputOf(backend, [c], mean),
      outputOf(backend, [c], invStd),
      outputOf(backend, [c], variance),
    ];
  };

  const batchNormTrainGrad: KernelFunc = (args) => {
    const { x, dy, scale, mean, invStd } = args.inputs as Record<string, TensorInfo>;
    const backend = args.backend as MathBackendCPU;
    const name = TRAINING_KERNELS.batchNormTrainGrad;
    const c = channelsOf(name, x!, { scale: scale!, mean: mean!, invStd: invStd! });
    check(name, { dy }, x!);
    const dx = allocOutput(backend, util.sizeFromShape(x!.shape));
    const dScale = new Float32Array(c);
    const dOffset = new Float32Array(c);
    addon.batchNormBackward(
      f32(backend, x!),
      f32(backend, dy!),
      f32(backend, scale!),
      f32(backend, mean!),
      f32(backend, invStd!),
      dx,
      dScale,
      dOffset,
      c,
    );
    return [outputOf(backend, x!.shape, dx), outputOf(backend, [c], dScale), outputOf(backend, [c], dOffset)];
  };

  const batchNormPreluTrain: KernelFunc = (args) => {
    const { x, scale, offset, alpha } = args.inputs as Record<string, TensorInfo>;
    const { eps } = args.attrs as { eps: number };
    const backend = args.backend as MathBackendCPU;
    const c = channelsOf(TRAINING_KERNELS.batchNormPreluTrain, x!, {
      scale: scale!,
      offset: offset!,
      alpha: alpha!,
    });
    const z = allocOutput(backend, util.sizeFromShape(x!.shape));
    const [mean, invStd, variance] = [0, 1, 2].map(() => new Float32Array(c)) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    addon.batchNormPreluForward(
      f32(backend, x!),
      f32(backend, scale!),
      f32(backend, offset!),
      f32(backend, alpha!),
      z,
      mean,
      invStd,
      variance,
      c,
      eps,
    );
    return [
      outputOf(backend, x!.shape, z),
      outputOf(backend, [c], mean),
      outputOf(backend, [c], invStd),
      outputOf(backend, [c], variance),
    ];
  };

  const batchNormPreluTrainGrad: KernelFunc = (args) => {
    const { x, dy, scale, offset, alpha, mean, invStd } = args.inputs as Record<string, TensorInfo>;
    const backend = args.backend as MathBackendCPU;
    const name = TRAINING_KERNELS.batchNormPreluTrainGrad;
    const c = channelsOf(name, x!, {
      scale: scale!,
      offset: offset!,
      alpha: alpha!,
      mean: mean!,
      invStd: invStd!,
    });
    check(name, { dy }, x!);
    const dx = allocOutput(backend, util.sizeFromShape(x!.shape));
    const [dScale, dOffset, dAlpha] = [0, 1, 2].map(() => new Float32Array(c)) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    addon.batchNormPreluBackward(
      f32(backend, x!),
      f32(backend, dy!),
      f32(backend, scale!),
      f32(backend, offset!),
      f32(backend, alpha!),
      f32(backend, mean!),
      f32(backend, invStd!),
      dx,
      dScale,
      dOffset,
      dAlpha,
      c,
    );
    return [
      outputOf(backend, x!.shape, dx),
      outputOf(backend, [c], dScale),
      outputOf(backend, [c], dOffset),
      outputOf(backend, [c], dAlpha),
    ];
  };

  const preluGrad: KernelFunc = (args) => {
    const { x, alpha, dy } = args.inputs as Record<string, TensorInfo>;
    const backend = args.backend as MathBackendCPU;
    const name = TRAINING_KERNELS.preluGrad;
    const c = channelsOf(name, x!, { alpha: alpha! });
    check(name, { dy }, x!);
    const dx = allocOutput(backend, util.sizeFromShape(x!.shape));
    const dAlpha = new Float32Array(c);
    addon.preluBackward(f32(backend, x!), f32(backend, alpha!), f32(backend, dy!), dx, dAlpha, c);
    return [outputOf(backend, x!.shape, dx), outputOf(backend, [c], dAlpha)];
  };

  const sgdStep: KernelFunc = (args) => {
    const { param, grad, buf } = args.inputs as Record<string, TensorInfo | undefined>;
    const { weightDecay, momentum, lr } = args.attrs as { weightDecay: number; momentum: number; lr: number };
    const backend = args.backend as MathBackendCPU;
    check(TRAINING_KERNELS.sgdStep, { param, grad, buf }, param!);
    const n = util.sizeFromShape(param!.shape);
    const hasBuf = buf !== undefined && momentum !== 0;
    // In place where nothing else can see the arrays (the element-wise pass reads each element before it
    // writes it); the output is then the input's data, one more reference to it.
    const pIn = overwritable(backend, param!);
    const bIn = hasBuf ? overwritable(backend, buf) : null;
    const out = pIn ?? allocOutput(backend, n);
    const bufOut = momentum === 0 ? null : (bIn ?? allocOutput(backend, n));
    addon.sgdStep(
      f32(backend, param!),
      f32(backend, grad!),
      hasBuf ? f32(backend, buf) : null,
      out,
      bufOut,
      weightDecay,
      momentum,
      lr,
    );
    const p = pIn ? sameData(backend, param!) : outputOf(backend, param!.shape, out);
    if (!bufOut) return [p];
    return [p, bIn ? sameData(backend, buf!) : outputOf(backend, param!.shape, bufOut)];
  };

  const adamStep: KernelFunc = (args) => {
    const { param, grad, m, v } = args.inputs as Record<string, TensorInfo | undefined>;
    const a = args.attrs as {
      weightDecay: number;
      beta1: number;
      beta2: number;
      bc2Sqrt: number;
      eps: number;
      stepSize: number;
    };
    const backend = args.backend as MathBackendCPU;
    check(TRAINING_KERNELS.adamStep, { param, grad, m, v }, param!);
    const n = util.sizeFromShape(param!.shape);
    const ins = [param!, m, v].map((t) => (t ? overwritable(backend, t) : null));
    const [out, mOut, vOut] = ins.map((a) => a ?? allocOutput(backend, n)) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    addon.adamStep(
      f32(backend, param!),
      f32(backend, grad!),
      m ? f32(backend, m) : null,
      v ? f32(backend, v) : null,
      out,
      mOut,
      vOut,
      a.weightDecay,
      a.beta1,
      a.beta2,
      a.bc2Sqrt,
      a.eps,
      a.stepSize,
    );
    return [param!, m, v].map((t, i) =>
      ins[i] ? sameData(backend, t!) : outputOf(backend, param!.shape, [out, mOut, vOut][i]!),
    );
  };

  const configs: [string, KernelFunc][] = [
    [TRAINING_KERNELS.batchNormTrain, batchNormTrain],
    [TRAINING_KERNELS.batchNormTrainGrad, batchNormTrainGrad],
    [TRAINING_KERNELS.batchNormPreluTrain, batchNormPreluTrain],
    [TRAINING_KERNELS.batchNormPreluTrainGrad, batchNormPreluTrainGrad],
    [TRAINING_KERNELS.preluGrad, preluGrad],
    [TRAINING_KERNELS.sgdStep, sgdStep],
    [TRAINING_KERNELS.adamStep, adamStep],
  ];
  return configs.map(([kernelName, kernelFunc]) => ({ kernelName, backendName: 'native', kernelFunc }));
}
