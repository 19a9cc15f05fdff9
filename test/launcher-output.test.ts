import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { launchFromSource, linesByRank, tempDir, writeScript } from './support/launch.js';

const LINES = 400;

describe('mtl-launch output', () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  // Each worker writes LINES lines in fragments (half a line per write, several lines per write),
  // all workers at once, so their chunks reach the launcher interleaved.
  const chatty = writeScript(
    tmp.dir,
    'chatty.mjs',
    `const rank = process.env.RANK;
     const pad = 'x'.repeat(50 + Number(rank) * 37);
     let buf = '';
     for (let i = 0; i < ${LINES}; i++) buf += 'rank' + rank + ' line ' + i + ' ' + pad + '\\n';
     let pos = 0;
     let step = 7;
     while (pos < buf.length) {
       process.stdout.write(buf.slice(pos, pos + step));
       process.stderr.write(pos === 0 ? 'err of rank ' + rank : pos + step >= buf.length ? ' end\\n' : '');
       pos += step;
       step = (step * 31 + 17) % 300 + 1;
     }
     process.stdout.write('no newline at the end from ' + rank);`,
  );

  it('prefixes whole lines with the rank even when workers write at once', async () => {
    const r = await launchFromSource(['--standalone', '--nproc', '3', chatty]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    for (const line of lines) {
      assert.match(
        line,
        /^\[rank(\d)\]: (rank\1 line \d+ x+|no newline at the end from \1)$/,
        `torn line: ${line}`,
      );
    }
    const byRank = linesByRank(r.stdout);
    for (const rank of [0, 1, 2]) {
      const got = byRank.get(rank) ?? [];
      assert.equal(got.length, LINES + 1);
      assert.deepEqual(
        got.slice(0, LINES).map((l) => Number(l.split(' ')[2])),
        Array.from({ length: LINES }, (_, i) => i),
        `rank ${rank} lines out of order or missing`,
      );
      assert.equal(got[LINES], `no newline at the end from ${rank}`);
    }
    const errLines = linesByRank(r.stderr);
    for (const rank of [0, 1, 2]) assert.deepEqual(errLines.get(rank), [`err of rank ${rank} end`]);
  });

  it('writes per-attempt, per-rank log files and keeps redirected streams off the console', async () => {
    const logDir = join(tmp.dir, 'logs');
    const r = await launchFromSource([
      '--standalone',
      '--nproc',
      '2',
      '--run-id',
      'logs1',
      '--log-dir',
      logDir,
      '--redirects',
      '1',
      chatty,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'stdout is redirected to the files only');
    assert.equal(linesByRank(r.stderr).get(1)?.[0], 'err of rank 1 end', 'stderr still reaches the console');
    for (const rank of [0, 1]) {
      const dir = join(logDir, 'logs1', 'attempt_0', `rank${rank}`);
      const out = readFileSync(join(dir, 'stdout.log'), 'utf8').split('\n');
      assert.equal(out.length, LINES + 1);
      assert.equal(out[5], `rank${rank} line 5 ${'x'.repeat(50 + rank * 37)}`, 'files hold the raw lines');
      assert.equal(readFileSync(join(dir, 'stderr.log'), 'utf8'), `err of rank ${rank} end\n`);
    }
    assert.equal(existsSync(join(logDir, 'logs1', 'attempt_1')), false);
  });

  it('shows only the local ranks in --local-ranks-filter on the console', async () => {
    const r = await launchFromSource(['--standalone', '--nproc', '3', '--local-ranks-filter', '1', chatty]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...linesByRank(r.stdout).keys()], [1]);
    assert.deepEqual([...linesByRank(r.stderr).keys()], [1]);
  });
});
