/** The environment every worker process gets (torchrun's variables plus ours). Pure. */
export interface WorkerPlacement {
  rank: number;
  localRank: number;
  worldSize: number;
  localWorldSize: number;
  groupRank: number;
  groupWorldSize: number;
  masterAddr: string;
  masterPort: number;
  runId: string;
  runToken: string;
  restartCount: number;
  maxRestarts: number;
  timelineFile?: string | undefined;
  /** torchrun's `--role` (one role per run here: ROLE_RANK and ROLE_WORLD_SIZE equal RANK and WORLD_SIZE). */
  roleName?: string | undefined;
  /** This node's address for the workers' own connections (MTL_NODE_ADDR), unless the user set it. */
  nodeAddr?: string | undefined;
}

/**
 * The device a local rank is pinned to: the local-rank-th entry of a CUDA_VISIBLE_DEVICES list the
 * user already set, else the local rank itself. An empty list (GPUs hidden on purpose) stays empty.
 */
export function pinnedDevice(localRank: number, userDevices: string | undefined): string {
  if (userDevices === undefined) return String(localRank);
  const list = parseDeviceList(userDevices);
  if (list.length === 0) return '';
  const device = list[localRank];
  if (device === undefined) {
    throw new RangeError(
      `CUDA_VISIBLE_DEVICES=${userDevices} lists ${list.length} device(s), too few for local rank ${localRank}`,
    );
  }
  return device;
}

export function parseDeviceList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function workerEnv(base: NodeJS.ProcessEnv, p: WorkerPlacement): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  env.RANK = String(p.rank);
  env.LOCAL_RANK = String(p.localRank);
  env.WORLD_SIZE = String(p.worldSize);
  env.LOCAL_WORLD_SIZE = String(p.localWorldSize);
  env.GROUP_RANK = String(p.groupRank);
  env.GROUP_WORLD_SIZE = String(p.groupWorldSize);
  env.MASTER_ADDR = p.masterAddr;
  env.MASTER_PORT = String(p.masterPort);
  env.MTL_RUN_ID = p.runId;
  env.MTL_RUN_TOKEN = p.runToken;
  env.MTL_RESTART_COUNT = String(p.restartCount);
  env.MTL_MAX_RESTARTS = String(p.maxRestarts);
  env.CUDA_VISIBLE_DEVICES = pinnedDevice(p.localRank, base.CUDA_VISIBLE_DEVICES);
  if (base.OMP_NUM_THREADS === undefined || base.OMP_NUM_THREADS === '') env.OMP_NUM_THREADS = '1';
  if (p.timelineFile !== undefined) env.MTL_TIMELINE = p.timelineFile;
  // torchrun's names for the same facts, so its scripts run unchanged.
  env.TORCHELASTIC_RESTART_COUNT = env.MTL_RESTART_COUNT;
  env.TORCHELASTIC_MAX_RESTARTS = env.MTL_MAX_RESTARTS;
  env.TORCHELASTIC_RUN_ID = p.runId;
  env.ROLE_NAME = p.roleName ?? 'default';
  env.ROLE_RANK = env.RANK;
  env.ROLE_WORLD_SIZE = env.WORLD_SIZE;
  if (p.nodeAddr !== undefined && !base.MTL_NODE_ADDR) env.MTL_NODE_ADDR = p.nodeAddr;
  return env;
}
