//! Property tests: the decoders never panic, and UltraLight round-trips.

use dosi_iot::payload::{json as iota_json, ul};
use dosi_iot::{Measure, MeasureGroup, MeasureValue};
use proptest::prelude::*;

proptest! {
    #[test]
    fn ul_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ul::decode(&bytes);
        let _ = ul::decode_command_result(&bytes);
    }

    #[test]
    fn ul_never_panics_on_ul_like_text(s in "[a-z0-9|#@ =:TZ.+\\-\n]{0,80}") {
        if let Ok(groups) = ul::decode(s.as_bytes()) {
            prop_assert!(!groups.is_empty());
            for g in &groups {
                prop_assert!(!g.measures.is_empty());
                prop_assert!(g.measures.iter().all(|m| !m.name.is_empty()));
            }
            // What decodes re-encodes to the same groups.
            prop_assert_eq!(ul::decode(ul::encode(&groups).as_bytes()), Ok(groups));
        }
        let _ = ul::decode_command_result(s.as_bytes());
    }

    #[test]
    fn json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = iota_json::decode(&bytes);
        let _ = iota_json::decode_command_result(&bytes);
    }

    #[test]
    fn json_never_panics_on_json_like_text(s in "[\\[\\]{}\",:a-zT0-9 .\\-]{0,80}") {
        let _ = iota_json::decode(s.as_bytes());
        let _ = iota_json::decode_command_result(s.as_bytes());
    }

    #[test]
    fn ul_round_trip(groups in proptest::collection::vec(group(), 1..5)) {
        let text = ul::encode(&groups);
        prop_assert_eq!(ul::decode(text.as_bytes()), Ok(groups));
    }

    #[test]
    fn ul_command_round_trip(
        device in "[A-Za-z0-9_:-]{1,20}",
        command in "[A-Za-z0-9_]{1,20}",
        result in "[ -\"$-~]{0,40}",
    ) {
        // A result may hold `|` but not `#` (that would start a new message
        // when polled) and is trimmed.
        let reply = format!("{device}@{command}|{result}");
        prop_assert_eq!(
            ul::decode_command_result(reply.as_bytes()),
            Ok((device, command, result.trim().to_owned()))
        );
    }
}

/// Measure names: no separators, no surrounding whitespace, never a
/// date-time (so a group's field count alone tells the timestamp apart).
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.%-]{0,11}"
}

/// Values: anything but the separators, no surrounding whitespace.
fn value() -> impl Strategy<Value = String> {
    "([^|#\\s]([^|#]{0,10}[^|#\\s])?)?"
}

fn timestamp() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        (
            2000u32..2100,
            1u32..13,
            1u32..29,
            0u32..24,
            0u32..60,
            0u32..60,
            0usize..3,
        )
            .prop_map(|(y, mo, d, h, mi, s, zone)| {
                let zone = ["Z", "+09:00", ""][zone];
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}")
            }),
    )
}

fn group() -> impl Strategy<Value = MeasureGroup> {
    (
        timestamp(),
        proptest::collection::vec((name(), value()), 1..6),
    )
        .prop_map(|(timestamp, m)| MeasureGroup {
            timestamp,
            measures: m
                .into_iter()
                .map(|(name, v)| Measure {
                    name,
                    value: MeasureValue::Text(v),
                })
                .collect(),
        })
}

fn typed_device() -> dosi_iot::Device {
    serde_json::from_value(serde_json::json!({
        "device_id": "d",
        "timezone": "-14:00",
        "attributes": [
            {"object_id": "n", "name": "number", "type": "Number"},
            {"object_id": "b", "name": "flag", "type": "Boolean"},
            {"object_id": "p", "name": "where", "type": "geo:point"},
            {"object_id": "g", "name": "shape", "type": "geo:json"},
            {"object_id": "d", "name": "when", "type": "DateTime"},
            {"object_id": "r", "name": "rel", "type": "Relationship"}
        ]
    }))
    .expect("test device")
}

proptest! {
    #[test]
    fn mapping_never_panics(
        ts in proptest::option::of("[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:?[0-9]{2})?"),
        measures in proptest::collection::vec(("[nbpgdrx]", "[ -~]{0,30}"), 1..6),
    ) {
        let groups = vec![MeasureGroup {
            timestamp: ts,
            measures: measures
                .into_iter()
                .map(|(name, v)| Measure { name, value: MeasureValue::Text(v) })
                .collect(),
        }];
        let _ = dosi_iot::to_attributes(&groups, &typed_device(), None);
    }

    #[test]
    fn mapping_never_panics_on_json(s in "[\\[\\]{}\",:a-z0-9 .\\-]{0,60}") {
        let payload = format!(r#"{{"n": {s}, "b": {s}, "p": {s}, "g": {s}, "d": {s}, "r": {s}}}"#);
        if let Ok(groups) = iota_json::decode(payload.as_bytes()) {
            let _ = dosi_iot::to_attributes(&groups, &typed_device(), None);
        }
    }
}
