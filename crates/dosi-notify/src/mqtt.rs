//! MQTT notifications.
