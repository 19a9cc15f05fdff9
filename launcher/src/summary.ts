import type { StopReason } from './rendezvous.js';
import type { WorkerExit } from './worker-process.js';

export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `died by ${signal}`;
  return `exited with code ${code ?? 'unknown'}`;
}

/** The failure summary: the root cause (first failing rank) first, then the others. */
export function failureSummary(
  runId: string,
  attempts: number,
  root: Extract<StopReason, { kind: 'failure' }>,
  localFailures: WorkerExit[],
): string[] {
  const lines = [
    `run '${runId}' failed after ${attempts} attempt${attempts === 1 ? '' : 's'}`,
    `root cause: rank ${root.rank} (node ${root.nodeRank}, local rank ${root.localRank}${root.pid !== undefined ? `, pid ${root.pid}` : ''}) ${describeExit(root.code, root.signal)} at ${new Date(root.atMs).toISOString()}` +
      (root.detail ? ` (${root.detail})` : ''),
  ];
  // A worker reports an error it expected as one `error: ...` line: that line is the root cause
  // a person needs, so it goes right under the rank, above the rest of the tail.
  const cause = [...root.stderrTail].reverse().find((l) => /(^|\] )error: /.test(l));
  if (cause) lines.push(`  ${cause.replace(/^.*?error: /, 'error: ')}`);
  if (root.stderrTail.length > 0) {
    lines.push(`last stderr lines of rank ${root.rank}:`);
    for (const l of root.stderrTail) lines.push(`  ${l}`);
  } else {
    lines.push(`rank ${root.rank} wrote nothing to stderr`);
  }
  const others = localFailures.filter((e) => e.rank !== root.rank);
  if (others.length > 0) {
    lines.push(
      `also failed on this node: ${others.map((e) => `rank ${e.rank} ${describeExit(e.code, e.signal)}`).join('; ')}`,
    );
  }
  return lines;
}
