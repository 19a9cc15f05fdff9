// The MTLFace networks of one training run, under their checkpoint prefixes.
import type * as tf from '@tensorflow/tfjs-core';
import {
  AgeEstimation,
  AgingModule,
  Backbone,
  BatchNorm,
  CosFace,
  PatchDiscriminator,
  withInitSeeds,
  type Module,
  type NetworkName,
} from '@mtlface/model';
import { Rng } from '@mtlface/data/rng';
import type { TrainConfig } from './config.js';
import { decaysWeight } from './weight-decay.js';
import type { NamedParam } from './optim.js';

export interface NetworkOptions {
  numClasses: number;
  /** Build the FAS networks (generator, discriminator); default from the mode. */
  fas?: boolean;
}

/** The initialisers' seed stream: mulberry32 started at seed ^ 0x5eed (unhashed, as every run so far). */
function initSeeds(seed: number): () => number {
  const r = Rng.fromState(seed ^ 0x5eed);
  return () => r.next();
}

export class MtlFaceNetworks {
  readonly backbone: Backbone;
  readonly head: CosFace;
  readonly estimation: AgeEstimation;
  readonly daDiscriminator: AgeEstimation;
  readonly generator: AgingModule | null;
  readonly discriminator: PatchDiscriminator | null;

  constructor(cfg: TrainConfig, opts: NetworkOptions) {
    // Every initialiser's seed comes from cfg.seed: reproducible runs.
    ({
      backbone: this.backbone,
      head: this.head,
      estimation: this.estimation,
      daDiscriminator: this.daDiscriminator,
      generator: this.generator,
      discriminator: this.discriminator,
    } = withInitSeeds(initSeeds(cfg.seed), () => build(cfg, opts)));
  }

  /** Networks by checkpoint prefix, in a fixed order. */
  modules(): [NetworkName, Module][] {
    const out: [NetworkName, Module][] = [
      ['backbone', this.backbone],
      ['head', this.head],
      ['estimation', this.estimation],
      ['da_discriminator', this.daDiscriminator],
    ];
    if (this.generator) out.push(['generator', this.generator]);
    if (this.discriminator) out.push(['discriminator', this.discriminator]);
    return out;
  }

  /** Trainable parameters of the given networks, with the spec's weight decay (FR only). */
  params(networks: readonly NetworkName[], weightDecay: number): NamedParam[] {
    const out: NamedParam[] = [];
    for (const [prefix, mod] of this.modules()) {
      if (!networks.includes(prefix)) continue;
      const bnParams = new Set<string>();
      for (const [name, child] of mod.namedModules()) {
        if (child instanceof BatchNorm) for (const [p] of child.namedParameters(name)) bnParams.add(p);
      }
      for (const [name, variable] of mod.namedParameters()) {
        const decays = weightDecay > 0 && decaysWeight(prefix, name, bnParams.has(name));
        out.push({ name: `${prefix}.${name}`, variable, weightDecay: decays ? weightDecay : 0 });
      }
    }
    return out;
  }

  /** Every parameter and buffer, prefixed (the checkpoint's model tensors). Live variables: do not dispose. */
  stateDict(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [prefix, mod] of this.modules()) for (const [n, v] of mod.stateDict(prefix)) out.set(n, v);
    return out;
  }

  /** Loads prefixed tensors; `only` restricts to some networks (others must be absent or are ignored). */
  loadStateDict(tensors: ReadonlyMap<string, tf.Tensor>, only?: readonly NetworkName[]): void {
    for (const [prefix, mod] of this.modules()) {
      if (only && !only.includes(prefix)) continue;
      const mine = new Map<string, tf.Tensor>();
      for (const [k, t] of tensors) if (k.startsWith(`${prefix}.`)) mine.set(k.slice(prefix.length + 1), t);
      try {
        mod.loadStateDict(mine);
      } catch (e) {
        throw new Error(`${prefix}: ${(e as Error).message}`);
      }
    }
  }

  train(mode = true): void {
    for (const [, m] of this.modules()) m.train(mode);
  }

  dispose(): void {
    for (const [, m] of this.modules()) m.dispose();
  }
}

function build(cfg: TrainConfig, opts: NetworkOptions) {
  const m = cfg.model;
  const arch = m.arch;
  const backbone = new Backbone(
    typeof arch === 'string'
      ? { arch, inputSize: m.input_size, embeddingSize: m.embedding_dim, dropout: m.dropout }
      : {
          arch: 'demo',
          units: arch.units as [number, number, number, number],
          widths: arch.widths as [number, number, number, number],
          mode: arch.se ? 'ir_se' : 'ir',
          inputSize: m.input_size,
          embeddingSize: m.embedding_dim,
          dropout: m.dropout,
        },
  );
  const widths = backbone.config.widths;
  const ageOpts = { channels: widths[3], inputSize: m.input_size, groups: m.groups };
  const head = new CosFace(m.embedding_dim, opts.numClasses, cfg.cosface.s, cfg.cosface.m);
  const estimation = new AgeEstimation(ageOpts);
  const daDiscriminator = new AgeEstimation(ageOpts);
  const fas = opts.fas ?? cfg.mode !== 'aifr';
  const generator = fas ? new AgingModule({ groups: m.groups, widths, unitCount: m.generator_units }) : null;
  const discriminator = fas
    ? new PatchDiscriminator({
        groups: m.groups,
        convDim: m.discriminator_dim,
        repeatNum: m.discriminator_repeat,
      })
    : null;
  return { backbone, head, estimation, daDiscriminator, generator, discriminator };
}
