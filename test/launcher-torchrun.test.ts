// torchrun's command lines, end to end: the c10d rendezvous flags on two launchers that give no
// node rank, a Python worker run with --no-python that reports its environment, a .py script and
// a -m module through the interpreter, and a Python failure named in the summary.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  alive,
  collect,
  freePort,
  launchFromSource,
  linesByRank,
  spawnLauncher,
  tempDir,
  waitFor,
  writeScript,
} from './support/launch.js';

const PYTHON = '/usr/bin/python3';
const ENV_KEYS = [
  'RANK',
  'LOCAL_RANK',
  'WORLD_SIZE',
  'GROUP_RANK',
  'MASTER_PORT',
  'TORCHELASTIC_RUN_ID',
  'TORCHELASTIC_RESTART_COUNT',
  'TORCHELASTIC_MAX_RESTARTS',
  'ROLE_NAME',
  'ROLE_RANK',
  'ROLE_WORLD_SIZE',
  'MTL_NODE_ADDR',
  'PASSED_THROUGH',
];
// Prints the variables a torchrun script reads, as one JSON line.
const REPORT = `import json, os, sys
print(json.dumps({k: os.environ.get(k) for k in ${JSON.stringify(ENV_KEYS)}} | {"argv": sys.argv[1:]}))
`;

type Report = Record<string, string | null> & { argv: string[] };
const reports = (stdout: string): Report[] =>
  [...linesByRank(stdout).values()].flat().map((l) => JSON.parse(l) as Report);

describe('mtl-launch with torchrun command lines', () => {
  const tmp = tempDir('mtl-torchrun-');
  after(tmp.cleanup);
  const worker = writeScript(tmp.dir, 'report.py', `#!${PYTHON}\n${REPORT}`);
  chmodSync(worker, 0o755);
  const env = { MTL_PYTHON: PYTHON, PASSED_THROUGH: 'yes', MTL_RUN_TOKEN: 'loopback-secret' };

  it('two nodes with c10d flags and no node rank run a --no-python worker with the full environment', async () => {
    const port = await freePort();
    const line = [
      '--nnodes=2:2',
      '--nproc_per_node=2',
      '--rdzv_backend=c10d',
      `--rdzv_endpoint=127.0.0.1:${port}`,
      '--rdzv_id=job7',
      '--rdzv_conf=timeout=60,read_timeout=30',
      '--max_restarts=1',
      '--role=trainer',
      '--local_addr=127.0.0.1',
      '--no_python',
      worker,
      '--epochs',
      '3',
    ];
    const runs = await Promise.all(
      [0, 1].map(() => launchFromSource(line, { cwd: tmp.dir, env, timeoutMs: 90_000 })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const all = runs.flatMap((r) => reports(r.stdout));
    assert.deepEqual(all.map((e) => Number(e.RANK)).sort(), [0, 1, 2, 3]);
    // Each launcher got a distinct node rank from the rendezvous; its workers are consecutive ranks.
    const groups = runs.map((r) => reports(r.stdout).map((e) => [Number(e.GROUP_RANK), Number(e.RANK)]));
    assert.deepEqual(groups.map((g) => g[0]![0]).sort(), [0, 1]);
    for (const g of groups)
      for (const [group, rank] of g) assert.equal(Math.floor(rank! / 2), group, JSON.stringify(g));
    for (const e of all) {
      assert.deepEqual(e.argv, ['--epochs', '3']);
      assert.equal(e.WORLD_SIZE, '4');
      assert.equal(e.MASTER_PORT, String(port));
      assert.equal(e.TORCHELASTIC_RUN_ID, 'job7');
      assert.equal(e.TORCHELASTIC_RESTART_COUNT, '0');
      assert.equal(e.TORCHELASTIC_MAX_RESTARTS, '1');
      assert.equal(e.ROLE_NAME, 'trainer');
      assert.equal(e.ROLE_RANK, e.RANK);
      assert.equal(e.ROLE_WORLD_SIZE, '4');
      assert.equal(e.MTL_NODE_ADDR, '127.0.0.1');
      assert.equal(e.PASSED_THROUGH, 'yes');
    }
  });

  it('runs a .py script and a -m module through the interpreter, as torchrun', async () => {
    const pkg = join(tmp.dir, 'pkg');
    mkdirSync(pkg);
    writeScript(pkg, '__init__.py', '');
    writeScript(pkg, 'train.py', REPORT);
    const script = await launchFromSource(['--standalone', '--nproc', '2', 'report.py', 'x'], {
      cwd: tmp.dir,
      env,
    });
    assert.equal(script.code, 0, script.stderr);
    const module = await launchFromSource(['--standalone', '--nproc', '2', '-m', 'pkg.train', 'y'], {
      cwd: tmp.dir,
      env,
    });
    assert.equal(module.code, 0, module.stderr);
    for (const [r, arg] of [
      [script, 'x'],
      [module, 'y'],
    ] as const) {
      const es = reports(r.stdout);
      assert.deepEqual(es.map((e) => Number(e.RANK)).sort(), [0, 1]);
      for (const e of es) assert.deepEqual(e.argv, [arg]);
    }
  });

  it("names a Python worker's failure (exit code and last stderr line) in the summary", async () => {
    writeScript(
      tmp.dir,
      'fail.py',
      `import os, sys\nif os.environ["RANK"] == "1":\n    print("rank 1 gives up", file=sys.stderr)\n    sys.exit(3)\n`,
    );
    const r = await launchFromSource(['--standalone', '--nproc', '2', 'fail.py'], { cwd: tmp.dir, env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /root cause: rank 1 .*exited with code 3/);
    assert.match(r.stderr, /rank 1 gives up/);
  });

  it('supervises a Python worker as a node one: a signal reaches it, and it does not outlive a killed launcher', async () => {
    // Writes <dir>/<tag>up with its pid, and <dir>/<tag>term when SIGTERM arrives.
    writeScript(
      tmp.dir,
      'wait.py',
      `import os, pathlib, signal, sys, time
d, tag = pathlib.Path(sys.argv[1]), sys.argv[2]
def term(*_):
    (d / (tag + "term")).write_text("1")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
(d / (tag + "up")).write_text(str(os.getpid()))
while True:
    time.sleep(0.05)
`,
    );
    const start = (tag: string) =>
      spawnLauncher(['--standalone', '--nproc', '1', 'wait.py', tmp.dir, tag], { cwd: tmp.dir, env });
    const a = start('a');
    const aDone = collect(a, 60_000);
    assert.ok(await waitFor(() => existsSync(join(tmp.dir, 'aup')), 30_000), 'worker a started');
    a.kill('SIGTERM');
    const ra = await aDone;
    assert.equal(ra.code, 128 + 15, ra.stderr);
    assert.ok(existsSync(join(tmp.dir, 'aterm')), 'SIGTERM reached the Python program');

    const b = start('b');
    const bDone = collect(b, 60_000);
    assert.ok(await waitFor(() => existsSync(join(tmp.dir, 'bup')), 30_000), 'worker b started');
    const pid = Number(readFileSync(join(tmp.dir, 'bup'), 'utf8'));
    b.kill('SIGKILL');
    await bDone;
    assert.ok(await waitFor(() => !alive(pid), 15_000), `python pid ${pid} outlived its launcher`);
  });
});
