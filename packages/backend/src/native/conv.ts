import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { DnnlAddon } from './addon.js';
import { allocOutput } from './pool.js';
import { applyActivation, f32, fallbackOf, outputOf } from './tensors.js';

type Conv2DInfo = backend_util.Conv2DInfo;

/**
 * The addon's 17 convolution parameters, or null when oneDNN cannot express
 * this geometry exactly (then the caller falls back to the cpu kernel).
 */
export function convParams(info: Conv2DInfo): Int32Array | null {
  if (info.dataFormat !== 'channelsLast') return null;
  const { top, left } = info.padInfo;
  let { bottom, right } = info.padInfo;
  const effH = (info.filterHeight - 1) * info.dilationHeight + 1;
  const effW = (info.filterWidth - 1) * info.dilationWidth + 1;
  // oneDNN requires out = (in + pads - eff) / stride + 1 (integer division); tfjs's
  // explicit/ceil paddings may not satisfy it, so derive the far-side pad.
  const outH = (h: number) => Math.floor((info.inHeight + top + h - effH) / info.strideHeight) + 1;
  const outW = (w: number) => Math.floor((info.inWidth + left + w - effW) / info.strideWidth) + 1;
  if (outH(bottom) !== info.outHeight)
    bottom = (info.outHeight - 1) * info.strideHeight + effH - info.inHeight - top;
  if (outW(right) !== info.outWidth)
    right = (info.outWidth - 1) * info.strideWidth + effW - info.inWidth - left;
  if (bottom < 0 || right < 0 || top < 0 || left < 0) return null;
  return Int32Array.of(
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    top,
    bottom,
    left,
    right,
    info.dilationHeight,
    info.dilationWidth,
  );
}

type Attrs = NamedAttrMap & {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

function info4(xShape: number[], filterShape: number[], attrs: Attrs, dilations: Attrs['dilations'] = 1) {
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
}

/** Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter over oneDNN; anything it cannot take goes to `fallback`. */
export function convKernels(addon: DnnlAddon, fallback: Map<string, KernelConfig>): KernelConfig[] {
  const cpu = (name: string): KernelFunc => fallbackOf(fallback, name);
  const conv2DCpu = cpu('Conv2D');
  const backInputCpu = cpu('Conv2DBackpropInput');
  const backFilterCpu = cpu('Conv2DBackpropFilter');

  const conv2D: KernelFunc = (args) => {
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as Attrs;
    const backend = args.backend as MathBackendCPU;
    const info = info4(x.shape, filter.shape, attrs, attrs.dilations);
    const p = x.dtype === 'float32' && filter.dtype === 'float32' ? convParams(info) : null;
    if (!p) return conv2DCpu(args);
    const y = allocOutput(backend, info.batchSize * info.outHeight * info.outWidth * info.outChannels);
    addon.conv2d(f32(backend, x), f32(backend, filter), null, y, p, 0);
    return outputOf(backend, info.outShape, y);
  };

  const conv2DBackpropInput: KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as Attrs & { inputShape: number[] };
    const backend = args.backend as MathBackendCPU;
    const info = info4(attrs.inputShape, filter.shape, attrs);
    const p = dy.dtype === 'float32' && filter.dtype === 'float32' ? convParams(info) : null;
    if (!p) return backInputCpu(args);
    const dx = allocOutput(backend, info.batchSize * info.inHeight * info.inWidth * info.inChannels);
    addon.conv2dBackpropInput(f32(backend, dy), f32(backend, filter), dx, p);
    return outputOf(backend, info.inShape, dx);
  };

  const conv2DBackpropFilter: KernelFunc = (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as Attrs & { filterShape: number[] };
    const backend = args.backend as MathBackendCPU;
    const info = info4(x.shape, attrs.filterShape, attrs);
    const p = x.dtype === 'float32' && dy.dtype === 'float32' ? convParams(info) : null;
    if (!p) return backFilterCpu(args);
    const dw = allocOutput(
      backend,
      info.filterHeight * info.filterWidth * info.inChannels * info.outChannels,
    );
    addon.conv2dBackpropFilter(f32(backend, x), f32(backend, dy), dw, p);
    return outputOf(backend, [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels], dw);
  };

  const fusedConv2D: KernelFunc = (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as Attrs & { activation?: string; leakyreluAlpha?: number };
    const backend = args.backend as MathBackendCPU;
    const info = info4(x!.shape, filter!.shape, attrs, attrs.dilations);
    const p = x!.dtype === 'float32' && filter!.dtype === 'float32' ? convParams(info) : null;
    const activation = attrs.activation ?? 'linear';
    const biasPerChannel =
      bias !== undefined && bias.shape.length === 1 && bias.shape[0] === info.outChannels;
    if (!p || (bias !== undefined && !biasPerChannel)) return cpu('FusedConv2D')(args);
    const y = allocOutput(backend, info.batchSize * info.outHeight * info.outWidth * info.outChannels);
    const fuseRelu = activation === 'relu';
    addon.conv2d(
      f32(backend, x!),
      f32(backend, filter!),
      bias ? f32(backend, bias) : null,
      y,
      p,
      fuseRelu ? 1 : 0,
    );
    const out = outputOf(backend, info.outShape, y);
    if (fuseRelu || activation === 'linear') return out;
    const act = applyActivation(
      fallback,
      backend,
      out,
      activation,
      preluActivationWeights,
      attrs.leakyreluAlpha,
    );
    backend.disposeIntermediateTensorInfo(out);
    return act;
  };

  return [
    { kernelName: 'FusedConv2D', backendName: 'native', kernelFunc: fusedConv2D },
    { kernelName: 'Conv2D', backendName: 'native', kernelFunc: conv2D },
    { kernelName: 'Conv2DBackpropInput', backendName: 'native', kernelFunc: conv2DBackpropInput },
    { kernelName: 'Conv2DBackpropFilter', backendName: 'native', kernelFunc: conv2DBackpropFilter },
  ];
}
