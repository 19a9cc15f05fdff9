import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { launchFromSource, tempDir } from './support/launch.js';

// A small config run in its own directory; the cases add (or leave out) its data.
const CONFIG = `name: t
mode: aifr
iterations: 2
model: { arch: { units: [1, 1, 1, 1], widths: [8, 8, 8, 8] }, input_size: 16 }
data: { root: data/synth, train_list: data/synth/train.txt, batch_size: 2 }
fr_optim: { lr: 0.1 }
checkpoint_dir: runs/t
`;

describe('mtl-launch config mode', () => {
  const tmp = tempDir('mtl-config-');
  after(tmp.cleanup);

  it('checks the config once and starts no worker when it cannot run (fail once, not --max-restarts times)', async () => {
    const dir = join(tmp.dir, 'missing');
    mkdirSync(dir);
    writeFileSync(join(dir, 'cfg.yaml'), CONFIG);
    const logs = join(dir, 'logs');
    const r = await launchFromSource(
      ['--standalone', '--nproc', '2', '--max-restarts', '3', '--log-dir', logs, 'cfg.yaml'],
      { cwd: dir, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'mtl-launch: data.root data/synth does not exist: run `npx mtl-data synth --out data/synth`\n',
    );
    // A worker would have left its attempt directory (rank log files) under --log-dir.
    assert.ok(!existsSync(logs) || readdirSync(logs).length === 0, 'no worker started');
  });

  it('runs the built-in worker with the config path and the key=value overrides', async () => {
    // Inputs that exist pass the launcher's check; a malformed annotation line is found only by
    // the worker that reads it, which names the file and line it was given by the override.
    const dir = join(tmp.dir, 'present');
    mkdirSync(join(dir, 'data/synth'), { recursive: true });
    writeFileSync(join(dir, 'cfg.yaml'), CONFIG);
    writeFileSync(join(dir, 'data/synth/train.txt'), '0 a.png 20\n');
    writeFileSync(join(dir, 'data/synth/other.txt'), 'not an annotation line\n');
    const r = await launchFromSource(
      ['--standalone', '--nproc', '1', 'cfg.yaml', 'data.train_list=data/synth/other.txt', 'backend=cpu'],
      { cwd: dir, timeoutMs: 120_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[rank0\]: .*other\.txt/);
    assert.match(r.stderr, /root cause: rank 0 .* exited with code [1-9]/);
  });
});
