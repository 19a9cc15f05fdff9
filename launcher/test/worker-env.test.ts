import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pinnedDevice, workerEnv } from '../src/worker-env.js';

const placement = {
  rank: 5,
  localRank: 1,
  worldSize: 8,
  localWorldSize: 4,
  groupRank: 1,
  groupWorldSize: 2,
  masterAddr: '10.0.0.1',
  masterPort: 29500,
  runId: 'r',
  runToken: 't',
  restartCount: 2,
  maxRestarts: 3,
};

describe('worker environment', () => {
  it('pins the local rank, or the local-rank-th entry of the user list, and keeps a hidden GPU set empty', () => {
    assert.equal(pinnedDevice(3, undefined), '3');
    assert.equal(pinnedDevice(1, '4,6,7'), '6');
    assert.equal(pinnedDevice(1, 'GPU-aa, GPU-bb'), 'GPU-bb');
    assert.equal(pinnedDevice(0, ''), '');
    assert.throws(() => pinnedDevice(2, '4,6'), /lists 2 device\(s\), too few for local rank 2/);
  });

  it('sets the torchrun variables, keeps the rest of the environment and does not mutate it', () => {
    const base = { PATH: '/bin', OMP_NUM_THREADS: '8', RANK: 'stale' };
    const env = workerEnv(base, { ...placement, timelineFile: '/tmp/t.json' });
    assert.equal(base.RANK, 'stale');
    assert.equal(env.PATH, '/bin');
    assert.equal(env.OMP_NUM_THREADS, '8');
    assert.equal(env.RANK, '5');
    assert.equal(env.GROUP_WORLD_SIZE, '2');
    assert.equal(env.MTL_RESTART_COUNT, '2');
    assert.equal(env.CUDA_VISIBLE_DEVICES, '1');
    assert.equal(env.MTL_TIMELINE, '/tmp/t.json');
    assert.equal(workerEnv({}, placement).OMP_NUM_THREADS, '1');
  });

  it("sets torchrun's elastic and role names to the same facts, and the node address unless the user set one", () => {
    const env = workerEnv({}, { ...placement, roleName: 'trainer', nodeAddr: '10.0.0.2' });
    assert.deepEqual(
      [env.TORCHELASTIC_RESTART_COUNT, env.TORCHELASTIC_MAX_RESTARTS, env.TORCHELASTIC_RUN_ID],
      [String(placement.restartCount), String(placement.maxRestarts), placement.runId],
    );
    assert.deepEqual(
      [env.ROLE_NAME, env.ROLE_RANK, env.ROLE_WORLD_SIZE],
      ['trainer', String(placement.rank), String(placement.worldSize)],
    );
    assert.equal(env.MTL_NODE_ADDR, '10.0.0.2');
    assert.equal(
      workerEnv({ MTL_NODE_ADDR: '10.9.9.9' }, { ...placement, nodeAddr: '10.0.0.2' }).MTL_NODE_ADDR,
      '10.9.9.9',
    );
    assert.equal(workerEnv({}, placement).ROLE_NAME, 'default');
    assert.equal(workerEnv({}, placement).MTL_NODE_ADDR, undefined);
  });
});
