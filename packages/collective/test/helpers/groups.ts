import {
  StoreServer,
  initProcessGroup,
  type ProcessGroup,
  type ProcessGroupOptions,
} from '../../src/index.js';

export const TOKEN = 'test-token';
let runCounter = 0;

/** `n` real process groups in this process over real sockets, sharing one store. */
export async function withGroups<T>(
  n: number,
  fn: (groups: ProcessGroup[]) => Promise<T>,
  extra: Partial<ProcessGroupOptions> | ((rank: number) => Partial<ProcessGroupOptions>) = {},
): Promise<T> {
  const store = await StoreServer.listen({ host: '127.0.0.1', port: 0, token: TOKEN });
  const runId = `t${process.pid}-${++runCounter}`;
  let groups: ProcessGroup[] = [];
  try {
    groups = await Promise.all(
      Array.from({ length: n }, (_, rank) =>
        initProcessGroup({
          rank,
          worldSize: n,
          store: { host: '127.0.0.1', port: store.port, token: TOKEN },
          runId,
          timeoutMs: 5000,
          ...(typeof extra === 'function' ? extra(rank) : extra),
        }),
      ),
    );
    return await fn(groups);
  } finally {
    await Promise.all(groups.map((g) => g.close()));
    await store.close();
  }
}
