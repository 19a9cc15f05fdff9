// Test seam: MTL_FAULT_EXIT_AT="<iteration>:<rank>" makes that rank SIGKILL itself just before
// that 0-based iteration, on the first attempt only (MTL_RESTART_COUNT = 0), so that end-to-end
// tests can kill a worker at a known point of a real run and check the launcher's restart and the
// resume that follows. Without the variable the loop never calls anything here.

/** The iteration at which this rank must die, or null. */
export function faultIteration(env: NodeJS.ProcessEnv, rank: number): number | null {
  const spec = env.MTL_FAULT_EXIT_AT;
  if (!spec || Number(env.MTL_RESTART_COUNT ?? 0) > 0) return null;
  const [it, r] = spec.split(':').map(Number);
  return r === rank && Number.isInteger(it) ? (it as number) : null;
}

export function dieAt(iteration: number, rank: number, log: (line: string) => void): never {
  log(`MTL_FAULT_EXIT_AT: killing rank ${rank} at iteration ${iteration} (test hook)`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not end the process');
}
