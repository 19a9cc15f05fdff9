import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LaunchError } from '../src/errors.js';
import { derivedToken, normalizeFlags, parseLaunchArgs } from '../src/options.js';
import { resolveNproc } from '../src/nproc.js';

const dir = mkdtempSync(join(tmpdir(), 'mtl-opts-'));
writeFileSync(join(dir, 'train.mjs'), '');
writeFileSync(join(dir, 'train.ts'), '');
writeFileSync(join(dir, 'notes.txt'), '');
after(() => rmSync(dir, { recursive: true, force: true }));

const host = () => ({ gpus: 4, cpus: 16 });
const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => parseLaunchArgs(args, env, dir, host);
const refuses = (args: string[], message: RegExp, env: NodeJS.ProcessEnv = {}) =>
  assert.throws(
    () => parse(args, env),
    (e: unknown) => e instanceof LaunchError && message.test(e.message),
  );

describe('resolveNproc', () => {
  it('maps auto, gpu, cpu and numbers to a count', () => {
    assert.equal(resolveNproc('auto', { gpus: 8, cpus: 2 }), 8);
    assert.equal(resolveNproc('auto', { gpus: 0, cpus: 2 }), 1);
    assert.equal(resolveNproc('gpu', { gpus: 3, cpus: 2 }), 3);
    assert.equal(resolveNproc('cpu', { gpus: 3, cpus: 12 }), 12);
    assert.equal(resolveNproc('5', { gpus: 0, cpus: 1 }), 5);
  });
  it('refuses gpu without GPUs, zero and junk', () => {
    assert.throws(() => resolveNproc('gpu', { gpus: 0, cpus: 4 }), /no GPU found/);
    assert.throws(() => resolveNproc('0', { gpus: 0, cpus: 4 }), /at least 1/);
    assert.throws(() => resolveNproc('-2', { gpus: 0, cpus: 4 }), /positive integer/);
    assert.throws(() => resolveNproc('2.5', { gpus: 0, cpus: 4 }), /positive integer/);
  });
});

describe('normalizeFlags', () => {
  it('rewrites torchrun underscores in launcher flags only, never in the script arguments', () => {
    assert.deepEqual(
      normalizeFlags([
        '--nproc_per_node=2',
        '--master_addr',
        'node_1',
        '--standalone',
        'train.py',
        '--lr_decay',
        '1',
      ]),
      ['--nproc-per-node=2', '--master-addr', 'node_1', '--standalone', 'train.py', '--lr_decay', '1'],
    );
  });
});

describe('parseLaunchArgs', () => {
  it('takes --nproc as --nproc-per-node and passes the arguments after the script through', () => {
    const { config } = parse(['--nproc', '8', 'train.mjs', '--epochs', '3', 'lr=0.1']);
    assert.equal(config.nprocPerNode, 8);
    assert.equal(config.entry.kind, 'script');
    assert.equal(config.entry.program, join(dir, 'train.mjs'));
    assert.deepEqual(config.entry.args, ['--epochs', '3', 'lr=0.1']);
    assert.equal(config.masterAddr, '127.0.0.1');
    assert.equal(config.masterPort, 29500);
    assert.equal(config.maxRestarts, 0);
  });

  it('resolves auto/gpu/cpu against the host', () => {
    assert.equal(parse(['--nproc', 'auto', 'train.mjs']).config.nprocPerNode, 4);
    assert.equal(parse(['--nproc-per-node', 'cpu', 'train.mjs']).config.nprocPerNode, 16);
  });

  it('runs a .ts script through tsx', () => {
    const { config } = parse(['train.ts']);
    assert.ok(
      config.entry.execArgv.some((a) => a.includes('tsx')),
      config.entry.execArgv.join(' '),
    );
  });

  it('uses a free port and a random run id with --standalone', () => {
    const a = parse(['--standalone', 'train.mjs']).config;
    const b = parse(['--standalone', 'train.mjs']).config;
    assert.equal(a.masterPort, 0);
    assert.notEqual(a.runId, b.runId);
    assert.notEqual(a.runToken, b.runToken);
  });

  it('derives the multi-node token from the run id and warns once when none is given', () => {
    const p = parse(['--nnodes', '2', '--node-rank', '1', '--run-id', 'job7', 'train.mjs']);
    assert.equal(p.config.runToken, derivedToken('job7'));
    assert.notEqual(derivedToken('job7'), derivedToken('job8'));
    assert.equal(p.config.tokenDerived, true);
    assert.equal(p.warnings.length, 1);
    const q = parse(['--nnodes', '2', 'train.mjs'], { MTL_RUN_TOKEN: 's3cret' });
    assert.equal(q.config.runToken, 's3cret');
    assert.deepEqual(q.warnings, []);
    assert.equal(parse(['--nnodes', '2', '--rdzv-token', 'flag', 'train.mjs']).config.runToken, 'flag');
  });

  it('reads the placement from Slurm when none is given, and lets flags win', () => {
    const env = {
      SLURM_JOB_ID: '42',
      SLURM_NNODES: '4',
      SLURM_NODEID: '2',
      SLURM_JOB_NODELIST: 'gpu[07-10]',
    };
    const c = parse(['train.mjs'], env).config;
    assert.deepEqual([c.nnodes, c.nodeRank, c.masterAddr], [4, 2, 'gpu07']);
    const d = parse(['--nnodes', '1', 'train.mjs'], env).config;
    assert.deepEqual([d.nnodes, d.nodeRank, d.masterAddr], [1, 0, '127.0.0.1']);
  });

  it("takes torchrun's rendezvous flags: backend, endpoint (default port 29400), id, conf", () => {
    const c = parse([
      '--nnodes=2',
      '--nproc_per_node=2',
      '--rdzv_backend=c10d',
      '--rdzv_endpoint=10.1.2.3',
      '--rdzv-id=job7',
      '--rdzv-conf',
      'timeout=120,read_timeout=45,last_call_timeout=5',
      'train.mjs',
    ]).config;
    assert.deepEqual(
      [c.masterAddr, c.masterPort, c.runId, c.rdzvTimeoutMs, c.heartbeatTimeoutMs],
      ['10.1.2.3', 29400, 'job7', 120_000, 45_000],
    );
    // c10d without --node-rank: the rendezvous numbers the nodes; a remote endpoint is not hosted here.
    assert.equal(c.nodeRank, null);
    assert.equal(c.hostsStore, false);
    const local = parse([
      '--nnodes',
      '2',
      '--rdzv-backend',
      'c10d',
      '--rdzv-endpoint',
      '127.0.0.1:29611',
      'train.mjs',
    ]);
    assert.deepEqual([local.config.masterPort, local.config.hostsStore], [29611, 'try']);
    const pinned = parse([
      '--nnodes',
      '2',
      '--rdzv-backend',
      'c10d',
      '--rdzv-endpoint',
      'h:1',
      '--rdzv-conf',
      'is_host=1',
      'train.mjs',
    ]);
    assert.equal(pinned.config.hostsStore, true);
    const v6 = parse(['--rdzv-endpoint', '[fe80::1]:29500', 'train.mjs']).config;
    assert.deepEqual([v6.masterAddr, v6.masterPort], ['fe80::1', 29500]);
    // static, or an explicit --node-rank: node 0 hosts, as before.
    const st = parse(['--nnodes', '2', '--node-rank', '1', '--rdzv-endpoint', 'h:5', 'train.mjs']).config;
    assert.deepEqual([st.nodeRank, st.hostsStore, st.masterAddr, st.masterPort], [1, false, 'h', 5]);
  });

  it('refuses rendezvous settings it cannot honour, and flags that contradict each other', () => {
    refuses(
      ['--rdzv-backend', 'etcd', 'train.mjs'],
      /--rdzv-backend etcd is not supported: use c10d or static/,
    );
    refuses(
      ['--rdzv-conf', 'timeout=1,heartbeat=5', 'train.mjs'],
      /--rdzv-conf: unknown key 'heartbeat' \(known: timeout,/,
    );
    refuses(
      ['--rdzv-conf', 'timeout=soon', 'train.mjs'],
      /timeout=soon: expected a positive number of seconds/,
    );
    refuses(['--rdzv-endpoint', 'h:99999', 'train.mjs'], /port must be in 1\.\.65535/);
    refuses(
      ['--rdzv-endpoint', 'h:1', '--master-addr', 'g', 'train.mjs'],
      /--rdzv-endpoint h:1 and --master-addr g disagree/,
    );
    refuses(['--rdzv-id', 'a', '--run-id', 'b', 'train.mjs'], /--run-id b and --rdzv-id a disagree/);
    refuses(
      ['--rdzv-conf', 'timeout=5', '--rdzv-timeout', '9', 'train.mjs'],
      /timeout=5 and --rdzv-timeout 9 disagree/,
    );
  });

  it('accepts --nnodes MIN:MAX with MIN = MAX and refuses a real elastic range in one line', () => {
    assert.equal(parse(['--nnodes', '3:3', '--node-rank', '2', 'train.mjs']).config.nnodes, 3);
    refuses(
      ['--nnodes', '1:4', 'train.mjs'],
      /--nnodes 1:4: elastic membership \(MIN < MAX\) is not supported; .*--nnodes 4:4/,
    );
    refuses(['--nnodes', '4:1', 'train.mjs'], /MIN must not exceed MAX/);
  });

  it('runs .py and -m through python3 -u, --no-python executables as they are, and takes --role, --run-path, --local-addr', () => {
    writeFileSync(join(dir, 'train.py'), '');
    writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    const env = { PATH: '/usr/bin:/bin', MTL_PYTHON: '/usr/bin/python3' };
    const py = parse(['train.py', '--lr', '1'], env).config.entry;
    assert.deepEqual(
      [py.kind, py.exec],
      ['exec', ['/usr/bin/python3', '-u', join(dir, 'train.py'), '--lr', '1']],
    );
    const mod = parse(['-m', 'pkg.train', '--x'], env).config.entry;
    assert.deepEqual(mod.exec, ['/usr/bin/python3', '-u', '-m', 'pkg.train', '--x']);
    const sh = parse(['--no_python', './run.sh', 'a'], env).config.entry;
    assert.deepEqual(sh.exec, [join(dir, 'run.sh'), 'a']);
    const onPath = parse(['--no-python', 'sh', '-c', 'true'], env).config.entry.exec ?? [];
    assert.match(onPath[0] ?? '', /^\/(usr\/)?bin\/sh$/, 'found on PATH');
    assert.deepEqual(onPath.slice(1), ['-c', 'true']);
    const c = parse(['--role', 'trainer', '--run-path', '--local-addr', '10.0.0.5', 'train.mjs']).config;
    assert.deepEqual([c.roleName, c.localAddr], ['trainer', '10.0.0.5']);
    refuses(
      ['--no-python', 'no-such-program-here', 'x'],
      /program no-such-program-here not found on PATH/,
      env,
    );
    refuses(['--no-python', './notes.txt'], /program \.\/notes\.txt not found or not executable/, env);
    refuses(['--no-python', '-m', 'x'], /-m and --no-python exclude each other/, env);
    refuses(['train.py'], /interpreter python3 not found on PATH \(set MTL_PYTHON/, { PATH: '/nonexistent' });
  });

  it('parses log routing flags', () => {
    const c = parse([
      '--log-dir',
      'logs',
      '--redirects',
      '0:3,2:1',
      '--tee',
      '2',
      '--local-ranks-filter',
      '0,2',
      'train.mjs',
    ]).config;
    assert.equal(c.logDir, join(dir, 'logs'));
    assert.deepEqual(c.redirects(0), { out: true, err: true });
    assert.deepEqual(c.redirects(1), { out: false, err: false });
    assert.deepEqual(c.redirects(2), { out: true, err: false });
    assert.deepEqual(c.tee(5), { out: false, err: true });
    assert.deepEqual([...(c.localRanksFilter ?? [])], [0, 2]);
  });

  it('refuses bad values with a message naming the flag', () => {
    refuses(
      ['--nproc', 'many', 'train.mjs'],
      /--nproc-per-node must be a positive integer, auto, gpu or cpu \(got 'many'\)/,
    );
    refuses(['--nproc', '0', 'train.mjs'], /at least 1/);
    refuses(['--nnodes', '0', 'train.mjs'], /--nnodes must be at least 1/);
    refuses(['--nnodes', '3', '--node-rank', '3', 'train.mjs'], /--node-rank 3 must be less than --nnodes 3/);
    refuses(['--master-port', '70000', 'train.mjs'], /--master-port must be in 1\.\.65535, got 70000/);
    refuses(['--max-restarts', '-1', 'train.mjs'], /--max-restarts must be at least 0/);
    refuses(
      ['--shutdown-timeout', '0', 'train.mjs'],
      /--shutdown-timeout must be a positive number of seconds/,
    );
    refuses(['--redirects', '7', 'train.mjs'], /--redirects: expected 0 \(none\)/);
    refuses(['--tee', '0:x', 'train.mjs'], /--tee: expected 0 \(none\)/);
    refuses(['--local-ranks-filter', 'a,b', 'train.mjs'], /--local-ranks-filter/);
    refuses(['--run-id', 'a b', 'train.mjs'], /--run-id must be/);
    refuses(['--standalone', '--nnodes', '2', 'train.mjs'], /--standalone runs a single node/);
    refuses(['--nproc', '2', '--nproc-per-node', '3', 'train.mjs'], /disagree/);
    refuses(['--nproc', '3', 'train.mjs'], /CUDA_VISIBLE_DEVICES=0,1 lists 2 device\(s\) for 3 workers/, {
      CUDA_VISIBLE_DEVICES: '0,1',
    });
    refuses(['missing.mjs'], /script not found: missing\.mjs/);
    refuses(['missing.yaml'], /config not found: missing\.yaml/);
    refuses(['notes.txt'], /expected a training config \(\.yaml, \.yml\) or a script/);
    refuses(['train.mjs'], /SLURM_JOB_NODELIST: .*unbalanced/, {
      SLURM_JOB_ID: '1',
      SLURM_NNODES: '2',
      SLURM_NODEID: '0',
      SLURM_JOB_NODELIST: 'n[1-2',
    });
  });
});

describe('config mode', () => {
  it('runs the built-in worker with the config path and the overrides', () => {
    writeFileSync(join(dir, 'demo.yaml'), 'model: {}\n');
    const entry = parse(['demo.yaml', 'train.lr=0.1', 'seed=3']).config.entry;
    assert.equal(entry.kind, 'config');
    assert.match(entry.program, /workers\/src\/worker\.ts$/);
    assert.deepEqual(entry.args, [join(dir, 'demo.yaml'), 'train.lr=0.1', 'seed=3']);
    assert.ok(entry.execArgv.includes('--conditions=mtl-source'));
  });
});
