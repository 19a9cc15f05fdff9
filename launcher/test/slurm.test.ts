import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { expandHostlist, slurmPlacement } from '../src/slurm.js';

describe('expandHostlist', () => {
  it('expands ranges and lists, keeping zero padding and order', () => {
    assert.deepEqual(expandHostlist('node[01-04,07]'), ['node01', 'node02', 'node03', 'node04', 'node07']);
    assert.deepEqual(expandHostlist('a1,gpu[8-10],b'), ['a1', 'gpu8', 'gpu9', 'gpu10', 'b']);
    assert.deepEqual(expandHostlist('n[098-101]'), ['n098', 'n099', 'n100', 'n101']);
    assert.deepEqual(expandHostlist('rack[1-2]-n[5-6]'), ['rack1-n5', 'rack1-n6', 'rack2-n5', 'rack2-n6']);
    assert.deepEqual(expandHostlist('single'), ['single']);
  });

  it('matches an independent expansion for random single-bracket lists', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(200), fc.nat(5)), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 4 }),
        (ranges, width) => {
          const pad = (n: number) => String(n).padStart(width, '0');
          const spec = ranges
            .map(([lo, len]) => (len === 0 ? pad(lo) : `${pad(lo)}-${pad(lo + len)}`))
            .join(',');
          const expected = ranges.flatMap(([lo, len]) =>
            Array.from({ length: len + 1 }, (_, i) => `h${pad(lo + i)}`),
          );
          assert.deepEqual(expandHostlist(`h[${spec}]`), expected);
        },
      ),
    );
  });

  it('rejects malformed lists', () => {
    assert.throws(() => expandHostlist('n[1-2'), /unbalanced/);
    assert.throws(() => expandHostlist('n[a-b]'), /bad range/);
    assert.throws(() => expandHostlist('n[5-2]'), /backwards/);
  });
});

describe('slurmPlacement', () => {
  it('takes nnodes, node id and the first host of the job', () => {
    assert.deepEqual(
      slurmPlacement({
        SLURM_JOB_ID: '9',
        SLURM_NNODES: '3',
        SLURM_NODEID: '1',
        SLURM_JOB_NODELIST: 'c[3-5]',
      }),
      { nnodes: 3, nodeRank: 1, masterAddr: 'c3' },
    );
    assert.equal(slurmPlacement({}), undefined);
  });
});
