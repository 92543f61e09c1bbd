//! The console's live view of the city: `GET /api/v1/events` (Server-Sent
//! Events fed by the bus) and `GET /api/v1/map/points` (every located entity
//! as a compact array, for the map's first load).
//!
//! Both speak in short terms (compacted with the packs' merged context) and
//! reduce an entity to what a map needs: a representative position and a
//! status key (see [`status_key`]) the console turns into a colour.
//!
//! The stream coalesces changes per entity over a short window, so a city
//! writing 10,000 changes a second sends the browser a few batches a second
//! with the latest state of each entity that changed. A client that cannot
//! keep up (the bus tells us we lagged) gets a `resync` event and reloads the
//! snapshot. A client avoids missing changes between the snapshot and the
//! stream by opening the stream first, waiting for its `ready` event, then
//! loading the snapshot and applying the batches that arrived meanwhile
//! (applying a batch twice is harmless: it carries states, not deltas).

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dosi_broker::codec::Terms;
use dosi_bus::{ChangeEvent, ChangeKind};
use dosi_jsonld::ActiveContext;
use dosi_ngsi::model::Iri;
use dosi_ngsi::{AttrKind, Entity, EntityId, NgsiError, Result, TenantId, Timestamp};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::problem::ApiResult;
use crate::state::{AppState, Ctx};

macro_rules! core {
    ($t:literal) => {
        concat!("https://uri.etsi.org/ngsi-ld/", $t)
    };
}
macro_rules! sdm {
    ($t:literal) => {
        concat!("https://smartdatamodels.org/dataModel.", $t)
    };
}
macro_rules! dosi {
    ($t:literal) => {
        concat!("https://dosi.city/ns/", $t)
    };
}

/// The attributes [`position`] and [`status_key`] read: all the snapshot decodes.
/// Where the liveness watcher (`crate::liveness`) records that a device went
/// silent: `deviceState` through the core context.
const LIVENESS: &str = core!("default-context/deviceState");

const MAP_ATTRS: &[&str] = &[
    core!("location"),
    core!("status"),
    LIVENESS,
    sdm!("Parking/occupancy"),
    sdm!("Parking/occupiedSpotNumber"),
    sdm!("Parking/availableSpotNumber"),
    sdm!("Transportation/congested"),
    sdm!("Environment/airQualityLevel"),
    sdm!("Environment/height"),
    dosi!("alertStage"),
    dosi!("warningStage"),
    sdm!("Weather/precipitation"),
    dosi!("seismicIntensity"),
    dosi!("pressed"),
    dosi!("sos"),
    dosi!("fallDetected"),
    dosi!("alarm"),
    sdm!("Device/value"),
    dosi!("tamperDetected"),
    sdm!("Agrifood/soilMoistureVwc"),
    sdm!("Agrifood/co2"),
];

/// Query parameters of the console endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    /// The tenant, for clients that cannot set `NGSILD-Tenant` (EventSource).
    tenant: Option<String>,
}

type LiveQuery = std::result::Result<Query<LiveParams>, axum::extract::rejection::QueryRejection>;

/// What both console endpoints start from: the tenant (`?tenant=`, for
/// clients that cannot set headers, or else `NGSILD-Tenant`) and the packs'
/// merged context, which names every attribute the console shows.
async fn scope(st: &AppState, h: &HeaderMap, q: LiveQuery) -> Result<(TenantId, ActiveContext)> {
    let Query(p) =
        q.map_err(|e| NgsiError::bad_data(format!("bad query parameters: {}", e.body_text())))?;
    let tenant = match p.tenant.as_deref() {
        Some("") | None => crate::req::tenant(h)?,
        Some(t) => TenantId::parse(t)?,
    };
    let url = format!("{}packs.jsonld", dosi_packs::CONTEXT_BASE_URL);
    let ctx = st
        .contexts
        .resolve(&tenant, Some(&Value::String(url)))
        .await?;
    Ok((tenant, ctx))
}

/// `GET /api/v1/map/points`: `{at, count, points: [[id, type, lon, lat, status], …]}`
/// for every entity with a location, straight from the store (no JSON-LD
/// rendering per entity).
pub async fn points(State(st): State<AppState>, h: HeaderMap, q: LiveQuery) -> ApiResult<Response> {
    let (tenant, ctx) = scope(&st, &h, q).await?;
    let at = Timestamp::now();
    let all = st
        .broker
        .store()
        .project_all(&tenant, MAP_ATTRS)
        .await
        .map_err(NgsiError::internal)?;
    let mut names = TypeNames::new(&ctx);
    let mut out: Vec<u8> = Vec::with_capacity(64 + all.len() * 80);
    let json_str = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    };
    out.extend_from_slice(b"{\"at\":");
    json_str(&mut out, &at.to_iso());
    out.extend_from_slice(b",\"points\":[");
    let mut count = 0usize;
    for e in &all {
        let Some((lon, lat)) = position(e) else {
            continue;
        };
        if count > 0 {
            out.push(b',');
        }
        count += 1;
        out.push(b'[');
        json_str(&mut out, e.id.as_str());
        out.push(b',');
        json_str(&mut out, names.short(e));
        let _ = write!(
            out,
            ",{},{},\"{}\"]",
            round6(lon),
            round6(lat),
            status_key(e)
        );
    }
    let _ = write!(out, "],\"count\":{count}}}");
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response())
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Short type names, compacted once per distinct type.
struct TypeNames<'a> {
    ctx: &'a ActiveContext,
    seen: HashMap<Iri, String>,
}

impl<'a> TypeNames<'a> {
    fn new(ctx: &'a ActiveContext) -> Self {
        Self {
            ctx,
            seen: HashMap::new(),
        }
    }
    fn short(&mut self, e: &Entity) -> &str {
        let Some(t) = e.types.first() else {
            return "";
        };
        let ctx = self.ctx;
        self.seen
            .entry(t.clone())
            .or_insert_with(|| Ctx(ctx).compact(t))
    }
}

/// `GET /api/v1/events`: the live stream (see the module docs). Events:
/// `ready` `{at}` once connected; `changes` `{seq, at, changes: [{id, type,
/// kind: created|updated|deleted, loc?: [lon, lat], status?, attrs: {term:
/// value}}]}`; `resync` `{missed}` when changes were lost.
pub async fn events(State(st): State<AppState>, h: HeaderMap, q: LiveQuery) -> ApiResult<Response> {
    let (tenant, ctx) = scope(&st, &h, q).await?;
    let live = Live {
        rx: st.broker.bus().subscribe(),
        tenant,
        ctx,
        window: st.config.live_window,
        greeted: false,
    };
    let stream = futures::stream::unfold(live, |mut l| async move {
        let ev = l.next().await?;
        Some((Ok::<_, Infallible>(ev), l))
    });
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies must not buffer the stream.
    resp.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    Ok(resp)
}

/// One client's subscription to the bus.
struct Live {
    rx: tokio::sync::broadcast::Receiver<Arc<ChangeEvent>>,
    tenant: TenantId,
    ctx: ActiveContext,
    window: Duration,
    greeted: bool,
}

/// The changes of one entity within a window.
struct Pending {
    kind: ChangeKind,
    after: Option<Arc<Entity>>,
    changed: BTreeSet<Iri>,
}

impl Live {
    /// The next event to send; `None` when the bus is gone.
    async fn next(&mut self) -> Option<Event> {
        if !self.greeted {
            self.greeted = true;
            return Some(
                Event::default()
                    .event("ready")
                    .data(json!({"at": Timestamp::now().to_iso()}).to_string()),
            );
        }
        let mut order: Vec<EntityId> = Vec::new();
        let mut pending: HashMap<EntityId, Pending> = HashMap::new();
        // Wait for the first change of this tenant, then gather for one window.
        let mut seq = loop {
            match self.rx.recv().await {
                Ok(e) if e.tenant == self.tenant => {
                    add(&mut order, &mut pending, &e);
                    break e.seq;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => return Some(resync(n)),
                Err(RecvError::Closed) => return None,
            }
        };
        let deadline = tokio::time::Instant::now() + self.window;
        loop {
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(e) if e.tenant == self.tenant => {
                        seq = seq.max(e.seq);
                        add(&mut order, &mut pending, &e);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => return Some(resync(n)),
                    Err(RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let mut names = TypeNames::new(&self.ctx);
        let changes: Vec<Value> = order
            .iter()
            .filter_map(|id| pending.get(id).map(|p| (id, p)))
            .map(|(id, p)| render(&self.ctx, &mut names, id, p))
            .collect();
        let body = json!({"seq": seq, "at": Timestamp::now().to_iso(), "changes": changes});
        Some(Event::default().event("changes").data(body.to_string()))
    }
}

fn resync(missed: u64) -> Event {
    Event::default()
        .event("resync")
        .data(json!({ "missed": missed }).to_string())
}

/// Folds one change into the window's pending changes.
fn add(order: &mut Vec<EntityId>, pending: &mut HashMap<EntityId, Pending>, e: &ChangeEvent) {
    let changed = changed_attrs(e.before.as_deref(), e.after.as_deref());
    match pending.get_mut(&e.id) {
        Some(p) => {
            p.kind = match (p.kind, e.kind) {
                (_, ChangeKind::Deleted) => ChangeKind::Deleted,
                (ChangeKind::Created, _) => ChangeKind::Created,
                (_, k) => k,
            };
            p.after = e.after.clone();
            p.changed.extend(changed);
        }
        None => {
            order.push(e.id.clone());
            pending.insert(
                e.id.clone(),
                Pending {
                    kind: e.kind,
                    after: e.after.clone(),
                    changed,
                },
            );
        }
    }
}

/// The attributes whose value differs between `before` and `after` (all of
/// them on creation), the location aside (it travels as `loc`).
fn changed_attrs(before: Option<&Entity>, after: Option<&Entity>) -> BTreeSet<Iri> {
    let mut out = BTreeSet::new();
    let location = core!("location");
    if let Some(a) = after {
        for (name, inst) in &a.attrs {
            if &**name == location {
                continue;
            }
            let old = before.and_then(|b| b.attrs.get(name));
            let same = old.is_some_and(|o| {
                o.len() == inst.len()
                    && o.iter()
                        .zip(inst)
                        .all(|(x, y)| x.value == y.value && x.observed_at == y.observed_at)
            });
            if !same {
                out.insert(name.clone());
            }
        }
    }
    if let (Some(b), Some(a)) = (before, after) {
        for name in b.attrs.keys() {
            if !a.attrs.contains_key(name) {
                out.insert(name.clone());
            }
        }
    }
    out
}

/// One entity's entry in a `changes` event.
fn render(ctx: &ActiveContext, names: &mut TypeNames, id: &EntityId, p: &Pending) -> Value {
    let kind = match p.kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
    };
    let mut o = Map::new();
    o.insert("id".into(), Value::String(id.as_str().to_string()));
    o.insert("kind".into(), Value::String(kind.into()));
    if let Some(e) = &p.after {
        o.insert("type".into(), Value::String(names.short(e).to_string()));
        if let Some((lon, lat)) = position(e) {
            o.insert("loc".into(), json!([round6(lon), round6(lat)]));
        }
        o.insert("status".into(), Value::String(status_key(e).into()));
        let mut attrs = Map::new();
        for name in &p.changed {
            let v = e
                .attrs
                .get(name)
                .and_then(|i| i.first())
                .map(|a| match a.kind {
                    AttrKind::GeoProperty => {
                        Value::String(a.value["type"].as_str().unwrap_or("").into())
                    }
                    _ => a.value.clone(),
                })
                .unwrap_or(Value::Null);
            attrs.insert(Ctx(ctx).compact(name), v);
        }
        o.insert("attrs".into(), Value::Object(attrs));
    }
    Value::Object(o)
}

/// A point standing for the entity's `location`: the point itself, the
/// middle vertex of a line, the centre of the bounding box of a polygon.
pub(crate) fn position(e: &Entity) -> Option<(f64, f64)> {
    let loc = e.attrs.get(core!("location"))?.first()?;
    let g = &loc.value;
    let coords = g.get("coordinates")?;
    let pair = |v: &Value| -> Option<(f64, f64)> {
        let a = v.as_array()?;
        Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?))
    };
    let p = match g.get("type")?.as_str()? {
        "Point" => pair(coords)?,
        "LineString" | "MultiPoint" => {
            let a = coords.as_array()?;
            pair(a.get(a.len() / 2)?)?
        }
        _ => {
            // Polygons and the multi-geometries: the bounding box's centre.
            let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            bbox(coords, &mut b);
            if b[0] > b[2] {
                return None;
            }
            ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
        }
    };
    (p.0.is_finite() && p.1.is_finite()).then_some(p)
}

fn bbox(v: &Value, b: &mut [f64; 4]) {
    let Some(a) = v.as_array() else { return };
    if let (Some(x), Some(y)) = (
        a.first().and_then(Value::as_f64),
        a.get(1).and_then(Value::as_f64),
    ) {
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x);
        b[3] = b[3].max(y);
    } else {
        for x in a {
            bbox(x, b);
        }
    }
}

/// The first instance's value of attribute `iri`.
fn val<'a>(e: &'a Entity, iri: &str) -> Option<&'a Value> {
    e.attrs.get(iri)?.first().map(|a| &a.value)
}

fn num(e: &Entity, iri: &str) -> Option<f64> {
    val(e, iri)?.as_f64()
}

fn flag(e: &Entity, iri: &str) -> bool {
    val(e, iri).and_then(Value::as_bool).unwrap_or(false)
}

/// The status key the console colours an entity by, derived from its pack's
/// attributes (`docs/packs`): a spot's `status`, a detector's `congested`, an
/// air sensor's `airQualityLevel`, a gauge's `height` against its stages,
/// a bell's `pressed`, a tracker's `sos`, a camera's `status`, … Empty when
/// the type has no status.
pub(crate) fn status_key(e: &Entity) -> &'static str {
    let Some(t) = e.types.first() else { return "" };
    let short = t.rsplit(['/', '#', ':']).next().unwrap_or("");
    let text = |iri: &str| val(e, iri).and_then(Value::as_str);
    // A device the liveness watcher found silent is offline, whatever it
    // last reported: its last reading is stale.
    if text(LIVENESS) == Some("offline") {
        return "offline";
    }
    let status = || text(core!("status"));
    match short {
        "ParkingSpot" => match status() {
            Some("free") => "free",
            Some("occupied") => "occupied",
            Some("closed") => "closed",
            _ => "unknown",
        },
        "OffStreetParking" => match num(e, sdm!("Parking/occupancy")).or_else(|| {
            // `occupancy` is ambiguous in the packs' merged context; the counts are not.
            let taken = num(e, sdm!("Parking/occupiedSpotNumber"))?;
            let free = num(e, sdm!("Parking/availableSpotNumber"))?;
            (taken + free > 0.0).then(|| taken / (taken + free))
        }) {
            Some(o) if o >= 0.95 => "full",
            Some(o) if o >= 0.75 => "busy",
            Some(_) => "free",
            None => "unknown",
        },
        "TrafficFlowObserved" => {
            if flag(e, sdm!("Transportation/congested")) {
                "congested"
            } else {
                "flowing"
            }
        }
        "RoadSegment" => match status() {
            Some("closed") => "closed",
            Some("limited") => "limited",
            _ => "open",
        },
        "AirQualityObserved" => match text(sdm!("Environment/airQualityLevel")) {
            Some("good") => "good",
            Some("moderate") => "moderate",
            Some("unhealthyForSensitiveGroups") => "unhealthyForSensitiveGroups",
            Some("unhealthy") => "unhealthy",
            Some("veryUnhealthy") => "veryUnhealthy",
            Some("hazardous") => "hazardous",
            _ => "unknown",
        },
        "WaterObserved" => {
            let h = num(e, sdm!("Environment/height"));
            let alert = num(e, dosi!("alertStage"));
            let warning = num(e, dosi!("warningStage"));
            match (h, alert, warning) {
                (Some(h), Some(a), _) if h >= a => "alert",
                (Some(h), _, Some(w)) if h >= w => "warning",
                (Some(_), _, _) => "normal",
                _ => "unknown",
            }
        }
        "WeatherObserved" => match num(e, sdm!("Weather/precipitation")) {
            Some(p) if p >= 2.5 => "heavyRain",
            Some(p) if p > 0.05 => "rain",
            _ => "dry",
        },
        "SeismicObserved" => match num(e, dosi!("seismicIntensity")) {
            Some(i) if i >= 5.0 => "strong",
            Some(i) if i >= 3.0 => "felt",
            _ => "quiet",
        },
        "EmergencyBell" => {
            if flag(e, dosi!("pressed")) {
                "pressed"
            } else {
                "idle"
            }
        }
        "SosTracker" => {
            if flag(e, dosi!("sos")) {
                "sos"
            } else if flag(e, dosi!("fallDetected")) {
                "fall"
            } else {
                "ok"
            }
        }
        "Device" => {
            if flag(e, dosi!("alarm")) {
                "alarm"
            } else if text(sdm!("Device/value")) == Some("open") {
                "open"
            } else {
                "ok"
            }
        }
        "Camera" => {
            if flag(e, dosi!("tamperDetected")) {
                return "tamper";
            }
            match status() {
                Some("online") => "online",
                Some("offline") => "offline",
                Some("degraded") => "degraded",
                _ => "unknown",
            }
        }
        "AgriParcelRecord" => match num(e, sdm!("Agrifood/soilMoistureVwc")) {
            Some(m) if m < 0.15 => "dry",
            Some(_) => "ok",
            None => "unknown",
        },
        "AgriGreenhouse" => match num(e, sdm!("Agrifood/co2")) {
            Some(c) if c > 1500.0 => "highCo2",
            _ => "ok",
        },
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dosi_ngsi::Attribute;

    /// An entity of `ty` (short name under the SDM/dosi vocabularies) with
    /// properties given as (expanded name, value).
    fn entity(ty: &str, props: &[(&str, Value)]) -> Entity {
        let now = Timestamp(0);
        let id = EntityId::parse(&format!("urn:ngsi-ld:{ty}:x")).unwrap();
        let mut e = Entity::new(id, vec![format!("https://example.org/{ty}").into()], now);
        for (name, v) in props {
            e.attrs
                .insert((*name).into(), vec![Attribute::property(v.clone(), now)]);
        }
        e
    }

    fn check(ty: &str, props: &[(&str, Value)], expected: &str) {
        assert_eq!(status_key(&entity(ty, props)), expected, "{ty} {props:?}");
    }

    #[test]
    fn status_keys_follow_the_packs() {
        check(
            "ParkingSpot",
            &[(core!("status"), json!("occupied"))],
            "occupied",
        );
        check("ParkingSpot", &[], "unknown");
        check(
            "OffStreetParking",
            &[
                (sdm!("Parking/occupiedSpotNumber"), json!(19)),
                (sdm!("Parking/availableSpotNumber"), json!(1)),
            ],
            "full",
        );
        check(
            "OffStreetParking",
            &[(sdm!("Parking/occupancy"), json!(0.5))],
            "free",
        );
        check(
            "TrafficFlowObserved",
            &[(sdm!("Transportation/congested"), json!(true))],
            "congested",
        );
        check(
            "RoadSegment",
            &[(core!("status"), json!("limited"))],
            "limited",
        );
        check(
            "AirQualityObserved",
            &[(sdm!("Environment/airQualityLevel"), json!("hazardous"))],
            "hazardous",
        );
        let gauge = |h: f64| {
            [
                (sdm!("Environment/height"), json!(h)),
                (dosi!("warningStage"), json!(3.0)),
                (dosi!("alertStage"), json!(4.0)),
            ]
        };
        check("WaterObserved", &gauge(1.0), "normal");
        check("WaterObserved", &gauge(3.5), "warning");
        check("WaterObserved", &gauge(4.0), "alert");
        check(
            "WeatherObserved",
            &[(sdm!("Weather/precipitation"), json!(3.0))],
            "heavyRain",
        );
        check(
            "SeismicObserved",
            &[(dosi!("seismicIntensity"), json!(6))],
            "strong",
        );
        check(
            "EmergencyBell",
            &[(dosi!("pressed"), json!(true))],
            "pressed",
        );
        check("SosTracker", &[(dosi!("sos"), json!(true))], "sos");
        check("Device", &[(dosi!("alarm"), json!(true))], "alarm");
        check("Device", &[(sdm!("Device/value"), json!("open"))], "open");
        check("Camera", &[(core!("status"), json!("offline"))], "offline");
        check(
            "Camera",
            &[
                (core!("status"), json!("online")),
                (dosi!("tamperDetected"), json!(true)),
            ],
            "tamper",
        );
        check(
            "AgriParcelRecord",
            &[(sdm!("Agrifood/soilMoistureVwc"), json!(0.1))],
            "dry",
        );
        check("Geofence", &[], "");
    }

    #[test]
    fn a_silent_device_is_offline_whatever_it_last_said() {
        let silent = (LIVENESS, json!("offline"));
        check(
            "AirQualityObserved",
            &[
                (sdm!("Environment/airQualityLevel"), json!("good")),
                silent.clone(),
            ],
            "offline",
        );
        check(
            "EmergencyBell",
            &[(dosi!("pressed"), json!(false)), silent],
            "offline",
        );
        check(
            "EmergencyBell",
            &[(dosi!("pressed"), json!(true)), (LIVENESS, json!("online"))],
            "pressed",
        );
    }

    #[test]
    fn the_snapshot_decodes_every_attribute_status_keys_read() {
        let src = include_str!("live.rs");
        let body =
            &src[src.find("pub(crate) fn status_key").unwrap()..src.find("#[cfg(test)]").unwrap()];
        for (mac, prefix) in [
            ("core!(\"", core!("")),
            ("sdm!(\"", sdm!("")),
            ("dosi!(\"", dosi!("")),
        ] {
            for part in body.split(mac).skip(1) {
                let name = format!("{prefix}{}", &part[..part.find('"').unwrap()]);
                assert!(
                    MAP_ATTRS.contains(&name.as_str()),
                    "{name} is not in MAP_ATTRS"
                );
            }
        }
    }

    #[test]
    fn positions_stand_for_any_geometry() {
        let at = |g: Value| {
            let mut e = entity("Thing", &[]);
            e.attrs.insert(
                core!("location").into(),
                vec![Attribute::new(AttrKind::GeoProperty, g, Timestamp(0))],
            );
            position(&e)
        };
        assert_eq!(
            at(json!({"type": "Point", "coordinates": [1.0, 2.0]})),
            Some((1.0, 2.0))
        );
        assert_eq!(
            at(json!({"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]})),
            Some((1.0, 1.0))
        );
        assert_eq!(
            at(
                json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 0.0]]]})
            ),
            Some((2.0, 1.0))
        );
        assert_eq!(
            at(json!({"type": "Point", "coordinates": "nonsense"})),
            None
        );
        assert_eq!(at(json!({"type": "Polygon", "coordinates": []})), None);
    }
}
