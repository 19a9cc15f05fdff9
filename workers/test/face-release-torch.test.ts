// mtl-face import-torch --release / export-torch, run as the CLI from source: a training run that
// wrote both its own checkpoint and the release's files at iteration 3; importing the release's
// files gives that checkpoint's tensors and state, exporting the checkpoint gives the release's
// files byte for byte. Bad input: one line, exit code 1, nothing written.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@mtlface/backend';
import { findLatestCheckpoint, loadConfig, readCheckpointTensors } from '@mtlface/train';
import { SOURCE_EXEC_ARGV } from '../../scripts/source-argv.mjs';
import { runTraining } from '../src/train/run.js';
import { REPO, TINY, dataOverrides, tinySynth } from '../../test/train-helpers.js';

const CLI = join(REPO, 'workers/src/mtl-face.ts');
const tmp = (name: string) => mkdtempSync(join(tmpdir(), `mtl-face-release-${name}-`));

function mtlFace(...args: string[]) {
  const r = spawnSync(process.execPath, [...SOURCE_EXEC_ARGV, CLI, ...args], {
    encoding: 'utf8',
    cwd: REPO,
    timeout: 180_000,
  });
  // tfjs's own banner about tfjs-node (its cpu backend in Node) is not ours to judge
  return {
    ...r,
    stderr: r.stderr.replace(/^\s*=+\nHi, looks like you are running TensorFlow\.js[^\n]*\n=+\n/, ''),
  };
}

let run = '';
let release = '';
let configFile = '';
before(async () => {
  await initBackend({ backend: 'auto', log: () => {} });
  const data = await tinySynth();
  run = tmp('run');
  release = tmp('save-models');
  const cfg = loadConfig(join(REPO, 'configs/demo.yaml'), [
    ...TINY,
    ...dataOverrides(data),
    'iterations=3',
    'checkpoint_interval=3',
    `checkpoint_dir=${run}`,
    `release.save_models=${release}`,
  ]);
  configFile = join(run, 'config.yaml');
  writeFileSync(configFile, JSON.stringify(cfg)); // JSON is YAML
  await runTraining(cfg, { log: () => {}, env: {}, skipBackendInit: true, group: null });
});

test('import-torch --release gives the checkpoint the run wrote at the same iteration', () => {
  const out = tmp('import');
  const r = mtlFace(
    'import-torch',
    '--release',
    release,
    '--iter',
    '3',
    '--config',
    configFile,
    '--out',
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*ckpt-0000003\.json \(iteration 3; resume with checkpoint_dir=/);
  const want = findLatestCheckpoint(run)!;
  const got = findLatestCheckpoint(out)!;
  assert.equal(got.sidecar.iteration, 3);
  assert.deepEqual(got.sidecar.optimizers, want.sidecar.optimizers);
  assert.deepEqual(got.sidecar.scalers, want.sidecar.scalers);
  assert.deepEqual(got.sidecar.sampler, want.sidecar.sampler);
  assert.equal(got.sidecar.configHash, want.sidecar.configHash);
  const a = readCheckpointTensors(want);
  const b = readCheckpointTensors(got);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.deepEqual(b.get(k)!.bytes, v.bytes, k);
});

test("export-torch writes the release's files byte for byte as the run did", () => {
  const out = tmp('export');
  const r = mtlFace('export-torch', run, '--release', out);
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(release).sort();
  assert.deepEqual(readdirSync(out).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(release, f))), f);
});

test('bad input: one line naming the flag or the file, exit code 1, nothing written', () => {
  const out = tmp('bad');
  const noIter = mtlFace('import-torch', '--release', release, '--config', configFile, '--out', out);
  assert.equal(noIter.status, 1);
  assert.equal(
    noIter.stderr.trim(),
    'mtl-face import-torch: --release needs --iter N (the <module>-N files to read)',
  );

  const broken = tmp('broken');
  for (const f of readdirSync(release)) copyFileSync(join(release, f), join(broken, f));
  const g = join(broken, 'g_optim-3');
  writeFileSync(g, readFileSync(g).subarray(0, 200));
  const r = mtlFace('import-torch', '--release', broken, '--iter', '3', '--config', configFile, '--out', out);
  assert.equal(r.status, 1);
  assert.match(r.stderr.trim(), new RegExp(`^mtl-face import-torch: ${g}: unreadable zip \\(.*\\)$`));
  assert.deepEqual(readdirSync(out), [], 'nothing written');

  const missing = mtlFace('export-torch', join(run, 'nope'), '--release', out);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr.trim(), /^mtl-face export-torch: .*nope: no complete checkpoint$/);
  assert.ok(!existsSync(join(out, 'backbone-3')));
});
