//! The native device API (`/api/v1/devices`), described in
//! `/api/v1/openapi.json`: the same registry devices as the IoT Agent API
//! (`/iot/devices`), with per-device credentials and liveness.
//!
//! - `POST /api/v1/devices`: creates a device (`service` in the body names
//!   the tenant, default: the default tenant); `credentials.token: true`
//!   generates an access token, returned in this answer only.
//! - `GET /api/v1/devices[?service=&limit=&offset=]`, `GET`/`PATCH`/`DELETE
//!   /api/v1/devices/{id}[?service=]`: `service` is needed only when the id
//!   exists in several services. Answers show which credentials exist,
//!   never a secret or a hash, and when the device was last heard from.
//! - `POST /api/v1/devices/{id}/credentials`: replaces (rotates) them.
//! - `POST /api/v1/devices/{id}/measures` with `Authorization: Bearer
//!   <token>`: IoT Agent JSON measures of that device.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dosi_iot::credentials::{self, DeviceCredentials};
use dosi_iot::{AttrMapping, Device, Registry, StaticAttr};
use dosi_ngsi::{ErrorKind, NgsiError, Result, Timestamp};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::params::{self, Params};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

fn registry(st: &AppState) -> Result<&std::sync::Arc<Registry>> {
    st.iot.as_ref().ok_or_else(|| {
        NgsiError::new(
            ErrorKind::OperationNotSupported,
            "the IoT gateway is disabled",
        )
    })
}

fn root() -> String {
    "/".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewDevice {
    id: String,
    #[serde(default)]
    service: String,
    #[serde(default = "root")]
    service_path: String,
    apikey: Option<String>,
    entity_id: Option<String>,
    entity_type: Option<String>,
    protocol: Option<String>,
    transport: Option<String>,
    endpoint: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    attributes: Vec<AttrMapping>,
    #[serde(default)]
    commands: Vec<AttrMapping>,
    #[serde(default)]
    static_attributes: Vec<StaticAttr>,
    explicit_attrs: Option<bool>,
    credentials: Option<CredentialsIn>,
    liveness: Option<LivenessIn>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialsIn {
    token: Option<TokenIn>,
    mqtt: Option<MqttIn>,
    cert_fingerprint: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TokenIn {
    Generate(bool),
    Given(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MqttIn {
    username: String,
    password: Option<String>,
    password_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LivenessIn {
    interval_seconds: u64,
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| NgsiError::bad_data(format!("{what}: {e}")))
}

/// Turns requested credentials into what is stored, and the generated token.
async fn make_credentials(c: CredentialsIn) -> Result<(DeviceCredentials, Option<String>)> {
    let mut out = DeviceCredentials::default();
    let mut shown = None;
    match c.token {
        None | Some(TokenIn::Generate(false)) => {}
        Some(TokenIn::Generate(true)) => {
            let t = credentials::new_token();
            out.token_sha256 = Some(credentials::token_digest(&t));
            shown = Some(t);
        }
        Some(TokenIn::Given(t)) => {
            if t.len() < 16 || t.len() > 512 || t.chars().any(|c| c.is_whitespace()) {
                return Err(NgsiError::bad_data(
                    "credentials.token must be true (generate one) or 16 to 512 characters without spaces",
                ));
            }
            out.token_sha256 = Some(credentials::token_digest(&t));
        }
    }
    if let Some(m) = c.mqtt {
        if m.username.is_empty() || m.username.len() > 256 {
            return Err(NgsiError::bad_data(
                "credentials.mqtt.username must be 1 to 256 bytes",
            ));
        }
        let hash = match (m.password, m.password_hash) {
            (Some(p), None) => tokio::task::spawn_blocking(move || credentials::hash_password(&p))
                .await
                .map_err(NgsiError::internal)?
                .map_err(|e| NgsiError::bad_data(format!("credentials.mqtt.password: {e}")))?,
            (None, Some(h)) => {
                credentials::check_hash(&h).map_err(|e| {
                    NgsiError::bad_data(format!("credentials.mqtt.passwordHash: {e}"))
                })?;
                h
            }
            _ => {
                return Err(NgsiError::bad_data(
                    "credentials.mqtt needs exactly one of password and passwordHash",
                ))
            }
        };
        out.mqtt_username = Some(m.username);
        out.mqtt_password_hash = Some(hash);
    }
    if let Some(f) = c.cert_fingerprint {
        out.cert_sha256 = Some(
            credentials::normalize_fingerprint(&f)
                .map_err(|e| NgsiError::bad_data(format!("credentials.certFingerprint: {e}")))?,
        );
    }
    Ok((out, shown))
}

/// `AB:CD:…` from lowercase hex.
fn colon_hex(h: &str) -> String {
    h.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// A device as the native API shows it.
fn view(r: &Registry, d: &Device) -> Value {
    let (entity_id, entity_type) = r.entity_of(d);
    let c = r.credentials(&d.service, &d.device_id).unwrap_or_default();
    let seen = r.liveness().get(&d.service, &d.device_id);
    let now_ms = Timestamp::now().0 / 1000;
    json!({
        "id": d.device_id,
        "service": d.service,
        "servicePath": d.service_path,
        "apikey": d.apikey,
        "entityId": entity_id,
        "entityType": entity_type,
        "protocol": d.protocol,
        "transport": d.transport,
        "endpoint": d.endpoint,
        "timezone": d.timezone,
        "attributes": d.attributes,
        "commands": d.commands,
        "staticAttributes": d.static_attributes,
        "explicitAttrs": d.explicit_attrs,
        "liveness": d.liveness_interval_secs.map(|s| json!({"intervalSeconds": s})),
        "credentials": {
            "token": c.token_sha256.is_some(),
            "mqtt": c.mqtt_username.as_ref().map(|u| json!({
                "username": u,
                "password": c.mqtt_password_hash.is_some(),
            })),
            "certFingerprint": c.cert_sha256.as_deref().map(colon_hex),
        },
        "lastSeen": seen.as_ref().map(|s| Timestamp(s.last_ms().saturating_mul(1000)).to_iso()),
        "online": seen.as_ref().map(|s| s.online_at(now_ms)),
    })
}

/// The device `id`, in the `service` the query names or the only one that has it.
fn locate(r: &Registry, id: &str, q: Option<&str>, extra: &[&str]) -> Result<Device> {
    let p = Params::parse(q)?;
    let mut allowed = vec!["service"];
    allowed.extend_from_slice(extra);
    p.allow(&allowed)?;
    let not_found = || NgsiError::not_found(format!("no device '{id}'"));
    match p.get("service") {
        Some(s) => r.device(&s.to_lowercase(), id).ok_or_else(not_found),
        None => {
            let svcs = r.services_of(id);
            match svcs.as_slice() {
                [] => Err(not_found()),
                [one] => r.device(one, id).ok_or_else(not_found),
                many => Err(NgsiError::bad_data(format!(
                    "device '{id}' exists in services {}: name one with ?service=",
                    many.join(", ")
                ))),
            }
        }
    }
}

/// `POST /api/v1/devices`
pub async fn create(State(st): State<AppState>, bytes: Bytes) -> ApiResult<Response> {
    let r = registry(&st)?;
    let n: NewDevice = body(&bytes, "a device is {id, service?, servicePath?, apikey?, entityId?, entityType?, protocol?, transport?, endpoint?, attributes?, commands?, credentials?, liveness?}")?;
    let service = n.service.to_lowercase();
    if !service.is_empty() {
        dosi_ngsi::TenantId::parse(&service)?;
    }
    if !n.service_path.starts_with('/') {
        return Err(NgsiError::bad_data("servicePath must start with '/'").into());
    }
    if let Some(c) = n.commands.iter().find(|c| c.kind != "command") {
        return Err(NgsiError::bad_data(format!(
            "command '{}' must have type \"command\"",
            c.name
        ))
        .into());
    }
    let creds = match n.credentials {
        Some(c) => Some(make_credentials(c).await?),
        None => None,
    };
    let d: Device = serde_json::from_value(json!({
        "device_id": n.id,
        "entity_name": n.entity_id,
        "entity_type": n.entity_type,
        "apikey": n.apikey,
        "attributes": n.attributes,
        "commands": n.commands,
        "static_attributes": n.static_attributes,
        "protocol": n.protocol,
        "transport": n.transport,
        "endpoint": n.endpoint,
        "timezone": n.timezone,
        "explicitAttrs": n.explicit_attrs,
        "liveness_interval_secs": n.liveness.map(|l| l.interval_seconds),
    }))
    .map_err(|e| NgsiError::bad_data(format!("invalid device: {e}")))?;
    let id = d.device_id.clone();
    r.add_devices(&service, &n.service_path, vec![d]).await?;
    let mut token = None;
    if let Some((c, shown)) = creds {
        if let Err(e) = r.set_credentials(&service, &id, c).await {
            // All or nothing: the device goes with its refused credentials.
            let _ = r.delete_device(&service, &id).await;
            return Err(e.into());
        }
        token = shown;
    }
    let d = r
        .device(&service, &id)
        .ok_or_else(|| NgsiError::internal("device vanished after creation"))?;
    crate::commands::ensure_command_attrs(&st, &d).await?;
    let mut v = view(r, &d);
    if let Some(t) = token {
        v["token"] = Value::String(t);
    }
    let mut resp = (StatusCode::CREATED, Json(v)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/devices/{id}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// `GET /api/v1/devices[?service=&limit=&offset=]`
pub async fn list(State(st): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let r = registry(&st)?;
    let p = Params::parse(q.as_deref())?;
    p.allow(&["service", "limit", "offset"])?;
    let page = params::page(&p, 100, 1000)?;
    let all = match p.get("service") {
        Some(s) => r.devices(&s.to_lowercase()),
        None => r.all_devices(),
    };
    let total = all.len();
    let items: Vec<Value> = all
        .iter()
        .skip(page.offset)
        .take(page.limit)
        .map(|d| view(r, d))
        .collect();
    let mut resp = Json(items).into_response();
    resp.headers_mut()
        .insert("x-total-count", HeaderValue::from(total as u64));
    Ok(resp)
}

/// `GET /api/v1/devices/{id}[?service=]`
pub async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let d = locate(r, &id, q.as_deref(), &[])?;
    Ok(Json(view(r, &d)).into_response())
}

/// `PATCH /api/v1/devices/{id}[?service=]`: replaces the given fields.
pub async fn patch(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let d = locate(r, &id, q.as_deref(), &[])?;
    let v: Value = body(&bytes, "the body is not JSON")?;
    let Some(obj) = v.as_object() else {
        return Err(NgsiError::bad_data("the update must be a JSON object").into());
    };
    let mut out = Map::new();
    for (k, x) in obj {
        let name = match k.as_str() {
            "apikey" | "protocol" | "transport" | "endpoint" | "timezone" | "attributes"
            | "commands" | "explicitAttrs" => k.as_str(),
            "entityId" => "entity_name",
            "entityType" => "entity_type",
            "staticAttributes" => "static_attributes",
            "liveness" => {
                let secs = match x {
                    Value::Null => Value::Null,
                    _ => {
                        let l: LivenessIn = serde_json::from_value(x.clone()).map_err(|e| {
                            NgsiError::bad_data(format!("liveness is {{intervalSeconds}}: {e}"))
                        })?;
                        json!(l.interval_seconds)
                    }
                };
                out.insert("liveness_interval_secs".into(), secs);
                continue;
            }
            "credentials" => {
                return Err(NgsiError::bad_data(
                    "credentials change through POST /api/v1/devices/{id}/credentials",
                )
                .into())
            }
            other => {
                return Err(NgsiError::bad_data(format!(
                    "'{other}' cannot be changed (id, service and servicePath name the device)"
                ))
                .into())
            }
        };
        out.insert(name.to_string(), x.clone());
    }
    if let Some(cmds) = out.get("commands") {
        let list: Vec<AttrMapping> = serde_json::from_value(cmds.clone())
            .map_err(|e| NgsiError::bad_data(format!("commands: {e}")))?;
        if let Some(c) = list.iter().find(|c| c.kind != "command") {
            return Err(NgsiError::bad_data(format!(
                "command '{}' must have type \"command\"",
                c.name
            ))
            .into());
        }
    }
    r.update_device(&d.service, &d.device_id, &Value::Object(out))
        .await?;
    let d = r
        .device(&d.service, &d.device_id)
        .ok_or_else(|| NgsiError::not_found(format!("no device '{id}'")))?;
    crate::commands::ensure_command_attrs(&st, &d).await?;
    Ok(Json(view(r, &d)).into_response())
}

/// `DELETE /api/v1/devices/{id}[?service=]` (its entity stays).
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let d = locate(r, &id, q.as_deref(), &[])?;
    r.delete_device(&d.service, &d.device_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/devices/{id}/credentials[?service=]`: replaces them all;
/// a generated token is in this answer only.
pub async fn rotate(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> ApiResult<Response> {
    let r = registry(&st)?;
    let d = locate(r, &id, q.as_deref(), &[])?;
    let c: CredentialsIn = body(
        &bytes,
        "credentials are {token?: true | \"<token>\", mqtt?: {username, password | passwordHash}, certFingerprint?}",
    )?;
    let (c, shown) = make_credentials(c).await?;
    r.set_credentials(&d.service, &d.device_id, c).await?;
    let mut v = view(r, &d);
    if let Some(t) = shown {
        v["token"] = Value::String(t);
    }
    Ok(Json(v).into_response())
}

/// `POST /api/v1/devices/{id}/measures` with `Authorization: Bearer <token>`.
pub async fn measures(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let started = Instant::now();
    let out = ingest(&st, &id, &h, &bytes).await;
    crate::iot::observe_ingest("http", started, &out);
    match out {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) if e.kind == ErrorKind::Unauthorized => {
            let mut resp = ApiError(e).into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

async fn ingest(st: &AppState, id: &str, h: &HeaderMap, bytes: &Bytes) -> Result<usize> {
    let r = registry(st)?;
    let token = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            NgsiError::new(
                ErrorKind::Unauthorized,
                "measures need the device's token: Authorization: Bearer <token>",
            )
        })?;
    let who = r
        .authenticate_token(token)
        .ok_or_else(|| NgsiError::new(ErrorKind::Unauthorized, "the token is not valid"))?;
    if who.device_id != id {
        return Err(NgsiError::new(
            ErrorKind::Forbidden,
            format!("the token belongs to another device, not '{id}'"),
        ));
    }
    let d = r
        .device(&who.service, &who.device_id)
        .ok_or_else(|| NgsiError::not_found(format!("no device '{id}'")))?;
    let groups = dosi_iot::payload::json::decode(bytes)
        .map_err(|e| NgsiError::bad_data(format!("device '{id}': {e}")))?;
    let group = r.group_of(&d);
    crate::iot::ingest_device(st, &d, group.as_ref(), groups, None).await
}
