// The MTLFace release's checkpoints: a `save_models` folder of `<module>-<iteration>` torch.save
// files, one per module, as its LoggerX writes them (DDP state dicts, names under `module.`;
// optimizer and GradScaler state dicts in PyTorch 1.13's form). We read them into the trainer's
// checkpoint names and write the trainer's state back in the same form.
//
// The release's FR and FAS tasks both save a `scaler-N` (the later one wins there). Here `scaler-N`
// is FR's scaler when FR trains (aifr, joint) and FAS's in fas mode; joint also writes FAS's as
// `fas_scaler-N`, and reads it from there when present (from `scaler-N` otherwise).
import { join } from 'node:path';
import type { NetworkName, StateEntry } from '@mtlface/model';
import type { Trainer } from './trainer.js';
import type { NamedParam } from './optim.js';

/** The release's file stem of each network (its LoggerX names files after the variables). */
export const RELEASE_NETWORK_FILES: Record<NetworkName, string> = {
  backbone: 'backbone',
  head: 'head',
  estimation: 'estimation_network',
  da_discriminator: 'da_discriminator',
  generator: 'generator',
  discriminator: 'discriminator',
};

/** FR's networks (the release's FR task) and FAS's. */
export const FR_NETWORK_NAMES: readonly NetworkName[] = [
  'backbone',
  'head',
  'estimation',
  'da_discriminator',
];
export const FAS_NETWORK_NAMES: readonly NetworkName[] = ['generator', 'discriminator'];

/** The trainer's optimizer tasks and the release's optimizer file of each. */
export type ReleaseTask = 'fr' | 'fasD' | 'fasG';
export const RELEASE_OPTIMIZER_FILES: Record<ReleaseTask, string> = {
  fr: 'optimizer',
  fasD: 'd_optim',
  fasG: 'g_optim',
};

export function releaseFilePath(dir: string, stem: string, iteration: number): string {
  return join(dir, `${stem}-${iteration}`);
}

/** What a mode reads and writes: networks, optimizers, and which scaler goes in which file. */
export function releasePlan(mode: string): {
  networks: NetworkName[];
  tasks: ReleaseTask[];
  scalers: Array<['fr' | 'fas', string]>;
} {
  if (mode === 'aifr') return { networks: [...FR_NETWORK_NAMES], tasks: ['fr'], scalers: [['fr', 'scaler']] };
  // The release builds FR's networks in every mode (the frozen backbone and age estimator live there).
  const networks = [...FR_NETWORK_NAMES, ...FAS_NETWORK_NAMES];
  if (mode === 'fas') return { networks, tasks: ['fasD', 'fasG'], scalers: [['fas', 'scaler']] };
  return {
    networks,
    tasks: ['fr', 'fasD', 'fasG'],
    scalers: [
      ['fr', 'scaler'],
      ['fas', 'fas_scaler'],
    ],
  };
}

/** The file stems a mode reads (joint's `fas_scaler` is optional: a PyTorch folder has one scaler). */
export function releaseFilesRead(mode: string): string[] {
  const p = releasePlan(mode);
  return [
    ...p.networks.map((n) => RELEASE_NETWORK_FILES[n]),
    ...p.tasks.map((t) => RELEASE_OPTIMIZER_FILES[t]),
    'scaler',
  ];
}

/** The state entries (layout, shape) of an optimizer's parameters, in its order. */
export function paramEntries(trainer: Trainer, params: readonly NamedParam[]): StateEntry[] {
  const entries = new Map<string, StateEntry>();
  for (const [prefix, m] of trainer.nets.modules())
    for (const [n, e] of m.stateEntries(prefix)) entries.set(n, e);
  return params.map((p) => entries.get(p.name)!);
}
