#!/usr/bin/env node
// `mtl-launch`: see launcher/README.md. Parses flags, runs the agent, exits with its code; user
// errors are one line on stderr, never a stack trace.
import { LaunchError } from './errors.js';
import { checkEntrypointArgs } from './entrypoint.js';
import { parseLaunchArgs } from './options.js';
import { preflight } from './preflight.js';

// `mtl-launch ... | head` closes our stdout early: losing the console must not kill the run.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

async function main(): Promise<number> {
  try {
    const { config, warnings } = parseLaunchArgs(process.argv.slice(2));
    for (const w of warnings) process.stderr.write(`mtl-launch: ${w}\n`);
    const bad = await checkEntrypointArgs(config.entry);
    if (bad) {
      if (bad.code === 0) process.stdout.write(`${bad.text}\n`);
      else process.stderr.write(`mtl-launch: ${bad.text}\n`);
      return bad.code;
    }
    // A config mistake fails here, once, instead of in every worker of every restart.
    const problem = await preflight(config.entry, config.cwd, config.hostsStore !== false);
    if (problem !== null) throw new LaunchError(problem, 2);
    // Loaded only now: a usage error should not pay for ZeroMQ and the store.
    const { Agent } = await import('./agent.js');
    return await new Agent(config).run();
  } catch (e) {
    if (e instanceof LaunchError) {
      if (e.message !== '') process.stderr.write(`mtl-launch: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`mtl-launch: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

process.exit(await main());
