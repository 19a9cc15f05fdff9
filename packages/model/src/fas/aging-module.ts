import * as tf from '@tensorflow/tfjs-core';
import { Module, ModuleList, Sequential } from '../nn/module.js';
import { Conv2d } from '../nn/conv.js';
import { BatchNorm } from '../nn/batchnorm.js';
import { PReLU } from '../nn/activations.js';
import type { Init } from '../nn/init.js';
import { TaskRouter, routerWidth, type RouterShape } from './router.js';
import { upsampleBilinear2x } from './upsample.js';

/** Residual block of the identity conditional module: routed conv-BN pairs and two PReLUs. */
export class RoutedResidualBlock extends Module {
  readonly conv1: Sequential;
  readonly router1: TaskRouter;
  readonly conv2: Sequential;
  readonly router2: TaskRouter;
  readonly relu1: PReLU;
  readonly relu2: PReLU;
  constructor(shape: RouterShape, init: Init) {
    super();
    const c = routerWidth(shape);
    this.conv1 = this.addModule(
      'conv1',
      new Sequential([new Conv2d(c, c, 3, { padding: 1, init }), new BatchNorm(c)]),
    );
    this.router1 = this.addModule('router1', new TaskRouter(shape));
    this.conv2 = this.addModule(
      'conv2',
      new Sequential([new Conv2d(c, c, 3, { padding: 1, init }), new BatchNorm(c)]),
    );
    this.router2 = this.addModule('router2', new TaskRouter(shape));
    this.relu1 = this.addModule('relu1', new PReLU(c));
    this.relu2 = this.addModule('relu2', new PReLU(c));
  }
  forward(x: tf.Tensor4D, groups: tf.Tensor1D): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.router1.forward(this.conv1.forward(x) as tf.Tensor4D, groups);
      y = this.relu1.forward(y) as tf.Tensor4D;
      y = this.router2.forward(this.conv2.forward(y) as tf.Tensor4D, groups);
      return this.relu2.forward(tf.add(x, y)) as tf.Tensor4D;
    });
  }
}

/** Up(x_ch, in_ch, out_ch): ×2 when smaller than the skip, p = F(cat(x, skip)) + conv1×1(x); p + G(p). */
export class UpBlock extends Module {
  readonly conv: Sequential;
  readonly conv2: Sequential;
  readonly shortcut: Conv2d;
  constructor(xChannels: number, inChannels: number, outChannels: number, init: Init) {
    super();
    const o = outChannels;
    this.conv = this.addModule(
      'conv',
      new Sequential([
        new BatchNorm(inChannels),
        new PReLU(inChannels),
        new Conv2d(inChannels, o, 3, { padding: 1, init }),
        new BatchNorm(o),
        new PReLU(o),
        new Conv2d(o, o, 3, { padding: 1, init }),
      ]),
    );
    this.conv2 = this.addModule(
      'conv2',
      new Sequential([
        new BatchNorm(o),
        new PReLU(o),
        new Conv2d(o, o, 3, { padding: 1, init }),
        new BatchNorm(o),
        new PReLU(o),
        new Conv2d(o, o, 3, { padding: 1, init }),
      ]),
    );
    this.shortcut = this.addModule('shortcut', new Conv2d(xChannels, o, 1, { init }));
  }
  forward(x: tf.Tensor4D, skip: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const up = x.shape[1] < skip.shape[1] ? upsampleBilinear2x(x) : x;
      if (up.shape[1] !== skip.shape[1] || up.shape[2] !== skip.shape[2]) {
        throw new Error(`Up: feature [${up.shape}] does not match skip [${skip.shape}]`);
      }
      const p = tf.add(this.conv.forward(tf.concat([up, skip], 3)), this.shortcut.forward(up));
      return tf.add(p, this.conv2.forward(p)) as tf.Tensor4D;
    });
  }
}

export interface AgingModuleOptions {
  /** Age groups (router tasks). Default 7. */
  groups?: number;
  /** Backbone stage widths (x2..x5 channels). Default [64, 128, 256, 512]. */
  widths?: readonly [number, number, number, number];
  /** Router unit count u. Default 128. */
  unitCount?: number;
  /** Router sharing σ. Default 0.1. */
  sigma?: number;
  /** Residual blocks. Default 4. */
  repeat?: number;
  /** 'reference' = N(0, 0.01) convs with zero bias. */
  init?: 'reference' | 'zeros';
}

export interface GeneratorInputs {
  /** Source image [N,S,S,3] in [-1,1]. */
  image: tf.Tensor4D;
  x2: tf.Tensor4D;
  x3: tf.Tensor4D;
  x4: tf.Tensor4D;
  xId: tf.Tensor4D;
  /** Target age group per sample [N] (int). */
  targetGroups: tf.Tensor1D;
}

/** The identity conditional generator ("AgingModule"); output = image + residual image. */
export class AgingModule extends Module {
  readonly router: TaskRouter;
  readonly conv1: Sequential;
  readonly transform: RoutedResidualBlock[];
  readonly conv2: Sequential;
  readonly ups: [UpBlock, UpBlock, UpBlock, UpBlock];
  readonly conv3: Conv2d;
  readonly groups: number;

  constructor(options: AgingModuleOptions = {}) {
    super();
    const shape: RouterShape = {
      groups: options.groups ?? 7,
      unitCount: options.unitCount ?? 128,
      sigma: options.sigma ?? 0.1,
    };
    this.groups = shape.groups;
    const init: Init = options.init === 'zeros' ? { kind: 'zeros' } : { kind: 'normal', std: 0.01 };
    const [w1, w2, w3, w4] = options.widths ?? [64, 128, 256, 512];
    const c = routerWidth(shape);
    this.conv1 = this.addModule(
      'conv1',
      new Sequential([new Conv2d(w4, c, 1, { init }), new BatchNorm(c), new PReLU(c)]),
    );
    this.router = this.addModule('router', new TaskRouter(shape));
    this.transform = this.addModule(
      'transform',
      new ModuleList(Array.from({ length: options.repeat ?? 4 }, () => new RoutedResidualBlock(shape, init))),
    ).items;
    this.conv2 = this.addModule(
      'conv2',
      new Sequential([new Conv2d(c, w4, 1, { init }), new BatchNorm(w4), new PReLU(w4)]),
    );
    this.ups = [
      this.addModule('up_1', new UpBlock(w4, w4 + w3, w3, init)),
      this.addModule('up_2', new UpBlock(w3, w3 + w2, w2, init)),
      this.addModule('up_3', new UpBlock(w2, w2 + w1, w1, init)),
      this.addModule('up_4', new UpBlock(w1, w1 + 3, w1 / 2, init)),
    ];
    this.conv3 = this.addModule('conv3', new Conv2d(w1 / 2, 3, 1, { init }));
  }

  forward(inputs: GeneratorInputs): tf.Tensor4D {
    const { image, x2, x3, x4, xId, targetGroups } = inputs;
    if (targetGroups.shape[0] !== image.shape[0]) {
      throw new Error(`AgingModule: ${targetGroups.shape[0]} target groups for ${image.shape[0]} images`);
    }
    return tf.tidy(() => {
      let x = this.router.forward(this.conv1.forward(xId) as tf.Tensor4D, targetGroups);
      for (const block of this.transform) x = block.forward(x, targetGroups);
      x = this.conv2.forward(x) as tf.Tensor4D;
      x = this.ups[0].forward(x, x4);
      x = this.ups[1].forward(x, x3);
      x = this.ups[2].forward(x, x2);
      x = this.ups[3].forward(x, image);
      return tf.add(image, this.conv3.forward(x)) as tf.Tensor4D;
    });
  }
}
