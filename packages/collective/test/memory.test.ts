import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { StoreServer } from '../src/index.js';
import { SOURCE_EXEC_ARGV } from '../../../scripts/source-argv.mjs';
import { TOKEN } from './helpers/groups.js';

test(
  '1,000 all-reduces of 16 MiB do not grow resident memory (two processes)',
  { timeout: 300_000 },
  async () => {
    const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
    const script = fileURLToPath(new URL('./fixtures/rssWorker.ts', import.meta.url));
    const procs = [0, 1].map((rank) =>
      spawn(process.execPath, ['--expose-gc', ...SOURCE_EXEC_ARGV, script], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          RANK: String(rank),
          WORLD_SIZE: '2',
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(store.port),
          MTL_RUN_ID: `rss-${process.pid}`,
          MTL_RUN_TOKEN: TOKEN,
          MTL_PG_TIMEOUT_MS: '60000',
        },
      }),
    );
    try {
      const reports = await Promise.all(
        procs.map(
          (p, r) =>
            new Promise<{ before: number; after: number }>((resolve, reject) => {
              let out = '';
              p.stdout.on('data', (d: Buffer) => (out += d.toString()));
              p.once('exit', (code) =>
                code === 0
                  ? resolve(JSON.parse(out))
                  : reject(new Error(`rank ${r} exited with ${code}: ${out}`)),
              );
            }),
        ),
      );
      for (const [r, { before, after }] of reports.entries()) {
        const grown = (after - before) / 2 ** 20;
        assert.ok(
          grown < 64,
          `rank ${r}: RSS grew by ${grown.toFixed(1)} MiB (from ${(before / 2 ** 20).toFixed(0)} MiB) over 950 all-reduces`,
        );
      }
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await store.close();
    }
  },
);
