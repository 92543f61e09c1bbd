// The entity browser: search (NGSI-LD query), the result list, and the
// details panel (attributes, relationships to follow, raw JSON, and a chart
// of an attribute's history from the temporal API).

import { getJson, getList, contextFor } from './api.js';
import { renderChart } from './chart.js';
import { t, fmtNum } from './i18n.js';
import { severity, sevColour, packOf, packName, OTHER_PACK } from './status.js';

/** The pack of entity type `ty`, or null. */
const packOfType = (ty) => (packOf(ty) === OTHER_PACK ? null : packName(packOf(ty)));

const RANGES = [['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 24 * 3600e3]];
const UNITS = { MTR: 'm', CEL: '°C', KMH: 'km/h', C62: '', MQS: 'm³/s', MMT: 'mm', MSK: 'm/s²', MTS: 'm/s', GQ: 'µg/m³', GP: 'mg/m³', SEC: 's', KMT: 'km', MTK: 'm²', A97: 'hPa', 59: 'ppm' };

const $ = (id) => document.getElementById(id);

function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function esc(s) { return String(s).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&'); }

export class Browser {
  constructor({ onFocus, statusOf }) {
    this.onFocus = onFocus; // (id) => centre the map on it
    this.statusOf = statusOf; // (id) => {type, status} from the map's store
    this.current = null;
    this.entity = null;
    this.chartAttr = null;
    this.range = RANGES[1][1];
    this.custom = null;
    this.showRaw = false;
    this.refreshTimer = null;
    this.changedAttrs = new Set();
    $('search-form').addEventListener('submit', (e) => { e.preventDefault(); this.search(); });
    $('search-type').addEventListener('change', () => this.search());
    for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => this.tab(b.dataset.tab));
  }

  tab(name) {
    for (const b of document.querySelectorAll('.tab')) b.classList.toggle('active', b.dataset.tab === name);
    $('tab-browse').classList.toggle('hidden', name !== 'browse');
    $('tab-details').classList.toggle('hidden', name !== 'details');
  }

  async loadTypes() {
    try {
      const r = await getJson('/ngsi-ld/v1/types');
      const list = (r.typeList || []).slice().sort();
      this.types = new Set(list);
      const sel = $('search-type');
      const keep = sel.value;
      for (const o of [...sel.options].slice(1)) o.remove();
      for (const ty of list) sel.append(h('option', { value: ty }, ty));
      sel.value = keep;
    } catch { /* the list stays as it was */ }
  }

  /** Runs the search in the form: free text, type, q. */
  async search() {
    const text = $('search').value.trim();
    let type = $('search-type').value;
    let q = $('search-q').value.trim();
    const p = new URLSearchParams({ limit: '100', count: 'true' });
    if (text) {
      if (!type && this.types?.has(text)) type = text;
      else if (/[=<>~!]/.test(text) && !q) q = text;
      else p.set('idPattern', `.*${esc(text)}.*`);
    }
    if (type) p.set('type', type);
    if (q) p.set('q', q);
    if (!type && !q && !p.has('idPattern')) p.set('idPattern', '.*');
    const meta = $('results-meta');
    meta.textContent = t('loading');
    try {
      const { items, total } = await getList(`/ngsi-ld/v1/entities?${p}`);
      this.renderResults(items, total);
    } catch (e) {
      meta.textContent = t('failed', { msg: e.message });
      $('results').replaceChildren();
    }
  }

  renderResults(items, total) {
    const n = items.length;
    $('results-meta').textContent = !n ? t('noResults')
      : Number.isFinite(total) && total > n ? t('moreResults', { n: fmtNum(n), total: fmtNum(total) }) : t('results', { n: fmtNum(n) });
    const rows = items.map((e) => {
      const s = this.statusOf(e.id);
      const col = s ? sevColour(severity(s.type, s.status)) : sevColour(-1);
      const dot = h('span', { class: 'sw' });
      dot.style.background = col;
      return h('li', { dataset: { testid: 'entity-row', id: e.id }, onclick: () => this.show(e.id, true) },
        dot, h('span', { class: 'rid', title: e.id }, e.id), h('span', { class: 'rtype' }, e.type));
    });
    $('results').replaceChildren(...rows);
  }

  /** Shows entity `id` in the details tab; `focus` also centres the map. */
  async show(id, focus = false) {
    if (id !== this.current) { this.chartAttr = null; this.custom = null; }
    this.current = id;
    this.tab('details');
    if (focus) this.onFocus(id);
    await this.reload();
  }

  async reload() {
    const id = this.current;
    if (!id) return;
    try {
      const e = await getJson(`/ngsi-ld/v1/entities/${encodeURIComponent(id)}`, contextFor(id, packOfType));
      if (id !== this.current) return;
      this.entity = e;
      this.render();
    } catch (err) {
      $('details').replaceChildren(h('p', { class: 'empty' }, err.status === 404 ? t('notFound') : t('failed', { msg: err.message })));
    }
  }

  /** A live change of `id` arrived: refresh the panel soon (coalesced). */
  changed(id, attrs) {
    if (id !== this.current) return;
    for (const a of Object.keys(attrs || {})) this.changedAttrs.add(a);
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => { this.refreshTimer = null; this.reload(); }, 120);
  }

  render() {
    const e = this.entity;
    const s = this.statusOf(e.id);
    const props = []; const rels = [];
    let firstNumeric = null;
    for (const [k, v] of Object.entries(e)) {
      if (k === 'id' || k === 'type' || k === '@context') continue;
      const inst = Array.isArray(v) ? v[0] : v;
      if (!inst || typeof inst !== 'object') continue;
      if (inst.type === 'Relationship') rels.push([k, inst]);
      else {
        props.push([k, inst]);
        if (firstNumeric === null && typeof inst.value === 'number') firstNumeric = k;
      }
    }
    if (!this.chartAttr || !(this.chartAttr in e)) this.chartAttr = firstNumeric;
    const pill = h('span', { class: 'pill' }, s?.status || '–');
    pill.style.background = sevColour(s ? severity(s.type, s.status) : -1);
    const flash = this.changedAttrs; this.changedAttrs = new Set();
    const propRows = props.map(([k, a]) => {
      const numeric = typeof a.value === 'number';
      const val = a.type === 'GeoProperty' ? `${a.value?.type} ${JSON.stringify(a.value?.coordinates).slice(0, 60)}`
        : typeof a.value === 'object' ? JSON.stringify(a.value ?? a.languageMap ?? a.json ?? a.vocab) : String(a.value);
      const cls = [numeric ? 'chartable' : '', k === this.chartAttr ? 'selected' : '', flash.has(k) ? 'flash' : ''].join(' ');
      return h('tr', { class: cls, dataset: { attr: k } },
        h('td', { class: 'k', onclick: numeric ? () => { this.chartAttr = k; this.render(); } : null, title: numeric ? t('history') : '' }, k),
        h('td', { class: 'v' }, numeric ? fmtNum(a.value, 4) : val,
          a.unitCode ? h('span', { class: 'unit' }, UNITS[a.unitCode] ?? a.unitCode) : null,
          a.observedAt ? h('span', { class: 'at' }, `${t('observedAt')} ${new Date(a.observedAt).toLocaleString()}`) : null));
    });
    const relRows = rels.map(([k, a]) => {
      const objs = [].concat(a.object ?? a.objectList ?? []);
      return h('tr', {}, h('td', { class: 'k' }, k), h('td', { class: 'v' },
        ...objs.map((o) => h('div', {}, h('a', { class: 'rel', dataset: { rel: o }, onclick: () => this.show(o, true) }, o)))));
    });
    const chartHost = h('div', { class: 'chart', dataset: { testid: 'chart', points: '0' } });
    const nodes = [
      h('h3', {}, e.id),
      h('div', { class: 'meta' }, h('span', {}, e.type), pill),
    ];
    if (this.chartAttr) nodes.push(this.chartBox(chartHost));
    else nodes.push(h('p', { class: 'empty' }, t('chartHint')));
    nodes.push(h('div', { class: 'sect' }, t('attributes')), h('table', { class: 'attrs' }, h('tbody', {}, ...propRows)));
    if (relRows.length) nodes.push(h('div', { class: 'sect' }, t('relationships')), h('table', { class: 'attrs' }, h('tbody', {}, ...relRows)));
    nodes.push(h('button', { class: 'btn raw-toggle', onclick: () => { this.showRaw = !this.showRaw; this.render(); } }, this.showRaw ? t('hideRaw') : t('showRaw')));
    if (this.showRaw) nodes.push(h('pre', { class: 'raw', dataset: { testid: 'raw-json' } }, JSON.stringify(e, null, 2)));
    $('details').replaceChildren(...nodes);
    if (this.chartAttr) this.loadChart(chartHost);
  }

  chartBox(host) {
    const buttons = RANGES.map(([label, ms]) => h('button', {
      class: !this.custom && this.range === ms ? 'active' : '', dataset: { range: label },
      onclick: () => { this.range = ms; this.custom = null; this.render(); },
    }, label));
    buttons.push(h('button', { class: this.custom ? 'active' : '', dataset: { range: 'custom' }, onclick: () => { this.custom = this.custom || this.window(); this.render(); } }, t('custom')));
    const box = h('div', { class: 'chart-box' },
      h('div', { class: 'chart-head' }, h('span', { class: 'title' }, `${t('history')}: ${this.chartAttr}`), h('div', { class: 'ranges' }, ...buttons)));
    if (this.custom) {
      const local = (ms) => { const d = new Date(ms - new Date().getTimezoneOffset() * 60e3); return d.toISOString().slice(0, 16); };
      const a = h('input', { type: 'datetime-local', value: local(this.custom[0]) });
      const b = h('input', { type: 'datetime-local', value: local(this.custom[1]) });
      box.append(h('div', { class: 'custom-range' }, a, b, h('button', { class: 'btn', onclick: () => {
        const x = new Date(a.value).getTime(); const y = new Date(b.value).getTime();
        if (x < y) { this.custom = [x, y]; this.render(); }
      } }, t('apply'))));
    }
    box.append(host);
    return box;
  }

  /** The chart's time window: ends at the attribute's last observation (simulated time may run ahead of the clock). */
  window() {
    const a = this.entity?.[this.chartAttr];
    const inst = Array.isArray(a) ? a[0] : a;
    const end = Math.max(Date.now(), inst?.observedAt ? Date.parse(inst.observedAt) + 1000 : 0);
    return [end - this.range, end];
  }

  async loadChart(host) {
    const [from, to] = this.custom || this.window();
    const attr = this.chartAttr;
    const p = new URLSearchParams({
      attrs: attr, timerel: 'between', timeAt: new Date(from).toISOString(), endTimeAt: new Date(to).toISOString(), options: 'temporalValues',
    });
    const a = this.entity?.[attr];
    const unitCode = (Array.isArray(a) ? a[0] : a)?.unitCode;
    try {
      const r = await getJson(`/ngsi-ld/v1/temporal/entities/${encodeURIComponent(this.current)}?${p}`, contextFor(this.current, packOfType));
      let v = r[attr];
      if (Array.isArray(v)) v = v[0];
      const points = (v?.values || [])
        .map(([val, ts]) => [Date.parse(ts), Number(val)])
        .filter(([ts, val]) => Number.isFinite(ts) && Number.isFinite(val))
        .sort((x, y) => x[0] - y[0]);
      renderChart(host, points, { from, to, unit: UNITS[unitCode] ?? unitCode ?? '', noData: t('noData') });
    } catch (e) {
      renderChart(host, [], { from, to, noData: e.status === 404 ? t('noData') : t('failed', { msg: e.message }) });
    }
  }
}
