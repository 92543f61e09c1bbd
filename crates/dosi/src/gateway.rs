//! What the IoT gateway does with an MQTT publish, whichever broker carried
//! it (the embedded one, `mqtt.rs`, or an external one): read the FIWARE IoT
//! Agent topic, check that the publisher may use it, and hand the payload to
//! the shared ingestion (`dosi_api::iot`), as the HTTP paths do.
//!
//! Topics (IoT Agent manuals): `/{apikey}/{device_id}/attrs` (UltraLight),
//! `/ul/{apikey}/{device_id}/attrs`, `/json/{apikey}/{device_id}/attrs`,
//! `…/attrs/{attr}` (one attribute, the payload is its value) and
//! `…/cmdexe` (a device's answer to a command).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dosi_api::iot::{ingest_groups, ingest_payload, Format};
use dosi_api::AppState;
use dosi_iot::{DeviceIdentity, Measure, MeasureGroup, MeasureValue};
use dosi_ngsi::{ErrorKind, NgsiError};
use parking_lot::Mutex;
use tracing::warn;

/// The topic filters the gateway subscribes to (on an external broker,
/// under `$share/<group>/`; the embedded broker ingests in its hooks).
pub const FILTERS: [&str; 6] = [
    "/+/+/attrs",
    "/+/+/attrs/+",
    "/ul/+/+/attrs",
    "/ul/+/+/attrs/+",
    "/json/+/+/attrs",
    "/json/+/+/attrs/+",
];

/// How often one device's refused payloads are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What a publish on a device topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind<'a> {
    /// A measure payload (`…/attrs`).
    Measures,
    /// One attribute's value (`…/attrs/{attr}`).
    Attr(&'a str),
    /// A command result (`…/cmdexe`).
    CommandResult,
}

/// A device topic, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTopic<'a> {
    /// First level: the service group's API key.
    pub apikey: &'a str,
    /// Second level: the device id.
    pub device_id: &'a str,
    /// The payload format (UltraLight unless under `/json/`).
    pub format: Format,
    /// What the payload is.
    pub kind: TopicKind<'a>,
}

/// Parses a device topic; `None` for any other topic.
pub fn parse_topic(topic: &str) -> Option<DeviceTopic<'_>> {
    let mut parts = topic.split('/');
    if parts.next() != Some("") {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let (format, rest) = match rest.first() {
        Some(&"ul") if rest.len() >= 4 => (Format::Ul, &rest[1..]),
        Some(&"json") if rest.len() >= 4 => (Format::Json, &rest[1..]),
        _ => (Format::Ul, &rest[..]),
    };
    let (apikey, device_id, kind) = match rest {
        [k, i, "attrs"] => (*k, *i, TopicKind::Measures),
        [k, i, "attrs", a] if !a.is_empty() => (*k, *i, TopicKind::Attr(a)),
        [k, i, "cmdexe"] => (*k, *i, TopicKind::CommandResult),
        _ => return None,
    };
    if apikey.is_empty() || device_id.is_empty() {
        return None;
    }
    Some(DeviceTopic {
        apikey,
        device_id,
        format,
        kind,
    })
}

/// Whether `who` may publish on `t`: its own device id, and its service
/// group's API key when it has one.
pub fn may_publish(who: &DeviceIdentity, t: &DeviceTopic<'_>) -> bool {
    who.device_id == t.device_id && who.apikey.as_deref().is_none_or(|k| k == t.apikey)
}

/// Parses a command topic, `/{apikey}/{device_id}/cmd` (also under `/ul/`
/// and `/json/`): `(apikey, device_id)`, or `None` for any other topic.
/// Only dosi publishes there; a device subscribes to its own.
pub fn parse_command_topic(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (apikey, device_id) = match parts.as_slice() {
        ["ul" | "json", k, i, "cmd"] => (*k, *i),
        [k, i, "cmd"] => (*k, *i),
        _ => return None,
    };
    let plain = |s: &str| !s.is_empty() && !s.contains(['+', '#']);
    (plain(apikey) && plain(device_id)).then_some((apikey, device_id))
}

/// Whether `who` may subscribe to `filter`: only its own command topics,
/// without wildcards.
pub fn may_subscribe(who: &DeviceIdentity, filter: &str) -> bool {
    parse_command_topic(filter).is_some_and(|(apikey, device_id)| {
        who.device_id == device_id && who.apikey.as_deref().is_none_or(|k| k == apikey)
    })
}

/// The gateway's MQTT side: ingestion with per-device log throttling.
pub struct Gateway {
    st: AppState,
    last_log: Mutex<HashMap<String, Instant>>,
}

impl Gateway {
    /// A gateway writing through `st`.
    pub fn new(st: AppState) -> Self {
        Self {
            st,
            last_log: Mutex::new(HashMap::new()),
        }
    }

    /// Handles one publish. `publisher` is the authenticated device (the
    /// embedded broker knows it; an external broker enforces its own ACLs and
    /// passes `None`). Topics that are not device topics are ignored (`Ok(0)`).
    /// A refused payload is counted, logged at most once a minute per device,
    /// and writes nothing.
    pub async fn handle_publish(
        &self,
        transport: &'static str,
        topic: &str,
        payload: &[u8],
        publisher: Option<&DeviceIdentity>,
    ) -> Result<usize, NgsiError> {
        let Some(t) = parse_topic(topic) else {
            return Ok(0);
        };
        let started = Instant::now();
        let out = self.dispatch(&t, payload, publisher).await;
        dosi_api::iot::observe_ingest(transport, started, &out);
        if let Err(e) = &out {
            self.log_refused(transport, topic, &t, e);
        }
        out
    }

    async fn dispatch(
        &self,
        t: &DeviceTopic<'_>,
        payload: &[u8],
        publisher: Option<&DeviceIdentity>,
    ) -> Result<usize, NgsiError> {
        if let Some(who) = publisher {
            if !may_publish(who, t) {
                return Err(NgsiError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "device '{}' may not publish on another device's topic",
                        who.device_id
                    ),
                ));
            }
        }
        match t.kind {
            TopicKind::Measures => {
                ingest_payload(&self.st, t.apikey, t.device_id, payload, t.format, None).await
            }
            TopicKind::Attr(name) => {
                let value = single_value(payload, t.format)?;
                let group = MeasureGroup {
                    timestamp: None,
                    measures: vec![Measure {
                        name: name.to_string(),
                        value,
                    }],
                };
                ingest_groups(&self.st, t.apikey, t.device_id, vec![group], None).await
            }
            TopicKind::CommandResult => {
                dosi_api::iot::command_result(&self.st, t.apikey, t.device_id, payload, t.format)
                    .await
            }
        }
    }

    fn log_refused(&self, transport: &str, topic: &str, t: &DeviceTopic<'_>, e: &NgsiError) {
        let now = Instant::now();
        let key = format!("{}/{}", t.apikey, t.device_id);
        let mut last = self.last_log.lock();
        let due = last
            .get(&key)
            .is_none_or(|at| now.duration_since(*at) >= LOG_EVERY);
        if !due {
            return;
        }
        if last.len() >= 10_000 {
            last.retain(|_, at| now.duration_since(*at) < LOG_EVERY);
        }
        last.insert(key, now);
        warn!(transport, apikey = t.apikey, device = t.device_id, %topic, error = %e.detail,
            "MQTT message refused (logged once a minute per device)");
    }
}

/// The value of a single-attribute publish: UltraLight carries the value as
/// text, IoT Agent JSON a JSON value.
fn single_value(payload: &[u8], format: Format) -> Result<MeasureValue, NgsiError> {
    if payload.len() > dosi_iot::payload::MAX_PAYLOAD_BYTES {
        return Err(NgsiError::bad_data("payload is too large"));
    }
    let text = std::str::from_utf8(payload)
        .map_err(|_| NgsiError::bad_data("payload is not valid UTF-8"))?
        .trim();
    if text.is_empty() {
        return Err(NgsiError::bad_data("payload is empty"));
    }
    Ok(match format {
        Format::Ul => MeasureValue::Text(text.to_string()),
        Format::Json => MeasureValue::Json(
            serde_json::from_str(text)
                .map_err(|e| NgsiError::bad_data(format!("payload is not JSON: {e}")))?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(topic: &str, expected: Option<(&str, &str, Format, TopicKind<'_>)>) {
        let got = parse_topic(topic).map(|t| (t.apikey, t.device_id, t.format, t.kind));
        assert_eq!(got, expected, "{topic}");
    }

    #[test]
    fn topics() {
        use TopicKind::*;
        check(
            "/key/dev1/attrs",
            Some(("key", "dev1", Format::Ul, Measures)),
        );
        check(
            "/ul/key/dev1/attrs",
            Some(("key", "dev1", Format::Ul, Measures)),
        );
        check(
            "/json/key/dev1/attrs",
            Some(("key", "dev1", Format::Json, Measures)),
        );
        check(
            "/key/dev1/attrs/t",
            Some(("key", "dev1", Format::Ul, Attr("t"))),
        );
        check(
            "/json/key/dev1/attrs/t",
            Some(("key", "dev1", Format::Json, Attr("t"))),
        );
        check(
            "/key/dev1/cmdexe",
            Some(("key", "dev1", Format::Ul, CommandResult)),
        );
        check(
            "/json/key/dev1/cmdexe",
            Some(("key", "dev1", Format::Json, CommandResult)),
        );
        // A group whose API key is "ul" keeps working with the short form.
        check("/ul/dev1/attrs", Some(("ul", "dev1", Format::Ul, Measures)));
        check("/key/dev1/cmd", None);
        check("key/dev1/attrs", None);
        check("//dev1/attrs", None);
        check("/ul/key//attrs", None);
        check("/a/b/c/attrs", None);
        check("/key/dev1/attrs/", None);
    }

    #[test]
    fn acl() {
        let who = DeviceIdentity {
            service: "city".into(),
            device_id: "d1".into(),
            apikey: Some("k".into()),
        };
        let ok = parse_topic("/json/k/d1/attrs").unwrap();
        assert!(may_publish(&who, &ok));
        assert!(!may_publish(&who, &parse_topic("/k/d2/attrs").unwrap()));
        assert!(!may_publish(&who, &parse_topic("/other/d1/attrs").unwrap()));
        for (filter, ok) in [
            ("/k/d1/cmd", true),
            ("/ul/k/d1/cmd", true),
            ("/json/k/d1/cmd", true),
            ("/k/d2/cmd", false),
            ("/other/d1/cmd", false),
            ("/k/+/cmd", false),
            ("/+/d1/cmd", false),
            ("/k/d1/#", false),
            ("#", false),
            ("/k/d1/attrs", false),
            ("/k/d1/cmdexe", false),
        ] {
            assert_eq!(may_subscribe(&who, filter), ok, "{filter}");
        }
        assert_eq!(parse_command_topic("/ul/d1/cmd"), Some(("ul", "d1")));
    }
}
