import * as tf from '@tensorflow/tfjs-core';
import { Module, Sequential } from '../nn/module.js';
import { Conv2d } from '../nn/conv.js';
import { BatchNorm } from '../nn/batchnorm.js';
import { Dropout, FlattenCHW, PReLU } from '../nn/activations.js';
import { Linear } from '../nn/linear.js';
import type { Init } from '../nn/init.js';
import { Stage } from './units.js';
import { AttentionModule } from './attention.js';
import {
  BACKBONE_PRESETS,
  type BackboneArch,
  type BackboneShape,
  type Quad,
  type UnitMode,
} from './presets.js';

export interface BackboneOptions {
  /** A preset name; `units`, `widths`, `mode` override its fields. Default 'ir50'. */
  arch?: BackboneArch;
  units?: Quad;
  widths?: Quad;
  mode?: UnitMode;
  /** Input side in pixels, a multiple of 16. Default 112. */
  inputSize?: number;
  /** Embedding width. Default 512. */
  embeddingSize?: number;
  /** Dropout rate of the embedding head. Default 0.5. */
  dropout?: number;
  /** 'reference' = xavier-uniform convs/linears; 'zeros' for fast structure-only builds. */
  init?: 'reference' | 'zeros';
}

export interface BackboneConfig extends BackboneShape {
  inputSize: number;
  embeddingSize: number;
  dropout: number;
}

export interface BackboneFeatures {
  x1: tf.Tensor4D;
  x2: tf.Tensor4D;
  x3: tf.Tensor4D;
  x4: tf.Tensor4D;
  x5: tf.Tensor4D;
  xId: tf.Tensor4D;
  xAge: tf.Tensor4D;
  embedding: tf.Tensor2D;
}

export function resolveBackboneConfig(options: BackboneOptions = {}): BackboneConfig {
  const preset = BACKBONE_PRESETS[options.arch ?? 'ir50'];
  if (!preset)
    throw new Error(`unknown backbone arch '${options.arch}' (known: ${Object.keys(BACKBONE_PRESETS)})`);
  const inputSize = options.inputSize ?? 112;
  if (!Number.isInteger(inputSize) || inputSize <= 0 || inputSize % 16 !== 0) {
    throw new Error(`backbone inputSize must be a positive multiple of 16, got ${inputSize}`);
  }
  const cfg: BackboneConfig = {
    units: options.units ?? preset.units,
    widths: options.widths ?? preset.widths,
    mode: options.mode ?? preset.mode,
    inputSize,
    embeddingSize: options.embeddingSize ?? 512,
    dropout: options.dropout ?? 0.5,
  };
  if (cfg.units.length !== 4 || cfg.units.some((u) => !Number.isInteger(u) || u < 1)) {
    throw new Error(`backbone units must be 4 positive integers, got [${cfg.units}]`);
  }
  if (cfg.widths.length !== 4 || cfg.widths.some((w) => !Number.isInteger(w) || w < 16 || w % 16 !== 0)) {
    throw new Error(`backbone widths must be 4 multiples of 16, got [${cfg.widths}]`);
  }
  return cfg;
}

/**
 * The attention-decomposed IR-ResNet ("AIResNet"): input_layer, block1..4, fsm, output_layer.
 * NHWC input in [-1, 1] of side `inputSize`.
 */
export class Backbone extends Module {
  readonly config: BackboneConfig;
  readonly inputLayer: Sequential;
  readonly blocks: [Stage, Stage, Stage, Stage];
  readonly fsm: AttentionModule;
  readonly outputLayer: Sequential;
  readonly dropout: Dropout;

  constructor(options: BackboneOptions = {}) {
    super();
    const cfg = resolveBackboneConfig(options);
    this.config = cfg;
    const init: Init = options.init === 'zeros' ? { kind: 'zeros' } : { kind: 'xavier-uniform' };
    const [w1, w2, w3, w4] = cfg.widths;
    const se = cfg.mode === 'ir_se';
    this.inputLayer = this.addModule(
      'input_layer',
      new Sequential([
        new Conv2d(3, w1, 3, { padding: 1, bias: false, init }),
        new BatchNorm(w1),
        new PReLU(w1),
      ]),
    );
    this.blocks = [
      this.addModule('block1', new Stage(w1, w1, cfg.units[0], se, init)),
      this.addModule('block2', new Stage(w1, w2, cfg.units[1], se, init)),
      this.addModule('block3', new Stage(w2, w3, cfg.units[2], se, init)),
      this.addModule('block4', new Stage(w3, w4, cfg.units[3], se, init)),
    ];
    this.fsm = this.addModule('fsm', new AttentionModule(w4, init));
    const side = cfg.inputSize / 16;
    this.dropout = new Dropout(cfg.dropout);
    this.outputLayer = this.addModule(
      'output_layer',
      new Sequential([
        new BatchNorm(w4),
        this.dropout,
        new FlattenCHW(),
        new Linear(w4 * side * side, cfg.embeddingSize, { init }),
        new BatchNorm(cfg.embeddingSize),
      ]),
    );
  }

  /** All features (the reference's `return_shortcuts`) plus the embedding. */
  forward(x: tf.Tensor4D): BackboneFeatures {
    const s = this.config.inputSize;
    if (x.rank !== 4 || x.shape[1] !== s || x.shape[2] !== s || x.shape[3] !== 3) {
      throw new Error(`backbone expects [N,${s},${s},3] images, got [${x.shape}]`);
    }
    return tf.tidy(() => {
      const x1 = this.inputLayer.forward(x) as tf.Tensor4D;
      const x2 = this.blocks[0].forward(x1) as tf.Tensor4D;
      const x3 = this.blocks[1].forward(x2) as tf.Tensor4D;
      const x4 = this.blocks[2].forward(x3) as tf.Tensor4D;
      const x5 = this.blocks[3].forward(x4) as tf.Tensor4D;
      const { xId, xAge } = this.fsm.forward(x5);
      const embedding = this.outputLayer.forward(xId) as tf.Tensor2D;
      return { x1, x2, x3, x4, x5, xId, xAge, embedding };
    });
  }

  /** Just the identity embedding [N, embeddingSize]. */
  embed(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.forward(x).embedding);
  }
}

export function buildBackbone(options: BackboneOptions = {}): Backbone {
  return new Backbone(options);
}
