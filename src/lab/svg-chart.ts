/**
 * A dependency-free SVG bar chart: one panel per metric, one horizontal bar per data path,
 * each panel on its own scale (throughput and packet rates differ by orders of magnitude).
 * Output is deterministic for the same input, so a regenerated chart diffs cleanly.
 */

export interface ChartBar {
  readonly label: string;
  /** NaN or negative: drawn as "n/a". */
  readonly value: number;
}

export interface ChartPanel {
  readonly title: string;
  readonly unit: string;
  readonly bars: readonly ChartBar[];
  /** Digits after the decimal point in value labels. */
  readonly digits?: number;
}

const WIDTH = 760;
const LABEL_W = 170;
const VALUE_W = 110;
const BAR_H = 18;
const BAR_GAP = 6;
const PANEL_TITLE_H = 26;
const PANEL_GAP = 18;
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number, digits: number): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function renderBarChart(title: string, panels: readonly ChartPanel[], footnote = ''): string {
  const labels = [...new Set(panels.flatMap((p) => p.bars.map((b) => b.label)))];
  const color = (label: string): string => PALETTE[labels.indexOf(label) % PALETTE.length] as string;
  const out: string[] = [];
  let y = 40;
  const body: string[] = [];
  for (const panel of panels) {
    body.push(`<text x="12" y="${y + 16}" class="panel">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`);
    y += PANEL_TITLE_H;
    const max = Math.max(0, ...panel.bars.map((b) => (Number.isFinite(b.value) && b.value > 0 ? b.value : 0)));
    const span = WIDTH - LABEL_W - VALUE_W - 20;
    for (const bar of panel.bars) {
      const ok = Number.isFinite(bar.value) && bar.value >= 0;
      const w = ok && max > 0 ? Math.max(1, Math.round((bar.value / max) * span)) : 0;
      body.push(`<text x="${LABEL_W - 8}" y="${y + 13}" class="label" text-anchor="end">${escapeXml(bar.label)}</text>`);
      if (w > 0) {
        body.push(`<rect x="${LABEL_W}" y="${y}" width="${w}" height="${BAR_H}" fill="${color(bar.label)}"/>`);
      }
      body.push(
        `<text x="${LABEL_W + w + 6}" y="${y + 13}" class="value">${ok ? escapeXml(fmt(bar.value, panel.digits ?? 2)) : 'n/a'}</text>`,
      );
      y += BAR_H + BAR_GAP;
    }
    y += PANEL_GAP;
  }
  if (footnote) {
    body.push(`<text x="12" y="${y}" class="note">${escapeXml(footnote)}</text>`);
    y += 16;
  }
  const height = y + 8;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:16px;font-weight:bold}.panel{font-size:13px;font-weight:bold}.label,.value{font-size:12px}.note{font-size:11px;fill:#555}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="24" class="title">${escapeXml(title)}</text>`,
    ...body,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
