import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { launchFromSource, tempDir, writeScript } from './support/launch.js';

// Independent launches that fail fast: run two at a time to use both cores of a CI machine.
describe('mtl-launch bad input', { concurrency: 2 }, () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  const ok = writeScript(tmp.dir, 'ok.mjs', `console.log('should not run');`);
  let busy: Server;
  let busyPort = 0;
  before(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const addr = busy.address();
    busyPort = typeof addr === 'object' && addr ? addr.port : 0;
  });
  after(() => busy.close());

  const cases: Array<[string, () => string[], RegExp]> = [
    ['0 processes', () => ['--nproc', '0', ok], /--nproc-per-node must be at least 1/],
    [
      'node rank >= nnodes',
      () => ['--nnodes', '2', '--node-rank', '2', ok],
      /--node-rank 2 must be less than --nnodes 2/,
    ],
    [
      'a port in use',
      () => ['--master-port', String(busyPort), ok],
      /127\.0\.0\.1:\d+: the port is already in use/,
    ],
    [
      'a missing script',
      () => ['--standalone', 'no/such/train.mjs'],
      /script not found: no\/such\/train\.mjs/,
    ],
    ['an unknown option', () => ['--nproc', '1', '--frobnicate', '3', ok], /unknown option '--frobnicate'/],
    [
      'a metrics port in use',
      () => ['--standalone', '--metrics-port', String(busyPort), '--metrics-host', '127.0.0.1', ok],
      /metrics: cannot listen on 127\.0\.0\.1:\d+/,
    ],
  ];

  for (const [name, args, message] of cases) {
    it(`refuses ${name} with one clear line`, async () => {
      const r = await launchFromSource(args(), { timeoutMs: 30_000 });
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '', 'no worker ran');
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
      assert.match(lines[0]!, /^mtl-launch: /);
      assert.match(lines[0]!, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});
