// `mtl-face import-torch`: PyTorch MTLFace weights (torch.save .pth or safetensors) → our checkpoint.
import type { Command } from 'commander';
import {
  AgeEstimation,
  BACKBONE_PRESETS,
  AgingModule,
  Backbone,
  CosFace,
  NETWORK_NAMES,
  PatchDiscriminator,
  encodeSafetensors,
  importTorchState,
  inferAgeEstimationOptions,
  inferBackboneOptions,
  prefixedState,
  readTorchWeights,
  splitByNetwork,
  type BackboneArch,
  type Module,
  type NetworkName,
  type RawTensor,
} from '@mtlface/model';
import { initBackend } from '@mtlface/backend';
import { writeFileSync, renameSync } from 'node:fs';
import { reportErrors, backendOption } from './cli.js';
import { runImportRelease } from './release-torch.js';

interface ImportOptions {
  /** A preset, or 'auto' to read units/widths/SE/input size from the backbone tensors. */
  arch: BackboneArch | 'auto';
  inputSize: string;
  groups: string;
  network?: NetworkName;
  out: string;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}

function build(net: NetworkName, tensors: Map<string, RawTensor>, o: ImportOptions): Module {
  const inputSize = positiveInt('--input-size', o.inputSize);
  const groups = positiveInt('--groups', o.groups);
  switch (net) {
    case 'backbone':
      return new Backbone(
        o.arch === 'auto'
          ? {
              ...inferBackboneOptions(new Map([...tensors].map(([n, t]) => [n, t.shape])), 'torch'),
              init: 'zeros',
            }
          : { arch: o.arch, inputSize, init: 'zeros' },
      );
    case 'estimation':
    case 'da_discriminator':
      return new AgeEstimation(
        o.arch === 'auto'
          ? inferAgeEstimationOptions(new Map([...tensors].map(([n, t]) => [n, t.shape])))
          : { inputSize, groups },
      );
    case 'head': {
      const w = tensors.get('weight');
      if (!w || w.shape.length !== 2) throw new Error(`head: no 'weight' [classes, dim] tensor`);
      return new CosFace(w.shape[1]!, w.shape[0]!);
    }
    case 'generator':
      return new AgingModule({ groups, init: 'zeros' });
    case 'discriminator':
      return new PatchDiscriminator({ groups });
  }
}

/**
 * The file's tensors by network. A file that holds none for the named network (or, unnamed, for any
 * MTLFace network) is refused in one line saying what was expected and what was found, instead of
 * becoming a checkpoint with nothing in it.
 */
function networksOf(
  file: string,
  tensors: Map<string, RawTensor>,
  network: NetworkName | undefined,
): Map<NetworkName, Map<string, RawTensor>> {
  let nets: Map<NetworkName, Map<string, RawTensor>>;
  try {
    nets = splitByNetwork(tensors, network ?? null);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  if (nets.size > 0 && (network === undefined || nets.has(network))) return nets;
  const expected =
    network === undefined
      ? `tensors of an MTLFace network (${NETWORK_NAMES.map((n) => `${n}.*`).join(', ')}, or one network's bare state dict)`
      : `tensors of the ${network} (${network}.* or a bare state dict)`;
  const found =
    tensors.size === 0
      ? 'no tensors at all'
      : `${tensors.size} tensor(s), of ${[...nets].map(([n, t]) => `${n} (${t.size})`).join(', ')}`;
  throw new Error(`${file}: expected ${expected}; found ${found}`);
}

export async function importTorch(files: string[], o: ImportOptions): Promise<string[]> {
  const networks: Array<[NetworkName, Module]> = [];
  try {
    for (const file of files) {
      for (const [net, tensors] of networksOf(file, readTorchWeights(file), o.network)) {
        if (networks.some(([n]) => n === net)) throw new Error(`${file}: '${net}' given twice`);
        const module = build(net, tensors, o);
        networks.push([net, module]);
        importTorchState(module, tensors, { where: `${file} (${net})` });
      }
    }
    const meta: Record<string, string> = {
      format: 'mtlface-weights',
      source: files.join(','),
      networks: networks.map(([n]) => n).join(','),
      arch: o.arch,
      inputSize: o.inputSize,
      groups: o.groups,
    };
    const tmp = `${o.out}.tmp-${process.pid}`;
    writeFileSync(tmp, encodeSafetensors(await prefixedState(networks), meta));
    renameSync(tmp, o.out);
    return networks.map(([n, m]) => `${n} (${m.numParameters().toLocaleString('en-US')} parameters)`);
  } finally {
    for (const [, m] of networks) m.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('import-torch')
    .description(
      'import PyTorch MTLFace weights (torch.save .pth or .safetensors; state dicts of the backbone, ' +
        'age estimator, generator, discriminator, or one file with backbone./estimation./... prefixes)',
    )
    .argument('[files...]', 'weight files')
    .requiredOption(
      '--out <checkpoint>',
      'output .safetensors (our layout, networks under their prefixes); with --release, a checkpoint folder',
    )
    .option('--release <dir>', "instead of files: the release's save_models folder (<module>-<iter> files)")
    .option('--iter <n>', 'with --release: the iteration to import')
    .option('--config <yaml>', "with --release: the run's config (networks, optimizers, data)")
    .option('--world-size <n>', 'with --release: world size of the run that will resume it', '1')
    .option(
      '--arch <arch>',
      'backbone: ir34, ir50, ir64, ir101, irse101, ir-tiny, demo, or auto (from the shapes)',
      'ir50',
    )
    .option('--input-size <px>', 'input side the weights were trained at', '112')
    .option('--groups <n>', 'age groups', '7')
    .option(
      '--network <name>',
      `for a bare state dict the names do not identify: ${NETWORK_NAMES.join(', ')}`,
    )
    .addOption(backendOption('cpu'))
    .action(reportErrors('import-torch', run));
}

type RunOptions = ImportOptions & {
  backend: string;
  release?: string;
  iter?: string;
  config?: string;
  worldSize: string;
};

async function run(files: string[], o: RunOptions): Promise<void> {
  if (o.release) {
    if (files.length > 0) throw new Error('give weight files or --release, not both');
    return runImportRelease({ ...o, release: o.release });
  }
  if (files.length === 0) throw new Error('no weight files given (or --release DIR --iter N --config CFG)');
  if (o.arch !== 'auto' && !Object.hasOwn(BACKBONE_PRESETS, o.arch)) {
    throw new Error(
      `--arch must be auto or one of ${Object.keys(BACKBONE_PRESETS).join(', ')}, got "${o.arch}"`,
    );
  }
  if (o.network && !(NETWORK_NAMES as readonly string[]).includes(o.network)) {
    throw new Error(`--network must be one of ${NETWORK_NAMES.join(', ')}, got "${o.network}"`);
  }
  await initBackend({ backend: o.backend as 'cpu', log: () => {} });
  const imported = await importTorch(files, o);
  console.log(`wrote ${o.out}: ${imported.join(', ')}`);
}
