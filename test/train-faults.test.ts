// Faults a long run meets, end to end through mtl-launch: stopped and resumed joint runs at world
// sizes 2 and 3 must equal uninterrupted ones bit for bit; a directory of another run, a bad
// annotation line and a full disk each end the run with one line that says what to do.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLatestCheckpoint, readCheckpointTensors, type CheckpointSidecar } from '@mtlface/train';
import { SOURCE_EXEC_ARGV } from '../scripts/source-argv.mjs';
import { REPO, TINY, tinySynth, dataOverrides } from './train-helpers.js';

let data: string;
before(async () => {
  data = await tinySynth();
});

function launch(nproc: number, overrides: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(
    process.execPath,
    [
      ...SOURCE_EXEC_ARGV,
      join(REPO, 'launcher/src/cli.ts'),
      '--standalone',
      '--nproc-per-node',
      String(nproc),
      join(REPO, 'configs/demo.yaml'),
      ...TINY,
      ...dataOverrides(data),
      'log_interval=1',
      ...overrides,
    ],
    { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 },
  );
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, stderr: r.stderr };
}

/** The sidecar without what legitimately differs between two runs of one trajectory. */
function comparable(s: CheckpointSidecar): unknown {
  const { createdAt: _c, run: _r, configHash: _h, config, ...rest } = s;
  const { resume: _x, stop_at: _y, checkpoint_dir: _d, ...cfg } = config as Record<string, unknown>;
  return { ...rest, config: cfg };
}

for (const nproc of [2, 3]) {
  test(`joint run at world size ${nproc} stopped at iteration 3 and resumed equals the uninterrupted run in every tensor and the sidecar`, () => {
    const straight = mkdtempSync(join(tmpdir(), 'mtl-joint-a-'));
    const stopped = mkdtempSync(join(tmpdir(), 'mtl-joint-b-'));
    const common = ['mode=joint', 'iterations=6', 'checkpoint_interval=3', 'keep_checkpoints=4'];
    const a = launch(nproc, [...common, `checkpoint_dir=${straight}`]);
    assert.equal(a.status, 0, a.out.slice(-3000));
    const b1 = launch(nproc, [...common, `checkpoint_dir=${stopped}`, 'stop_at=3']);
    assert.equal(b1.status, 0, b1.out.slice(-3000));
    const b2 = launch(nproc, [...common, `checkpoint_dir=${stopped}`, 'resume=true']);
    assert.equal(b2.status, 0, b2.out.slice(-3000));
    assert.match(b2.out, /resuming from .*ckpt-0000003\.safetensors \(iteration 3\)/);

    const fa = findLatestCheckpoint(straight)!;
    const fb = findLatestCheckpoint(stopped)!;
    assert.equal(fb.sidecar.iteration, 6);
    assert.deepEqual(comparable(fb.sidecar), comparable(fa.sidecar));
    assert.equal(
      fb.sidecar.run?.id,
      findLatestCheckpoint(join(stopped, 'ckpt-0000003.json'))!.sidecar.run?.id,
    );
    const ta = readCheckpointTensors(fa);
    const tb = readCheckpointTensors(fb);
    assert.deepEqual([...tb.keys()].sort(), [...ta.keys()].sort());
    const differ = [...ta].filter(
      ([k, v]) => Buffer.compare(Buffer.from(tb.get(k)!.bytes), Buffer.from(v.bytes)) !== 0,
    );
    assert.deepEqual(
      differ.map(([k]) => k).slice(0, 10),
      [],
      `${differ.length} of ${ta.size} tensors differ after resume`,
    );
  });
}

test("a fresh run in a directory of another run's checkpoints stops with one line and deletes nothing", () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-foreign-'));
  assert.equal(launch(1, ['mode=aifr', 'iterations=2', `checkpoint_dir=${dir}`]).status, 0);
  const before = readdirSync(dir).sort();
  const r = launch(1, ['mode=aifr', 'iterations=4', `checkpoint_dir=${dir}`]);
  // The launcher sees it before starting a worker (a retry could not help).
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /^mtl-launch: checkpoint_dir .* already holds 1 checkpoint\(s\) of an earlier run: add resume=true\b[^\n]*\n$/,
  );
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for an expected error');
  assert.deepEqual(readdirSync(dir).sort(), before);
});

test('resume=true with nothing usable exits non-zero naming the rejected file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-nothing-'));
  writeFileSync(join(dir, 'ckpt-0000005.json'), '{"torn');
  const r = launch(1, ['mode=aifr', 'iterations=2', `checkpoint_dir=${dir}`, 'resume=true']);
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /error: resume=true but nothing usable to resume: .*ckpt-0000005\.json: sidecar is unreadable or torn/,
  );
});

test('a bad annotation line reaches the console as one line naming the file and line, on top of the summary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-badlist-'));
  const lines = readFileSync(join(data, 'train.txt'), 'utf8').trim().split('\n');
  lines.splice(5, 0, '3 some.png forty 1');
  writeFileSync(join(dir, 'train.txt'), lines.join('\n') + '\n');
  const r = launch(2, [`data.train_list=${join(dir, 'train.txt')}`, `checkpoint_dir=${join(dir, 'ck')}`]);
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /\[rank \d\] error: .*train\.txt:6: age "forty" is not a non-negative number.*\(fix that line of the annotation list\)/,
  );
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  const summary = r.stderr.slice(r.stderr.indexOf('root cause:'));
  assert.match(
    summary.split('\n')[1]!,
    /^mtl-launch:\s+error: .*train\.txt:6: age "forty"/,
    'the error line right under the root cause',
  );
  rmSync(dir, { recursive: true, force: true });
});
