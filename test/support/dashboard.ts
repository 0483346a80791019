/**
 * The Grafana dashboard in deploy/monitoring/ as the tests see it: every PromQL expression it
 * runs (panel targets and template-variable queries), and the metric names in each.
 *
 * `metricNames` is not a PromQL parser. It removes everything that cannot be a metric name
 * (strings, label matchers, range and subquery brackets, Grafana variables, grouping label
 * lists after by/without/on/ignoring/group_left/group_right, numbers and durations) and keeps
 * every identifier that is neither a function call nor a keyword. That is exact for the
 * expressions a dashboard holds, and the unit test runs it on the awkward cases.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_PATH = fileURLToPath(new URL('../../../deploy/monitoring/grafana-dashboard.json', import.meta.url));

export interface DashboardPanel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Array<{ refId?: string; expr?: string; datasource?: { type?: string; uid?: string } }>;
  panels?: DashboardPanel[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}

export interface Dashboard {
  uid?: string;
  title?: string;
  panels: DashboardPanel[];
  templating?: { list: TemplateVariable[] };
  __inputs?: unknown;
}

export function loadDashboard(path = DASHBOARD_PATH): Dashboard {
  return JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(d: Dashboard): DashboardPanel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression with where it is: panel targets, then query variables. */
export function dashboardQueries(d: Dashboard): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const p of allPanels(d)) {
    for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}" target ${t.refId}`, expr: t.expr });
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q) out.push({ where: `variable $${v.name}`, expr: grafanaQueryExpr(q) });
  }
  return out;
}

/** Grafana's `label_values(selector, label)` runs the selector; `label_values(label)` runs nothing. */
function grafanaQueryExpr(q: string): string {
  const lv = /^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/.exec(q);
  if (lv) return lv[1]!;
  if (/^\s*label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/.test(q)) return '';
  const qr = /^\s*query_result\((.*)\)\s*$/.exec(q);
  return qr ? qr[1]! : q;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.add(m[1]!);
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[m.index - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue; // the exponent of 1e6, the unit of a duration
    if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue; // a function
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Every metric name the dashboard queries, with the places that query it. */
export function queriedMetricNames(d: Dashboard): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const q of dashboardQueries(d)) {
    for (const n of metricNames(q.expr)) out.set(n, [...(out.get(n) ?? []), q.where]);
  }
  return out;
}
