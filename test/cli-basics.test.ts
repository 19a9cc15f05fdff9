// The small things a new user meets first: every documented mtl-launch line parses as written,
// --version on every command, --backend offers every backend, and the demo keeps an earlier run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Command, type Option } from 'commander';
import { parseLaunchArgs } from '../launcher/src/options.js';
import { loadConfig } from '@mtlface/train';
import * as age from '../workers/src/face/age.js';
import * as align from '../workers/src/face/align.js';
import * as embed from '../workers/src/face/embed.js';
import * as evaluate from '../workers/src/face/eval.js';
import * as importTorch from '../workers/src/face/import-torch.js';
import * as verify from '../workers/src/face/verify.js';
import * as exportTorch from '../workers/src/face/release-torch.js';
import { keepPreviousRun } from '../scripts/keep-run.mjs';
import { REPO_ROOT, SOURCE_EXEC_ARGV, tempDir } from './support/launch.js';

/** `mtl-launch` command lines in a markdown file's code blocks (continuations joined, comments and env dropped). */
function documentedLaunches(file: string): string[][] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const blocks = [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\\\n\s*/g, ''));
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => /^(\w+=\S+\s+)*(npx )?mtl-launch /.test(l))
    .map((l) => l.split(/\s+/).filter((w) => !/^\w+=<?\w*>?$/.test(w) || w.includes('.')))
    .map((words) => words.slice(words.indexOf('mtl-launch') + 1))
    .filter((args) => !args.some((a) => a.startsWith('<') || a.startsWith('[')));
}

describe('documented command lines', () => {
  const tmp = tempDir('mtl-docs-');
  after(tmp.cleanup);
  symlinkSync(join(REPO_ROOT, 'configs'), join(tmp.dir, 'configs'));

  for (const file of ['README.md', 'launcher/README.md']) {
    it(`every mtl-launch example in ${file} parses, and its config overrides pass the schema`, () => {
      const lines = documentedLaunches(file);
      assert.ok(lines.length >= 4, `found only ${lines.length} example(s) in ${file}`);
      for (const args of lines) {
        const where = `${file}: mtl-launch ${args.join(' ')}`;
        // The entry is the first argument that is not a flag or a flag's value; give it a file.
        for (const a of args)
          if (/\.(ya?ml|ts|mjs|js|py)$/.test(a) && !existsSync(join(tmp.dir, a))) {
            mkdirSync(join(tmp.dir, a, '..'), { recursive: true });
            if (/\.ya?ml$/.test(a)) copyFileSync(join(REPO_ROOT, 'configs/demo.yaml'), join(tmp.dir, a));
            else writeFileSync(join(tmp.dir, a), '');
          }
        let parsed: ReturnType<typeof parseLaunchArgs>;
        try {
          parsed = parseLaunchArgs(args, { PATH: process.env.PATH, MTL_RUN_TOKEN: 'x' }, tmp.dir, () => ({
            gpus: 8,
            cpus: 8,
          }));
        } catch (e) {
          assert.fail(`${where}: ${(e as Error).message}`);
        }
        const entry = parsed.config.entry;
        if (entry.kind === 'config') {
          const [config, ...overrides] = entry.args;
          assert.doesNotThrow(() => loadConfig(config!, overrides), where);
        }
      }
    });
  }
});

describe('mtl-face --backend', () => {
  it('offers every backend in every command that takes one', () => {
    const program = new Command();
    for (const cmd of [importTorch, exportTorch, embed, verify, evaluate, age, align]) cmd.register(program);
    const withBackend = program.commands.filter((c) => c.options.some((o) => o.long === '--backend'));
    assert.equal(withBackend.length, 7);
    for (const c of withBackend) {
      const option = c.options.find((o) => o.long === '--backend') as Option;
      assert.deepEqual(
        option.argChoices,
        ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'],
        c.name(),
      );
      assert.match(
        c.helpInformation().replace(/\s+/g, ' '),
        /choices: "auto", "tensorflow", "webgpu", "native", "wasm", "cpu"/,
        c.name(),
      );
    }
  });
});

describe('--version', () => {
  const version = (pkg: string): string =>
    (JSON.parse(readFileSync(join(REPO_ROOT, pkg, 'package.json'), 'utf8')) as { version: string }).version;
  for (const [bin, src, pkg] of [
    ['mtl-face', 'workers/src/mtl-face.ts', 'workers'],
    ['mtl-data', 'workers/src/mtl-data.ts', 'workers'],
    ['mtl-launch', 'launcher/src/cli.ts', 'launcher'],
  ] as const) {
    it(`${bin} --version prints its package's version`, () => {
      const r = spawnSync(process.execPath, [...SOURCE_EXEC_ARGV, join(REPO_ROOT, src), '--version'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${version(pkg)}\n`);
    });
  }
});

describe('npm run demo', () => {
  const tmp = tempDir('mtl-keep-');
  after(tmp.cleanup);
  it('moves an earlier run aside to the next free number instead of deleting it', () => {
    const run = join(tmp.dir, 'demo');
    assert.equal(keepPreviousRun(run), null, 'nothing to keep');
    for (const n of [1, 2]) {
      mkdirSync(run);
      writeFileSync(join(run, 'ckpt.json'), String(n));
      assert.equal(keepPreviousRun(run), `${run}.${n}`);
      assert.equal(readFileSync(join(run + `.${n}`, 'ckpt.json'), 'utf8'), String(n));
      assert.ok(!existsSync(run));
    }
  });
});
