// The city map: a Web Mercator canvas with drag pan, wheel and pinch zoom,
// an XYZ raster basemap when one is configured or the city's own geometry
// otherwise, and every located entity coloured by its status. At low zoom
// the points are grid-clustered (cells anchored to the world, so panning
// reuses the clusters and only zooming or new data rebuilds them).

import { PACKS, OTHER_PACK, sevColour, severity, packOf } from './status.js';

const TILE = 256;
const CELL = 52; // cluster cell, CSS pixels
const CLUSTER_BELOW_ZOOM = 16.5;
const MAX_ZOOM = 20;
const MIN_ZOOM = 3;

/** Longitude/latitude to Web Mercator in [0, 1]. */
export function project(lon, lat) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

/** Web Mercator in [0, 1] to longitude/latitude. */
export function unproject(x, y) {
  const lon = x * 360 - 180;
  const n = Math.PI - 2 * Math.PI * y;
  return [lon, (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)))];
}

/** The located entities: parallel arrays, one slot per entity id. */
export class PointStore {
  constructor() { this.clear(); }

  clear() {
    this.index = new Map();
    this.ids = []; this.types = []; this.status = [];
    this.x = []; this.y = []; this.pack = []; this.sev = []; this.alive = [];
    this.changedAt = [];
    this.count = 0;
    this.version = 0;
    this.packCounts = new Array(PACKS.length + 1).fill(0);
    this.packAlerts = new Array(PACKS.length + 1).fill(0);
    this.sevCounts = [0, 0, 0, 0];
  }

  /** Adds or updates entity `id`; returns its slot. */
  upsert(id, type, lon, lat, status, now = 0) {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.index.set(id, i);
      this.ids.push(id); this.types.push(type); this.status.push(status);
      const [x, y] = project(lon, lat);
      this.x.push(x); this.y.push(y);
      const p = packOf(type);
      const sev = severity(type, status);
      this.pack.push(p); this.sev.push(sev); this.alive.push(1); this.changedAt.push(now);
      this.count++;
      this.tally(p, sev, 1);
    } else {
      const oldSev = this.sev[i];
      if (type && type !== this.types[i]) {
        this.tally(this.pack[i], oldSev, -1);
        this.types[i] = type;
        this.pack[i] = packOf(type);
        this.tally(this.pack[i], oldSev, 1);
      }
      if (lon !== undefined && lat !== undefined) {
        const [x, y] = project(lon, lat);
        this.x[i] = x; this.y[i] = y;
      }
      if (status !== undefined && status !== this.status[i]) {
        this.status[i] = status;
        const sev = severity(this.types[i], status);
        this.tally(this.pack[i], oldSev, -1);
        this.sev[i] = sev;
        this.tally(this.pack[i], sev, 1);
      }
      this.changedAt[i] = now;
    }
    this.version++;
    return i;
  }

  remove(id) {
    const i = this.index.get(id);
    if (i === undefined) return;
    this.index.delete(id);
    this.alive[i] = 0;
    this.tally(this.pack[i], this.sev[i], -1);
    this.count--;
    this.version++;
  }

  tally(p, sev, d) {
    this.packCounts[p] += d;
    if (sev >= 3) this.packAlerts[p] += d;
    if (sev >= 0) this.sevCounts[sev] += d;
  }

  /** Longitude/latitude bounds of every entity, or null. */
  bounds() {
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
    for (let i = 0; i < this.ids.length; i++) {
      if (!this.alive[i]) continue;
      const x = this.x[i]; const y = this.y[i];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    return x0 === Infinity ? null : [x0, y0, x1, y1];
  }
}

const DISTRICT_FILL = {
  oldTown: 'rgba(62,120,200,0.16)', commercial: 'rgba(160,110,220,0.12)', residential: 'rgba(70,150,190,0.10)',
  campus: 'rgba(80,190,160,0.12)', industrial: 'rgba(200,150,80,0.10)', rural: 'rgba(90,170,90,0.09)',
};
const ROAD_STYLE = {
  highway: ['#3b5580', 3.2, 9], ring: ['#35507a', 2.8, 10], arterial: ['#2c4468', 2.2, 12], local: ['#22385a', 1.2, 13.5],
};

export class CityMap {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {PointStore} store
   */
  constructor(canvas, store) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.store = store;
    this.cx = 0.5; this.cy = 0.5; this.zoom = 3;
    this.hidden = new Array(PACKS.length + 1).fill(false);
    this.layersVersion = 0;
    this.basemap = null;
    this.tileUrl = '';
    this.tiles = new Map();
    this.clusterCache = null;
    this.items = []; // what the last frame drew, for hit tests
    this.selected = null;
    this.hover = null;
    this.frameTimes = [];
    this.onSelect = () => {};
    this.onHover = () => {};
    this.onFrame = () => {};
    this.pending = false;
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.bindInput();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth; const h = this.canvas.clientHeight;
    this.w = w; this.h = h; this.dpr = dpr;
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.max(1, Math.round(h * dpr));
    this.invalidate();
  }

  get scale() { return TILE * 2 ** this.zoom; }

  toScreen(x, y) {
    const s = this.scale;
    return [(x - this.cx) * s + this.w / 2, (y - this.cy) * s + this.h / 2];
  }

  toWorld(sx, sy) {
    const s = this.scale;
    return [this.cx + (sx - this.w / 2) / s, this.cy + (sy - this.h / 2) / s];
  }

  /** Redraws on the next animation frame. */
  invalidate() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  /** Redraws once the cluster cache may be rebuilt. */
  invalidateLater() {
    if (this.later) return;
    this.later = setTimeout(() => { this.later = null; this.invalidate(); }, 260);
  }

  setLayerVisible(pack, visible) {
    this.hidden[pack] = !visible;
    this.layersVersion++;
    this.invalidate();
  }

  setBasemap(geojson) { this.basemap = geojson; this.invalidate(); }

  setTiles(url) { this.tileUrl = url || ''; this.tiles.clear(); this.invalidate(); }

  /** Shows the Mercator rectangle [x0, y0, x1, y1] with a margin. */
  fitWorld(b, margin = 40) {
    if (!b) return;
    const [x0, y0, x1, y1] = b;
    const dx = Math.max(x1 - x0, 1e-7); const dy = Math.max(y1 - y0, 1e-7);
    const zx = Math.log2((this.w - 2 * margin) / (dx * TILE));
    const zy = Math.log2((this.h - 2 * margin) / (dy * TILE));
    this.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM - 2, Math.min(zx, zy)));
    this.cx = (x0 + x1) / 2; this.cy = (y0 + y1) / 2;
    this.invalidate();
  }

  fitData() { this.fitWorld(this.store.bounds()); }

  /** Centres on entity slot `i`, zooming in to at least `minZoom`. */
  focus(i, minZoom = 16.8) {
    this.cx = this.store.x[i]; this.cy = this.store.y[i];
    this.zoom = Math.max(this.zoom, minZoom);
    this.invalidate();
  }

  zoomAt(sx, sy, dz) {
    const [wx, wy] = this.toWorld(sx, sy);
    this.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoom + dz));
    const s = this.scale;
    this.cx = wx - (sx - this.w / 2) / s;
    this.cy = wy - (sy - this.h / 2) / s;
    this.invalidate();
  }

  panBy(dx, dy) {
    const s = this.scale;
    this.cx -= dx / s; this.cy -= dy / s;
    this.invalidate();
  }

  bindInput() {
    const c = this.canvas;
    const pointers = new Map();
    let last = null; let pinch = null; let moved = 0;
    const pos = (e) => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    c.addEventListener('pointerdown', (e) => {
      c.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, pos(e));
      moved = 0;
      if (pointers.size === 1) { last = pos(e); c.classList.add('dragging'); }
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        pinch = { d: Math.hypot(a[0] - b[0], a[1] - b[1]), z: this.zoom };
      }
    });
    c.addEventListener('pointermove', (e) => {
      const p = pos(e);
      if (!pointers.has(e.pointerId)) { this.hoverAt(p[0], p[1]); return; }
      pointers.set(e.pointerId, p);
      if (pointers.size === 2 && pinch) {
        const [a, b] = [...pointers.values()];
        const d = Math.hypot(a[0] - b[0], a[1] - b[1]);
        const mx = (a[0] + b[0]) / 2; const my = (a[1] + b[1]) / 2;
        this.zoomAt(mx, my, pinch.z + Math.log2(d / pinch.d) - this.zoom);
        return;
      }
      if (last) {
        moved += Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]);
        this.panBy(p[0] - last[0], p[1] - last[1]);
        last = p;
      }
    });
    const up = (e) => {
      const p = pos(e);
      pointers.delete(e.pointerId);
      if (pointers.size < 2) pinch = null;
      if (pointers.size === 0) {
        c.classList.remove('dragging');
        if (last && moved < 4) this.clickAt(p[0], p[1]);
        last = null;
      }
    };
    c.addEventListener('pointerup', up);
    c.addEventListener('pointercancel', up);
    c.addEventListener('pointerleave', () => { this.hover = null; this.onHover(null); });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const [x, y] = pos(e);
      const dz = -e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0022);
      this.zoomAt(x, y, Math.max(-1, Math.min(1, dz)));
    }, { passive: false });
    c.addEventListener('dblclick', (e) => { const [x, y] = pos(e); this.zoomAt(x, y, 1); });
  }

  /** The drawn item nearest to (sx, sy) within its radius. */
  hit(sx, sy) {
    let best = null; let bd = Infinity;
    for (const it of this.items) {
      const d = Math.hypot(it.sx - sx, it.sy - sy);
      if (d <= it.r + 3 && d < bd) { bd = d; best = it; }
    }
    return best;
  }

  hoverAt(sx, sy) {
    const it = this.hit(sx, sy);
    this.hover = it;
    this.onHover(it, sx, sy);
  }

  clickAt(sx, sy) {
    const it = this.hit(sx, sy);
    if (!it) return;
    if (it.n > 1) { this.zoomAt(it.sx, it.sy, 2); return; }
    this.selected = this.store.ids[it.i];
    this.onSelect(this.selected, it.i);
    this.invalidate();
  }

  clusters() {
    const st = this.store;
    const z = Math.round(this.zoom * 4) / 4;
    const view = `${z}|${this.layersVersion}`;
    const c0 = this.clusterCache;
    // Live changes rebuild the clusters at most four times a second.
    if (c0 && c0.view === view && (c0.version === st.version || performance.now() - c0.at < 250)) {
      if (c0.version !== st.version) this.invalidateLater();
      return c0.list;
    }
    const s = TILE * 2 ** z;
    const cell = CELL / s;
    const cells = new Map();
    const list = [];
    const { x, y, alive, pack, sev } = st;
    const hidden = this.hidden;
    for (let i = 0, n = st.ids.length; i < n; i++) {
      if (!alive[i] || hidden[pack[i]]) continue;
      const k = Math.floor(x[i] / cell) * 4194304 + Math.floor(y[i] / cell);
      let c = cells.get(k);
      if (c === undefined) {
        c = { n: 0, x: 0, y: 0, sev: -1, i, packs: new Uint32Array(PACKS.length + 1) };
        cells.set(k, c);
        list.push(c);
      }
      c.n++; c.x += x[i]; c.y += y[i];
      c.packs[pack[i]]++;
      if (sev[i] > c.sev) { c.sev = sev[i]; c.i = i; }
    }
    for (const c of list) { c.x /= c.n; c.y /= c.n; }
    this.clusterCache = { view, version: st.version, at: performance.now(), list };
    return list;
  }

  draw() {
    const t0 = performance.now();
    const { ctx, w, h, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#0a1322';
    ctx.fillRect(0, 0, w, h);
    if (this.tileUrl) this.drawTiles();
    if (this.basemap) this.drawBasemap();
    this.items = [];
    const clustered = this.zoom < CLUSTER_BELOW_ZOOM;
    const now = performance.now();
    let drawn = 0; let animate = false;
    if (clustered) {
      drawn = this.drawClusters();
    } else {
      drawn = this.drawPoints();
    }
    animate = this.drawPulses(now);
    this.drawSelection();
    this.drawScale();
    this.lastDrawn = drawn;
    this.lastClustered = clustered;
    const dt = performance.now() - t0;
    this.frameTimes.push(dt);
    if (this.frameTimes.length > 600) this.frameTimes.shift();
    this.onFrame(dt, now);
    if (animate) this.invalidate();
  }

  drawTiles() {
    const { ctx, w, h } = this;
    const z = Math.max(0, Math.min(19, Math.round(this.zoom)));
    const n = 2 ** z;
    const ts = this.scale / n; // on-screen size of one tile
    const [wx0, wy0] = this.toWorld(0, 0);
    const [wx1, wy1] = this.toWorld(w, h);
    const tx0 = Math.floor(wx0 * n); const ty0 = Math.max(0, Math.floor(wy0 * n));
    const tx1 = Math.floor(wx1 * n); const ty1 = Math.min(n - 1, Math.floor(wy1 * n));
    ctx.globalAlpha = 0.55;
    for (let tx = tx0; tx <= tx1; tx++) {
      for (let ty = ty0; ty <= ty1; ty++) {
        const xx = ((tx % n) + n) % n;
        const url = this.tileUrl.replace('{z}', z).replace('{x}', xx).replace('{y}', ty).replace('{s}', 'abc'[(xx + ty) % 3]);
        let img = this.tiles.get(url);
        if (!img) {
          img = new Image();
          img.crossOrigin = 'anonymous';
          img.onload = () => this.invalidate();
          img.src = url;
          this.tiles.set(url, img);
          if (this.tiles.size > 400) this.tiles.delete(this.tiles.keys().next().value);
        }
        if (img.complete && img.naturalWidth) {
          const [sx, sy] = this.toScreen(tx / n, ty / n);
          ctx.drawImage(img, sx, sy, ts + 0.5, ts + 0.5);
        }
      }
    }
    ctx.globalAlpha = 1;
  }

  drawBasemap() {
    const { ctx } = this;
    const s = this.scale;
    const feats = this.basemap.features || [];
    if (!this.baseProjected) {
      // Project once; the frame only scales and shifts.
      this.baseProjected = feats.map((f) => {
        const g = f.geometry || {};
        const proj = (ring) => ring.map(([lon, lat]) => project(lon, lat));
        let rings = [];
        if (g.type === 'Polygon') rings = g.coordinates.map(proj);
        else if (g.type === 'MultiPolygon') rings = g.coordinates.flat().map(proj);
        else if (g.type === 'LineString') rings = [proj(g.coordinates)];
        else if (g.type === 'MultiLineString') rings = g.coordinates.map(proj);
        return { p: f.properties || {}, poly: g.type?.includes('Polygon'), rings };
      });
    }
    const tx = (x) => (x - this.cx) * s + this.w / 2;
    const ty = (y) => (y - this.cy) * s + this.h / 2;
    const path = (rings) => {
      for (const r of rings) {
        for (let k = 0; k < r.length; k++) {
          const X = tx(r[k][0]); const Y = ty(r[k][1]);
          if (k === 0) ctx.moveTo(X, Y); else ctx.lineTo(X, Y);
        }
      }
    };
    for (const f of this.baseProjected) {
      if (f.p.layer !== 'district') continue;
      ctx.beginPath(); path(f.rings); ctx.closePath();
      ctx.fillStyle = DISTRICT_FILL[f.p.kind] || 'rgba(80,110,150,0.08)';
      ctx.fill();
      ctx.strokeStyle = 'rgba(120,150,200,0.22)'; ctx.lineWidth = 1; ctx.stroke();
    }
    for (const f of this.baseProjected) {
      if (f.p.layer !== 'river') continue;
      ctx.beginPath(); path(f.rings);
      ctx.strokeStyle = '#1d4f86'; ctx.lineWidth = Math.max(3, Math.min(14, 2 ** (this.zoom - 12) * 5));
      ctx.lineCap = 'round'; ctx.lineJoin = 'round'; ctx.stroke();
    }
    // Roads by class, the segments with a status (a crash) highlighted.
    const st = this.store;
    for (const cls of ['local', 'arterial', 'ring', 'highway']) {
      const [colour, width, minZoom] = ROAD_STYLE[cls];
      if (this.zoom < minZoom - 1.5) continue;
      ctx.beginPath();
      for (const f of this.baseProjected) if (f.p.layer === 'road' && f.p.class === cls) path(f.rings);
      ctx.strokeStyle = colour;
      ctx.lineWidth = width * Math.max(0.6, Math.min(2.2, 2 ** ((this.zoom - 13) / 2)));
      ctx.stroke();
    }
    for (const f of this.baseProjected) {
      if (f.p.layer !== 'road' || !f.p.segment) continue;
      const i = st.index.get(f.p.segment);
      if (i === undefined || st.sev[i] < 2) continue;
      ctx.beginPath(); path(f.rings);
      ctx.strokeStyle = sevColour(st.sev[i]); ctx.lineWidth = 4; ctx.stroke();
    }
    if (this.zoom >= 12.5 && this.zoom < 16) {
      ctx.font = '600 11px system-ui, sans-serif';
      ctx.fillStyle = 'rgba(170,190,225,0.55)';
      ctx.textAlign = 'center';
      for (const f of this.baseProjected) {
        if (f.p.layer !== 'district' || !f.rings[0]) continue;
        let ax = 0; let ay = 0;
        for (const [x, y] of f.rings[0]) { ax += x; ay += y; }
        ctx.fillText(f.p.name || '', tx(ax / f.rings[0].length), ty(ay / f.rings[0].length));
      }
    }
  }

  drawClusters() {
    const { ctx, w, h } = this;
    const list = this.clusters();
    const st = this.store;
    const singles = [];
    const bubbles = [];
    for (const c of list) {
      const [sx, sy] = this.toScreen(c.x, c.y);
      if (sx < -40 || sy < -40 || sx > w + 40 || sy > h + 40) continue;
      if (c.n === 1) singles.push([c.i, sx, sy]);
      else bubbles.push([c, sx, sy]);
    }
    this.drawSingles(singles);
    ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
    ctx.font = '600 11px system-ui, sans-serif';
    for (const [c, sx, sy] of bubbles) {
      const r = Math.min(26, 9 + Math.log10(c.n) * 5.5);
      const col = sevColour(c.sev);
      ctx.beginPath(); ctx.arc(sx, sy, r + 4, 0, Math.PI * 2);
      ctx.fillStyle = col + '33'; ctx.fill();
      ctx.beginPath(); ctx.arc(sx, sy, r, 0, Math.PI * 2);
      ctx.fillStyle = col + 'dd'; ctx.fill();
      ctx.lineWidth = 1.5; ctx.strokeStyle = '#0a1322'; ctx.stroke();
      ctx.fillStyle = c.sev >= 2 ? '#1a0d00' : '#04110a';
      ctx.fillText(c.n >= 10000 ? `${Math.round(c.n / 1000)}k` : c.n >= 1000 ? `${(c.n / 1000).toFixed(1)}k` : String(c.n), sx, sy + 0.5);
      this.items.push({ n: c.n, i: c.i, sx, sy, r, packs: c.packs, sev: c.sev });
    }
    void st;
    return singles.length + bubbles.length;
  }

  drawPoints() {
    const { w, h } = this;
    const st = this.store;
    const s = this.scale;
    const singles = [];
    const { x, y, alive, pack } = st;
    const hx = this.w / 2 - this.cx * s; const hy = this.h / 2 - this.cy * s;
    for (let i = 0, n = st.ids.length; i < n; i++) {
      if (!alive[i] || this.hidden[pack[i]]) continue;
      const sx = x[i] * s + hx; const sy = y[i] * s + hy;
      if (sx < -10 || sy < -10 || sx > w + 10 || sy > h + 10) continue;
      singles.push([i, sx, sy]);
    }
    this.drawSingles(singles);
    return singles.length;
  }

  /** Draws single entities batched by colour: status fill, pack ring. */
  drawSingles(singles) {
    const { ctx } = this;
    const st = this.store;
    const r = this.zoom >= 18 ? 6 : this.zoom >= 16 ? 4.5 : 3.5;
    const byFill = new Map();
    for (const it of singles) {
      const key = st.sev[it[0]] * 16 + st.pack[it[0]];
      let a = byFill.get(key);
      if (!a) { a = []; byFill.set(key, a); }
      a.push(it);
    }
    // Normal entities first, alerts on top.
    const keys = [...byFill.keys()].sort((a, b) => a - b);
    for (const k of keys) {
      const a = byFill.get(k);
      const sev = Math.floor((k + 16) / 16) - 1;
      const p = k - sev * 16;
      const rr = sev >= 2 ? r + 1.5 : r;
      ctx.beginPath();
      for (const [, sx, sy] of a) { ctx.moveTo(sx + rr, sy); ctx.arc(sx, sy, rr, 0, Math.PI * 2); }
      ctx.fillStyle = sevColour(sev); ctx.fill();
      ctx.lineWidth = this.zoom >= 16 ? 1.6 : 1;
      ctx.strokeStyle = p < PACKS.length ? PACKS[p].colour : '#556';
      ctx.stroke();
      for (const [i, sx, sy] of a) this.items.push({ n: 1, i, sx, sy, r: rr });
    }
    void OTHER_PACK;
  }

  drawPulses(now) {
    const { ctx, w, h } = this;
    const st = this.store;
    const recent = this.recent || [];
    let any = false;
    const keep = [];
    for (const i of recent) {
      const age = now - st.changedAt[i];
      if (age > 1600 || !st.alive[i] || this.hidden[st.pack[i]]) continue;
      keep.push(i); any = true;
      const [sx, sy] = this.toScreen(st.x[i], st.y[i]);
      if (sx < 0 || sy < 0 || sx > w || sy > h) continue;
      const k = age / 1600;
      ctx.beginPath(); ctx.arc(sx, sy, 5 + k * 16, 0, Math.PI * 2);
      ctx.strokeStyle = sevColour(st.sev[i]); ctx.globalAlpha = 1 - k; ctx.lineWidth = 2; ctx.stroke();
      ctx.globalAlpha = 1;
    }
    this.recent = keep;
    return any;
  }

  /** Marks slots that just changed to an alert or warning for a pulse. */
  pulse(i) {
    if (!this.recent) this.recent = [];
    if (this.recent.length < 500) this.recent.push(i);
  }

  /** A scale bar: a round distance about 100 px long at the centre's latitude. */
  drawScale() {
    const { ctx, w, h } = this;
    const [, lat] = unproject(this.cx, this.cy);
    const mPerPx = (40075016.7 * Math.cos((lat * Math.PI) / 180)) / this.scale;
    const target = mPerPx * 100;
    const mag = 10 ** Math.floor(Math.log10(target));
    const m = [1, 2, 5, 10].map((k) => k * mag).filter((v) => v <= target).pop() || mag;
    const px = m / mPerPx;
    const x = w - px - 20; const y = h - 30;
    ctx.strokeStyle = 'rgba(200,215,240,0.8)'; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(x, y - 5); ctx.lineTo(x, y); ctx.lineTo(x + px, y); ctx.lineTo(x + px, y - 5); ctx.stroke();
    ctx.fillStyle = 'rgba(200,215,240,0.85)'; ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center'; ctx.textBaseline = 'bottom';
    ctx.fillText(m >= 1000 ? `${m / 1000} km` : `${m} m`, x + px / 2, y - 3);
  }

  drawSelection() {
    if (!this.selected) return;
    const i = this.store.index.get(this.selected);
    if (i === undefined) return;
    const [sx, sy] = this.toScreen(this.store.x[i], this.store.y[i]);
    const { ctx } = this;
    ctx.beginPath(); ctx.arc(sx, sy, 11, 0, Math.PI * 2);
    ctx.lineWidth = 2.5; ctx.strokeStyle = '#ffffff'; ctx.stroke();
    ctx.beginPath(); ctx.arc(sx, sy, 14, 0, Math.PI * 2);
    ctx.lineWidth = 1; ctx.strokeStyle = 'rgba(62,166,255,0.9)'; ctx.stroke();
  }
}
