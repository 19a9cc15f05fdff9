import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { AgentConfig } from './agent.js';
import { resolveEntrypoint } from './entrypoint.js';
import { LaunchError } from './errors.js';
import { resolveExecEntrypoint } from './exec-entry.js';
import { parseRanksFilter, parseStreamSpec } from './log-spec.js';
import { probeHost, resolveNproc } from './nproc.js';
import type { HostResources } from './nproc.js';
import { slurmPlacement } from './slurm.js';
import {
  C10D_DEFAULT_PORT,
  parseNnodes,
  parseRdzvBackend,
  parseRdzvConf,
  parseRdzvEndpoint,
} from './torchrun-flags.js';
import { parseDeviceList } from './worker-env.js';

/** Flags that take no value (everything else before the entry point takes one). */
const BOOLEAN_FLAGS = new Set([
  '--standalone',
  '--help',
  '--version',
  '--no-python',
  '--module',
  '--run-path',
]);

/**
 * torchrun spells flags with underscores (`--nproc_per_node`); accept both. Only the launcher's
 * own flags are rewritten, never anything after the script.
 */
export function normalizeFlags(argv: string[]): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length;) {
    const t = out[i] ?? '';
    if (t === '--' || !t.startsWith('-')) break;
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      const name = (eq < 0 ? t : t.slice(0, eq)).replaceAll('_', '-');
      out[i] = eq < 0 ? name : name + t.slice(eq);
      i += eq < 0 && !BOOLEAN_FLAGS.has(name) ? 2 : 1;
    } else i += t === '-h' || t === '-m' ? 1 : 2;
  }
  return out;
}

function int(value: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(value.trim())) throw new LaunchError(`${flag} must be an integer, got '${value}'`);
  const n = Number(value);
  if (n < min || n > max) {
    throw new LaunchError(
      `${flag} must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `in ${min}..${max}`}, got ${n}`,
    );
  }
  return n;
}

function secondsToMs(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new LaunchError(`${flag} must be a positive number of seconds, got '${value}'`);
  }
  return Math.round(n * 1000);
}

function launcherVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function buildCommand(): Command {
  return new Command('mtl-launch')
    .description(
      'Start and supervise one training worker per GPU on one or many nodes (torchrun for mtlface).',
    )
    .usage(
      '[options] <config.yaml | mtlface [release flags] | script.(js|mjs|ts|py) | -m module | --no-python program> [args...]',
    )
    .argument(
      '<entry>',
      'a training config or `mtlface` (the built-in worker), or a script run in every worker',
    )
    .argument('[args...]', 'arguments for the script, or key=value overrides for the config')
    .option('--nproc-per-node <n>', 'workers on this node: N, auto (one per GPU, else 1), gpu, cpu', '1')
    .addOption(new Option('--nproc <n>', 'alias of --nproc-per-node'))
    .option('--nnodes <n>', 'number of nodes', '1')
    .option('--node-rank <r>', 'rank of this node, 0..nnodes-1', '0')
    .option('--master-addr <addr>', 'address of node 0 (hosts the rendezvous store)', '127.0.0.1')
    .option('--master-port <port>', 'port of the rendezvous store on node 0', '29500')
    .option('--standalone', 'single node, store on a free local port, random run id')
    .option('--rdzv-backend <name>', 'c10d (node ranks may come from the rendezvous) or static', 'static')
    .option(
      '--rdzv-endpoint <host[:port]>',
      'the store: as --master-addr/--master-port (port 29400 if absent)',
    )
    .option('--rdzv-id <id>', 'alias of --run-id')
    .option('--rdzv-conf <k=v,...>', 'timeout/join_timeout, read_timeout (seconds), is_host')
    .option('--no-python', 'run the entry as an executable, not through node or python3')
    .option('-m, --module', 'the entry is a Python module, run as python3 -u -m MODULE')
    .option('--role <name>', "the workers' role (ROLE_NAME)", 'default')
    .option('--run-path', 'accepted for torchrun lines; workers always run as their own processes')
    .addOption(
      new Option('--start-method <m>', 'accepted for torchrun lines; workers are always spawned').choices([
        'spawn',
        'fork',
        'forkserver',
      ]),
    )
    .option('--local-addr <addr>', "this node's address for the workers' connections (MTL_NODE_ADDR)")
    .option(
      '--run-id <id>',
      'run id, the same on every node (default: random on one node, "none" on several)',
    )
    .option('--rdzv-token <token>', 'shared secret of the store (default: env MTL_RUN_TOKEN)')
    .option('--max-restarts <n>', 'restarts of all workers after a failure', '0')
    .option('--monitor-interval <s>', 'seconds between checks of the other nodes', '0.1')
    .option('--shutdown-timeout <s>', 'seconds between SIGTERM and SIGKILL when stopping workers', '30')
    .option('--rdzv-timeout <s>', 'seconds to wait for the other nodes', '900')
    .option('--heartbeat-timeout <s>', 'seconds of silence after which a node counts as lost', '30')
    .option('--log-dir <dir>', 'write <dir>/<run-id>/attempt_<k>/rank<r>/{stdout,stderr}.log')
    .option(
      '-r, --redirects <spec>',
      'streams only written to log files: 0 none, 1 out, 2 err, 3 both, or 0:1,1:2',
    )
    .option('-t, --tee <spec>', 'streams written to log files and the console (same values)')
    .option('--local-ranks-filter <ranks>', 'only these local ranks reach the console, e.g. 0,1')
    .option('--metrics-port <port>', 'serve Prometheus /metrics for this node on this port (0 = off)', '0')
    .option(
      '--metrics-host <host>',
      "address for /metrics (default: this node's address toward --master-addr; 0.0.0.0 = every interface)",
    )
    .option('--timeline <file>', 'record a per-step timeline (MTL_TIMELINE) and merge it at the end')
    .version(launcherVersion(), '--version')
    .passThroughOptions()
    .helpOption('-h, --help')
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`mtl-launch: ${str.replace(/^error: /, '').trim()}\n`),
    });
}

function randomRunId(): string {
  return randomBytes(6).toString('hex');
}

export function derivedToken(runId: string): string {
  return createHash('sha256').update(`mtl-launch run token:${runId}`).digest('hex').slice(0, 32);
}

/** torchrun's rendezvous flags, checked against the launcher's own spellings of the same things. */
function torchrunRendezvous(
  o: Record<string, string | boolean | undefined>,
  given: (name: string) => boolean,
  nnodes: number,
) {
  const backend = parseRdzvBackend(String(o.rdzvBackend));
  const endpoint =
    o.rdzvEndpoint === undefined ? undefined : parseRdzvEndpoint(String(o.rdzvEndpoint), C10D_DEFAULT_PORT);
  const conf = o.rdzvConf === undefined ? {} : parseRdzvConf(String(o.rdzvConf));
  const pairs = [
    ['timeout', conf.joinTimeoutS, 'rdzvTimeout', '--rdzv-timeout'],
    ['read_timeout', conf.readTimeoutS, 'heartbeatTimeout', '--heartbeat-timeout'],
  ] as const;
  for (const [key, seconds, flag, spelled] of pairs)
    if (seconds !== undefined && given(flag) && Number(o[flag]) !== seconds)
      throw new LaunchError(`--rdzv-conf ${key}=${seconds} and ${spelled} ${String(o[flag])} disagree`);
  if (conf.isHost !== undefined && nnodes === 1 && !conf.isHost)
    throw new LaunchError('--rdzv-conf is_host=false on a single node: nobody would host the store');
  return {
    backend,
    endpoint,
    conf,
    joinTimeoutMs: conf.joinTimeoutS === undefined ? undefined : Math.round(conf.joinTimeoutS * 1000),
    readTimeoutMs: conf.readTimeoutS === undefined ? undefined : Math.round(conf.readTimeoutS * 1000),
  };
}

/** True when `host` names this machine (loopback, its host name, or one of its interface addresses). */
export function isLocalAddress(host: string, interfaces = networkInterfaces(), name = hostname()): boolean {
  if (host === 'localhost' || /^127\./.test(host) || host === '::1') return true;
  if (host === name || host === name.split('.')[0]) return true;
  return Object.values(interfaces).some((list) => (list ?? []).some((i) => i.address === host));
}

export interface ParsedLaunch {
  config: AgentConfig;
  /** One-line notices for the user (e.g. a derived token). */
  warnings: string[];
}

/** argv (without node and the launcher) → a validated configuration, or a LaunchError. */
export function parseLaunchArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
  host: () => HostResources = () => probeHost(env),
): ParsedLaunch {
  const cmd = buildCommand();
  try {
    cmd.parse(normalizeFlags(argv), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) throw new LaunchError('', 0);
      throw new LaunchError('', e.exitCode || 2); // commander already printed its one line
    }
    throw e;
  }
  const o = cmd.opts<Record<string, string | boolean | undefined>>();
  const given = (name: string): boolean => cmd.getOptionValueSource(name) === 'cli';
  const warnings: string[] = [];
  const [entryFile, ...entryArgs] = cmd.args;
  if (entryFile === undefined) throw new LaunchError('missing the config or script to run');

  if (given('nproc') && given('nprocPerNode') && o.nproc !== o.nprocPerNode) {
    throw new LaunchError(
      `--nproc ${String(o.nproc)} and --nproc-per-node ${String(o.nprocPerNode)} disagree`,
    );
  }
  const nprocSpec = String(given('nproc') ? o.nproc : o.nprocPerNode);
  const nprocPerNode = /^\d+$/.test(nprocSpec.trim())
    ? resolveNproc(nprocSpec, { gpus: 0, cpus: 0 })
    : resolveNproc(nprocSpec, host());

  const devices = env.CUDA_VISIBLE_DEVICES === undefined ? [] : parseDeviceList(env.CUDA_VISIBLE_DEVICES);
  if (devices.length > 0 && devices.length < nprocPerNode) {
    throw new LaunchError(
      `CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES} lists ${devices.length} device(s) for ${nprocPerNode} workers per node`,
    );
  }

  let nnodesText = String(o.nnodes);
  let nodeRankText = String(o.nodeRank);
  let masterAddr = String(o.masterAddr);
  let slurm: ReturnType<typeof slurmPlacement>;
  try {
    slurm = slurmPlacement(env);
  } catch (e) {
    throw new LaunchError(`SLURM_JOB_NODELIST: ${(e as Error).message}`);
  }
  if (slurm && !given('nnodes') && !given('nodeRank') && !given('masterAddr') && !o.standalone) {
    nnodesText = String(slurm.nnodes);
    nodeRankText = String(slurm.nodeRank);
    masterAddr = slurm.masterAddr;
  }
  let nnodes = int(parseNnodes(nnodesText), '--nnodes', 1);
  const rdzv = torchrunRendezvous(o, given, nnodes);
  // c10d without --node-rank: the rendezvous numbers the nodes (the store's host is node 0).
  let nodeRank: number | null =
    rdzv.backend === 'c10d' && nnodes > 1 && !given('nodeRank') && !slurm
      ? null
      : int(nodeRankText, '--node-rank', 0);
  if (nodeRank !== null && nodeRank >= nnodes)
    throw new LaunchError(`--node-rank ${nodeRank} must be less than --nnodes ${nnodes}`);
  let masterPort = int(String(o.masterPort), '--master-port', 1, 65535);
  if (rdzv.endpoint) {
    for (const [flag, key, value] of [
      ['--master-addr', 'masterAddr', rdzv.endpoint.host],
      ['--master-port', 'masterPort', String(rdzv.endpoint.port)],
    ] as const) {
      if (given(key) && String(o[key]) !== value)
        throw new LaunchError(
          `--rdzv-endpoint ${String(o.rdzvEndpoint)} and ${flag} ${String(o[key])} disagree`,
        );
    }
    masterAddr = rdzv.endpoint.host;
    masterPort = rdzv.endpoint.port;
  }
  if (o.standalone) {
    if (given('nnodes') && nnodes !== 1)
      throw new LaunchError(`--standalone runs a single node, but --nnodes is ${nnodes}`);
    nnodes = 1;
    nodeRank = 0;
    masterAddr = given('masterAddr') ? masterAddr : '127.0.0.1';
    masterPort = 0;
  }
  if (masterAddr.trim() === '') throw new LaunchError('--master-addr must not be empty');

  if (o.runId !== undefined && o.rdzvId !== undefined && o.runId !== o.rdzvId)
    throw new LaunchError(`--run-id ${String(o.runId)} and --rdzv-id ${String(o.rdzvId)} disagree`);
  const idFlag = o.runId ?? o.rdzvId;
  const runId = idFlag !== undefined ? String(idFlag) : nnodes > 1 ? 'none' : randomRunId();
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(runId)) {
    throw new LaunchError(`--run-id must be 1-128 characters of A-Z a-z 0-9 . _ - (got '${runId}')`);
  }
  let runToken = o.rdzvToken !== undefined ? String(o.rdzvToken) : env.MTL_RUN_TOKEN;
  let tokenDerived = false;
  if (runToken === undefined || runToken === '') {
    if (nnodes > 1) {
      runToken = derivedToken(runId);
      tokenDerived = true;
      warnings.push(
        'no --rdzv-token or MTL_RUN_TOKEN: the store token is derived from the run id; set MTL_RUN_TOKEN to the same secret on every node',
      );
    } else runToken = randomBytes(16).toString('hex');
  }

  const redirects = parseStreamSpec(o.redirects as string | undefined, '--redirects');
  const tee = parseStreamSpec(o.tee as string | undefined, '--tee');
  let logDir = o.logDir as string | undefined;
  if (logDir === undefined && (o.redirects !== undefined || o.tee !== undefined)) {
    logDir = mkdtempSync(join(tmpdir(), 'mtl-launch-'));
    warnings.push(`worker logs go to ${logDir}`);
  }
  const metricsPort = int(String(o.metricsPort), '--metrics-port', 0, 65535);

  return {
    warnings,
    config: {
      entry:
        o.python === false || o.module === true || entryFile.endsWith('.py')
          ? resolveExecEntrypoint(entryFile, entryArgs, cwd, {
              module: o.module === true,
              noPython: o.python === false,
              python: env.MTL_PYTHON || 'python3',
              env,
            })
          : resolveEntrypoint(entryFile, entryArgs, cwd),
      nprocPerNode,
      nnodes,
      nodeRank,
      hostsStore:
        nodeRank !== null
          ? nodeRank === 0
          : (rdzv.conf.isHost ?? (isLocalAddress(masterAddr) ? 'try' : false)),
      masterAddr,
      masterPort,
      runId,
      runToken,
      tokenDerived,
      maxRestarts: int(String(o.maxRestarts), '--max-restarts', 0),
      monitorIntervalMs: secondsToMs(String(o.monitorInterval), '--monitor-interval'),
      shutdownTimeoutMs: secondsToMs(String(o.shutdownTimeout), '--shutdown-timeout'),
      rdzvTimeoutMs: rdzv.joinTimeoutMs ?? secondsToMs(String(o.rdzvTimeout), '--rdzv-timeout'),
      heartbeatTimeoutMs:
        rdzv.readTimeoutMs ?? secondsToMs(String(o.heartbeatTimeout), '--heartbeat-timeout'),
      roleName: String(o.role),
      localAddr: o.localAddr === undefined ? undefined : String(o.localAddr),
      logDir: logDir === undefined ? undefined : resolve(cwd, logDir),
      redirects,
      tee,
      localRanksFilter: parseRanksFilter(o.localRanksFilter as string | undefined),
      metricsPort: metricsPort === 0 ? undefined : metricsPort,
      metricsHost: o.metricsHost === undefined ? undefined : String(o.metricsHost),
      timeline: o.timeline === undefined ? undefined : resolve(cwd, String(o.timeline)),
      env,
      cwd,
    },
  };
}
