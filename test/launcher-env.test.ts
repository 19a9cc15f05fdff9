import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { freePort, launchFromSource, linesByRank, tempDir, writeScript } from './support/launch.js';

const ENV_KEYS = [
  'RANK',
  'LOCAL_RANK',
  'WORLD_SIZE',
  'LOCAL_WORLD_SIZE',
  'GROUP_RANK',
  'GROUP_WORLD_SIZE',
  'MASTER_ADDR',
  'MASTER_PORT',
  'MTL_RUN_ID',
  'MTL_RUN_TOKEN',
  'MTL_RESTART_COUNT',
  'MTL_MAX_RESTARTS',
  'CUDA_VISIBLE_DEVICES',
  'OMP_NUM_THREADS',
  'MTL_TEST_PASSTHROUGH',
];

// Independent launches (each on its own free port): two at a time.
describe('mtl-launch worker environment', { concurrency: 2 }, () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  const script = writeScript(
    tmp.dir,
    'env.mjs',
    `const keys = ${JSON.stringify(ENV_KEYS)};
     const env = Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null]));
     console.log(JSON.stringify({ env, argv: process.argv.slice(2), ipc: typeof process.send }));`,
  );

  async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
    const r = await launchFromSource([...args, script, 'x', '--flag=1'], {
      env: {
        MTL_TEST_PASSTHROUGH: 'kept',
        CUDA_VISIBLE_DEVICES: undefined,
        OMP_NUM_THREADS: undefined,
        ...env,
      },
    });
    assert.equal(r.code, 0, r.stderr);
    const byRank = linesByRank(r.stdout);
    return [...byRank.entries()].map(([rank, lines]) => {
      assert.equal(lines.length, 1, `rank ${rank} printed ${lines.length} lines`);
      return {
        rank,
        ...(JSON.parse(lines[0]!) as { env: Record<string, string | null>; argv: string[]; ipc: string }),
      };
    });
  }

  for (const n of [1, 3]) {
    it(`gives each of ${n} workers its rank, the world and the store`, async () => {
      const workers = await run([
        '--standalone',
        '--nproc',
        String(n),
        '--max-restarts',
        '2',
        '--run-id',
        `env${n}`,
      ]);
      assert.deepEqual(
        workers.map((w) => w.rank).sort(),
        Array.from({ length: n }, (_, i) => i),
      );
      const port = workers[0]!.env.MASTER_PORT;
      assert.match(port ?? '', /^\d+$/);
      for (const w of workers) {
        assert.deepEqual(w.env, {
          RANK: String(w.rank),
          LOCAL_RANK: String(w.rank),
          WORLD_SIZE: String(n),
          LOCAL_WORLD_SIZE: String(n),
          GROUP_RANK: '0',
          GROUP_WORLD_SIZE: '1',
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: port,
          MTL_RUN_ID: `env${n}`,
          MTL_RUN_TOKEN: workers[0]!.env.MTL_RUN_TOKEN,
          MTL_RESTART_COUNT: '0',
          MTL_MAX_RESTARTS: '2',
          CUDA_VISIBLE_DEVICES: String(w.rank),
          OMP_NUM_THREADS: '1',
          MTL_TEST_PASSTHROUGH: 'kept',
        });
        assert.ok((w.env.MTL_RUN_TOKEN ?? '').length >= 16, 'a random run token is generated');
        assert.deepEqual(w.argv, ['x', '--flag=1']);
        assert.equal(w.ipc, 'function', 'workers have an IPC channel to the launcher');
      }
    });
  }

  it('pins devices from a CUDA_VISIBLE_DEVICES list, keeps OMP_NUM_THREADS and takes the token from the environment', async () => {
    const workers = await run(['--standalone', '--nproc-per-node', '2'], {
      CUDA_VISIBLE_DEVICES: '5, 7,9',
      OMP_NUM_THREADS: '4',
      MTL_RUN_TOKEN: 'secret-token',
    });
    const byRank = new Map(workers.map((w) => [w.rank, w.env]));
    assert.equal(byRank.get(0)?.CUDA_VISIBLE_DEVICES, '5');
    assert.equal(byRank.get(1)?.CUDA_VISIBLE_DEVICES, '7');
    for (const env of byRank.values()) {
      assert.equal(env.OMP_NUM_THREADS, '4');
      assert.equal(env.MTL_RUN_TOKEN, 'secret-token');
    }
  });

  it('accepts torchrun spellings (--nproc_per_node=2 --max_restarts 1)', async () => {
    const workers = await run(['--standalone', '--nproc_per_node=2', '--max_restarts', '1']);
    assert.equal(workers.length, 2);
    assert.equal(workers[0]!.env.MTL_MAX_RESTARTS, '1');
  });

  it('takes the placement from Slurm and binds the first host of the job list', async () => {
    const port = String(await freePort());
    const workers = await run(['--nproc', '1', '--master-port', port], {
      SLURM_JOB_ID: '77',
      SLURM_NNODES: '1',
      SLURM_NODEID: '0',
      SLURM_JOB_NODELIST: 'localhost,node[2-3]',
    });
    assert.equal(workers.length, 1);
    assert.equal(workers[0]!.env.GROUP_WORLD_SIZE, '1');
    assert.equal(workers[0]!.env.MASTER_ADDR, '127.0.0.1', 'the host name is resolved to the address bound');
    assert.equal(workers[0]!.env.MASTER_PORT, port);
  });
});
