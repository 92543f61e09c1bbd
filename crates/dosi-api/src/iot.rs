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
    r.add_devices(&svc, &path, list).await?;
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

/// A device's answer to a command (`…/cmdexe` over MQTT): sets the
/// command's status and info attributes.
pub async fn command_result(
    _st: &AppState,
    _apikey: &str,
    device_id: &str,
    _payload: &[u8],
    _fmt: Format,
) -> Result<usize> {
    Err(NgsiError::new(
        ErrorKind::OperationNotSupported,
        format!("device '{device_id}': command results are not handled yet"),
    ))
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
    let p = Params::parse(q)?;
    p.allow(&["k", "i", "t", "getCmd"])?;
    let (Some(k), Some(i)) = (p.get("k"), p.get("i")) else {
        return Err(NgsiError::bad_data(
            "the k (apikey) and i (device id) query parameters are required",
        )
        .into());
    };
    let n = ingest_payload(st, k, i, bytes, fmt, p.get("t")).await?;
    metrics::counter!("dosi_iot_measures_total", "transport" => "http").increment(n as u64);
    Ok(StatusCode::OK.into_response())
}

/// Ingests one device payload, whatever transport carried it: finds the
/// service group by `apikey` and the device (provisioning it if the group
/// autoprovisions), decodes and maps every measure first, then writes
/// through the one write path (one upsert per measure group, in payload
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
        Format::Json => dosi_iot::payload::json::decode(payload),
    }
    .map_err(|e| NgsiError::bad_data(format!("device '{device_id}': {e}")))?;
    ingest_groups(st, apikey, device_id, groups, t).await
}

/// Ingests measures already decoded (a single-attribute topic, a native
/// endpoint): as [`ingest_payload`] after its decoding step.
pub async fn ingest_groups(
    st: &AppState,
    apikey: &str,
    device_id: &str,
    mut groups: Vec<dosi_iot::MeasureGroup>,
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
    // `t` stamps measures that carry no timestamp of their own; without it
    // they are stamped with their reception time (as the IoT Agents add a
    // TimeInstant), so history is queryable by observedAt.
    let received = dosi_ngsi::Timestamp::now().to_iso();
    for g in &mut groups {
        g.timestamp
            .get_or_insert_with(|| t.map_or_else(|| received.clone(), str::to_string));
    }
    let attrs = dosi_iot::to_attributes(&groups, &device, Some(&group))
        .map_err(|e| NgsiError::bad_data(e.to_string()))?;
    let tenant = if group.service.is_empty() {
        TenantId::default_tenant()
    } else {
        TenantId::parse(&group.service)?
    };
    let ty = device
        .entity_type
        .clone()
        .or_else(|| group.entity_type.clone())
        .unwrap_or_else(|| "Thing".into());
    let id = device
        .entity_name
        .clone()
        .unwrap_or_else(|| format!("urn:ngsi-ld:{ty}:{}", device.device_id));
    let ctx = crate::req::active(st, &tenant, None).await?;
    let terms = crate::state::Ctx(&ctx);
    let now = dosi_ngsi::Timestamp::now();
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
    for input in inputs {
        let out = st.broker.batch_upsert(&tenant, vec![input], true).await?;
        if let Some((_, e)) = out.errors.into_iter().next() {
            return Err(e);
        }
    }
    Ok(groups.len())
}
