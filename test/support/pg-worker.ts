/**
 * A worker for launcher end-to-end tests: joins the process group from the launcher's environment,
 * all-reduces a buffer holding rank+1 and prints the sums. With FAIL_RANK set, that rank exits 4
 * on attempt 0 after the all-reduce (to test restarts of a real group).
 */
import { initProcessGroup } from '@mtlface/collective';

const pg = await initProcessGroup();
const buf = new Float32Array(4096).fill(pg.rank + 1);
await pg.allReduce(buf, { op: 'sum' });
console.log(`attempt ${process.env.MTL_RESTART_COUNT} world ${pg.worldSize} sum ${buf[0]} ${buf[4095]}`);
if (process.env.FAIL_RANK === String(pg.rank) && process.env.MTL_RESTART_COUNT === '0') process.exit(4);
await pg.barrier();
await pg.close();
