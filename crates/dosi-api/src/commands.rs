//! Commands to devices, as the FIWARE IoT Agents do them: a device's
//! `commands` are attributes of its entity; writing one through the
//! NGSI-LD API sends it to the device, and the device's answer comes back
//! as `<command>_status` (`PENDING` → `DELIVERED` → `OK` | `ERROR` |
//! `EXPIRED`) and `<command>_info` (the result or what went wrong).
//!
//! A commit hook sees committed changes of entities that belong to devices
//! with commands (an index in the registry) and queues the commands whose
//! attribute changed; it never writes (it runs under the entity's lock).
//! A dispatcher task delivers each command: over MQTT (`state.mqtt_out`,
//! topic `/{apikey}/{device_id}/cmd`, answered on `…/cmdexe`) or by an
//! HTTP POST to the device's `endpoint`, whose answer carries the result.
//! Status writes go through the broker like any write; they never change a
//! command attribute, so they never trigger a delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dosi_broker::CommitHook;
use dosi_bus::{ChangeEvent, ChangeKind};
use dosi_iot::{Device, Registry};
use dosi_jsonld::ActiveContext;
use dosi_ngsi::{NgsiError, Result};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::iot::{write_attrs, Format};
use crate::state::AppState;

type Key = (String, String, String);

/// A command written to an entity, to be delivered.
struct Job {
    service: String,
    device_id: String,
    command: String,
    params: Value,
}

/// One command sent and not answered yet.
struct InFlight {
    seq: u64,
    /// Set once its final status is written; taken while writing a status
    /// so `DELIVERED` never lands after the answer.
    done: tokio::sync::Mutex<bool>,
}

/// The commands waiting for their devices' answers.
#[derive(Default)]
pub struct Pending {
    map: parking_lot::Mutex<HashMap<Key, Arc<InFlight>>>,
    seq: AtomicU64,
}

struct Hook {
    registry: Arc<Registry>,
    ctx: ActiveContext,
    tx: mpsc::UnboundedSender<Job>,
}

#[async_trait::async_trait]
impl CommitHook for Hook {
    async fn committed(&self, events: &[ChangeEvent]) -> Result<()> {
        for e in events {
            if e.kind != ChangeKind::Updated {
                continue;
            }
            let (Some(before), Some(after)) = (&e.before, &e.after) else {
                continue;
            };
            let Some(d) = self
                .registry
                .device_by_entity(e.tenant.as_str(), e.id.as_str())
            else {
                continue;
            };
            for c in &d.commands {
                let iri = self.ctx.expand_term(&c.name);
                let (Some(now), Some(was)) = (
                    after.attrs.get(iri.as_str()),
                    before.attrs.get(iri.as_str()),
                ) else {
                    continue;
                };
                if now == was {
                    continue;
                }
                let params = now.first().map(|a| a.value.clone()).unwrap_or(Value::Null);
                let _ = self.tx.send(Job {
                    service: d.service.clone(),
                    device_id: d.device_id.clone(),
                    command: c.name.clone(),
                    params,
                });
            }
        }
        Ok(())
    }
}

/// Installs the hook and spawns the dispatcher.
pub(crate) fn start(st: &AppState) {
    let Some(registry) = st.iot.clone() else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    st.broker.add_hook(Arc::new(Hook {
        registry,
        ctx: ActiveContext::core(),
        tx,
    }));
    let st = st.clone();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let st = st.clone();
            tokio::spawn(async move { deliver(&st, job).await });
        }
    });
}

/// Gives a device's entity its command attributes (`<cmd>` empty,
/// `<cmd>_status` `UNKNOWN`, `<cmd>_info` empty) where it lacks them, so
/// clients can PATCH them. Existing values are left alone.
pub(crate) async fn ensure_command_attrs(st: &AppState, d: &Device) -> Result<()> {
    let Some(r) = &st.iot else { return Ok(()) };
    if d.commands.is_empty() {
        return Ok(());
    }
    let group = r.group_of(d);
    let (id, _) = dosi_iot::entity_of(d, group.as_ref());
    let tenant = crate::iot::tenant_of(&d.service)?;
    let existing = match dosi_ngsi::EntityId::parse(&id) {
        Ok(eid) => st.broker.get(&tenant, &eid).await?,
        Err(_) => None,
    };
    let ctx = ActiveContext::core();
    let has = |name: &str| {
        existing
            .as_ref()
            .is_some_and(|e| e.attrs.contains_key(ctx.expand_term(name).as_str()))
    };
    let mut attrs = serde_json::Map::new();
    for c in &d.commands {
        for (name, value) in [
            (c.name.clone(), ""),
            (format!("{}_status", c.name), "UNKNOWN"),
            (format!("{}_info", c.name), ""),
        ] {
            if !has(&name) {
                attrs.insert(name, json!({"type": "Property", "value": value}));
            }
        }
    }
    if attrs.is_empty() {
        return Ok(());
    }
    write_attrs(st, d, group.as_ref(), attrs).await
}

fn is_json(d: &Device) -> bool {
    d.protocol
        .as_deref()
        .is_some_and(|p| p.to_ascii_uppercase().contains("JSON"))
}

fn is_http(d: &Device) -> bool {
    match d.transport.as_deref() {
        Some(t) => t.eq_ignore_ascii_case("HTTP"),
        None => d.endpoint.is_some(),
    }
}

async fn deliver(st: &AppState, job: Job) {
    let Some(r) = &st.iot else { return };
    let Some(d) = r.device(&job.service, &job.device_id) else {
        return;
    };
    let key = (
        job.service.clone(),
        job.device_id.clone(),
        job.command.clone(),
    );
    let p = &st.iot_run.commands;
    let seq = p.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let flight = Arc::new(InFlight {
        seq,
        done: tokio::sync::Mutex::new(false),
    });
    // A newer command of the same name supersedes an unanswered one.
    p.map.lock().insert(key.clone(), flight.clone());
    set_status(st, &d, &job.command, "PENDING", None).await;
    if is_http(&d) {
        push_http(st, &d, &job, &key, seq).await;
    } else {
        push_mqtt(st, &d, &job, &key, &flight).await;
    }
}

async fn push_mqtt(st: &AppState, d: &Device, job: &Job, key: &Key, flight: &Arc<InFlight>) {
    let apikey = d.apikey.clone().or_else(|| {
        st.iot
            .as_ref()
            .and_then(|r| r.group_of(d))
            .map(|g| g.apikey)
    });
    let Some(apikey) = apikey else {
        let _ = finish(
            st,
            key,
            Some(flight.seq),
            "ERROR",
            json!("the device has no API key: no topic to send to"),
        )
        .await;
        return;
    };
    let Some(out) = st.mqtt_out.get() else {
        let _ = finish(
            st,
            key,
            Some(flight.seq),
            "ERROR",
            json!("no MQTT broker is running"),
        )
        .await;
        return;
    };
    let topic = format!("/{apikey}/{}/cmd", d.device_id);
    let payload = if is_json(d) {
        dosi_iot::payload::json::encode_command(&job.command, &job.params)
            .to_string()
            .into_bytes()
    } else {
        dosi_iot::payload::ul::encode_command(&d.device_id, &job.command, &job.params).into_bytes()
    };
    {
        let done = flight.done.lock().await;
        if let Err(e) = out.publish(&topic, payload) {
            drop(done);
            let _ = finish(
                st,
                key,
                Some(flight.seq),
                "ERROR",
                json!(format!("MQTT: {e}")),
            )
            .await;
            return;
        }
        if !*done {
            set_status(st, d, &job.command, "DELIVERED", None).await;
        }
    }
    let (st, key, seq) = (st.clone(), key.clone(), flight.seq);
    let timeout = st.config.command_timeout;
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let info = json!(format!("no answer within {} s", timeout.as_secs_f64()));
        let _ = finish(&st, &key, Some(seq), "EXPIRED", info).await;
    });
}

fn http_client() -> &'static reqwest::Client {
    static C: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    C.get_or_init(reqwest::Client::new)
}

async fn push_http(st: &AppState, d: &Device, job: &Job, key: &Key, seq: u64) {
    let Some(url) = &d.endpoint else {
        let _ = finish(
            st,
            key,
            Some(seq),
            "ERROR",
            json!("the device has no endpoint"),
        )
        .await;
        return;
    };
    let (body, ctype) = if is_json(d) {
        (
            dosi_iot::payload::json::encode_command(&job.command, &job.params).to_string(),
            "application/json",
        )
    } else {
        (
            dosi_iot::payload::ul::encode_command(&d.device_id, &job.command, &job.params),
            "text/plain",
        )
    };
    let sent = http_client()
        .post(url)
        .header("content-type", ctype)
        .timeout(st.config.command_timeout)
        .body(body)
        .send()
        .await;
    let (status, info) = match sent {
        Err(e) if e.is_timeout() => (
            "EXPIRED",
            json!(format!(
                "no answer within {} s",
                st.config.command_timeout.as_secs_f64()
            )),
        ),
        Err(e) => ("ERROR", json!(format!("HTTP: {e}"))),
        Ok(resp) => {
            let code = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !code.is_success() {
                (
                    "ERROR",
                    json!(format!("HTTP {}: {}", code.as_u16(), text.trim())),
                )
            } else if text.trim().is_empty() {
                ("OK", json!(""))
            } else {
                let fmt = if is_json(d) { Format::Json } else { Format::Ul };
                match decode_results(d, text.as_bytes(), fmt) {
                    Ok(list) => match list.into_iter().find(|(c, _)| *c == job.command) {
                        Some((_, v)) => ("OK", v),
                        None => (
                            "ERROR",
                            json!(format!("the answer names another command: {}", text.trim())),
                        ),
                    },
                    Err(e) => ("ERROR", json!(format!("unreadable answer: {}", e.detail))),
                }
            }
        }
    };
    let _ = finish(st, key, Some(seq), status, info).await;
}

/// The (command, result) pairs of a device's answer.
fn decode_results(d: &Device, payload: &[u8], fmt: Format) -> Result<Vec<(String, Value)>> {
    let list = match fmt {
        Format::Ul => {
            let (dev, cmd, res) = dosi_iot::payload::ul::decode_command_result(payload)
                .map_err(|e| NgsiError::bad_data(e.to_string()))?;
            if dev != d.device_id {
                return Err(NgsiError::bad_data(format!(
                    "the command result names device '{dev}', not '{}'",
                    d.device_id
                )));
            }
            vec![(cmd, Value::String(res))]
        }
        Format::Json => dosi_iot::payload::json::decode_command_result(payload)
            .map_err(|e| NgsiError::bad_data(e.to_string()))?,
    };
    for (c, _) in &list {
        if !d.commands.iter().any(|x| &x.name == c) {
            return Err(NgsiError::bad_data(format!(
                "device '{}' has no command '{c}'",
                d.device_id
            )));
        }
    }
    Ok(list)
}

/// Writes a command's final status (and info) unless it already has one.
/// With `seq`, only if that sending is still the one waiting (a timer of a
/// superseded or answered command does nothing); without, always (a
/// device's answer).
async fn finish(
    st: &AppState,
    key: &Key,
    seq: Option<u64>,
    status: &str,
    info: Value,
) -> Result<()> {
    let flight = {
        let mut m = st.iot_run.commands.map.lock();
        match m.get(key) {
            Some(f) if seq.is_none_or(|s| s == f.seq) => m.remove(key),
            _ => None,
        }
    };
    if flight.is_none() && seq.is_some() {
        return Ok(());
    }
    let Some(r) = &st.iot else { return Ok(()) };
    let Some(d) = r.device(&key.0, &key.1) else {
        return Ok(());
    };
    let info = if info.is_null() { json!("") } else { info };
    match flight {
        Some(f) => {
            let mut done = f.done.lock().await;
            if *done {
                return Ok(());
            }
            *done = true;
            write_status(st, &d, &key.2, status, Some(info)).await
        }
        None => write_status(st, &d, &key.2, status, Some(info)).await,
    }
}

async fn set_status(st: &AppState, d: &Device, cmd: &str, status: &str, info: Option<Value>) {
    if let Err(e) = write_status(st, d, cmd, status, info).await {
        tracing::warn!(device = %d.device_id, command = cmd, status, error = %e.detail, "cannot write a command status");
    }
}

async fn write_status(
    st: &AppState,
    d: &Device,
    cmd: &str,
    status: &str,
    info: Option<Value>,
) -> Result<()> {
    let mut attrs = serde_json::Map::new();
    attrs.insert(
        format!("{cmd}_status"),
        json!({"type": "Property", "value": status}),
    );
    if let Some(i) = info {
        attrs.insert(
            format!("{cmd}_info"),
            json!({"type": "Property", "value": i}),
        );
    }
    let group = st.iot.as_ref().and_then(|r| r.group_of(d));
    write_attrs(st, d, group.as_ref(), attrs).await
}

/// A device's answer to commands (see [`crate::iot::command_result`]).
pub(crate) async fn result(
    st: &AppState,
    apikey: &str,
    device_id: &str,
    payload: &[u8],
    fmt: Format,
) -> Result<usize> {
    let r = st.iot.as_ref().ok_or_else(|| {
        NgsiError::new(
            dosi_ngsi::ErrorKind::OperationNotSupported,
            "the IoT gateway is disabled",
        )
    })?;
    let by_group = r
        .group_by_apikey(apikey)
        .and_then(|g| r.device(&g.service, device_id));
    let d = by_group
        .or_else(|| {
            r.services_of(device_id)
                .into_iter()
                .filter_map(|s| r.device(&s, device_id))
                .find(|d| d.apikey.as_deref() == Some(apikey))
        })
        .filter(|d| d.apikey.as_deref().is_none_or(|a| a == apikey))
        .ok_or_else(|| {
            NgsiError::not_found(format!(
                "DEVICE_NOT_FOUND: no device '{device_id}' with apikey '{apikey}'"
            ))
        })?;
    let list = decode_results(&d, payload, fmt)?;
    let n = list.len();
    for (cmd, value) in list {
        let key = (d.service.clone(), d.device_id.clone(), cmd);
        finish(st, &key, None, "OK", value).await?;
    }
    Ok(n)
}
