// Rank 0's training progress under mtl-launch: redrawn in place when the launcher's console is a
// terminal (a pseudo-terminal from `script`), plain periodic lines when piped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  LAUNCHER_CLI,
  REPO_ROOT,
  SOURCE_EXEC_ARGV,
  launchFromSource,
  tempDir,
  writeScript,
} from './support/launch.js';

const CLEAR = '\r\u001b[2K';

describe('training progress under mtl-launch', () => {
  const tmp = tempDir('mtl-progress-');
  after(tmp.cleanup);
  // The trainer's own progress writer, driven as run.ts drives it (rank 0 only).
  const script = writeScript(
    tmp.dir,
    'progress.mts',
    `import { createTrainProgress } from ${JSON.stringify(join(REPO_ROOT, 'workers/src/train/progress.ts'))};
const rank = Number(process.env.RANK);
const p = rank === 0
  ? createTrainProgress({ start: 0, end: 4, logInterval: 2, tty: process.env.MTL_PROGRESS === 'tty' ? 'launcher' : false, log: (l) => console.log(l) })
  : null;
for (let it = 1; it <= 4; it++) {
  await new Promise((r) => setTimeout(r, 250));
  p?.update(it, { losses: { fr_id: 1 / it }, imagesPerSec: 10 });
  if (it === 2) console.log('rank ' + rank + ' halfway');
}
`,
  );
  const args = ['--standalone', '--nproc', '2', script];

  it('on a terminal: one redrawn line from rank 0, worker lines above it, the last state kept', () => {
    const cmd = [process.execPath, ...SOURCE_EXEC_ARGV, LAUNCHER_CLI, ...args].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 90_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = r.stdout;
    assert.ok(
      out.includes(`${CLEAR}[rank0]: train it 4/4 (100%) | eta 0s | 10.0 img/s | fr_id 0.250`),
      JSON.stringify(out),
    );
    assert.match(out, /\[rank0\]: rank 0 halfway/);
    assert.match(out, /\[rank1\]: rank 1 halfway/);
    assert.doesNotMatch(out, /\[rank1\]: train it/, 'rank 0 only');
    assert.doesNotMatch(out, /\[rank0\]: it \d/, 'no plain progress lines on a terminal');
    assert.ok(!out.includes('\u0000'), 'the marker never reaches the terminal');
  });

  it('piped: plain lines every log interval, nothing redrawn', async () => {
    const r = await launchFromSource(args, { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('[rank0]: it '));
    assert.deepEqual(
      lines.map((l) => /it (\d+)\/4/.exec(l)?.[1]),
      ['2', '4'],
    );
    assert.ok(!(r.stdout + r.stderr).includes(CLEAR) && !(r.stdout + r.stderr).includes('\u0000'));
  });
});
