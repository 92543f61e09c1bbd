// The console's entry point: loads the configuration, the map snapshot and
// the basemap, follows the live stream, and wires the panels together.
// `window.dosiConsole` exposes counts and hooks for tests.

import { getJson, postJson, eventsUrl, pointsUrl } from './api.js';
import { apply, t, setLang, currentLang, onLang, fmtNum } from './i18n.js';
import { CityMap, PointStore } from './map.js';
import { PACKS, packName } from './status.js';
import { Browser } from './browser.js';

const $ = (id) => document.getElementById(id);
const store = new PointStore();
const map = new CityMap($('map'), store);
const state = {
  config: null, loaded: false, loading: false, buffered: [], fitted: false,
  lastEventAt: null, lastSeq: 0, events: 0, changes: 0, firstRenderMs: null, snapshotMs: null,
  rateWindow: [], waiters: [], marks: { moduleStart: performance.now() },
};

const browser = new Browser({
  onFocus: (id) => { const i = store.index.get(id); if (i !== undefined) { map.selected = id; map.focus(i); } },
  statusOf: (id) => { const i = store.index.get(id); return i === undefined ? null : { type: store.types[i], status: store.status[i] }; },
});

map.onSelect = (id) => browser.show(id, false);

// Tooltip.
const tip = $('tooltip');
map.onHover = (it, sx, sy) => {
  if (!it) { tip.classList.add('hidden'); return; }
  const i = it.i;
  tip.replaceChildren();
  const line = (cls, text) => { const d = document.createElement('div'); d.className = cls; d.textContent = text; tip.append(d); };
  if (it.n > 1) {
    line('', `${fmtNum(it.n)} ${t('entities').toLowerCase()}`);
    const parts = [];
    it.packs.forEach((n, p) => { if (n) parts.push(`${t(`pack.${packName(p)}`)} ${fmtNum(n)}`); });
    line('tt-type', parts.join(' · '));
  } else {
    line('tt-type', `${store.types[i]} · ${store.status[i] || '–'}`);
    line('tt-id', store.ids[i]);
  }
  tip.style.left = `${Math.min(sx + 14, map.w - 330)}px`;
  tip.style.top = `${sy + 14}px`;
  tip.classList.remove('hidden');
};

// Layers.
function renderLayers() {
  const ul = $('layers');
  const rows = [...PACKS.map((p, i) => [p, i]), [{ name: 'other', colour: '#556' }, PACKS.length]]
    .filter(([, i]) => i < PACKS.length || store.packCounts[i] > 0)
    .map(([p, i]) => {
      const li = document.createElement('li');
      li.dataset.testid = `layer-${p.name}`;
      li.classList.toggle('off', map.hidden[i]);
      const g = document.createElement('span'); g.className = 'glyph'; g.style.borderColor = p.colour;
      const name = document.createElement('span'); name.textContent = t(`pack.${p.name}`);
      const count = document.createElement('span'); count.className = 'count'; count.textContent = fmtNum(store.packCounts[i]);
      li.append(g, name, count);
      if (store.packAlerts[i] > 0) { const b = document.createElement('span'); b.className = 'bad'; b.textContent = `▲${store.packAlerts[i]}`; li.append(b); }
      li.addEventListener('click', () => { map.setLayerVisible(i, map.hidden[i]); renderLayers(); });
      return li;
    });
  ul.replaceChildren(...rows);
}

function renderKpis() {
  $('kpi-count').textContent = fmtNum(store.count);
  $('kpi-alerts').textContent = fmtNum(store.sevCounts[3]);
  $('kpi-warnings').textContent = fmtNum(store.sevCounts[2]);
  const now = performance.now();
  state.rateWindow = state.rateWindow.filter(([ts]) => now - ts < 5000);
  const n = state.rateWindow.reduce((a, [, k]) => a + k, 0);
  $('kpi-rate').textContent = fmtNum(n / 5, 1);
}

map.onFrame = (dt, now) => {
  $('map-status').textContent = `${t('zoom')} ${map.zoom.toFixed(1)} · ${fmtNum(map.lastDrawn)} ${map.lastClustered ? t('clusters') : t('shown')} · ${dt.toFixed(1)} ms`;
  if (state.firstRenderMs === null && state.loaded && store.count > 0) state.firstRenderMs = now;
  if (state.waiters.length) {
    state.waiters = state.waiters.filter((w) => {
      const i = store.index.get(w.id);
      if (i !== undefined && store.status[i] === w.status) { w.resolve(performance.now()); return false; }
      return true;
    });
  }
};

// Live stream and snapshot.
function applyChanges(batch) {
  const now = performance.now();
  let n = 0;
  for (const c of batch.changes) {
    n++;
    if (c.kind === 'deleted') { store.remove(c.id); continue; }
    if (!c.loc && !store.index.has(c.id)) continue;
    const j = store.index.get(c.id);
    const was = j === undefined ? -1 : store.sev[j];
    const i = store.upsert(c.id, c.type, c.loc?.[0], c.loc?.[1], c.status, now);
    // Pulse what just became a warning or an alert.
    if (store.sev[i] >= 2 && store.sev[i] > was) map.pulse(i);
    browser.changed(c.id, c.attrs);
  }
  state.changes += n;
  state.rateWindow.push([now, n]);
  state.lastEventAt = batch.at;
  state.lastSeq = batch.seq;
  map.invalidate();
}

async function loadSnapshot() {
  if (state.loading) return;
  state.loading = true;
  const t0 = performance.now();
  state.marks.snapshotStart = t0;
  try {
    const snap = await getJson(pointsUrl());
    state.marks.snapshotFetched = performance.now();
    store.clear();
    for (const [id, type, lon, lat, status] of snap.points) store.upsert(id, type, lon, lat, status);
    state.loaded = true;
    state.snapshotMs = performance.now() - t0;
    for (const b of state.buffered) applyChanges(b);
    state.buffered = [];
    if (!state.fitted && store.count) { map.fitData(); state.fitted = true; }
    map.clusterCache = null;
    map.invalidate();
    renderLayers();
    renderKpis();
  } catch (e) {
    toast(t('failed', { msg: e.message }));
  } finally {
    state.loading = false;
  }
}

function connect() {
  const es = new EventSource(eventsUrl());
  const live = $('live');
  let first = true;
  es.addEventListener('ready', () => {
    state.marks.ready ??= performance.now();
    live.className = 'live on'; $('live-text').dataset.i18n = 'live'; $('live-text').textContent = t('live');
    // The first snapshot loads alongside the connection (see start); after
    // a reconnect changes may have been missed, so reload it.
    if (!first) loadSnapshot();
    first = false;
  });
  es.addEventListener('changes', (m) => {
    state.events++;
    const batch = JSON.parse(m.data);
    if (state.loading || !state.loaded) state.buffered.push(batch);
    else applyChanges(batch);
  });
  es.addEventListener('resync', () => { toast(t('resync'), true); loadSnapshot(); });
  es.onerror = () => { live.className = 'live off'; $('live-text').dataset.i18n = 'offline'; $('live-text').textContent = t('offline'); };
}

// Scenarios.
async function triggerScenario(kind) {
  try {
    await postJson('/api/v1/sim/scenarios', { kind });
    toast(t('started', { kind: t(`kind.${kind}`) }), true);
    pollSim();
  } catch (e) {
    toast(t('failed', { msg: e.message }));
  }
}

function renderScenarios() {
  const kinds = state.config?.scenarios || [];
  $('scenarios').replaceChildren(...kinds.map((k) => {
    const kind = typeof k === 'string' ? k : k.kind;
    const b = document.createElement('button');
    b.className = 'btn danger';
    b.dataset.testid = `scenario-${kind}`;
    b.textContent = t(`kind.${kind}`);
    b.addEventListener('click', () => triggerScenario(kind));
    return b;
  }));
}

async function pollSim() {
  if (!state.config?.sim) return;
  try {
    const s = await getJson('/api/v1/sim');
    state.sim = s;
    if (s.simTime) {
      const d = new Date(s.simTime);
      $('kpi-simtime').textContent = Number.isNaN(d.getTime()) ? String(s.simTime) : d.toLocaleString(currentLang() === 'ko' ? 'ko-KR' : 'en-GB', { timeZone: 'Asia/Bangkok', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    }
    $('sim-speed').textContent = s.speed != null ? `×${fmtNum(s.speed, 1)}` : '–';
    $('sim-devices').textContent = s.devices != null ? fmtNum(s.devices) : '–';
    const active = Array.isArray(s.active) ? s.active : [];
    $('active-scenarios').replaceChildren(...active.slice(-6).map((a) => {
      const li = document.createElement('li');
      const kind = a.kind || a;
      li.textContent = `● ${t('active')}: ${t(`kind.${kind}`)}${a.target ? ` — ${String(a.target).split(':').pop()}` : ''}`;
      return li;
    }));
  } catch { /* shown next time */ }
}

let toastTimer = null;
function toast(msg, ok = false) {
  const el = $('toast');
  el.textContent = msg;
  el.className = `toast${ok ? ' ok' : ''}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.add('hidden'), 3500);
}

// Map buttons, language.
$('zoom-in').addEventListener('click', () => map.zoomAt(map.w / 2, map.h / 2, 1));
$('zoom-out').addEventListener('click', () => map.zoomAt(map.w / 2, map.h / 2, -1));
$('fit').addEventListener('click', () => map.fitData());
function langButton() { $('lang').textContent = currentLang() === 'ko' ? 'English' : '한국어'; }
$('lang').addEventListener('click', () => setLang(currentLang() === 'ko' ? 'en' : 'ko'));
onLang(() => { langButton(); renderLayers(); renderScenarios(); renderKpis(); pollSim(); if (browser.entity) browser.render(); });

/** Shows the scenario panel and the city clock, loads the city's basemap. */
function enableSim() {
  // The simulated city's own geometry: the offline basemap.
  getJson('/api/v1/sim/basemap').then((g) => map.setBasemap(g)).catch(() => {});
  for (const el of document.querySelectorAll('.sim-only')) el.classList.remove('hidden');
  renderScenarios();
  pollSim();
  setInterval(pollSim, 2000);
}

/** A simulator may start after the console loaded (`dosi demo` sets up first). */
function watchForSim() {
  const timer = setInterval(async () => {
    try {
      const c = await getJson('/api/v1/console/config');
      if (!c.sim) return;
      clearInterval(timer);
      state.config = c;
      enableSim();
    } catch { /* next time */ }
  }, 3000);
}

async function start() {
  apply();
  langButton();
  renderLayers();
  // The stream and the snapshot at once: changes arriving while the
  // snapshot loads are buffered and applied after it.
  connect();
  loadSnapshot();
  try {
    state.config = await getJson('/api/v1/console/config');
  } catch {
    state.config = { sim: false, scenarios: [], tileUrl: '' };
  }
  if (state.config.tileUrl) {
    map.setTiles(state.config.tileUrl);
    $('attribution').textContent = state.config.tileAttribution || '';
  }
  if (state.config.sim) enableSim();
  else watchForSim();
  browser.loadTypes();
  browser.search();
  setInterval(() => { renderKpis(); renderLayers(); }, 1000);
  setInterval(() => browser.loadTypes(), 30000);
}

window.dosiConsole = {
  get entities() { return store.count; },
  get loaded() { return state.loaded; },
  get lastEventAt() { return state.lastEventAt; },
  get lastSeq() { return state.lastSeq; },
  get events() { return state.events; },
  get changes() { return state.changes; },
  get firstRenderMs() { return state.firstRenderMs; },
  get snapshotMs() { return state.snapshotMs; },
  get marks() { return { ...state.marks, firstRender: state.firstRenderMs }; },
  get zoom() { return map.zoom; },
  get drawn() { return map.lastDrawn; },
  get clustered() { return map.lastClustered; },
  get frameTimes() { return map.frameTimes.slice(); },
  statusOf: (id) => { const i = store.index.get(id); return i === undefined ? null : store.status[i]; },
  countStatus: (status) => { let n = 0; for (let i = 0; i < store.ids.length; i++) if (store.alive[i] && store.status[i] === status) n++; return n; },
  /** Resolves with performance.now() of the first frame drawn with `id` in `status`. */
  waitForStatus: (id, status) => new Promise((resolve) => { state.waiters.push({ id, status, resolve }); map.invalidate(); }),
  map,
  store,
  browser,
};

start();
