// Helpers of the metrics end-to-end tests: the PromQL found in the Grafana
// dashboard, and the metric names a PromQL expression selects.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_FILE = fileURLToPath(
  new URL('../docker/grafana/dashboards/mtlface.json', import.meta.url),
);

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
  'Inf',
  'NaN',
  'by',
  'without',
]);

/** Names of the series an expression selects (not functions, labels, keywords or numbers). */
export function metricNamesIn(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[m.index - 1] ?? ' ';
    if (/[0-9.$]/.test(before)) continue; // 1e3, $variables
    if (/^\s*\(/.test(s.slice(m.index + m[0].length))) continue; // a function call
    if (KEYWORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

export interface DashboardQuery {
  where: string;
  expr: string;
}

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** Every PromQL expression of the dashboard: panel targets, variable queries (label_values), annotations. */
export function dashboardQueries(file = DASHBOARD_FILE): DashboardQuery[] {
  const d = JSON.parse(readFileSync(file, 'utf8')) as {
    panels: Panel[];
    templating?: { list: Array<{ name: string; query?: string | { query?: string } }> };
    annotations?: { list: Array<{ name: string; expr?: string }> };
  };
  const out: DashboardQuery[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    const m = q === undefined ? null : /^label_values\((.*),\s*[a-zA-Z_]\w*\)$/.exec(q.trim());
    if (m) out.push({ where: `variable $${v.name}`, expr: m[1]! });
  }
  for (const a of d.annotations?.list ?? [])
    if (a.expr) out.push({ where: `annotation "${a.name}"`, expr: a.expr });
  return out;
}

/** The dashboard's template variables replaced so the expression runs in plain Prometheus. */
export function concrete(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5s').replace(/\$[a-zA-Z_]\w*/g, '.*');
}
