/**
 * The orphan guard injected into every worker (`node --import <watchdogImportUrl()> ...`).
 *
 * A worker must never outlive its launcher, even when the launcher dies by SIGKILL and cannot clean
 * up. The guard runs in a worker thread, so it fires even while the main thread is stuck in a long
 * synchronous kernel: every `intervalMs` it compares the parent pid with the launcher's pid (Linux
 * re-parents an orphan to init or a subreaper); on a change it sends SIGTERM to the worker's process
 * group, then SIGKILL after `graceMs`. The thread is unref'd and never keeps a finished worker alive.
 *
 * It is passed as a data: URL rather than a file so that a worker needs no TypeScript loader for it
 * and nothing is left on disk.
 */
export interface WatchdogOptions {
  launcherPid: number;
  intervalMs: number;
  graceMs: number;
}

const THREAD_SOURCE = `
const { workerData } = require('node:worker_threads');
const { launcherPid, intervalMs, graceMs, pid } = workerData;
const signal = (sig) => { try { process.kill(-pid, sig); } catch { try { process.kill(pid, sig); } catch {} } };
const timer = setInterval(() => {
  if (process.ppid === launcherPid) return;
  clearInterval(timer);
  process.stderr.write('mtl-launch watchdog: launcher (pid ' + launcherPid + ') is gone; stopping worker pid ' + pid + '\\n');
  signal('SIGTERM');
  setTimeout(() => signal('SIGKILL'), graceMs);
}, intervalMs);
`;

export function watchdogModuleSource(o: WatchdogOptions): string {
  return [
    `import { Worker } from 'node:worker_threads';`,
    `const workerData = ${JSON.stringify({ ...o, pid: 0 }).replace('"pid":0', '"pid":process.pid')};`,
    `const w = new Worker(${JSON.stringify(THREAD_SOURCE)}, { eval: true, workerData, stdout: false, stderr: false });`,
    `w.unref();`,
  ].join('\n');
}

export function watchdogImportUrl(o: WatchdogOptions): string {
  return `data:text/javascript,${encodeURIComponent(watchdogModuleSource(o))}`;
}
