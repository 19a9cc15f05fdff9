import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { launchFromSource } from './support/launch.js';

describe('mtl-launch config mode', () => {
  it('runs the built-in worker with the config path and the key=value overrides', async () => {
    // An unknown key makes the worker stop at config loading: enough to see what it received.
    const r = await launchFromSource(['--standalone', '--nproc', '1', 'configs/demo.yaml', 'no_such_key=1'], {
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 1);
    // The worker names the config file and the override it was given (its wording is its own).
    assert.match(r.stderr, /\[rank0\]: .*configs\/demo\.yaml.*no_such_key/);
    assert.match(r.stderr, /root cause: rank 0 .* exited with code [1-9]/);
  });
});
