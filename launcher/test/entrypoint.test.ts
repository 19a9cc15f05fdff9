import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { builtinWorker, checkEntrypointArgs, resolveEntrypoint } from '../src/entrypoint.js';

const dir = mkdtempSync(join(tmpdir(), 'mtl-entry-'));
writeFileSync(join(dir, 'aifr.yaml'), 'mode: aifr\n');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the entry word mtlface', () => {
  it('with a YAML file is the config form: the built-in worker gets the path and the overrides', () => {
    const bare = resolveEntrypoint('aifr.yaml', ['a=1'], dir);
    const word = resolveEntrypoint('mtlface', ['aifr.yaml', 'a=1'], dir);
    assert.deepEqual(word, bare);
    assert.equal(word.kind, 'config');
    assert.deepEqual(word.args, [join(dir, 'aifr.yaml'), 'a=1']);
  });

  it("with flags runs the built-in worker with the release's flags as given", () => {
    const e = resolveEntrypoint('mtlface', ['--train_fr', '-d', 'scaf', 'seed=3'], dir);
    assert.equal(e.kind, 'release');
    assert.equal(e.program, builtinWorker());
    assert.deepEqual(e.args, ['--train_fr', '-d', 'scaf', 'seed=3']);
  });

  it("is checked with the worker's parser before anything starts: null when good, the error line, or the help", async () => {
    const good = ['--train_fr', '--backbone_name', 'ir50', '-d', 'scaf', '--batch_size', '2'];
    const check = (args: string[]) => checkEntrypointArgs(resolveEntrypoint('mtlface', args, dir));
    assert.equal(await check(good), null);
    assert.deepEqual(await check([...good, '--momentun', '0.8']), {
      code: 2,
      text: 'mtlface: unknown flag --momentun (did you mean --momentum?)',
    });
    const help = await check(['--help']);
    assert.equal(help?.code, 0);
    assert.match(help!.text, /--learning_rate FLOAT +FR learning rate \(default 0\.1\)/);
    // The YAML form is left to the worker, which reads the file.
    assert.equal(await checkEntrypointArgs(resolveEntrypoint('mtlface', ['aifr.yaml', 'bad=1'], dir)), null);
  });
});
