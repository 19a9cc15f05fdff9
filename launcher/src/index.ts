// Programmatic API of the launcher (the CLI is cli.ts). Nothing in the project imports the launcher;
// these exports are for tools and tests that drive it in-process.
export { Agent, FORWARDED_SIGNALS } from './agent.js';
export type { AgentConfig } from './agent.js';
export { parseLaunchArgs, normalizeFlags, derivedToken } from './options.js';
export type { ParsedLaunch } from './options.js';
export { resolveEntrypoint } from './entrypoint.js';
export type { Entrypoint } from './entrypoint.js';
export { LaunchError } from './errors.js';
export { resolveNproc, countGpus } from './nproc.js';
export { workerEnv, pinnedDevice } from './worker-env.js';
export type { WorkerPlacement } from './worker-env.js';
export { StoreRendezvous } from './store-rendezvous.js';
export type { KeyValueStore } from './store-rendezvous.js';
export type { Rendezvous, NodeSpec, World, StopReason } from './rendezvous.js';
export { expandHostlist, slurmPlacement } from './slurm.js';
export { watchdogImportUrl } from './watchdog.js';
