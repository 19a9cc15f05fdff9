import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseOverride, configHash, ConfigError } from '../src/config.js';

const repoConfigs = fileURLToPath(new URL('../../../configs/', import.meta.url));

function tmpYaml(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-cfg-'));
  const f = join(dir, 'c.yaml');
  writeFileSync(f, text);
  return f;
}

const minimal = `mode: aifr
iterations: 10
model: {arch: ir50, input_size: 112}
data: {root: d, train_list: d/train.txt, batch_size: 4}
fr_optim: {lr: 0.1}
`;

test('every shipped config validates', () => {
  const files = readdirSync(repoConfigs).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4, `expected the recipes + demo, found ${files}`);
  for (const f of files) loadConfig(join(repoConfigs, f));
});

test('released recipes carry the spec §5 numbers', () => {
  const aifr = loadConfig(join(repoConfigs, 'aifr-ir50.yaml'));
  assert.equal(aifr.mode, 'aifr');
  assert.equal(aifr.model.arch, 'ir50');
  assert.equal(aifr.model.input_size, 112);
  assert.equal(aifr.data.batch_size, 64);
  assert.equal(aifr.iterations, 36000);
  assert.deepEqual(
    [
      aifr.fr_optim.lr,
      aifr.fr_optim.momentum,
      aifr.fr_optim.warmup,
      aifr.fr_optim.min_lr,
      aifr.fr_optim.weight_decay,
    ],
    [0.1, 0.9, 1000, 1e-4, 5e-4],
  );
  assert.deepEqual(aifr.fr_optim.milestones, [20000, 23000]);
  assert.deepEqual([aifr.loss.fr_age, aifr.loss.fr_da], [0.001, 0.002]);
  const fas = loadConfig(join(repoConfigs, 'fas-ir50.yaml'));
  assert.equal(fas.mode, 'fas');
  assert.deepEqual([fas.fas_optim.lr, ...fas.fas_optim.betas], [1e-4, 0.5, 0.99]);
  assert.deepEqual([fas.loss.fas_gan, fas.loss.fas_id, fas.loss.fas_age], [75, 0.002, 10]);
  assert.equal(fas.model.groups, 7);
  assert.equal(loadConfig(join(repoConfigs, 'joint-ir50.yaml')).mode, 'joint');
  const demo = loadConfig(join(repoConfigs, 'demo.yaml'));
  assert.equal(demo.mode, 'joint');
  assert.ok(demo.model.input_size <= 64);
});

test('overrides reach nested keys and are typed as YAML', () => {
  const f = tmpYaml(minimal);
  const cfg = loadConfig(f, ['fr_optim.lr=0.05', 'amp=false', 'fr_optim.milestones=[5, 8]', 'name=run-a']);
  assert.equal(cfg.fr_optim.lr, 0.05);
  assert.equal(cfg.amp, false);
  assert.deepEqual(cfg.fr_optim.milestones, [5, 8]);
  assert.equal(cfg.name, 'run-a');
  assert.equal(cfg.wire, 'f16');
});

test('errors name the key and the file', () => {
  const f = tmpYaml(minimal);
  assert.throws(
    () => loadConfig(f, ['fr_optim.lr=-1']),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /fr_optim\.lr/);
      assert.match(e.message, new RegExp(f.replace(/[/.]/g, '\\$&')));
      return true;
    },
  );
  assert.throws(() => loadConfig(f, ['fr_optim.lrr=1']), /unknown key "fr_optim.lrr"/);
  assert.throws(() => loadConfig(f, ['model.input_size=100']), /model\.input_size.*multiple of 16/);
  assert.throws(() => loadConfig(f, ['mode=both']), /key "mode"/);
  assert.throws(() => loadConfig(tmpYaml('mode: [\n')), /c\.yaml:\d+:\d+: invalid YAML/);
  assert.throws(() => loadConfig('/nonexistent/x.yaml'), /\/nonexistent\/x\.yaml: cannot read/);
  assert.throws(() => parseOverride('novalue'), /expected key=value/);
  assert.throws(() => loadConfig(f, ['data.batch_size.x=1']), /"data.batch_size" is not a section/);
});

test('config hash is stable under key order and changes with values', () => {
  const a = loadConfig(tmpYaml(minimal));
  const reordered = minimal.split('\n').reverse().join('\n');
  assert.equal(configHash(a), configHash(loadConfig(tmpYaml(reordered))));
  assert.notEqual(configHash(a), configHash(loadConfig(tmpYaml(minimal), ['seed=1'])));
});

test('extends: a config inherits its base file, its own keys win, lists are replaced, and cycles are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtl-extends-'));
  writeFileSync(
    join(dir, 'base.yaml'),
    'mode: aifr\niterations: 10\nmodel: {arch: demo, input_size: 32}\n' +
      'data: {root: d, train_list: d/t.txt, batch_size: 8, flip: false}\nfr_optim: {lr: 0.1, milestones: [5, 8]}\n',
  );
  mkdirSync(join(dir, 'sub'));
  writeFileSync(
    join(dir, 'sub', 'child.yaml'),
    'extends: ../base.yaml\ndata: {batch_size: 2}\nfr_optim: {milestones: [3]}\n',
  );
  const c = loadConfig(join(dir, 'sub', 'child.yaml'), ['iterations=4']);
  assert.equal(c.data.batch_size, 2, 'the child wins');
  assert.equal(c.data.flip, false, 'the rest of a section comes from the base');
  assert.equal(c.data.root, 'd');
  assert.deepEqual(c.fr_optim.milestones, [3], 'a list is replaced, not merged');
  assert.equal(c.iterations, 4, 'overrides apply last');
  assert.equal(c.model.arch, 'demo', 'every preset of the backbone table is a valid arch');
  writeFileSync(join(dir, 'a.yaml'), 'extends: b.yaml\n');
  writeFileSync(join(dir, 'b.yaml'), 'extends: a.yaml\n');
  assert.throws(
    () => loadConfig(join(dir, 'a.yaml')),
    /a\.yaml: extends itself through .*a\.yaml → .*b\.yaml/,
  );
  writeFileSync(join(dir, 'c.yaml'), 'extends: missing.yaml\n');
  assert.throws(
    () => loadConfig(join(dir, 'c.yaml')),
    /missing\.yaml \(extended by .*c\.yaml\): cannot read config/,
  );
});

test("demo-smoke.yaml is demo.yaml with a short schedule: every other key is the demo's", () => {
  const demo = loadConfig(join(repoConfigs, 'demo.yaml'));
  const smoke = loadConfig(join(repoConfigs, 'demo-smoke.yaml'));
  assert.deepEqual(smoke.model, demo.model);
  assert.deepEqual(smoke.cosface, demo.cosface);
  assert.equal(smoke.iterations, 2);
  assert.equal(smoke.amp, false);
});

test('backend: accepts every choice of --backend (webgpu included) and names the field on anything else', async () => {
  const { BACKEND_CHOICES } = await import('@mtlface/backend');
  for (const b of BACKEND_CHOICES) assert.equal(loadConfig(tmpYaml(`${minimal}backend: ${b}\n`)).backend, b);
  assert.throws(() => loadConfig(tmpYaml(`${minimal}backend: gpu\n`)), /backend/);
});
