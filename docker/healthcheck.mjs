// Container health: the launcher's metrics endpoint answers (when metrics are enabled).
// Exit 0 healthy, 1 unhealthy; never waits more than 4 s.
const port = process.env.MTL_METRICS_PORT;
if (!port || port === '0') process.exit(0); // no endpoint to ask: the container lives as long as the launcher (PID 1)
try {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthcheck: launcher metrics on port ${port} did not answer: ${err.message}`);
  process.exit(1);
}
