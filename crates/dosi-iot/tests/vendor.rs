//! Vendor JSON read with JSONPaths, then mapped like any measure.

use dosi_iot::payload::vendor;
use dosi_iot::{to_attributes, Device, MeasureValue, PayloadError, ServiceGroup};
use serde_json::{json, Value};

fn group() -> ServiceGroup {
    serde_json::from_value(json!({
        "apikey": "vendor-k", "resource": "/iot/json", "entity_type": "WaterLevelSensor",
        "timestamp_path": "$.meta.ts",
        "attributes": [
            {"name": "waterLevel", "type": "Number", "unitCode": "MTR", "json_path": "$.readings[0].lvl",
             "expression": "waterLevel / 100"},
            {"name": "batteryLevel", "type": "Number", "json_path": "$.status.battery"},
            {"name": "alarms", "type": "Property", "json_path": "$.events[*].code"}
        ]
    }))
    .unwrap()
}

fn device() -> Device {
    serde_json::from_value(
        json!({"device_id": "gauge-9", "entity_name": "urn:ngsi-ld:WaterLevelSensor:gauge-9"}),
    )
    .unwrap()
}

#[test]
fn vendor_payload_maps_by_json_path() {
    let g = group();
    g.check().unwrap();
    let payload = json!({
        "meta": {"ts": 1763800000000i64, "fw": "2.1"},
        "readings": [{"lvl": 253}, {"lvl": 251}],
        "status": {"battery": 0.87},
        "events": [{"code": "E1"}, {"code": "E7"}]
    });
    let groups = vendor::decode(
        payload.to_string().as_bytes(),
        g.attributes.iter(),
        g.timestamp_path.as_deref(),
    )
    .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].timestamp.as_deref(),
        Some("2025-11-22T08:26:40.000Z")
    );
    assert_eq!(groups[0].measures.len(), 3);
    assert_eq!(
        groups[0].measures[2].value,
        MeasureValue::Json(json!(["E1", "E7"]))
    );
    let attrs = to_attributes(&groups, &device(), Some(&g)).unwrap();
    let attrs: serde_json::Map<String, Value> = attrs.into_iter().flatten().collect();
    assert_eq!(attrs["waterLevel"]["value"], json!(2.53));
    assert_eq!(attrs["waterLevel"]["unitCode"], json!("MTR"));
    assert_eq!(
        attrs["waterLevel"]["observedAt"],
        json!("2025-11-22T08:26:40Z")
    );
    assert_eq!(attrs["batteryLevel"]["value"], json!(0.87));
}

#[test]
fn missing_paths_are_left_out_and_nothing_matching_is_an_error() {
    let g = group();
    let groups = vendor::decode(
        br#"{"status": {"battery": 0.5}}"#,
        g.attributes.iter(),
        g.timestamp_path.as_deref(),
    )
    .unwrap();
    assert_eq!(groups[0].measures.len(), 1);
    assert_eq!(groups[0].timestamp, None);
    assert!(matches!(
        vendor::decode(br#"{"other": 1}"#, g.attributes.iter(), None),
        Err(PayloadError::Syntax(_))
    ));
    assert!(matches!(
        vendor::decode(b"not json", g.attributes.iter(), None),
        Err(PayloadError::Syntax(_))
    ));
    assert!(matches!(
        vendor::decode(
            br#"{"meta": {"ts": true}, "status": {"battery": 1}}"#,
            g.attributes.iter(),
            Some("$.meta.ts")
        ),
        Err(PayloadError::Syntax(_))
    ));
}

#[test]
fn bad_paths_are_refused_at_provisioning() {
    let mut g = group();
    g.attributes[0].json_path = Some("readings[0".into());
    assert!(g.check().unwrap_err().contains("not a JSONPath"));
    let mut g = group();
    g.timestamp_path = Some("$$".into());
    assert!(g.check().is_err());
}
