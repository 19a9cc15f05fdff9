// The release's save_models folder both ways, against PyTorch 1.13 (/usr/bin/python3): PyTorch
// writes it (fixtures/release_save_models.py), we restore it into a trainer, write it back, and
// torch.load finds every file identical (types, key order, bit-exact tensors) and loadable by the
// release's own load path. Bad folders are refused in one line naming the file and key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@mtlface/backend';
import { OrderedDict, PyFloat } from '@mtlface/pickle';
import {
  TorchTensor,
  encodeTorchSave,
  readTorchPickle,
  rawToFloat32,
  tensorToTorch,
  type RawTensor,
} from '@mtlface/model';
import { StoreServer } from '@mtlface/collective';
import {
  RELEASE_NETWORK_FILES,
  Trainer,
  broadcastInitialState,
  readReleaseCheckpoint,
  stateChecksum,
  writeReleaseCheckpoint,
  type TrainConfig,
} from '../src/index.js';
import { localGroups, tinyConfig } from './helpers.js';

await initBackend({ backend: 'cpu', log: () => {} });

const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./fixtures/release_save_models.py', import.meta.url).pathname;
const CLASSES = 10;
const ITER = 7;

let root = '';
before(() => {
  root = mkdtempSync(join(tmpdir(), 'mtl-release-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function torchScript(args: string[]): string {
  const r = spawnSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    throw new Error(
      `${PYTHON} ${SCRIPT} ${args[0]} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}); ` +
        `PyTorch 1.13 must be installed for /usr/bin/python3: ${r.stderr}`,
    );
  }
  return r.stdout;
}

/** The fixture's spec for a config: the same networks, hyperparameters and scaler settings. */
function spec(cfg: TrainConfig, trainer: Trainer, extra: Record<string, unknown> = {}): string {
  const arch = cfg.model.arch as { units: number[]; widths: number[]; se?: boolean };
  const file = join(root, `spec-${Math.random().toString(36).slice(2)}.json`);
  const s = {
    mode: cfg.mode,
    iteration: ITER,
    units: arch.units,
    widths: arch.widths,
    se: arch.se ?? false,
    size: cfg.model.input_size,
    emb: cfg.model.embedding_dim,
    groups: cfg.model.groups,
    classes: CLASSES,
    gen_units: cfg.model.generator_units,
    disc_dim: cfg.model.discriminator_dim,
    disc_repeat: cfg.model.discriminator_repeat,
    // the SGD's lr as the trainer sets it for the last step taken (PyTorch stores the group's lr)
    fr_lr: trainer.frLr(ITER - 1),
    momentum: cfg.fr_optim.momentum,
    fas_lr: cfg.fas_optim.lr,
    betas: cfg.fas_optim.betas,
    eps: cfg.fas_optim.eps,
    amp: cfg.amp,
    scale: 8192,
    growth_tracker: 5,
    growth_interval: cfg.loss_scale.growth_interval,
    fr_steps: 3,
    d_steps: 2,
    g_steps: 2,
    ...extra,
  };
  writeFileSync(file, JSON.stringify(s));
  return file;
}

function setup(mode: string, overrides: string[] = []) {
  const cfg = tinyConfig([`mode=${mode}`, ...overrides]);
  const trainer = new Trainer(cfg, { numClasses: CLASSES, group: null });
  const specFile = spec(cfg, trainer);
  const pt = mkdtempSync(join(root, `pt-${mode}-`));
  torchScript(['write', specFile, pt]);
  return { cfg, trainer, specFile, pt };
}

async function restore(trainer: Trainer, dir: string): Promise<void> {
  const state = readReleaseCheckpoint(dir, ITER, trainer);
  trainer.loadState(state.tensors, state.meta);
  state.tensors.forEach((t) => t.dispose());
}

for (const mode of ['joint', 'aifr', 'fas'] as const) {
  test(`${mode}: a PyTorch save_models folder restores here and is written back identical, loadable by the release`, async () => {
    const { trainer, specFile, pt } = setup(mode);
    try {
      // restoring adds the optimizer slots; anything else left over is a leak
      const slots = (): number => trainer.optimizers().reduce((n, o) => n + o.slots().size, 0);
      const before = tf.memory().numTensors;
      await restore(trainer, pt);
      assert.ok(slots() > 0, 'slots restored');
      const ours = mkdtempSync(join(root, `ours-${mode}-`));
      const written = await writeReleaseCheckpoint(ours, trainer, ITER);
      assert.equal(tf.memory().numTensors - slots(), before, 'tensor count after restore + write');
      const differences = JSON.parse(torchScript(['compare', specFile, pt, ours])) as string[];
      assert.deepEqual(differences, []);
      const expected = readdirSync(pt).filter((f) => f.endsWith(`-${ITER}`));
      if (mode === 'joint') expected.push(`fas_scaler-${ITER}`); // FAS's scaler beside FR's
      assert.deepEqual(written.map((p) => p.slice(ours.length + 1)).sort(), expected.sort());
      assert.deepEqual(readdirSync(ours).sort(), expected.sort(), 'no temporary files left');
    } finally {
      trainer.dispose();
    }
  });
}

test('optimizer slots land on the parameter PyTorch numbered: order and values by name', async () => {
  const { trainer, pt } = setup('joint');
  try {
    await restore(trainer, pt);
    const byName = readTorchPickle(join(pt, 'by_name.pth')) as Map<string, unknown>;
    const order = byName.get('order') as Map<string, string[]>;
    // PyTorch's parameters() order of the release's networks is our optimizers' order
    const releaseName = (ours: string): string => {
      const dot = ours.indexOf('.');
      const net = ours.slice(0, dot) as keyof typeof RELEASE_NETWORK_FILES;
      return `${RELEASE_NETWORK_FILES[net]}.${ours.slice(dot + 1)}`;
    };
    const tasks = [
      ['optimizer', trainer.fr!],
      ['d_optim', trainer.fasD!],
      ['g_optim', trainer.fasG!],
    ] as const;
    for (const [file, task] of tasks) {
      assert.deepEqual(
        task.params.map((p) => releaseName(p.name)),
        order.get(file),
        `${file} parameter order`,
      );
    }
    // every slot, converted back to PyTorch's layout, equals PyTorch's slot of the same name
    const entries = new Map(trainer.nets.modules().flatMap(([p, m]) => [...m.stateEntries(p)]));
    let checked = 0;
    for (const [file, task] of tasks) {
      const o = task.optimizer;
      for (const [k, slot] of o.slots()) {
        const param = k.slice(`optim.${o.name}.`.length, k.lastIndexOf('.'));
        const slotName = k.slice(k.lastIndexOf('.') + 1);
        const want = byName.get(`${file}/${releaseName(param)}/${slotName}`) as RawTensor;
        const got = await tensorToTorch(slot, entries.get(param)!.layout);
        assert.deepEqual(got.shape, want.shape, k);
        assert.deepEqual(Buffer.from(got.bytes), Buffer.from(want.bytes), k);
        checked++;
      }
      if (o.name !== 'fr') {
        const step = byName.get(`${file}/${releaseName(o.params[0]!.name)}/step`) as RawTensor;
        assert.equal(o.stepCount, rawToFloat32(step, 'step')[0], `${file} step count`);
      }
    }
    assert.ok(checked > 50, `${checked} slots checked`);
    assert.deepEqual(trainer.scalers.fr.state(), { scale: 8192, growthTracker: 5 });
    assert.deepEqual(trainer.scalers.fas.state(), { scale: 8192, growthTracker: 5 });
  } finally {
    trainer.dispose();
  }
});

test('a fresh trainer writes optimizers with no state, which PyTorch loads as fresh', async () => {
  const cfg = tinyConfig(['mode=joint']);
  const trainer = new Trainer(cfg, { numClasses: CLASSES, group: null });
  try {
    const dir = mkdtempSync(join(root, 'fresh-'));
    await writeReleaseCheckpoint(dir, trainer, ITER);
    for (const f of ['optimizer', 'd_optim', 'g_optim']) {
      const sd = readTorchPickle(join(dir, `${f}-${ITER}`)) as Map<string, unknown>;
      assert.equal((sd.get('state') as Map<unknown, unknown>).size, 0, f);
    }
    // and a fresh folder restores to a fresh state (no slots, step counts 0)
    const back = new Trainer(cfg, { numClasses: CLASSES, group: null });
    await restore(back, dir);
    for (const o of back.optimizers()) assert.deepEqual([o.slots().size, o.stepCount], [0, 0], o.name);
    back.dispose();
  } finally {
    trainer.dispose();
  }
});

/** Runs `readReleaseCheckpoint` on a copy of `pt` altered by `alter`; returns its error message. */
function refusal(trainer: Trainer, pt: string, alter: (dir: string) => void): string {
  const dir = mkdtempSync(join(root, 'bad-'));
  for (const f of readdirSync(pt)) copyFileSync(join(pt, f), join(dir, f));
  alter(dir);
  const before = tf.memory().numTensors;
  let message = '';
  try {
    readReleaseCheckpoint(dir, ITER, trainer).tensors.forEach((t) => t.dispose());
  } catch (e) {
    message = (e as Error).message;
  }
  assert.equal(tf.memory().numTensors, before, 'nothing half-loaded (no tensors left behind)');
  assert.ok(!message.includes('\n'), `one line: ${message}`);
  return message;
}

function rewriteStateDict(dir: string, stem: string, edit: (sd: Map<string, TorchTensor>) => void): void {
  const file = join(dir, `${stem}-${ITER}`);
  const sd = readTorchPickle(file) as Map<string, TorchTensor>;
  edit(sd);
  writeFileSync(file, encodeTorchSave(new OrderedDict(sd)));
}

test('bad folders are refused in one line naming the file and the first offending key', () => {
  const { trainer, pt } = setup('joint');
  try {
    const f = (stem: string) => `${stem}-${ITER}`;
    assert.match(
      refusal(trainer, pt, (d) => unlinkSync(join(d, f('d_optim')))),
      /d_optim-7: missing/,
    );
    assert.match(
      refusal(trainer, pt, (d) =>
        rewriteStateDict(d, 'backbone', (sd) => {
          const w = sd.get('module.input_layer.0.weight')!;
          sd.delete('module.input_layer.0.weight');
          sd.set('module.input_layer.0.weight_renamed', w);
        }),
      ),
      /backbone-7: import failed, nothing loaded; 2 problem\(s\): unexpected tensor 'input_layer\.0\.weight_renamed'.*missing tensor 'input_layer\.0\.weight'/,
    );
    assert.match(
      refusal(trainer, pt, (d) =>
        rewriteStateDict(d, 'head', (sd) =>
          sd.set(
            'module.weight',
            new TorchTensor('F32', [CLASSES + 1, 16], new Uint8Array(4 * 16 * (CLASSES + 1))),
          ),
        ),
      ),
      /head-7: .*tensor 'weight' has shape \[11,16\], expected \[10,16\]/,
    );
    assert.match(
      refusal(trainer, pt, (d) => {
        const file = join(d, f('generator'));
        const bytes = readFileSync(file);
        writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
      }),
      /generator-7: unreadable zip/,
    );
    assert.match(
      refusal(trainer, pt, (d) =>
        writeFileSync(join(d, f('discriminator')), encodeTorchSave(new OrderedDict())),
      ),
      /discriminator-7: empty state dict/,
    );
    // a foreign state dict: the generator's where the age estimator belongs
    assert.match(
      refusal(trainer, pt, (d) => copyFileSync(join(d, f('generator')), join(d, f('estimation_network')))),
      /estimation_network-7: import failed, nothing loaded; \d+ problem\(s\): unexpected tensor 'conv1\.0\.weight'/,
    );
    assert.match(
      refusal(trainer, pt, (d) => copyFileSync(join(d, f('d_optim')), join(d, f('g_optim')))),
      /g_optim-7: param_groups\[0\]\.params lists \d+ parameters, this model's Adam has \d+/,
    );
    assert.match(
      refusal(trainer, pt, (d) => writeFileSync(join(d, f('scaler')), new Uint8Array([1, 2, 3]))),
      /scaler-7: not a zip archive/,
    );
  } finally {
    trainer.dispose();
  }
});

test('an amp run refuses the empty scaler state of a run without amp, as GradScaler does', () => {
  const { trainer, pt } = setup('aifr');
  try {
    const message = refusal(trainer, pt, (d) =>
      writeFileSync(join(d, `scaler-${ITER}`), encodeTorchSave(new Map())),
    );
    assert.match(message, /scaler-7: empty GradScaler state \(saved with amp off\)/);
  } finally {
    trainer.dispose();
  }
});

test("rank 0's restored release state reaches every rank: same tensors, step counts and scalers", async () => {
  const { cfg, pt } = setup('joint');
  const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: 't' });
  const groups = await localGroups(store.port, `release-test-${process.pid}`);
  const trainers = groups.map(() => new Trainer(cfg, { numClasses: CLASSES, group: null }));
  try {
    const restored = readReleaseCheckpoint(pt, ITER, trainers[0]!);
    const states = await Promise.all(
      groups.map((g, r) =>
        broadcastInitialState(g, r === 0 ? restored : null, () => trainers[r]!.checkpointTensors()),
      ),
    );
    restored.tensors.forEach((t) => t.dispose());
    for (const [r, s] of states.entries()) {
      assert.equal(s.sidecar, null);
      assert.equal(s.meta?.iteration, ITER);
      trainers[r]!.loadState(s.tensors, s.meta);
      s.tensors.forEach((t) => t.dispose());
    }
    const sums = await Promise.all(trainers.map((t) => stateChecksum(t.checkpointTensors())));
    assert.equal(sums[1], sums[0]);
    assert.deepEqual(trainers[1]!.checkpointMeta(), trainers[0]!.checkpointMeta());
    assert.equal(trainers[1]!.fasG!.optimizer.stepCount, 2, 'Adam steps as PyTorch took them');
  } finally {
    trainers.forEach((t) => t.dispose());
    await Promise.all(groups.map((g) => g.close()));
    await store.close();
  }
});

test('an SGD state with momentum but no buffer is refused, naming the key', () => {
  const { trainer, pt } = setup('aifr');
  try {
    const message = refusal(trainer, pt, (d) => {
      const file = join(d, `optimizer-${ITER}`);
      const sd = readTorchPickle(file) as Map<string, Map<number, Map<string, unknown>>>;
      sd.get('state')!.get(4)!.set('momentum_buffer', null);
      // the reader returns Python floats as numbers: mark them again for the writer
      for (const g of sd.get('param_groups') as unknown as Array<Map<string, unknown>>)
        for (const [k, v] of g) if (typeof v === 'number' && !Number.isInteger(v)) g.set(k, new PyFloat(v));
      writeFileSync(file, encodeTorchSave(sd as never));
    });
    assert.match(message, /optimizer-7: state\.4\.momentum_buffer \(backbone\.[\w.]+\) is missing/);
  } finally {
    trainer.dispose();
  }
});
