import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';

// The launcher↔worker metrics protocol over child_process IPC (JSON serialisation).
// Other parts may use the same channel: every message here is tagged by `type`.

export type MetricsSnapshot = MetricObjectWithValues<MetricValueWithName<string>>[];

export const METRICS_REQUEST = 'mtl:metrics:req';
export const METRICS_RESPONSE = 'mtl:metrics:res';

export interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: number;
}

export type MetricsResponse =
  | { type: typeof METRICS_RESPONSE; id: number; rank: number; metrics: MetricsSnapshot }
  | { type: typeof METRICS_RESPONSE; id: number; rank: number; error: string };

function isObject(m: unknown): m is Record<string, unknown> {
  return typeof m === 'object' && m !== null;
}

export function isMetricsRequest(m: unknown): m is MetricsRequest {
  return isObject(m) && m.type === METRICS_REQUEST && typeof m.id === 'number';
}

export function isMetricsResponse(m: unknown): m is MetricsResponse {
  return (
    isObject(m) &&
    m.type === METRICS_RESPONSE &&
    typeof m.id === 'number' &&
    (Array.isArray(m.metrics) || typeof m.error === 'string')
  );
}
