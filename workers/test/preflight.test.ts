import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tensorflowBindingPresent } from './support/tf-binding.js';
import { checkWorkerArgs } from '../src/preflight.js';

// A small config whose inputs the test creates (or leaves out) case by case; paths relative to `dir`.
const CONFIG = `name: t
mode: aifr
iterations: 10
model: { arch: { units: [1, 1, 1, 1], widths: [8, 8, 8, 8] }, input_size: 16 }
data: { root: data/synth, train_list: data/synth/train.txt, batch_size: 2 }
fr_optim: { lr: 0.1 }
checkpoint_dir: runs/t
`;

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-preflight-'));
  writeFileSync(join(dir, 'cfg.yaml'), CONFIG);
  return dir;
}
function withData(dir: string): string {
  mkdirSync(join(dir, 'data/synth'), { recursive: true });
  writeFileSync(join(dir, 'data/synth/train.txt'), '0 a.png 20\n');
  return dir;
}

describe('checkWorkerArgs (mtl-launch preflight of a config run)', () => {
  const dirs: string[] = [];
  const ws = (data = true): string => {
    const d = data ? withData(workspace()) : workspace();
    dirs.push(d);
    return d;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const check = (dir: string, args: string[] = [], hosts = true) =>
    checkWorkerArgs([join(dir, 'cfg.yaml'), ...args], dir, { hostsCheckpoints: hosts });

  it('passes a config whose inputs exist and whose checkpoint_dir can be created', () => {
    assert.equal(check(ws()), null);
  });

  it('names a missing data directory and the command that creates it', () => {
    assert.equal(
      check(ws(false)),
      'data.root data/synth does not exist: run `npx mtl-data synth --out data/synth`',
    );
  });

  it('names a missing train list, and the converter for a set that is not synthetic', () => {
    const dir = ws();
    rmSync(join(dir, 'data/synth/train.txt'));
    assert.match(
      check(dir)!,
      /^data\.train_list data\/synth\/train\.txt does not exist: run `npx mtl-data synth/,
    );
    mkdirSync(join(dir, 'faces'));
    assert.match(
      check(dir, ['data.root=faces', 'data.train_list=faces/list.txt'])!,
      /^data\.train_list faces\/list\.txt does not exist: convert a set into it with `npx mtl-data from-rec .* --out faces`/,
    );
  });

  it('reports every schema problem on one line, with the override that caused it', () => {
    const line = check(ws(), ['train.lr=0.05', 'iterations=-1']);
    assert.ok(line !== null && !line.includes('\n'), String(line));
    assert.match(line, /unknown key "train"/);
    assert.match(line, /key "iterations"/);
    assert.match(line, /with overrides train\.lr=0\.05 iterations=-1/);
  });

  it('refuses validation pairs that are missing, and says how to turn validation off', () => {
    assert.match(
      check(ws(), ['val_interval=5', 'val_pairs=[data/synth/pairs.txt]'])!,
      /^val_pairs data\/synth\/pairs\.txt does not exist: .*val_interval=0/,
    );
  });

  it('refuses a checkpoint_dir that is a file, or under a directory it cannot write', () => {
    const dir = ws();
    writeFileSync(join(dir, 'runs'), '');
    assert.match(check(dir)!, /^checkpoint_dir runs\/t: .*runs is not a directory/);
    // /proc/1 refuses new entries to every user, root included (chmod would not stop root).
    assert.match(check(dir, ['checkpoint_dir=/proc/1/mtl-runs'])!, /\/proc\/1 is not writable by this user/);
  });

  it('refuses a missing init checkpoint and an unknown flag', () => {
    assert.match(check(ws(), ['init_checkpoint=runs/aifr'])!, /^init_checkpoint runs\/aifr does not exist/);
    assert.match(check(ws(), ['--resme'])!, /unknown flag --resme/);
  });

  it('on the node that holds the checkpoints: an earlier run without resume, and resume with nothing', () => {
    const dir = ws();
    assert.match(check(dir, ['resume=true'])!, /resume=true but checkpoint_dir runs\/t holds no checkpoint/);
    assert.match(check(dir, ['--resume'])!, /resume=true but/);
    assert.equal(check(dir, ['resume=auto']), null);
    mkdirSync(join(dir, 'runs/t'), { recursive: true });
    writeFileSync(join(dir, 'runs/t/ckpt-0000010.json'), '{}');
    assert.match(check(dir)!, /already holds 1 checkpoint\(s\) of an earlier run: add resume=true/);
    assert.equal(check(dir, ['resume=true']), null);
    assert.equal(check(dir, [], false), null, 'another node does not judge node 0 checkpoints');
  });

  it('refuses a backend that is not installed here, naming why', () => {
    const bound = tensorflowBindingPresent();
    const line = check(ws(), ['backend=tensorflow']);
    if (bound) assert.equal(line, null);
    else
      assert.match(
        line ?? '',
        /^backend tensorflow: @tensorflow\/tfjs-node-gpu is (not installed|installed without)/,
      );
    assert.equal(check(ws(), ['backend=cpu']), null);
  });

  it("checks the release's flags the same way: the dataset they name must exist", () => {
    const dir = ws(false);
    const release = ['--train_fr', '--backbone_name', 'ir50', '-d', 'scaf', '--batch_size', '2'];
    const line = checkWorkerArgs(release, dir, { hostsCheckpoints: true });
    assert.match(line ?? '', /^data\.(root|train_list) \S*dataset\S* does not exist: /);
    assert.equal(checkWorkerArgs(['--help'], dir), null, "help is the release-flag check's to print");
  });
});
