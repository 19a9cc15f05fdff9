// Container health: the launcher's metrics endpoint answers (when metrics are enabled).
// Exit 0 healthy, 1 unhealthy; never waits more than 4 s.
// The launcher binds /metrics to the node's address toward the master (127.0.0.1 only on a single
// node, unless --metrics-host says otherwise), so ask every local IPv4 address, loopback first.
import { networkInterfaces } from 'node:os';

const port = process.env.MTL_METRICS_PORT;
if (!port || port === '0') process.exit(0); // no endpoint to ask: the container lives as long as the launcher (PID 1)
const hosts = [
  process.env.MTL_METRICS_HOST,
  '127.0.0.1',
  ...Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a.address),
].filter((h, i, all) => h && h !== '0.0.0.0' && all.indexOf(h) === i);
const signal = AbortSignal.timeout(4000);
const answers = await Promise.all(
  hosts.map((h) =>
    fetch(`http://${h}:${port}/metrics`, { signal }).then(
      (res) => res.ok,
      () => false,
    ),
  ),
);
if (answers.some(Boolean)) process.exit(0);
console.error(`healthcheck: launcher metrics on port ${port} did not answer on ${hosts.join(', ')}`);
process.exit(1);
