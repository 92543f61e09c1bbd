//! Delivery: one queue per endpoint key, transports, retries, dead letters.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// One notification ready to send, self-contained (it survives restarts and
/// the deletion of its subscription).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The notification's stable id (`urn:ngsi-ld:Notification:…`); the same
    /// on every attempt, so receivers can de-duplicate.
    pub notification_id: String,
    /// The subscription it belongs to.
    pub subscription_id: String,
    /// The tenant of the subscription.
    pub tenant: String,
    /// The endpoint URI (`http`, `https`, `mqtt`, `mqtts`).
    pub uri: String,
    /// Headers to send: `Content-Type`, `Link`, `NGSILD-Tenant`, receiverInfo.
    /// For MQTT they become the message's `metadata`.
    pub headers: Vec<(String, String)>,
    /// `notifierInfo` of the endpoint (e.g. `MQTT-Version`, `MQTT-QoS`).
    pub notifier_info: Vec<(String, String)>,
    /// The notification JSON.
    pub body: Bytes,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
}

impl Outgoing {
    /// A `notifierInfo` value by key.
    pub fn notifier(&self, key: &str) -> Option<&str> {
        self.notifier_info
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: connection refused/reset, timeout, 5xx, 429, 408.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (e.g. 4xx other than 408/429, bad URI): the
    /// notification goes to the dead letters at once.
    #[error("{0}")]
    Permanent(String),
}

/// Sends one notification over one protocol.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `n` once; `Ok` when the receiver accepted it (HTTP 2xx, MQTT
    /// PUBACK for QoS 1, handed to the socket for QoS 0).
    async fn send(&self, n: &Outgoing) -> Result<(), SendError>;
}
