//! MQTT notifications (being built on branch `mqtt`; until it lands, MQTT
//! endpoints fail permanently and their notifications become dead letters).

use async_trait::async_trait;

use crate::deliver::{Outgoing, SendError, Transport};

/// MQTT transport.
#[derive(Default)]
pub struct MqttTransport;

impl MqttTransport {
    /// A transport with no connections yet.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Transport for MqttTransport {
    async fn send(&self, n: &Outgoing) -> Result<(), SendError> {
        Err(SendError::Permanent(format!(
            "MQTT notifications are not available in this build ({})",
            n.uri
        )))
    }
}
