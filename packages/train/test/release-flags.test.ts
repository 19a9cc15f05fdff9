// The release's command line: our parser against Python's argparse declaring the same flags (the
// declarations below are written by hand from reading the release's parser: names, types, defaults,
// nargs, the -d alias), and the flags → config mapping against the values the README's launch
// lines mean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  closestFlag,
  parseReleaseArgs,
  releaseConfig,
  ReleaseFlagError,
  RELEASE_FLAGS,
} from '../src/release-flags.js';
import { learningRate } from '../src/schedule.js';

const PYTHON = '/usr/bin/python3';

const ARGPARSE = String.raw`
import argparse, json, sys, io, contextlib
p = argparse.ArgumentParser()
# the release's flags
p.add_argument('--train_fr', action='store_true')
p.add_argument('--train_fas', action='store_true')
p.add_argument('--backbone_name', type=str)
p.add_argument('--head_s', type=float, default=64)
p.add_argument('--head_m', type=float, default=0.35)
p.add_argument('--weight_decay', type=float, default=5e-4)
p.add_argument('--momentum', type=float, default=0.9)
p.add_argument('--fr_age_loss_weight', type=float, default=0.0)
p.add_argument('--fr_da_loss_weight', type=float, default=0.0)
p.add_argument('--age_group', type=int, default=7)
p.add_argument('--gamma', type=float, default=0.1)
p.add_argument('--milestone', type=int, nargs='*', default=[20, 40, 60])
p.add_argument('--warmup', type=int, default=5)
p.add_argument('--learning_rate', type=float, default=0.1)
p.add_argument('--dataset_name', '-d', type=str)
p.add_argument('--image_size', type=int, default=224)
p.add_argument('--num_iter', type=int, default=125)
p.add_argument('--restore_iter', type=int, default=0)
p.add_argument('--batch_size', type=int, default=0)
p.add_argument('--val_interval', type=int, default=1000)
p.add_argument('--seed', type=int, default=1)
p.add_argument('--num_worker', type=int, default=32)
p.add_argument('--local_rank', '--local-rank', type=int, default=0)
p.add_argument('--amp', action='store_true')
p.add_argument('--d_lr', type=float, default=1e-4)
p.add_argument('--g_lr', type=float, default=1e-4)
p.add_argument('--fas_gan_loss_weight', type=float)
p.add_argument('--fas_id_loss_weight', type=float)
p.add_argument('--fas_age_loss_weight', type=float)
p.add_argument('--id_pretrained_path', type=str)
p.add_argument('--age_pretrained_path', type=str)
# this project's additions
p.add_argument('--no_flip', action='store_true')
p.add_argument('--dataset_root', type=str, default='dataset')
p.add_argument('--output_root', type=str, default='../output')
p.add_argument('--backend', type=str, default='auto')
p.add_argument('--wire', type=str, default='f16')
p.add_argument('--dropout', type=float, default=0.5)
p.add_argument('--save_interval', type=int, default=1000)
p.add_argument('--release_constant_lr', action='store_true')
out = []
for argv in json.load(sys.stdin):
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            out.append({'ok': vars(p.parse_args(argv))})
    except SystemExit:
        out.append({'error': True})
print(json.dumps(out))
`;

function argparse(cases: string[][]): Array<{ ok?: Record<string, unknown>; error?: true }> {
  assert.ok(existsSync(PYTHON), `${PYTHON} (Python 3 with argparse) is needed for this test and is missing`);
  const r = spawnSync(PYTHON, ['-c', ARGPARSE], { input: JSON.stringify(cases), encoding: 'utf8' });
  assert.equal(r.status, 0, `python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Array<{ ok?: Record<string, unknown>; error?: true }>;
}

const AIFR_LINE =
  '--train_fr --backbone_name ir50 --head_s 64 --head_m 0.35 --weight_decay 5e-4 --momentum 0.9 ' +
  '--fr_age_loss_weight 0.001 --fr_da_loss_weight 0.002 --age_group 7 --gamma 0.1 --milestone 20000 23000 ' +
  '--warmup 1000 --learning_rate 0.1 --dataset_name scaf --image_size 112 --num_iter 36000 --batch_size 64 --amp';
const FAS_LINE =
  '--train_fas --backbone_name ir50 --age_group 7 --dataset_name scaf --image_size 112 --num_iter 36000 ' +
  '--batch_size 64 --d_lr 1e-4 --g_lr 1e-4 --fas_gan_loss_weight 75 --fas_age_loss_weight 10 --fas_id_loss_weight 0.002';
const words = (s: string): string[] => s.split(' ');

test('every flag parses as argparse parses it: defaults, types, nargs, store_true, =value, -d, prefixes, repeats', () => {
  const good: string[][] = [
    [],
    words(AIFR_LINE),
    words(FAS_LINE),
    ['--train_fr', '--train_fas'],
    ['--learning_rate=0.05', '--milestone=7', '--seed', '-3', '--head_m', '-.5'],
    ['-d', 'scaf'],
    ['-dscaf'],
    ['-d=scaf'],
    ['--milestone'],
    ['--milestone', '1', '2', '3', '--amp'],
    ['--milestone', '1', '--milestone', '5', '6'],
    ['--learn', '0.2', '--backb', 'ir34', '--val', '10', '--train_fa'],
    [
      '--batch_size',
      '1_000',
      '--head_s',
      '1e2',
      '--gamma',
      '.5',
      '--momentum',
      '5.',
      '--weight_decay',
      ' 5e-4',
    ],
    ['--image_size', '+112', '--warmup', ' 07 '],
    ['--seed', '1', '--seed', '2'],
    ['--local_rank', '3'],
    ['--local-rank=2'],
    ['--id_pretrained_path', 'a b.pth', '--dataset_root=/x=y', '--output_root', '-'],
    ['--no_flip', '--release_constant_lr', '--dropout', '0', '--save_interval', '5', '--wire', 'bf16'],
  ];
  const bad: string[][] = [
    ['--batch_size', 'x'],
    ['--batch_size', '1.0'],
    ['--amp=1'],
    ['--lerning_rate', '0.1'],
    ['--dataset', 'x'],
    ['--seed'],
    ['--seed', '--amp'],
    ['--head_s', '0x10'],
    ['--head_s', ''],
    ['--milestone', '1', 'x'],
    ['--weight_decay', '-1e-4'],
    ['-x'],
  ];
  const py = argparse([...good, ...bad]);
  good.forEach((argv, i) => {
    const expected = py[i]!.ok;
    assert.ok(expected, `argparse rejected ${JSON.stringify(argv)}`);
    const ours = parseReleaseArgs(argv);
    assert.deepEqual(ours.values, expected, `values of ${JSON.stringify(argv)}`);
    assert.deepEqual(ours.overrides, []);
  });
  bad.forEach((argv, j) => {
    assert.ok(py[good.length + j]!.error, `argparse accepted ${JSON.stringify(argv)}`);
    assert.throws(() => parseReleaseArgs(argv), ReleaseFlagError, `we accepted ${JSON.stringify(argv)}`);
  });
});

test('a misspelled flag gets one line naming it and the closest real flag', () => {
  for (const [typo, real] of [
    ['--lerning_rate', '--learning_rate'],
    ['--backbone-name', '--backbone_name'],
    ['--milestones', '--milestone'],
    ['--trainfr', '--train_fr'],
    ['--fas_gan_weight', '--fas_gan_loss_weight'],
  ] as const) {
    assert.equal(closestFlag(typo), real);
    assert.throws(
      () => parseReleaseArgs(['--train_fr', typo, '1']),
      (e: Error) => e.message === `unknown flag ${typo} (did you mean ${real}?)`,
    );
  }
});

test('key=value overrides may follow the flags, also right after --milestone, and win over them', () => {
  const p = parseReleaseArgs([
    ...words(AIFR_LINE),
    '--milestone',
    '5',
    '9',
    'fr_optim.lr=0.02',
    'model.dropout=0',
  ]);
  assert.deepEqual(p.values.milestone, [5, 9]);
  assert.deepEqual(p.overrides, ['fr_optim.lr=0.02', 'model.dropout=0']);
  const cfg = releaseConfig([
    ...words(AIFR_LINE),
    'fr_optim.lr=0.02',
    'model.arch={units: [1,1,1,1], widths: [8,8,8,8]}',
  ]);
  assert.equal(cfg.fr_optim.lr, 0.02);
  assert.deepEqual(cfg.model.arch, { units: [1, 1, 1, 1], widths: [8, 8, 8, 8], se: false });
  assert.throws(() => parseReleaseArgs(['--train_fr', 'stray']), /unexpected argument 'stray'/);
});

test("the README's AIFR line becomes the paper's recipe, at the release's paths", () => {
  const cfg = releaseConfig(words(AIFR_LINE));
  assert.equal(cfg.mode, 'aifr');
  assert.equal(cfg.model.arch, 'ir50');
  assert.equal(cfg.model.input_size, 112);
  assert.equal(cfg.model.groups, 7);
  assert.deepEqual(cfg.cosface, { s: 64, m: 0.35 });
  assert.deepEqual(
    { ...cfg.fr_optim },
    {
      lr: 0.1,
      momentum: 0.9,
      weight_decay: 5e-4,
      warmup: 1000,
      milestones: [20000, 23000],
      gamma: 0.1,
      min_lr: 1e-4,
    },
  );
  assert.equal(cfg.loss.fr_age, 0.001);
  assert.equal(cfg.loss.fr_da, 0.002);
  assert.equal(cfg.iterations, 36000);
  assert.equal(cfg.data.batch_size, 64);
  assert.equal(cfg.data.train_list, 'dataset/scaf.txt');
  assert.equal(cfg.data.root, 'dataset');
  assert.equal(cfg.data.flip, true);
  assert.equal(cfg.amp, true);
  assert.equal(cfg.seed, 1);
  assert.equal(cfg.release.save_models, '../output/save_models');
  assert.equal(cfg.checkpoint_dir, '../output/checkpoints');
  assert.equal(cfg.losses_file, '../output/losses.jsonl');
  assert.equal(cfg.release.constant_lr, false);
  assert.equal(cfg.release.restore_iter, 0);
  assert.equal(cfg.val_interval, 0, 'no pairs list: nothing to validate, as the release');
  // The schedule the flags describe: warm-up to 0.1 at 1000, ×0.1 after 20000 and 23000.
  const s = { lr: 0.1, warmup: 1000, milestones: [20000, 23000], gamma: 0.1, minLr: 1e-4 };
  assert.equal(learningRate(500, s), 0.05);
  assert.ok(Math.abs(learningRate(23001, s) - 0.001) < 1e-12);
});

test("the README's FAS line: FAS mode, both Adam rates, the three weights; both flags give joint", () => {
  const cfg = releaseConfig(words(FAS_LINE));
  assert.equal(cfg.mode, 'fas');
  assert.equal(cfg.fas_optim.d_lr, 1e-4);
  assert.equal(cfg.fas_optim.g_lr, 1e-4);
  assert.deepEqual(
    { gan: cfg.loss.fas_gan, id: cfg.loss.fas_id, age: cfg.loss.fas_age },
    { gan: 75, id: 0.002, age: 10 },
  );
  assert.equal(cfg.amp, false, 'the FAS line has no --amp');
  const joint = releaseConfig([...words(FAS_LINE), '--train_fr', '--d_lr', '3e-4', '--restore_iter', '2000']);
  assert.equal(joint.mode, 'joint');
  assert.equal(joint.fas_optim.d_lr, 3e-4);
  assert.equal(joint.release.restore_iter, 2000);
});

test('our flags reach their keys; paths follow --dataset_root and --output_root', () => {
  const cfg = releaseConfig([
    ...words(AIFR_LINE),
    '--no_flip',
    '--dataset_root',
    '/data/sets/',
    '--output_root',
    '/runs/x',
    '--backend',
    'cpu',
    '--wire',
    'bf16',
    '--dropout',
    '0.1',
    '--save_interval',
    '7',
    '--release_constant_lr',
    '--num_worker',
    '3',
    '--id_pretrained_path',
    'b.pth',
    '--age_pretrained_path',
    'a.pth',
  ]);
  assert.equal(cfg.data.flip, false);
  assert.equal(cfg.data.root, '/data/sets/');
  assert.equal(cfg.data.train_list, '/data/sets/scaf.txt');
  assert.equal(cfg.checkpoint_dir, '/runs/x/checkpoints');
  assert.equal(cfg.release.save_models, '/runs/x/save_models');
  assert.equal(cfg.losses_file, '/runs/x/losses.jsonl');
  assert.equal(cfg.backend, 'cpu');
  assert.equal(cfg.wire, 'bf16');
  assert.equal(cfg.model.dropout, 0.1);
  assert.equal(cfg.checkpoint_interval, 7);
  assert.equal(cfg.release.constant_lr, true);
  assert.equal(cfg.data.loader_threads, 3);
  assert.equal(cfg.release.id_pretrained_path, 'b.pth');
  assert.equal(cfg.release.age_pretrained_path, 'a.pth');
  const v = releaseConfig([...words(AIFR_LINE), '--val_interval', '50', 'val_pairs=[p.txt]']);
  assert.equal(v.val_interval, 50);
});

test('bad values are named by their flag; no task flag is an error; every flag has a config key or says why not', () => {
  assert.throws(() => releaseConfig(['--backbone_name', 'ir50']), /give --train_fr, --train_fas, or both/);
  assert.throws(
    () => releaseConfig(['--train_fr', '-d', 'x', '--batch_size', '2']),
    /^ConfigError: --backbone_name \(model\.arch\): required/,
  );
  assert.throws(
    () => releaseConfig(['--train_fr', '--backbone_name', 'ir50', '-d', 'x']),
    /--batch_size \(data\.batch_size\)/,
  );
  assert.throws(
    () => releaseConfig(['--train_fr', '--backbone_name', 'ir50', '--batch_size', '2']),
    /--dataset_name \(data\.train_list\): required/,
  );
  assert.throws(
    () => releaseConfig([...words(AIFR_LINE), '--backbone_name', 'ir51']),
    /--backbone_name \(model\.arch\)/,
  );
  assert.throws(
    () => releaseConfig([...words(AIFR_LINE), 'data.batch_size=0']),
    /^ConfigError: data\.batch_size: /,
  );
  for (const f of RELEASE_FLAGS)
    assert.ok(f.keys.length > 0 || f.flag === '--local_rank', `${f.flag} maps to nothing`);
});
