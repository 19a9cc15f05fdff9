// The release's README launch lines with only the launcher word changed (`python -m
// torch.distributed.launch ... main.py` → `mtl-launch ... mtlface`), on the synthetic set written as
// the release's `dataset/scaf.txt`, two workers, one iteration; a misspelled flag stops the launch
// before any worker starts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { synthesize } from '@mtlface/data';
import { spawn } from 'node:child_process';
import { collect, freePort, LAUNCHER_CLI, linesByRank, tempDir } from './support/launch.js';

// The README's lines, cut to --num_iter 1 --batch_size 2 at 32 px (ir50 at 112 px takes 35 s for
// AIFR and 74 s for FAS here); the tiny networks of the demo design come in as key=value overrides
// after the flags, which also shows those win over --backbone_name.
const SMALL = ['--image_size', '32', '--num_iter', '1', '--batch_size', '2'];
const TINY = [
  'model.arch={units: [1, 1, 1, 1], widths: [16, 16, 16, 16]}',
  'model.embedding_dim=16',
  'model.generator_units=8',
  'model.discriminator_dim=8',
  'model.discriminator_repeat=2',
  'data.loader_threads=1',
];
const AIFR = [
  ...'--train_fr --backbone_name ir50 --head_s 64 --head_m 0.35'.split(' '),
  ...'--weight_decay 5e-4 --momentum 0.9 --fr_age_loss_weight 0.001 --fr_da_loss_weight 0.002 --age_group 7'.split(
    ' ',
  ),
  ...'--gamma 0.1 --milestone 20000 23000 --warmup 1000 --learning_rate 0.1'.split(' '),
  ...'--dataset_name scaf'.split(' '),
  ...SMALL,
  '--amp',
];
const FAS = [
  ...'--train_fas --backbone_name ir50 --age_group 7'.split(' '),
  ...'--dataset_name scaf'.split(' '),
  ...SMALL,
  ...'--d_lr 1e-4 --g_lr 1e-4 --fas_gan_loss_weight 75 --fas_age_loss_weight 10 --fas_id_loss_weight 0.002'.split(
    ' ',
  ),
];

let root: ReturnType<typeof tempDir>;
let cwd: string;
before(async () => {
  root = tempDir('mtl-release-');
  cwd = join(root.dir, 'MTLFace');
  mkdirSync(cwd);
  // `mtl-data synth --out dataset` then `cp dataset/train.txt dataset/scaf.txt` (launcher/README.md).
  await synthesize({
    out: join(cwd, 'dataset'),
    identities: 12,
    imagesPerIdentity: 4,
    size: 32,
    seed: 1,
    pairs: 10,
    threads: 1,
  });
  copyFileSync(join(cwd, 'dataset', 'train.txt'), join(cwd, 'dataset', 'scaf.txt'));
});
after(() => root.cleanup());

async function launchLine(flags: string[]) {
  const port = await freePort();
  // The working directory is outside the repository, so tsx is named by its absolute URL.
  const node = ['--conditions=mtl-source', '--import', import.meta.resolve('tsx'), LAUNCHER_CLI];
  const launcher = ['--nproc_per_node=2', `--master_port=${port}`];
  const child = spawn(process.execPath, [...node, ...launcher, 'mtlface', ...flags, ...TINY], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, 240_000);
}

function lossLines(): Array<Record<string, number>> {
  const path = join(root.dir, 'output', 'losses.jsonl'); // --output_root defaults to ../output
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
}

test("the README's AIFR line trains on 2 workers and writes ../output/losses.jsonl with the release's names", async () => {
  const r = await launchLine(AIFR);
  assert.equal(r.code, 0, r.stderr);
  const ranks = linesByRank(r.stdout + r.stderr);
  assert.deepEqual([...ranks.keys()].sort(), [0, 1]);
  const [line, ...more] = lossLines();
  assert.deepEqual(more, []);
  assert.equal(line!.iter, 1);
  for (const k of ['id_loss', 'da_loss', 'age_loss'])
    assert.ok(line![k]! > 0, `${k} in ${JSON.stringify(line)}`);
  assert.equal(line!.lr, 1e-4, 'warm-up step 1 of 1000 at lr 0.1, floored at 1e-4');
  assert.ok(readdirSync(join(root.dir, 'output', 'checkpoints')).some((f) => f.startsWith('ckpt-0000001')));
});

test("the README's FAS line trains on 2 workers and logs the discriminator means and FAS losses", async () => {
  // A new run in the same ../output would be refused (it holds the AIFR run's checkpoints).
  rmSync(join(root.dir, 'output'), { recursive: true });
  const r = await launchLine(FAS);
  assert.equal(r.code, 0, r.stderr);
  const [line, ...more] = lossLines();
  assert.deepEqual(more, []);
  assert.equal(line!.iter, 1);
  for (const k of ['d1_logit', 'd3_logit', 'g_logit', 'fas_id_loss', 'fas_age_loss'])
    assert.ok(Number.isFinite(line![k]), `${k} in ${JSON.stringify(line)}`);
  assert.equal(line!.id_loss, undefined);
});

test('a misspelled flag: one line naming it and the closest flag, non-zero exit, no worker started', async () => {
  const out = join(root.dir, 'typo-output');
  const r = await launchLine([...AIFR, '--output_root', out, '--lerning_rate', '0.1']);
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'mtl-launch: mtlface: unknown flag --lerning_rate (did you mean --learning_rate?)\n',
  );
  assert.equal(r.stdout, '');
  assert.equal(existsSync(out), false);
});
