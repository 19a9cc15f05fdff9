import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { AgentConfig } from './agent.js';
import { resolveEntrypoint } from './entrypoint.js';
import { LaunchError } from './errors.js';
import { parseRanksFilter, parseStreamSpec } from './log-spec.js';
import { probeHost, resolveNproc } from './nproc.js';
import type { HostResources } from './nproc.js';
import { slurmPlacement } from './slurm.js';
import { parseDeviceList } from './worker-env.js';

/** Flags that take no value (everything else before the entry point takes one). */
const BOOLEAN_FLAGS = new Set(['--standalone', '--help', '--version']);

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
    } else i += t === '-h' ? 1 : 2;
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
    .usage('[options] <config.yaml | mtlface [release flags] | script.(js|mjs|cjs|ts)> [args...]')
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
      '--redirects <spec>',
      'streams only written to log files: 0 none, 1 out, 2 err, 3 both, or 0:1,1:2',
    )
    .option('--tee <spec>', 'streams written to log files and the console (same values)')
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
  if (nnodesText.includes(':'))
    throw new LaunchError(`--nnodes: elastic ranges (${nnodesText}) are not supported; give one number`);
  let nnodes = int(nnodesText, '--nnodes', 1);
  let nodeRank = int(nodeRankText, '--node-rank', 0);
  if (nodeRank >= nnodes)
    throw new LaunchError(`--node-rank ${nodeRank} must be less than --nnodes ${nnodes}`);
  let masterPort = int(String(o.masterPort), '--master-port', 1, 65535);
  if (o.standalone) {
    if (given('nnodes') && nnodes !== 1)
      throw new LaunchError(`--standalone runs a single node, but --nnodes is ${nnodes}`);
    nnodes = 1;
    nodeRank = 0;
    masterAddr = given('masterAddr') ? masterAddr : '127.0.0.1';
    masterPort = 0;
  }
  if (masterAddr.trim() === '') throw new LaunchError('--master-addr must not be empty');

  const runId = o.runId !== undefined ? String(o.runId) : nnodes > 1 ? 'none' : randomRunId();
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
      entry: resolveEntrypoint(entryFile, entryArgs, cwd),
      nprocPerNode,
      nnodes,
      nodeRank,
      masterAddr,
      masterPort,
      runId,
      runToken,
      tokenDerived,
      maxRestarts: int(String(o.maxRestarts), '--max-restarts', 0),
      monitorIntervalMs: secondsToMs(String(o.monitorInterval), '--monitor-interval'),
      shutdownTimeoutMs: secondsToMs(String(o.shutdownTimeout), '--shutdown-timeout'),
      rdzvTimeoutMs: secondsToMs(String(o.rdzvTimeout), '--rdzv-timeout'),
      heartbeatTimeoutMs: secondsToMs(String(o.heartbeatTimeout), '--heartbeat-timeout'),
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
