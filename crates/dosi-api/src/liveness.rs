//! The watcher that marks silent devices offline: every
//! `ApiConfig::liveness_check` (and at once when a device that is not
//! reported online sends a measure) it compares each watched device's last
//! measure with its interval and writes the transitions to its entity as
//! `deviceState` (`online` / `offline`) and `dateLastValueReported`, the
//! names of the FIWARE Smart Data Models `Device`. It is the only writer of
//! those attributes, so a measure racing a transition cannot leave the
//! entity saying the wrong thing for longer than one check. It also
//! persists the last-seen table every `ApiConfig::liveness_persist`.

use std::time::Instant;

use dosi_iot::liveness::Reported;
use dosi_ngsi::Timestamp;
use serde_json::json;

use crate::state::AppState;

pub(crate) fn start(st: &AppState) {
    let st = st.clone();
    tokio::spawn(async move {
        let mut persisted = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(st.config.liveness_check) => {}
                _ = st.iot_run.wake.notified() => {}
            }
            check(&st).await;
            if persisted.elapsed() >= st.config.liveness_persist {
                persisted = Instant::now();
                if let Some(r) = &st.iot {
                    if let Err(e) = r.persist_liveness().await {
                        tracing::warn!(error = %e.detail, "cannot persist the devices' last-seen table");
                    }
                }
            }
        }
    });
}

async fn check(st: &AppState) {
    let Some(r) = &st.iot else { return };
    let now_ms = Timestamp::now().0 / 1000;
    for (svc, id, seen, want) in r.liveness().transitions(now_ms) {
        let Some(d) = r.device(&svc, &id) else {
            continue;
        };
        let state = match want {
            Reported::Offline => "offline",
            _ => "online",
        };
        let last = Timestamp(seen.last_ms().saturating_mul(1000)).to_iso();
        let mut attrs = serde_json::Map::new();
        attrs.insert(
            "deviceState".into(),
            json!({"type": "Property", "value": state}),
        );
        attrs.insert(
            "dateLastValueReported".into(),
            json!({"type": "Property", "value": {"@type": "DateTime", "@value": last}}),
        );
        let group = r.group_of(&d);
        match crate::iot::write_attrs(st, &d, group.as_ref(), attrs).await {
            Ok(()) => {
                seen.set_reported(want);
                metrics::counter!("dosi_iot_device_state_changes_total", "state" => state)
                    .increment(1);
            }
            Err(e) => {
                tracing::warn!(device = %id, error = %e.detail, "cannot write a device's state")
            }
        }
    }
}
