#!/usr/bin/env node
// `mtl-doctor`: can this machine run mtlface, and with which backend? In the spirit of PyTorch's
// collect_env and Horovod's --check-build: one line per fact, exit 0 only when the selected
// configuration will run, `--json` for scripts, `--smoke` for a real step and a real all-reduce.
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES } from '@mtlface/backend';
import {
  collectiveChecks,
  cudaChecks,
  dnnlCheck,
  gpuChecks,
  libraryIndex,
  packageChecks,
  portCheck,
  selectedBackendCheck,
  shmCheck,
  systemChecks,
  type Check,
  type Selected,
} from './doctor/checks.js';
import { allReduceSmoke, backendChecks, backendSmoke } from './doctor/smoke.js';
import { workersVersion } from './version.js';

function int(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}, got "${v}"`);
    return n;
  };
}

export async function runDoctor(selected: Selected, smoke: boolean): Promise<Check[]> {
  const backends = await backendChecks(selected);
  const checks = [
    ...systemChecks(),
    ...packageChecks(),
    selectedBackendCheck(selected),
    ...backends.checks,
    ...gpuChecks(),
    ...cudaChecks(libraryIndex(), selected),
    dnnlCheck(),
    shmCheck(selected.nproc),
    await portCheck(selected.masterAddr, selected.masterPort),
    ...(await collectiveChecks()),
  ];
  if (smoke) checks.push(...(await backendSmoke(backends.loaded)), await allReduceSmoke());
  return checks;
}

export function formatReport(selected: Selected, checks: Check[]): string[] {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = [
    `mtl-doctor ${workersVersion()}: backend ${selected.backend}, ${selected.nproc} worker(s) per node, store ${selected.masterAddr}:${selected.masterPort}`,
  ];
  let section = '';
  for (const c of checks) {
    if (c.section !== section) lines.push((section = c.section));
    lines.push(`  ${c.status.padEnd(5)} ${c.name.padEnd(width)}  ${c.detail}`);
  }
  const fails = checks.filter((c) => c.status === 'fail');
  const warns = checks.filter((c) => c.status === 'warn').length;
  lines.push(
    fails.length === 0
      ? `result: ready (${warns} warning(s))`
      : `result: NOT ready: ${fails.map((c) => `${c.name}: ${c.detail}`).join('; ')}`,
  );
  return lines;
}

const program = new Command('mtl-doctor')
  .description('Check whether this machine can run mtlface training, and with which backend')
  .version(workersVersion(), '--version')
  .addOption(
    new Option('--backend <name>', 'the backend the run will use').choices(BACKEND_CHOICES).default('auto'),
  )
  .option('--nproc <n>', 'workers per node the run will start', int('--nproc', 1, 1024), 1)
  .option('--master-addr <addr>', 'address of the rendezvous store', '127.0.0.1')
  .option(
    '--master-port <port>',
    'store port to check (0: chosen at start)',
    int('--master-port', 0, 65535),
    29500,
  )
  .option('--smoke', 'also run one step on every backend that loads and a 2-process all-reduce')
  .option('--json', 'print one JSON object instead of the report')
  .action(
    async (o: {
      backend: string;
      nproc: number;
      masterAddr: string;
      masterPort: number;
      smoke?: boolean;
      json?: boolean;
    }) => {
      const selected: Selected = {
        backend: o.backend,
        nproc: o.nproc,
        masterAddr: o.masterAddr,
        masterPort: o.masterPort,
      };
      const checks = await runDoctor(selected, Boolean(o.smoke));
      const ready = checks.every((c) => c.status !== 'fail');
      if (o.json) console.log(JSON.stringify({ ready, selected, checks }));
      else for (const line of formatReport(selected, checks)) console.log(line);
      process.exitCode = ready ? 0 : 1;
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`mtl-doctor: ${(err as Error).message}`);
  process.exitCode = 2;
}
