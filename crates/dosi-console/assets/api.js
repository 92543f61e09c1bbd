// The server's APIs, as the console uses them. NGSI-LD requests carry the
// packs' context in a Link header so the answers use short terms.

const params = new URLSearchParams(location.search);
/** The tenant, from `?tenant=` (default tenant when absent). */
export const tenant = params.get('tenant') || '';
const CONTEXT = 'https://dosi.city/contexts/packs.jsonld';
const LINK = `<${CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;

/** The Link header naming `context` (a context URL). */
function linkTo(context) {
  return `<${context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
}

/** The context to read entity `id` with: its own pack's when the id names a
 *  type of a pack (`urn:ngsi-ld:AirQualityObserved:…`), so terms that two
 *  packs define differently (temperature, occupancy, …) stay short; the
 *  merged packs context otherwise. */
export function contextFor(id, packOfType) {
  const m = /^urn:ngsi-ld:([^:]+):/.exec(id || '');
  const pack = m && packOfType(m[1]);
  return pack ? `https://dosi.city/contexts/${pack}.jsonld` : CONTEXT;
}

function headers(extra = {}, context = null) {
  const h = { Accept: 'application/json', Link: context ? linkTo(context) : LINK, ...extra };
  if (tenant) h['NGSILD-Tenant'] = tenant;
  return h;
}

async function problem(r) {
  let msg = `${r.status} ${r.statusText}`;
  try {
    const b = await r.json();
    if (b.detail || b.title) msg = b.detail || b.title;
  } catch { /* not JSON */ }
  const e = new Error(msg);
  e.status = r.status;
  return e;
}

/** GET `path` as JSON; throws with the problem's detail. */
export async function getJson(path, context = null) {
  const r = await fetch(path, { headers: headers({}, context) });
  if (!r.ok) throw await problem(r);
  return r.json();
}

/** GET an NGSI-LD list, with the total count when the server gives it. */
export async function getList(path) {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) throw await problem(r);
  const total = Number(r.headers.get('NGSILD-Results-Count') || NaN);
  return { items: await r.json(), total };
}

/** POST JSON to `path`. */
export async function postJson(path, body) {
  const r = await fetch(path, {
    method: 'POST', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(body),
  });
  if (!r.ok) throw await problem(r);
  return r.status === 204 ? null : r.json();
}

/** PATCH attributes of an entity (short terms, packs context). */
export async function patchAttrs(id, attrs) {
  const r = await fetch(`/ngsi-ld/v1/entities/${encodeURIComponent(id)}/attrs`, {
    method: 'PATCH', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(attrs),
  });
  if (!r.ok) throw await problem(r);
}

/** The URL of the live stream. */
export function eventsUrl() {
  return tenant ? `/api/v1/events?tenant=${encodeURIComponent(tenant)}` : '/api/v1/events';
}

/** The map snapshot URL. */
export function pointsUrl() {
  return tenant ? `/api/v1/map/points?tenant=${encodeURIComponent(tenant)}` : '/api/v1/map/points';
}
