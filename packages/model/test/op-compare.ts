// Op-by-op comparison of a backend against the pure-JavaScript cpu backend, shared by the wasm and
// webgpu op tests: the same cases (the MTLFace networks' training paths), the same error measure.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm } from '@mtlface/model';
import { input, relToMax, runOn } from '@mtlface/backend/testing';
import type { Input } from '@mtlface/backend/testing';

export type Compare = (
  what: string,
  inputs: Input[],
  f: (...xs: tf.Tensor[]) => tf.Tensor[],
  tol?: number,
) => Promise<void>;

/** Runs f on `backend` and on cpu and asserts every output within `tol` (relative to its largest value). */
export function compareOn(backend: string, defaultTol = 2e-5): Compare {
  return async (what, inputs, f, tol = defaultTol) => {
    const got = await runOn(backend, inputs, f);
    const ref = await runOn('cpu', inputs, f);
    assert.equal(got.length, ref.length);
    got.forEach((g, i) => {
      const d = relToMax(g, ref[i]!);
      assert.ok(d < tol, `${what} output ${i}: ${backend} vs cpu ${d}`);
    });
  };
}

/** f's output and the gradients of Σ f(xs)·dy with respect to each of its n inputs (dy is input n). */
export function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, n: number) {
  return (...xs: tf.Tensor[]): tf.Tensor[] => {
    const dy = xs[n]!;
    const args = xs.slice(0, n);
    return [f(...args), ...tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), dy)))(args)];
  };
}

/** The backbone's stride subsampling (reshape + strided slice) of [4,8,8,16] to [4,4,4,16], with its gradient. */
export const subsampleCase = {
  inputs: (): Input[] => [input([4, 8, 8, 16], 40), input([4, 4, 4, 16], 41)],
  f: withGrads(
    (a) =>
      tf.reshape(
        tf.slice(tf.reshape(a!, [4, 4, 2, 4, 2, 16]), [0, 0, 0, 0, 0, 0], [4, 4, 1, 4, 1, 16]),
        [4, 4, 4, 16],
      ),
    1,
  ),
};

/** Training batch norm of `shape` (channels last): output and the gradients of x, weight and bias. */
export function batchNormCase(shape: number[]): { inputs: Input[]; f: (...xs: tf.Tensor[]) => tf.Tensor[] } {
  const c = shape[shape.length - 1]!;
  return {
    inputs: [input(shape, 50), input([c], 51), input([c], 52), input(shape, 53)],
    f: (x, w, b, dy) => {
      const bn = new BatchNorm(c);
      bn.weight.assign(w!);
      bn.bias.assign(b!);
      const xv = tf.variable(x!);
      const { grads, value } = tf.variableGrads(
        () => tf.sum(tf.mul(bn.forward(xv), dy!)) as tf.Scalar,
        [xv, bn.weight, bn.bias],
      );
      const out = [bn.forward(x!), grads[xv.name]!, grads[bn.weight.name]!, grads[bn.bias.name]!].map((t) =>
        t.clone(),
      );
      tf.dispose([xv, value, ...Object.values(grads)]);
      bn.dispose();
      return out;
    },
  };
}

/** conv2d of x[xs] by w[ws], stride s, symmetric padding p: output and both gradients. */
export function convCase(
  xs: readonly number[],
  ws: readonly number[],
  s: number,
  p: number,
): { inputs: Input[]; f: (...xs: tf.Tensor[]) => tf.Tensor[] } {
  const oh = Math.floor((xs[1]! + 2 * p - ws[0]!) / s) + 1;
  const ow = Math.floor((xs[2]! + 2 * p - ws[1]!) / s) + 1;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [p, p],
    [p, p],
    [0, 0],
  ];
  return {
    inputs: [input([...xs], 60), input([...ws], 61), input([xs[0]!, oh, ow, ws[3]!], 62)],
    f: withGrads((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, pad), 2),
  };
}

/**
 * Values 10 ± 0.006 over [4,32,32,16], a batch norm's N·H·W per channel: `exactMean` is channel 0's mean
 * in float64. A float32 running sum loses the spread; 5e-7 is half an ulp at 10.
 */
export function shiftedBatch(): { shifted: Input; exactMean: number } {
  const x = input([4, 32, 32, 16], 80);
  const shifted = { shape: x.shape, values: x.values.map((v) => 10 + 0.01 * v) };
  let exact = 0;
  for (let i = 0; i < shifted.values.length; i += 16) exact += shifted.values[i]!;
  return { shifted, exactMean: exact / 4096 };
}

/** Sum and mean of t over `axis` (null: all), as the reductions under the batch-norm statistics. */
export function sumMean(axis: number | readonly number[] | null, keepDims: boolean) {
  return (t: tf.Tensor): tf.Tensor[] => {
    const ax = axis === null ? undefined : [axis].flat();
    return [tf.sum(t, ax, keepDims), tf.mean(t, ax, keepDims)];
  };
}
