/**
 * The node process that stands in for a worker that is not a node program (`node -e <shim> --
 * command...`). It is what the launcher spawns, so the worker gets the watchdog (`--import`), and
 * it runs the command as a child in its own process group: the launcher's signals (sent to the
 * group) and the watchdog's reach the program directly. The shim itself only waits and then exits
 * as the program did (same code, or the same signal), so the launcher's summary names the
 * program's exit, not the shim's.
 */
export const EXEC_SHIM_SOURCE = `
const { spawn } = require('node:child_process');
const [program, ...args] = process.argv.slice(1);
// The group's signals are the program's to handle; the shim outlives it to report its exit.
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(s, () => {});
const child = spawn(program, args, { stdio: ['ignore', 'inherit', 'inherit'] });
// The launcher's pipes break when it dies: that must not end the shim before the program, and
// however the shim ends, the program does not outlive it.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
process.on('exit', () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
child.on('error', (e) => {
  process.stderr.write('cannot run ' + program + ': ' + e.message + '\\n');
  process.exit(127);
});
child.on('exit', (code, signal) => {
  if (signal === null) process.exit(code === null ? 1 : code);
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
});
`;

/** node flags and arguments that run `command` through the shim. */
export function execShimArgv(command: readonly string[]): string[] {
  return ['-e', EXEC_SHIM_SOURCE, '--', ...command];
}
