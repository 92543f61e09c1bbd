// A line chart of one attribute's history, drawn as SVG (no library).

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

/** "Nice" tick values covering [lo, hi]. */
export function ticks(lo, hi, n = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function timeLabel(ms, span) {
  const d = new Date(ms);
  const hh = String(d.getHours()).padStart(2, '0');
  const mm = String(d.getMinutes()).padStart(2, '0');
  if (span > 36 * 3600e3) return `${d.getMonth() + 1}/${d.getDate()} ${hh}h`;
  return `${hh}:${mm}`;
}

/**
 * Renders `points` ([[timeMs, value], …], sorted) into `host` (a
 * `data-testid="chart"` element whose `data-points` gives the count).
 */
export function renderChart(host, points, { from, to, unit = '', noData = 'No data' } = {}) {
  host.innerHTML = '';
  host.dataset.points = String(points.length);
  const W = 360; const H = 170;
  const m = { l: 40, r: 10, t: 10, b: 22 };
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' }, host);
  const t0 = from ?? (points[0]?.[0] ?? Date.now() - 3600e3);
  const t1 = to ?? (points.at(-1)?.[0] ?? Date.now());
  if (!points.length) {
    el('line', { class: 'axis', x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }, svg);
    const tx = el('text', { class: 'nodata', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg);
    tx.textContent = noData;
    return;
  }
  let lo = Infinity; let hi = -Infinity;
  for (const [, v] of points) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === hi) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const X = (t) => m.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - lo) / (hi - lo)) * (H - m.t - m.b);
  for (const v of ticks(lo, hi)) {
    el('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }, svg);
    const tx = el('text', { x: m.l - 4, y: Y(v) + 3, 'text-anchor': 'end' }, svg);
    tx.textContent = Math.abs(v) >= 1000 ? v.toFixed(0) : String(+v.toPrecision(4));
  }
  const span = t1 - t0;
  for (let k = 0; k <= 4; k++) {
    const t = t0 + (span * k) / 4;
    const tx = el('text', { x: X(t), y: H - 6, 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle' }, svg);
    tx.textContent = timeLabel(t, span);
  }
  el('line', { class: 'axis', x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }, svg);
  const d = points.map(([t, v], k) => `${k ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join('');
  el('path', { class: 'area', d: `${d}L${X(points.at(-1)[0]).toFixed(1)},${H - m.b}L${X(points[0][0]).toFixed(1)},${H - m.b}Z` }, svg);
  el('path', { class: 'line', d, 'vector-effect': 'non-scaling-stroke' }, svg);
  if (points.length <= 60) for (const [t, v] of points) el('circle', { class: 'dot', cx: X(t), cy: Y(v), r: 1.8 }, svg);
  // Hover read-out.
  const guide = el('line', { class: 'hover-line', y1: m.t, y2: H - m.b, visibility: 'hidden' }, svg);
  const label = el('text', { x: m.l + 4, y: m.t + 9, visibility: 'hidden' }, svg);
  svg.addEventListener('pointermove', (e) => {
    const r = svg.getBoundingClientRect();
    const t = t0 + (((e.clientX - r.left) / r.width) * W - m.l) / (W - m.l - m.r) * span;
    let best = points[0];
    for (const p of points) if (Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
    guide.setAttribute('x1', X(best[0])); guide.setAttribute('x2', X(best[0]));
    guide.setAttribute('visibility', 'visible');
    label.setAttribute('visibility', 'visible');
    label.textContent = `${new Date(best[0]).toLocaleString()} · ${+best[1].toPrecision(6)}${unit ? ` ${unit}` : ''}`;
  });
  svg.addEventListener('pointerleave', () => { guide.setAttribute('visibility', 'hidden'); label.setAttribute('visibility', 'hidden'); });
}
