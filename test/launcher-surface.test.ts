// What a run exposes and leaves behind: /metrics listens where the run's network is (loopback for a
// single-node run) unless every interface is asked for, and a failed run leaves no socket files.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  REPO_ROOT,
  collect,
  freePort,
  launchFromSource,
  spawnLauncher,
  tempDir,
  waitFor,
  writeScript,
} from './support/launch.js';

/** Local addresses of the sockets listening on TCP `port`, read from the kernel's tables. */
function listeningOn(port: number): string[] {
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A: LISTEN
      const [hex, portHex] = f[1]!.split(':') as [string, string];
      if (parseInt(portHex, 16) !== port) continue;
      // IPv4 is one little-endian word; IPv6 four of them.
      const words = hex.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
      out.push(
        words.length === 1
          ? words[0]!
              .match(/../g)!
              .map((b) => parseInt(b, 16))
              .join('.')
          : words.join('').match(/.{4}/g)!.join(':'),
      );
    }
  }
  return out;
}

describe('mtl-launch surface', () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  const idle = writeScript(tmp.dir, 'idle.mjs', `setInterval(() => {}, 1000);`);

  for (const [name, extra, expected] of [
    ['binds /metrics to 127.0.0.1 by default on a single-node run', [], '127.0.0.1'],
    [
      'binds /metrics to every interface only when --metrics-host 0.0.0.0 says so',
      ['--metrics-host', '0.0.0.0'],
      '0.0.0.0',
    ],
  ] as const) {
    it(name, async () => {
      const port = await freePort();
      const launcher = spawnLauncher([
        '--standalone',
        '--metrics-port',
        String(port),
        '--shutdown-timeout',
        '5',
        ...extra,
        idle,
      ]);
      const done = collect(launcher, 60_000);
      const up = await waitFor(() => listeningOn(port).length > 0, 30_000);
      const bound = listeningOn(port);
      launcher.kill('SIGTERM');
      const r = await done;
      assert.ok(up, `nothing listened on port ${port}:\n${r.stderr}`);
      assert.deepEqual(bound, [expected]);
    });
  }

  it('leaves no unix socket files after a failed run (one rank exits, the other is stopped by SIGTERM)', async () => {
    const sockDir = tempDir('mtl-socks-');
    after(sockDir.cleanup);
    const worker = join(REPO_ROOT, 'test', 'support', 'pg-worker.ts');
    const r = await launchFromSource(['--standalone', '--nproc', '2', '--shutdown-timeout', '10', worker], {
      env: { TMPDIR: sockDir.dir, FAIL_RANK: '1' },
      timeoutMs: 120_000,
    });
    assert.notEqual(r.code, 0, 'the run failed');
    assert.match(
      r.stdout,
      /attempt 0 world 2 sum 3 3/,
      'the group formed (and opened its sockets) before the failure',
    );
    assert.deepEqual(
      readdirSync(sockDir.dir).filter((n) => /^mtl-.*\.sock$/.test(n)),
      [],
    );
  });
});
