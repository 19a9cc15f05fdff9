// One benchmark configuration in its own process (so peak RSS is its own):
//   step.ts --backend native --arch ir-tiny --size 56 --batch 8 [--min-seconds 8] [--min-steps 3] [--profile]
// Prints one JSON line: {backend, model, size, batch, images_per_s, peak_rss_mb, steps, step_s}.
// A training step = backbone forward in training mode, linear classifier + softmax
// cross-entropy on the embedding, backward for every parameter, SGD update.
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { buildBackbone } from '@mtlface/model';
import type { BackboneArch } from '@mtlface/model';
import { initBackend, parseBackendChoice, TRAINING_KERNELS } from '@mtlface/backend';

const { values: opt } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    arch: { type: 'string', default: 'ir-tiny' },
    size: { type: 'string', default: '56' },
    batch: { type: 'string', default: '8' },
    'min-seconds': { type: 'string', default: '8' },
    'min-steps': { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
  },
});
const backend = parseBackendChoice(opt.backend!, '--backend');
const size = Number(opt.size);
const batch = Number(opt.batch);
const classes = 64;

await initBackend({ backend, log: () => {} });
const model = buildBackbone({ arch: opt.arch as BackboneArch, inputSize: size });
model.train();
const head = tf.variable(tf.randomNormal([model.config.embeddingSize, classes], 0, 0.01, 'float32', 7));
const images = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
const labels = tf.oneHot(
  tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % classes),
    'int32',
  ),
  classes,
);
const vars = [...model.parameters(), head];
const lr = 1e-3;
const oneSgdPass = tf.getKernel(TRAINING_KERNELS.sgdStep, tf.getBackend()) !== undefined;

// The loss is read back asynchronously: webgpu in Node has no synchronous read-back.
async function step(): Promise<void> {
  const loss = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const emb = model.forward(images).embedding;
      return tf.losses.softmaxCrossEntropy(labels, tf.matMul(emb, head)) as tf.Scalar;
    }, vars);
    // One variable at a time, its gradient freed after (PyTorch's SGD updates in place, so the
    // update's temporaries for every parameter are never alive together there either). Where the
    // backend has the one-pass SGD kernel (native), it is used, as the trainer's optimizer uses it:
    // PyTorch's step is one in-place pass too.
    for (const v of vars) {
      const g = grads[v.name]!;
      tf.tidy(() =>
        v.assign(
          oneSgdPass
            ? (
                tf
                  .engine()
                  .runKernel(
                    TRAINING_KERNELS.sgdStep,
                    { param: v, grad: g },
                    { weightDecay: 0, momentum: 0, lr },
                  ) as tf.Tensor[]
              )[0]!
            : tf.sub(v, tf.mul(g, lr)),
        ),
      );
      g.dispose();
    }
    return value;
  });
  await loss.data();
  loss.dispose();
}

const before = tf.memory().numTensors;
// Warm-up (primitive creation, first-use allocations), profiled for the peak of live tensor bytes.
const tfPeakBytes = (await tf.profile(() => step())).peakBytes;
if (tf.memory().numTensors !== before)
  throw new Error(`a step leaked ${tf.memory().numTensors - before} tensors`);

if (opt.profile) {
  const info = await tf.profile(async () => {
    await step();
  });
  const byKernel = new Map<string, number>();
  for (const k of info.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
  for (const [name, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.error(
      `${name.padEnd(28)} ${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%`,
    );
  }
  console.error(`total kernel time ${total.toFixed(0)} ms`);
  if (process.env.MTL_PROFILE_KERNEL) {
    const calls = info.kernels.filter((k) => k.name === process.env.MTL_PROFILE_KERNEL);
    for (const k of calls.sort((a, b) => Number(b.kernelTimeMs) - Number(a.kernelTimeMs)).slice(0, 15)) {
      console.error(
        `  ${Number(k.kernelTimeMs).toFixed(1)} ms in [${k.inputShapes.map((s) => `[${s}]`).join(' ')}] out [${k.outputShapes.map((s) => `[${s}]`).join(' ')}]`,
      );
    }
  }
}

const minSeconds = Number(opt['min-seconds']);
const minSteps = Number(opt['min-steps']);
let steps = 0;
const t0 = performance.now();
while (steps < minSteps || performance.now() - t0 < minSeconds * 1000) {
  await step();
  steps++;
}
const seconds = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    backend: tf.getBackend(),
    model: opt.arch,
    size,
    batch,
    images_per_s: Number(((steps * batch) / seconds).toFixed(3)),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    tensors_peak_mb: Math.round(tfPeakBytes / 2 ** 20),
    steps,
    step_s: Number((seconds / steps).toFixed(3)),
  }),
);
