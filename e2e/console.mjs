// Browser test and benchmarks of the dosi console, in headless Chromium.
//
//   DOSI_E2E_URL=http://127.0.0.1:8080 node console.mjs   # a running server
//   DOSI_BIN=target/debug/dosi node console.mjs           # starts `dosi demo`
//   DOSI_CITY_BIN=target/debug/examples/console_city node console.mjs
//                                     # starts the dosi-api dev city instead
//   DOSI_E2E_BENCH=1 …                 # also the benchmarks (10,000 and
//                                     # 100,000 entities; needs a starter)
//
// The test waits for sensors on the map, opens an entity and its chart,
// triggers a scenario and sees the map change, toggles the language, and
// saves screenshots to docs/screenshots/. Benchmarks print JSON and write
// e2e/out/bench.json.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, '..', 'docs', 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);

/** Starts a server; resolves with {url, stop}. */
async function startServer({ devices = 5000, speed = 60 } = {}) {
  if (process.env.DOSI_E2E_URL) return { url: process.env.DOSI_E2E_URL.replace(/\/$/, ''), stop() {} };
  let cmd; let args; let dataDir = null;
  if (process.env.DOSI_BIN) {
    dataDir = mkdtempSync(join(tmpdir(), 'dosi-e2e-data-'));
    cmd = process.env.DOSI_BIN;
    args = ['demo', '--http', '127.0.0.1:0', '--mqtt', '127.0.0.1:0', '--data-dir', dataDir,
      '--devices', String(devices), '--speed', String(speed)];
    if (process.env.DOSI_DEMO_ARGS) args.push(...process.env.DOSI_DEMO_ARGS.split(' '));
  } else if (process.env.DOSI_CITY_BIN) {
    cmd = process.env.DOSI_CITY_BIN;
    args = ['127.0.0.1:0', String(devices), String(speed)];
  } else {
    throw new Error('set DOSI_E2E_URL, DOSI_BIN or DOSI_CITY_BIN');
  }
  log('starting', cmd, args.join(' '));
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOSI_LOG: process.env.DOSI_LOG || 'warn' } });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not say where it listens within 300 s')), 300e3);
    const seen = (buf) => {
      const m = /https?:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+/.exec(buf.toString());
      if (m) { clearTimeout(timer); resolve(m[0]); }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (c) => reject(new Error(`the server exited with ${c}`)));
  });
  // The demo may announce its address before seeding is done: wait for entities.
  const deadline = Date.now() + 300e3;
  for (;;) {
    try {
      const r = await fetch(`${url}/api/v1/map/points`);
      if (r.ok && (await r.json()).count > 0) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('no entities after 300 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  log('server at', url);
  return {
    url,
    stop() { child.kill('SIGTERM'); if (dataDir) rmSync(dataDir, { recursive: true, force: true }); },
  };
}

async function browser() {
  const profile = mkdtempSync(join(tmpdir(), 'dosi-e2e-profile-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1600, height: 900 }, locale: 'en-GB', bypassCSP: true,
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('pageerror', (e) => { log('page error:', e.message); process.exitCode = 1; });
  return { ctx, page, close: async () => { await ctx.close(); rmSync(profile, { recursive: true, force: true }); } };
}

async function functional(url) {
  const { page, close } = await browser();
  try {
    await page.goto(`${url}/`);
    // Sensors on the map.
    await page.waitForFunction(() => window.dosiConsole?.loaded && window.dosiConsole.entities > 0, null, { timeout: 60e3 });
    const count = Number((await page.getByTestId('map-count').textContent()).replace(/\D/g, ''));
    assert.ok(count > 0, 'the map counts its entities');
    const external = await page.evaluate(() => [...document.querySelectorAll('script[src],link[href]')]
      .map((e) => e.src || e.href).filter((u) => !u.startsWith(location.origin)));
    assert.deepEqual(external, [], 'nothing loaded from elsewhere');
    await page.waitForFunction(() => window.dosiConsole.events > 0, null, { timeout: 30e3 });
    // `dosi demo` installs its simulator after writing the city: give it 30 s.
    let config = null;
    for (let k = 0; k < 30; k++) {
      config = await (await fetch(`${url}/api/v1/console/config`)).json();
      if (config.sim) break;
      await page.waitForTimeout(1000);
    }
    if (config.sim) {
      // The scenario panel and the city's basemap (a simulator may come up
      // after its entities: the console looks again every 3 s).
      await page.locator('#scenario-panel:not(.hidden)').waitFor({ timeout: 30e3 });
      await page.waitForFunction(() => window.dosiConsole.map.basemap, null, { timeout: 30e3 });
    }
    log(`map: ${count} entities, first render ${(await page.evaluate(() => window.dosiConsole.firstRenderMs)).toFixed(0)} ms`);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(shots, 'map.png') });

    // An entity and its chart.
    await page.getByTestId('search').fill('AirQualityObserved');
    await page.getByTestId('search').press('Enter');
    const row = page.locator('[data-testid="entity-row"][data-id*="AirQualityObserved"]').first();
    await row.waitFor({ timeout: 10e3 });
    const id = await row.getAttribute('data-id');
    await row.click();
    const details = page.getByTestId('entity-details');
    await details.getByText(id, { exact: true }).waitFor({ timeout: 10e3 });
    await details.getByText('pm25', { exact: true }).click();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart"]')?.dataset.points) >= 6, null, { timeout: 90e3 });
    const points = await page.getByTestId('chart').getAttribute('data-points');
    log(`details of ${id}, chart of pm25 with ${points} points`);
    // Follow a relationship if the entity has one, then come back.
    const rel = details.locator('a.rel').first();
    if (await rel.count()) {
      const target = await rel.getAttribute('data-rel');
      await rel.click();
      await page.waitForFunction((t) => document.querySelector('[data-testid="entity-details"] h3')?.textContent === t || document.querySelector('[data-testid="entity-details"] .empty'), target, { timeout: 10e3 });
      await page.locator('.tab[data-tab="browse"]').click();
      await row.click();
      await details.getByText(id, { exact: true }).waitFor({ timeout: 10e3 });
      await details.getByText('pm25', { exact: true }).click();
      await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart"]')?.dataset.points) >= 2, null, { timeout: 30e3 });
    }
    await page.screenshot({ path: join(shots, 'entity-chart.png') });

    // A scenario, and the map changing.
    if (config.sim) {
      const before = await page.evaluate(() => window.dosiConsole.countStatus('pressed'));
      const events = await page.evaluate(() => window.dosiConsole.changes);
      await page.getByTestId('scenario-bell').click();
      await page.waitForFunction((b) => window.dosiConsole.countStatus('pressed') > b, before, { timeout: 60e3 });
      assert.ok(await page.evaluate((e) => window.dosiConsole.changes > e, events));
      log('bell scenario: a bell shows pressed on the map');
      await page.getByTestId('scenario-crash').click();
      await page.waitForFunction(() => window.dosiConsole.countStatus('limited') > 0, null, { timeout: 60e3 });
      log('crash scenario: a road segment shows limited');
      // A flood and a haze episode too, for the picture: the river gauges
      // and the air sensors turn to warning and alert as the city time runs.
      await page.getByTestId('scenario-flood').click();
      await page.getByTestId('scenario-pollution').click();
      await page.waitForFunction(() => window.dosiConsole.countStatus('alert') > 0, null, { timeout: 120e3 })
        .then(() => log('flood scenario: a river gauge over its alert stage'))
        .catch(() => log('flood scenario: no gauge over its alert stage yet (city time too slow)'));
      await page.evaluate(() => {
        const c = window.dosiConsole;
        c.map.fitData();
        c.map.zoomAt(c.map.w / 2, c.map.h / 2, 0.6);
        const i = c.store.status.findIndex((s, k) => s === 'limited' && c.store.alive[k]);
        if (i >= 0) c.browser.show(c.store.ids[i]);
      });
      await page.waitForTimeout(2500);
      await page.screenshot({ path: join(shots, 'scenario.png') });
    } else {
      log('no simulator: scenario panel hidden');
      assert.ok(await page.locator('#scenario-panel.hidden').count());
    }

    // Korean.
    await page.getByTestId('lang-toggle').click();
    assert.equal(await page.locator('[data-i18n="layers"]').textContent(), '레이어');
    await page.screenshot({ path: join(shots, 'map-ko.png') });
    await page.getByTestId('lang-toggle').click();
    assert.equal(await page.locator('[data-i18n="layers"]').textContent(), 'Layers');
    log('functional test passed');
  } finally {
    await close();
  }
}

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const summary = (a) => ({ n: a.length, p50: +pct(a, 50).toFixed(1), p95: +pct(a, 95).toFixed(1), max: +Math.max(...a).toFixed(1) });

/** First render, pan frames and change → visible latency against `url`. */
async function bench(url, label) {
  const { page, close } = await browser();
  try {
    await page.goto(`${url}/`);
    await page.waitForFunction(() => window.dosiConsole?.firstRenderMs != null, null, { timeout: 120e3 });
    const first = await page.evaluate(() => ({ entities: window.dosiConsole.entities, firstRenderMs: window.dosiConsole.firstRenderMs, snapshotMs: window.dosiConsole.snapshotMs }));
    await page.waitForTimeout(1000);
    // Pan: 180 animation frames, each moving the map, measuring the draw
    // call and the interval between frames.
    const pan = await page.evaluate(async () => {
      const m = window.dosiConsole.map;
      m.fitData();
      await new Promise(requestAnimationFrame);
      const draws = []; const gaps = [];
      let last = performance.now();
      // One pan step per animation frame, as a drag delivers them.
      for (let k = 0; k < 240; k++) {
        m.panBy(Math.cos(k / 20) * 6, Math.sin(k / 20) * 4);
        await new Promise(requestAnimationFrame);
        const now = performance.now();
        gaps.push(now - last); last = now;
        draws.push(m.frameTimes.at(-1));
      }
      // Zoom steps rebuild the clusters: every frame drawn meanwhile.
      m.frameTimes.length = 0;
      for (let k = 0; k < 16; k++) {
        m.zoomAt(m.w / 2, m.h / 2, k < 8 ? 0.25 : -0.25);
        await new Promise(requestAnimationFrame);
        await new Promise(requestAnimationFrame);
      }
      const zooms = m.frameTimes.slice();
      return { draws, gaps, zooms, clustered: m.lastClustered, drawn: m.lastDrawn };
    });
    // Change → visible: PATCH a parking spot's status from the page and wait
    // for the frame that draws it with the new status.
    const lat = await page.evaluate(async () => {
      const c = window.dosiConsole;
      const ids = c.store.ids.filter((id, i) => c.store.types[i] === 'ParkingSpot' && c.store.alive[i]).slice(0, 30);
      const link = '<https://dosi.city/contexts/packs.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"';
      const out = [];
      for (const id of ids) {
        const next = c.statusOf(id) === 'closed' ? 'unknown' : 'closed';
        // Zoomed in on the spot, so the frame draws it individually.
        c.map.focus(c.store.index.get(id), 17.5);
        await new Promise(requestAnimationFrame);
        await new Promise(requestAnimationFrame);
        const t0 = performance.now();
        const seen = c.waitForStatus(id, next);
        await fetch(`/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`, {
          method: 'PATCH', headers: { 'Content-Type': 'application/json', Link: link },
          body: JSON.stringify({ status: { type: 'Property', value: next } }),
        });
        const t1 = await seen;
        out.push(t1 - t0);
        await new Promise((r) => setTimeout(r, 50));
      }
      return out;
    });
    const r = {
      label, ...first,
      panDrawMs: summary(pan.draws), panFrameIntervalMs: summary(pan.gaps), zoomDrawMs: summary(pan.zooms),
      clustered: pan.clustered, drawnItems: pan.drawn, changeToVisibleMs: summary(lat),
    };
    log(JSON.stringify(r));
    return r;
  } finally {
    await close();
  }
}

mkdirSync(shots, { recursive: true });
const results = [];
{
  const s = await startServer({ devices: 5000, speed: Number(process.env.DOSI_E2E_SPEED || 300) });
  try {
    await functional(s.url);
    if (process.env.DOSI_E2E_BENCH && process.env.DOSI_E2E_URL) results.push(await bench(s.url, 'given server'));
  } finally {
    s.stop();
  }
}
if (process.env.DOSI_E2E_BENCH && !process.env.DOSI_E2E_URL) {
  for (const devices of (process.env.DOSI_E2E_BENCH_SIZES || '10000,100000').split(',').map(Number)) {
    const s = await startServer({ devices, speed: Number(process.env.DOSI_E2E_BENCH_SPEED || 1) });
    try {
      results.push(await bench(s.url, `${devices} devices`));
    } finally {
      s.stop();
    }
  }
}
if (results.length) {
  mkdirSync(join(here, 'out'), { recursive: true });
  writeFileSync(join(here, 'out', 'bench.json'), JSON.stringify(results, null, 2));
}
