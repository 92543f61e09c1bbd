//! The FIWARE IoT Agent provisioning API (`/iot/services`, `/iot/devices`),
//! on the same listener as the rest of the API. `fiware-service` names the
//! NGSI-LD tenant, `fiware-servicepath` the devices' scope path. Errors are
//! RFC 9457 problem details (the IoT Agents answer `{name, message}`; the
//! `name` is kept at the start of `detail`, e.g. `DUPLICATE_DEVICE_ID: …`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dosi_iot::{Device, Registry, ServiceGroup};
use dosi_ngsi::{ErrorKind, NgsiError, Result, TenantId};
use serde_json::{json, Value};

use crate::params::{self, Params};
use crate::problem::ApiResult;
use crate::state::AppState;

fn registry(st: &AppState) -> Result<&Arc<Registry>> {
    st.iot.as_ref().ok_or_else(|| {
        NgsiError::new(
            ErrorKind::OperationNotSupported,
            "the IoT gateway is disabled",
        )
    })
}

/// (`fiware-service`, `fiware-servicepath`), the service checked as a tenant name.
fn service(h: &HeaderMap) -> Result<(String, String)> {
    let get = |n: &str| {
        h.get(n)
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| NgsiError::bad_data(format!("{n} is not valid text")))
            })
            .transpose()
    };
    let svc = get("fiware-service")?.unwrap_or_default().to_lowercase();
    if !svc.is_empty() {
        TenantId::parse(&svc)?;
    }
    let path = get("fiware-servicepath")?.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        return Err(NgsiError::bad_data(format!(
            "fiware-servicepath '{path}' must start with '/'"
        )));
    }
    Ok((svc, path))
}

fn list_of<T: serde::de::DeserializeOwned>(bytes: &Bytes, member: &str) -> Result<Vec<T>> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| NgsiError::bad_data(format!("the body is not JSON: {e}")))?;
    let items = v
        .get(member)
        .and_then(Value::as_array)
        .ok_or_else(|| NgsiError::bad_data(format!("the body needs a '{member}' array")))?;
    if items.is_empty() {
        return Err(NgsiError::bad_data(format!("'{member}' is empty")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            serde_json::from_value(x.clone())
                .map_err(|e| NgsiError::bad_data(format!("{member}[{i}]: {e}")))
        })
        .collect()
}

/// The service group the `apikey` and `resource` query parameters name.
fn group_sel(raw: Option<&str>) -> Result<(String, String)> {
    let q = Params::parse(raw)?;
    q.allow(&["apikey", "resource"])?;
    match (q.get("apikey"), q.get("resource")) {
        (Some(a), Some(r)) => Ok((a.to_string(), r.to_string())),
        _ => Err(NgsiError::bad_data(
            "the apikey and resource query parameters name the service group",
        )),
    }
}

/// `POST /iot/services`
pub async fn add_groups(
    State(st): State<AppState>,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, path) = service(&h)?;
    let list: Vec<ServiceGroup> = list_of(&bytes, "services")?;
    r.add_groups(&svc, &path, list).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `GET /iot/services`
pub async fn list_groups(State(st): State<AppState>, h: HeaderMap) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    let list = r.groups(&svc);
    Ok(Json(json!({ "count": list.len(), "services": list })).into_response())
}

/// `PUT /iot/services?apikey=&resource=`
pub async fn update_group(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    let (apikey, resource) = group_sel(q.as_deref())?;
    let patch: Value = serde_json::from_slice(&bytes)
        .map_err(|e| NgsiError::bad_data(format!("the body is not JSON: {e}")))?;
    r.update_group(&svc, &apikey, &resource, &patch).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /iot/services?apikey=&resource=`
pub async fn delete_group(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    let (apikey, resource) = group_sel(q.as_deref())?;
    r.delete_group(&svc, &apikey, &resource).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /iot/devices`
pub async fn add_devices(
    State(st): State<AppState>,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, path) = service(&h)?;
    let list: Vec<Device> = list_of(&bytes, "devices")?;
    let ids: Vec<String> = list.iter().map(|d| d.device_id.clone()).collect();
    r.add_devices(&svc, &path, list).await?;
    for id in ids {
        if let Some(d) = r.device(&svc, &id) {
            crate::commands::ensure_command_attrs(&st, &d).await?;
        }
    }
    Ok(StatusCode::CREATED.into_response())
}

/// `GET /iot/devices[?limit=&offset=]`
pub async fn list_devices(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    let p = Params::parse(q.as_deref())?;
    p.allow(&["limit", "offset"])?;
    let page = params::page(&p, 20, 1000)?;
    let all = r.devices(&svc);
    let count = all.len();
    let page: Vec<Device> = all.into_iter().skip(page.offset).take(page.limit).collect();
    Ok(Json(json!({ "count": count, "devices": page })).into_response())
}

/// `GET /iot/devices/{id}`
pub async fn get_device(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    let d = r
        .device(&svc, &id)
        .ok_or_else(|| NgsiError::not_found(format!("DEVICE_NOT_FOUND: no device '{id}'")))?;
    Ok(Json(d).into_response())
}

/// `PUT /iot/devices/{id}`
pub async fn update_device(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    let patch: Value = serde_json::from_slice(&bytes)
        .map_err(|e| NgsiError::bad_data(format!("the body is not JSON: {e}")))?;
    r.update_device(&svc, &id, &patch).await?;
    if let Some(d) = r.device(&svc, &id) {
        crate::commands::ensure_command_attrs(&st, &d).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /iot/devices/{id}`
pub async fn delete_device(
    State(st): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let (svc, _) = service(&h)?;
    r.delete_device(&svc, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- Measure ingestion (HTTP `/iot/d`, `/iot/json`; MQTT topics) -----

/// Publishes messages to devices over MQTT: the embedded broker or the
/// client of an external broker implements it.
pub trait MqttOut: Send + Sync + 'static {
    /// Queues `payload` for `topic` (QoS 1); an error when it cannot be queued.
    fn publish(&self, topic: &str, payload: Vec<u8>) -> std::result::Result<(), String>;
}

/// A device's answer to a command (`…/cmdexe` over MQTT, or
/// `/iot/d/commands`, `/iot/json/commands` over HTTP): UltraLight
/// `device@command|result`, JSON `{"command": result}`. Sets the command's
/// `<command>_status` to `OK` and its `<command>_info` to the result.
/// Returns the number of command results.
pub async fn command_result(
    st: &AppState,
    apikey: &str,
    device_id: &str,
    payload: &[u8],
    fmt: Format,
) -> Result<usize> {
    crate::commands::result(st, apikey, device_id, payload, fmt).await
}

/// The IoT gateway's running state (commands waiting for their devices,
/// the liveness watcher's wake-up), shared by the handlers and the
/// background tasks [`start`] spawns.
#[derive(Default)]
pub struct IotRuntime {
    pub(crate) commands: crate::commands::Pending,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) batcher: crate::ingest_batch::Batcher,
    started: std::sync::atomic::AtomicBool,
}

/// Starts the gateway's background work once per state: the commit hook
/// that sees commands written to device entities and their delivery, and
/// the watcher that marks silent devices offline (and persists the
/// last-seen table). Does nothing when the gateway is disabled.
pub fn start(st: &AppState) {
    if st.iot.is_none()
        || st
            .iot_run
            .started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return;
    }
    crate::commands::start(st);
    crate::liveness::start(st);
}

/// Persists what the gateway keeps only in memory (when devices were last
/// seen); called at shutdown.
pub async fn shutdown(st: &AppState) -> Result<()> {
    match &st.iot {
        Some(r) => r.persist_liveness().await,
        None => Ok(()),
    }
}

/// The tenant of a `fiware-service`.
pub(crate) fn tenant_of(service: &str) -> Result<TenantId> {
    if service.is_empty() {
        Ok(TenantId::default_tenant())
    } else {
        TenantId::parse(service)
    }
}

/// Writes attributes (NGSI-LD normalized JSON, names as terms of the core
/// context) to a device's entity through the one write path, creating the
/// entity if it does not exist.
pub(crate) async fn write_attrs(
    st: &AppState,
    device: &Device,
    group: Option<&ServiceGroup>,
    attrs: serde_json::Map<String, Value>,
) -> Result<()> {
    let (id, ty) = dosi_iot::entity_of(device, group);
    let tenant = tenant_of(&device.service)?;
    let mut e = attrs;
    e.insert("id".into(), Value::String(id));
    e.insert("type".into(), Value::String(ty));
    let ctx = crate::req::active(st, &tenant, None).await?;
    let input = dosi_broker::codec::decode::entity(
        &Value::Object(e),
        &crate::state::Ctx(&ctx),
        dosi_broker::codec::decode::Mode::Full,
        true,
        dosi_ngsi::Timestamp::now(),
    )
    .map_err(|e| NgsiError::bad_data(format!("device '{}': {}", device.device_id, e.detail)))?;
    let out = st.broker.batch_upsert(&tenant, vec![input], true).await?;
    match out.errors.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Counts one southbound message of `transport` and how it ended
/// (`dosi_iot_messages_total`, `dosi_iot_measures_total`,
/// `dosi_iot_ingest_seconds`, `dosi_iot_rejected_total{reason}`).
pub fn observe_ingest(transport: &'static str, started: std::time::Instant, out: &Result<usize>) {
    metrics::counter!("dosi_iot_messages_total", "transport" => transport).increment(1);
    match out {
        Ok(n) => {
            metrics::counter!("dosi_iot_measures_total", "transport" => transport)
                .increment(*n as u64);
            metrics::histogram!("dosi_iot_ingest_seconds", "transport" => transport)
                .record(started.elapsed().as_secs_f64());
        }
        Err(e) => {
            let reason = match e.kind {
                ErrorKind::BadRequestData => "decode",
                ErrorKind::ResourceNotFound => "unknown_device",
                ErrorKind::Unauthorized | ErrorKind::Forbidden => "forbidden",
                _ => "other",
            };
            metrics::counter!("dosi_iot_rejected_total", "transport" => transport, "reason" => reason)
                .increment(1);
        }
    }
}

/// The payload formats of the southbound transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// UltraLight 2.0 (`h|2.4|t|21`).
    Ul,
    /// IoT Agent JSON (`{"h": 2.4}`).
    Json,
}

/// `POST /iot/d?k=<apikey>&i=<device_id>` (UltraLight 2.0)
pub async fn ingest_ul(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    ingest_http(&st, q.as_deref(), &bytes, Format::Ul).await
}

/// `POST /iot/json?k=<apikey>&i=<device_id>` (IoT Agent JSON)
pub async fn ingest_json(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    ingest_http(&st, q.as_deref(), &bytes, Format::Json).await
}

async fn ingest_http(
    st: &AppState,
    q: Option<&str>,
    bytes: &Bytes,
    fmt: Format,
) -> ApiResult<Response> {
    let started = std::time::Instant::now();
    let out = async {
        let p = Params::parse(q)?;
        p.allow(&["k", "i", "t", "getCmd"])?;
        let (k, i) = device_params(&p)?;
        ingest_payload(st, k, i, bytes, fmt, p.get("t")).await
    }
    .await;
    observe_ingest("http", started, &out);
    out?;
    Ok(StatusCode::OK.into_response())
}

/// The `k` (API key) and `i` (device id) query parameters of the IoT Agent paths.
fn device_params(p: &Params) -> Result<(&str, &str)> {
    match (p.get("k"), p.get("i")) {
        (Some(k), Some(i)) => Ok((k, i)),
        _ => Err(NgsiError::bad_data(
            "the k (apikey) and i (device id) query parameters are required",
        )),
    }
}

/// `POST /iot/d/commands?k=&i=` (UltraLight `device@command|result`)
pub async fn command_result_ul(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    command_result_http(&st, q.as_deref(), &bytes, Format::Ul).await
}

/// `POST /iot/json/commands?k=&i=` (JSON `{"command": result}`)
pub async fn command_result_json(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    command_result_http(&st, q.as_deref(), &bytes, Format::Json).await
}

async fn command_result_http(
    st: &AppState,
    q: Option<&str>,
    bytes: &Bytes,
    fmt: Format,
) -> ApiResult<Response> {
    let p = Params::parse(q)?;
    p.allow(&["k", "i"])?;
    let (k, i) = device_params(&p)?;
    command_result(st, k, i, bytes, fmt).await?;
    Ok(StatusCode::OK.into_response())
}

/// Ingests one device payload, whatever transport carried it: finds the
/// service group by `apikey` and the device (provisioning it if the group
/// autoprovisions), decodes and maps every measure first, then writes
/// through the one write path (in commits shared with other devices'
/// measures, `ingest_batch`, each measure group its own instance, in payload
/// order), so a payload that does not decode or map writes nothing. `t`
/// stamps measures that carry no timestamp of their own. Returns the number
/// of measure groups written.
pub async fn ingest_payload(
    st: &AppState,
    apikey: &str,
    device_id: &str,
    payload: &[u8],
    fmt: Format,
    t: Option<&str>,
) -> Result<usize> {
    let groups = match fmt {
        Format::Ul => dosi_iot::payload::ul::decode(payload),
        Format::Json => match vendor_mappings(st, apikey, device_id) {
            // Mappings with a `json_path`: the maker's own JSON shape.
            Some((maps, ts)) => {
                dosi_iot::payload::vendor::decode(payload, maps.iter(), ts.as_deref())
            }
            None => dosi_iot::payload::json::decode(payload),
        },
    }
    .map_err(|e| NgsiError::bad_data(format!("device '{device_id}': {e}")))?;
    ingest_groups(st, apikey, device_id, groups, t).await
}

/// The attribute mappings (device's, then its group's) and the group's
/// timestamp path when they read vendor JSON, `None` for IoT Agent JSON.
fn vendor_mappings(
    st: &AppState,
    apikey: &str,
    device_id: &str,
) -> Option<(Vec<dosi_iot::AttrMapping>, Option<String>)> {
    let r = st.iot.as_ref()?;
    let group = r.group_by_apikey(apikey)?;
    let device = r.device(&group.service, device_id);
    let device_maps = device.iter().flat_map(|d| d.attributes.iter());
    if !dosi_iot::payload::vendor::applies(device_maps.clone().chain(group.attributes.iter())) {
        return None;
    }
    let maps = device_maps
        .chain(group.attributes.iter())
        .cloned()
        .collect();
    Some((maps, group.timestamp_path.clone()))
}

/// Ingests measures already decoded (a single-attribute topic, a native
/// endpoint): as [`ingest_payload`] after its decoding step.
pub async fn ingest_groups(
    st: &AppState,
    apikey: &str,
    device_id: &str,
    groups: Vec<dosi_iot::MeasureGroup>,
    t: Option<&str>,
) -> Result<usize> {
    let (k, i) = (apikey, device_id);
    let r = registry(st)?;
    let group = r.group_by_apikey(k).ok_or_else(|| {
        NgsiError::not_found(format!(
            "DEVICE_GROUP_NOT_FOUND: no service group with apikey '{k}'"
        ))
    })?;
    let device = match r.device(&group.service, i) {
        Some(d) => d,
        None if group.autoprovision => {
            let d: Device = serde_json::from_value(json!({
                "device_id": i,
                "apikey": k,
                "entity_type": group.entity_type,
            }))
            .map_err(NgsiError::internal)?;
            match r
                .add_devices(&group.service, &group.subservice, vec![d])
                .await
            {
                Ok(()) => {}
                // Two first measures raced: the other provisioned it.
                Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            r.device(&group.service, i)
                .ok_or_else(|| NgsiError::internal("device vanished after provisioning"))?
        }
        None => {
            return Err(NgsiError::not_found(format!(
                "DEVICE_NOT_FOUND: no device '{i}'"
            )))
        }
    };
    if device.apikey.as_deref().is_some_and(|a| a != k) {
        return Err(NgsiError::not_found(format!(
            "DEVICE_NOT_FOUND: no device '{i}' with apikey '{k}'"
        )));
    }
    ingest_device(st, &device, Some(&group), groups, t).await
}

/// Ingests measures of a device already identified (its group, if any,
/// supplies default mappings): stamps, maps, writes, and records that the
/// device was heard from.
pub(crate) async fn ingest_device(
    st: &AppState,
    device: &Device,
    group: Option<&ServiceGroup>,
    mut groups: Vec<dosi_iot::MeasureGroup>,
    t: Option<&str>,
) -> Result<usize> {
    let i = device.device_id.as_str();
    // `t` stamps measures that carry no timestamp of their own; without it
    // they are stamped with their reception time (as the IoT Agents add a
    // TimeInstant), so history is queryable by observedAt.
    let now = dosi_ngsi::Timestamp::now();
    let received = now.to_iso();
    for g in &mut groups {
        g.timestamp
            .get_or_insert_with(|| t.map_or_else(|| received.clone(), str::to_string));
    }
    let attrs = dosi_iot::to_attributes(&groups, device, group)
        .map_err(|e| NgsiError::bad_data(e.to_string()))?;
    let tenant = tenant_of(&device.service)?;
    let (id, ty) = dosi_iot::entity_of(device, group);
    let ctx = crate::req::active(st, &tenant, None).await?;
    let terms = crate::state::Ctx(&ctx);
    let mut inputs = Vec::new();
    for list in attrs {
        let mut e = serde_json::Map::new();
        e.insert("id".into(), Value::String(id.clone()));
        e.insert("type".into(), Value::String(ty.clone()));
        for (name, v) in list {
            e.insert(name, v);
        }
        let input = dosi_broker::codec::decode::entity(
            &Value::Object(e),
            &terms,
            dosi_broker::codec::decode::Mode::Full,
            true,
            now,
        )
        .map_err(|e| NgsiError::bad_data(format!("device '{i}': {}", e.detail)))?;
        inputs.push(input);
    }
    // Shared commits with other devices' measures (`ingest_batch`); returns
    // once these are written.
    st.iot_run
        .batcher
        .upsert(&st.broker, tenant.clone(), inputs)
        .await?;
    if let Some(r) = &st.iot {
        let interval = device
            .liveness_interval_secs
            .or_else(|| group.and_then(|g| g.liveness_interval_secs))
            .unwrap_or(st.config.offline_after_secs);
        if r.liveness()
            .seen(&device.service, i, now.0 / 1000, interval)
        {
            st.iot_run.wake.notify_one();
        }
    }
    Ok(groups.len())
}
