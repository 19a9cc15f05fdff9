import type { Module } from '../nn/module.js';
import type { BackboneOptions } from '../backbone/backbone.js';
import { BACKBONE_PRESETS, type BackboneArch, type Quad } from '../backbone/presets.js';
import { AGE_CLASSES } from '../heads/age-estimation.js';
import type { RawTensor } from './dtypes.js';
import { tensorsToRaw } from './tensors.js';

/** Checkpoint prefixes of the MTLFace networks (DESIGN.md / train). */
export const NETWORK_NAMES = [
  'backbone',
  'head',
  'estimation',
  'da_discriminator',
  'generator',
  'discriminator',
] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];

/**
 * Which network a bare (unprefixed) state dict belongs to, from names the reference uses;
 * null when it cannot tell.
 */
export function detectNetwork(names: Iterable<string>): NetworkName | null {
  const all = [...names];
  if (all.some((n) => n.startsWith('input_layer.'))) return 'backbone';
  if (all.some((n) => n.startsWith('age_output_layer.'))) return 'estimation';
  if (all.some((n) => n.startsWith('up_1.'))) return 'generator';
  if (all.some((n) => n.startsWith('main.') && n.endsWith('weight_orig'))) return 'discriminator';
  if (all.length === 1 && all[0] === 'weight') return 'head';
  return null;
}

/** Tensors grouped by network prefix (`backbone.x` → backbone: x); names without one go to `fallback`. */
export function splitByNetwork(
  tensors: Map<string, RawTensor>,
  fallback: NetworkName | null,
): Map<NetworkName, Map<string, RawTensor>> {
  const out = new Map<NetworkName, Map<string, RawTensor>>();
  const bare = new Map<string, RawTensor>();
  for (const [name, t] of tensors) {
    const dot = name.indexOf('.');
    const head = dot > 0 ? name.slice(0, dot) : '';
    if ((NETWORK_NAMES as readonly string[]).includes(head)) {
      const net = head as NetworkName;
      if (!out.has(net)) out.set(net, new Map());
      out.get(net)!.set(name.slice(dot + 1), t);
    } else bare.set(name, t);
  }
  if (bare.size > 0) {
    const net = fallback ?? detectNetwork(bare.keys());
    if (!net) {
      const sample = [...bare.keys()].slice(0, 3).join(', ');
      throw new Error(`cannot tell which network the tensors (${sample}, ...) belong to; name it`);
    }
    if (out.has(net))
      throw new Error(`tensors for '${net}' appear both with and without the '${net}.' prefix`);
    out.set(net, bare);
  }
  return out;
}

/**
 * Backbone options recovered from a state dict (names without the `backbone.` prefix; shapes in our
 * layout or PyTorch's):
 * units per stage, widths, SE, input size and embedding width. `arch` is a matching preset or 'demo'
 * with explicit units/widths.
 */
export function inferBackboneOptions(
  shapes: Map<string, readonly number[]>,
  layout: 'ours' | 'torch' = 'ours',
): BackboneOptions {
  const units: number[] = [];
  const widths: number[] = [];
  for (let s = 1; s <= 4; s++) {
    const w = shapes.get(`block${s}.0.res_layer.1.weight`);
    if (!w || w.length !== 4) throw new Error(`backbone weights lack a 4-D block${s}.0.res_layer.1.weight`);
    widths.push(layout === 'ours' ? w[3]! : w[0]!); // HWIO or OIHW
    let n = 0;
    while (shapes.has(`block${s}.${n}.res_layer.1.weight`)) n++;
    units.push(n);
  }
  const mode = shapes.has('block1.0.res_layer.6.fc1.weight') ? 'ir_se' : 'ir';
  const lin = shapes.get('output_layer.3.weight');
  if (!lin || lin.length !== 2) throw new Error('backbone weights lack output_layer.3.weight');
  const side = Math.round(Math.sqrt(lin[1]! / widths[3]!));
  if (side * side * widths[3]! !== lin[1]) {
    throw new Error(`output_layer.3.weight [${lin}] does not fit a square map of ${widths[3]} channels`);
  }
  const same = (a: readonly number[], b: readonly number[]) => a.every((v, i) => v === b[i]);
  const preset = (
    Object.entries(BACKBONE_PRESETS) as Array<[BackboneArch, (typeof BACKBONE_PRESETS)[BackboneArch]]>
  ).find(([, p]) => same(p.units, units) && same(p.widths, widths) && p.mode === mode);
  return {
    arch: preset ? preset[0] : 'demo',
    units: units as unknown as Quad,
    widths: widths as unknown as Quad,
    mode,
    inputSize: side * 16,
    embeddingSize: lin[0]!,
  };
}

/** Age-estimator options recovered from its state dict (unprefixed, our layout). */
export function inferAgeEstimationOptions(shapes: Map<string, readonly number[]>) {
  const bn = shapes.get('age_output_layer.0.weight');
  const lin = shapes.get('age_output_layer.2.weight');
  const group = shapes.get('group_output_layer.weight');
  if (!bn || !lin || !group || group[1] !== AGE_CLASSES) throw new Error('not an age estimation state dict');
  const channels = bn[0]!;
  const side = Math.round(Math.sqrt(lin[1]! / channels));
  return { channels, inputSize: side * 16, hidden: lin[0]!, groups: group[0]! };
}

/** Every network's state (our layout) under its prefix, as raw tensors for a safetensors file. */
export async function prefixedState(networks: Iterable<[string, Module]>): Promise<Map<string, RawTensor>> {
  const out = new Map<string, RawTensor>();
  for (const [prefix, m] of networks)
    for (const [n, t] of await tensorsToRaw(m.stateDict(prefix))) out.set(n, t);
  return out;
}
