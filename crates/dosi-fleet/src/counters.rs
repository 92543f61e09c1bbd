//! Per-transport counters of what the fleet sent and how it ended.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

/// Messages of one transport.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages handed to the transport.
    pub published: AtomicU64,
    /// Messages the server acknowledged (PUBACK, 2xx).
    pub acked: AtomicU64,
    /// Messages given up on (connection refused or lost twice, error answer, queue full).
    pub failed: AtomicU64,
    /// Connections opened (MQTT).
    pub connects: AtomicU64,
    /// Connections that could not be opened (MQTT).
    pub connect_errors: AtomicU64,
    /// Connections lost while publishing (MQTT).
    pub reconnects: AtomicU64,
}

impl Counters {
    /// The counters as JSON.
    pub fn to_json(&self) -> Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "published": g(&self.published),
            "acked": g(&self.acked),
            "failed": g(&self.failed),
            "connects": g(&self.connects),
            "connectErrors": g(&self.connect_errors),
            "reconnects": g(&self.reconnects),
        })
    }
}
