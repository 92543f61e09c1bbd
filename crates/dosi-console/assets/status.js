// Packs, their entity types and the status keys the server derives
// (dosi-api `live::status_key`), with a severity each: 0 normal, 1 in use or
// active, 2 warning, 3 alert, -1 no status.

export const PACKS = [
  { name: 'parking', colour: '#4cc9f0', types: ['ParkingSpot', 'OffStreetParking'] },
  { name: 'traffic', colour: '#f72585', types: ['TrafficFlowObserved', 'RoadSegment'] },
  { name: 'air-quality', colour: '#b5e48c', types: ['AirQualityObserved'] },
  { name: 'flood', colour: '#4895ef', types: ['WaterObserved', 'WeatherObserved'] },
  { name: 'earthquake', colour: '#e76f51', types: ['SeismicObserved'] },
  { name: 'security', colour: '#ffb703', types: ['EmergencyBell', 'Device'] },
  { name: 'social-safety', colour: '#c77dff', types: ['SosTracker', 'Geofence'] },
  { name: 'smart-farm', colour: '#90be6d', types: ['AgriParcel', 'AgriParcelRecord', 'AgriGreenhouse'] },
  { name: 'cctv', colour: '#adb5bd', types: ['Camera'] },
];

const TYPE_PACK = new Map();
PACKS.forEach((p, i) => p.types.forEach((ty) => TYPE_PACK.set(ty, i)));
export const OTHER_PACK = PACKS.length;

/** Index of the pack of entity type `type` (OTHER_PACK when none). */
export function packOf(type) { return TYPE_PACK.get(type) ?? OTHER_PACK; }

/** The pack's name, or `other`. */
export function packName(i) { return i < PACKS.length ? PACKS[i].name : 'other'; }

const SEVERITY = {
  '': -1, unknown: -1,
  free: 0, occupied: 1, closed: -1, full: 2, busy: 1,
  flowing: 0, congested: 2,
  open: 0, limited: 2, 'RoadSegment:closed': 3,
  good: 0, moderate: 1, unhealthyForSensitiveGroups: 2, unhealthy: 2, veryUnhealthy: 3, hazardous: 3,
  normal: 0, warning: 2, alert: 3,
  dry: 0, rain: 1, heavyRain: 2,
  quiet: 0, felt: 2, strong: 3,
  idle: 0, pressed: 3,
  ok: 0, sos: 3, fall: 3, alarm: 3, 'Device:open': 1,
  online: 0, offline: 3, degraded: 2, tamper: 3,
  'AgriParcelRecord:dry': 2, highCo2: 2,
};

/** Severity of status `s` of an entity of type `type`. */
const sevCache = new Map();
export function severity(type, s) {
  let byStatus = sevCache.get(type);
  if (!byStatus) { byStatus = new Map(); sevCache.set(type, byStatus); }
  let v = byStatus.get(s);
  if (v === undefined) {
    const k = `${type}:${s}`;
    v = k in SEVERITY ? SEVERITY[k] : SEVERITY[s] ?? -1;
    byStatus.set(s, v);
  }
  return v;
}

export const SEV_COLOURS = ['#2ec27e', '#3d8bfd', '#f5a623', '#ff4d5e'];
export const NO_STATUS = '#7b8aa3';

/** Fill colour for a severity. */
export function sevColour(sev) { return sev < 0 ? NO_STATUS : SEV_COLOURS[sev]; }
