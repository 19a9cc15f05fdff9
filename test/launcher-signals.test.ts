import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from 'node:net';
import { alive, collect, freePort, spawnLauncher, tempDir, waitFor, writeScript } from './support/launch.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

describe('mtl-launch signals', () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  // Each worker reports the signals it receives in a file, then exits 0 on the first one.
  const catcher = writeScript(
    tmp.dir,
    'catcher.mjs',
    `import { appendFileSync, writeFileSync } from 'node:fs';
     const [dir, tag] = process.argv.slice(2);
     const rank = process.env.RANK;
     for (const sig of ${JSON.stringify(SIGNALS)}) {
       process.on(sig, () => {
         appendFileSync(dir + '/' + tag + '-got' + rank, sig + '\\n');
         setTimeout(() => process.exit(0), 50);
       });
     }
     writeFileSync(dir + '/' + tag + '-ready' + rank, String(process.pid));
     setInterval(() => {}, 1000);`,
  );

  for (const sig of SIGNALS) {
    it(`forwards ${sig} to every worker and exits with 128+${constants.signals[sig]}`, async () => {
      const child = spawnLauncher(['--standalone', '--nproc', '2', catcher, tmp.dir, sig]);
      const done = collect(child, 60_000);
      const ready = [0, 1].map((r) => join(tmp.dir, `${sig}-ready${r}`));
      assert.ok(await waitFor(() => ready.every((f) => existsSync(f)), 30_000), 'workers did not start');
      child.kill(sig);
      const r = await done;
      assert.equal(r.code, 128 + constants.signals[sig], r.stderr);
      for (const rank of [0, 1]) {
        assert.equal(readFileSync(join(tmp.dir, `${sig}-got${rank}`), 'utf8'), `${sig}\n`, `rank ${rank}`);
      }
      assert.match(r.stderr, new RegExp(`received ${sig}; stopped 2 worker`));
    });
  }

  it('leaves no orphan when the launcher is killed with SIGKILL, even a worker stuck in a busy loop', async () => {
    const stubborn = writeScript(
      tmp.dir,
      'stubborn.mjs',
      `import { writeFileSync } from 'node:fs';
       process.on('SIGTERM', () => {});
       writeFileSync(process.argv[2] + '/orphan-ready' + process.env.RANK, String(process.pid));
       if (process.env.RANK === '1') for (;;) {}
       setInterval(() => {}, 1000);`,
    );
    const child = spawnLauncher(['--standalone', '--nproc', '2', stubborn, tmp.dir]);
    const done = collect(child, 60_000);
    const ready = [0, 1].map((r) => join(tmp.dir, `orphan-ready${r}`));
    assert.ok(await waitFor(() => ready.every((f) => existsSync(f)), 30_000), 'workers did not start');
    const pids = ready.map((f) => Number(readFileSync(f, 'utf8')));
    child.kill('SIGKILL');
    await done;
    const gone = await waitFor(() => pids.every((p) => !alive(p)), 10_000);
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    assert.ok(
      gone,
      `workers ${pids.join(', ')} outlived the launcher by 10 s (watchdog: 0.5 s poll + 2 s grace)`,
    );
  });

  it('exits at once on SIGINT while waiting for the other nodes to join', async () => {
    const port = await freePort();
    const child = spawnLauncher([
      '--nnodes',
      '2',
      '--master-port',
      String(port),
      '--run-id',
      'wait',
      catcher,
      tmp.dir,
      'w',
    ]);
    const done = collect(child, 60_000);
    let listening = false;
    const probe = () =>
      new Promise<void>((resolve) => {
        const s = connect(port, '127.0.0.1', () => {
          listening = true;
          s.destroy();
          resolve();
        }).on('error', () => resolve());
      });
    for (let i = 0; i < 300 && !listening; i++) {
      await probe();
      if (!listening) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(listening, 'node 0 never hosted the store');
    const sentAt = Date.now();
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 128 + constants.signals.SIGINT, r.stderr);
    assert.ok(Date.now() - sentAt < 8000, `took ${Date.now() - sentAt} ms`);
    assert.equal(existsSync(join(tmp.dir, 'w-ready0')), false, 'no worker started');
  });
});
