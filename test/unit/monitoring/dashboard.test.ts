/**
 * The Grafana dashboard in deploy/monitoring/, without Grafana or Prometheus: it imports as is
 * (the data source is a template variable, no `__inputs`), its panels do not overlap, every
 * series it selects is limited to the chosen job and nodes, and the metric names its PromQL
 * queries are exactly the families `renderMetrics` exports (per-peer ones included): nothing it
 * asks for is missing, nothing the agent exports goes unshown. test/lab/monitoring.test.ts checks
 * the names against a live agent as well. The PromQL name extraction is tested on its own first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderMetrics, type StatusSource } from '../../../src/agent/metrics.js';
import { newCounters, readCounters } from '../../../src/datapath/counters.js';
import { allPanels, DASHBOARD_PATH, dashboardQueries, loadDashboard, metricNames, queriedMetricNames } from '../../support/dashboard.js';

test('metricNames: the metric names in PromQL expressions', () => {
  const cases: Array<{ name: string; expr: string; want: string[] }> = [
    { name: 'rate with a Grafana range variable', expr: 'sum by (instance, direction) (rate(vxnet_bytes_total{job=~"$job"}[$__rate_interval])) * 8', want: ['vxnet_bytes_total'] },
    { name: 'a label value with braces and a keyword in it', expr: 'count(vxnet_ready{note="a{b} or c"} == 0) or vector(0)', want: ['vxnet_ready'] },
    { name: 'a function without arguments', expr: 'time() - process_start_time_seconds{job="x"}', want: ['process_start_time_seconds'] },
    { name: 'a number with an exponent', expr: 'process_resident_memory_bytes > 400e6', want: ['process_resident_memory_bytes'] },
    { name: 'offset and a duration', expr: 'rate(foo_total[5m] offset 1h)', want: ['foo_total'] },
    { name: 'vector matching with group_left', expr: 'a_total / on (instance) group_left (version) b_info', want: ['a_total', 'b_info'] },
    { name: 'set operators', expr: 'a and b unless c', want: ['a', 'b', 'c'] },
    { name: 'without', expr: 'sum without (le) (rate(x_bucket[5m]))', want: ['x_bucket'] },
    { name: 'a subquery', expr: 'max_over_time(rate(y_total[1m])[10m:1m])', want: ['y_total'] },
    { name: 'a name by __name__', expr: '{__name__="z_total", job="j"}', want: ['z_total'] },
    { name: 'a ${var} with braces', expr: 'topk(${n}, w_total{instance=~"${instance}"})', want: ['w_total'] },
    { name: 'recording-rule colons', expr: 'job:vxnet_bytes:rate5m', want: ['job:vxnet_bytes:rate5m'] },
  ];
  for (const c of cases) assert.deepEqual(metricNames(c.expr).sort(), [...c.want].sort(), `${c.name}: ${c.expr}`);
});

test('the dashboard imports as is: the data source is a variable, every panel and query uses it', () => {
  const d = loadDashboard();
  assert.equal(d.__inputs, undefined, 'no __inputs: those make Grafana ask for a data source by its exported name');
  assert.ok(!readFileSync(DASHBOARD_PATH, 'utf8').includes('${DS_'), 'no ${DS_...} references');
  assert.equal(d.uid, 'vxnet-overview');
  const ds = d.templating?.list.find((v) => v.type === 'datasource');
  assert.deepEqual([ds?.name, ds?.query], ['datasource', 'prometheus']);
  for (const v of d.templating?.list ?? []) if (v.type === 'query') assert.equal(v.datasource?.uid, '${datasource}', `variable ${v.name}`);
  for (const p of allPanels(d)) {
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}"`);
    assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
    for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${datasource}', `panel "${p.title}" target ${t.refId}`);
  }
});

test('the dashboard’s panels: unique ids, inside the 24-column grid, no two overlapping', () => {
  const panels = allPanels(loadDashboard());
  const ids = panels.map((p) => p.id);
  assert.deepEqual(ids, [...new Set(ids)], 'panel ids');
  const boxes = panels.map((p) => ({ title: p.title, ...p.gridPos! }));
  for (const b of boxes) assert.ok(b.x >= 0 && b.w > 0 && b.x + b.w <= 24 && b.h > 0, `panel "${b.title}": gridPos ${JSON.stringify(b)}`);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `panels "${a.title}" and "${b.title}" overlap`);
    }
  }
});

test('every series a panel selects is limited to $job and $instance', () => {
  // process_* exists on every target Prometheus scrapes; without the job filter a panel would mix
  // in other programs.
  for (const q of dashboardQueries(loadDashboard())) {
    if (q.where.startsWith('variable')) continue;
    for (const name of metricNames(q.expr)) {
      const selectors = [...q.expr.matchAll(new RegExp(`\\b${name}(\\{[^}]*\\})?`, 'g'))].map((m) => m[1] ?? '');
      for (const sel of selectors) {
        assert.ok(sel.includes('job=~"$job"') && sel.includes('instance=~"$instance"'), `${q.where}: ${name}${sel} is not limited to $job and $instance`);
      }
    }
  }
});

test('the dashboard queries exactly the metric families the agent exports', () => {
  const source: StatusSource = {
    node: 'n1', cfg: { perPeerMetrics: true },
    traffic: () => ({
      counters: readCounters(newCounters(), { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 }),
      peers: [{ node: 'n2', underlayIP: '192.0.2.2', podCIDRs: ['10.244.2.0/24'], vtepMAC: '02:00:00:00:00:02', txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, pathMTU: 1500 }],
      removed: { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 },
    }),
    healthy: () => true, ready: () => ({ ready: true, reason: '', staleSeconds: 0 }), info: () => ({ tableGeneration: 1 }),
  };
  const exported = new Set([...renderMetrics(source).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const queried = queriedMetricNames(loadDashboard());
  for (const [name, where] of queried) assert.ok(exported.has(name), `${where.join(', ')} query ${name}, which the agent does not export`);
  for (const name of exported) assert.ok(queried.has(name), `the agent exports ${name}, and no panel shows it: add one to deploy/monitoring/grafana-dashboard.json`);
});
