import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { alive, launchFromSource, linesByRank, tempDir, writeScript } from './support/launch.js';

describe('mtl-launch failure handling', () => {
  const tmp = tempDir();
  after(tmp.cleanup);

  // Rank 1 fails after the others are up; rank 2 ignores SIGTERM, so only SIGKILL after the grace
  // period stops it. Every worker records its pid so the test can check that none survives.
  const failing = writeScript(
    tmp.dir,
    'failing.mjs',
    `import { writeFileSync } from 'node:fs';
     const rank = Number(process.env.RANK);
     writeFileSync(process.argv[2] + '/pid' + rank, String(process.pid));
     if (rank === 2) process.on('SIGTERM', () => console.log('rank 2 ignores SIGTERM'));
     if (rank === 1) {
       setTimeout(() => {
         console.error('preparing to fail');
         console.error('Error: boom in rank 1');
         writeFileSync(process.argv[2] + '/failed-at', String(Date.now()));
         process.exit(3);
       }, 1500);
     } else setInterval(() => {}, 1000);`,
  );

  it('stops the other workers within the grace period and names the failing rank as root cause', async () => {
    const r = await launchFromSource([
      '--standalone',
      '--nproc',
      '3',
      '--shutdown-timeout',
      '1',
      failing,
      tmp.dir,
    ]);
    const stoppedAfterMs = Date.now() - Number(readFileSync(join(tmp.dir, 'failed-at'), 'utf8'));
    assert.equal(r.code, 1);
    // 1 s of grace before SIGKILL (rank 2 ignores SIGTERM), plus slack for a loaded machine.
    assert.ok(stoppedAfterMs < 1000 + 8000, `the launcher exited ${stoppedAfterMs} ms after the failure`);
    assert.match(r.stderr, /root cause: rank 1 \(node 0, local rank 1, pid \d+\) exited with code 3/);
    assert.match(
      r.stderr,
      /last stderr lines of rank 1:\n.* {2}preparing to fail\n.* {2}Error: boom in rank 1/,
    );
    assert.doesNotMatch(r.stderr, /also failed/, 'workers the launcher stopped are not failures');
    assert.deepEqual(linesByRank(r.stdout).get(2), ['rank 2 ignores SIGTERM'], 'SIGTERM came first');
    for (const rank of [0, 1, 2]) {
      const pid = Number(readFileSync(join(tmp.dir, `pid${rank}`), 'utf8'));
      assert.equal(alive(pid), false, `rank ${rank} (pid ${pid}) still runs`);
    }
  });

  it('restarts every worker after a failure and succeeds when the next attempt does', async () => {
    const flaky = writeScript(
      tmp.dir,
      'flaky.mjs',
      `const attempt = process.env.MTL_RESTART_COUNT;
       console.log('attempt ' + attempt);
       if (attempt === '0' && process.env.RANK === '0') process.exit(7);
       if (attempt === '0') setInterval(() => {}, 1000);`,
    );
    const logDir = join(tmp.dir, 'flaky-logs');
    const r = await launchFromSource([
      '--standalone',
      '--nproc',
      '2',
      '--max-restarts',
      '3',
      '--shutdown-timeout',
      '2',
      '--log-dir',
      logDir,
      '--run-id',
      'flaky',
      flaky,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /attempt 0 failed: rank 0 \(node 0\) exited with code 7; restarting all workers \(restart 1 of 3\)/,
    );
    const byRank = linesByRank(r.stdout);
    for (const rank of [0, 1]) {
      assert.equal(byRank.get(rank)?.at(-1), 'attempt 1');
      assert.equal(
        readFileSync(join(logDir, 'flaky', 'attempt_1', `rank${rank}`, 'stdout.log'), 'utf8'),
        'attempt 1\n',
      );
    }
    assert.equal(
      readFileSync(join(logDir, 'flaky', 'attempt_0', 'rank0', 'stdout.log'), 'utf8'),
      'attempt 0\n',
    );
  });

  it('gives up after --max-restarts and reports the last attempt', async () => {
    const always = writeScript(tmp.dir, 'always.mjs', `process.kill(process.pid, 'SIGSEGV');`);
    const r = await launchFromSource(['--standalone', '--nproc', '1', '--max-restarts', '1', always]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /restart 1 of 1/);
    assert.match(r.stderr, /failed after 2 attempts/);
    assert.match(r.stderr, /root cause: rank 0 .* died by SIGSEGV/);
  });
});
