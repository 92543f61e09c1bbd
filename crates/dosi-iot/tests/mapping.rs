//! Measures to NGSI-LD attributes: types, unit codes, explicitAttrs, static
//! attributes, timestamps, errors.

use dosi_iot::payload::{json as iota_json, ul};
use dosi_iot::{to_attributes, Device, MappingError, ServiceGroup};
use serde_json::{json, Value};

fn device(v: Value) -> Device {
    serde_json::from_value(v).expect("test device")
}

fn service_group(v: Value) -> ServiceGroup {
    serde_json::from_value(v).expect("test group")
}

/// The attribute lists as one JSON value: `[{name: attr, …}, …]` per group.
fn as_json(lists: Vec<Vec<(String, Value)>>) -> Value {
    Value::Array(
        lists
            .into_iter()
            .map(|l| Value::Object(l.into_iter().collect()))
            .collect(),
    )
}

#[track_caller]
fn check_ul(payload: &str, dev: &Device, group: Option<&ServiceGroup>, expected: Value) {
    let groups = ul::decode(payload.as_bytes()).expect("decodes");
    let got = to_attributes(&groups, dev, group).expect("maps");
    assert_eq!(as_json(got), expected, "{payload}");
}

#[track_caller]
fn check_json(payload: &str, dev: &Device, group: Option<&ServiceGroup>, expected: Value) {
    let groups = iota_json::decode(payload.as_bytes()).expect("decodes");
    let got = to_attributes(&groups, dev, group).expect("maps");
    assert_eq!(as_json(got), expected, "{payload}");
}

fn sensor() -> Device {
    device(json!({
        "device_id": "sensor01",
        "entity_name": "urn:ngsi-ld:Sensor:01",
        "entity_type": "Sensor",
        "attributes": [
            {"object_id": "t", "name": "temperature", "type": "Number", "unitCode": "CEL"},
            {"object_id": "h", "name": "humidity", "type": "Number", "unitCode": "P1"},
            {"object_id": "on", "name": "power", "type": "Boolean"},
            {"object_id": "k", "name": "note", "type": "Text"},
            {"object_id": "gps", "name": "location", "type": "geo:point"},
            {"object_id": "shape", "name": "area", "type": "geo:json"},
            {"object_id": "d", "name": "installedAt", "type": "DateTime"},
            {"object_id": "r", "name": "refRoom", "type": "Relationship"},
            {"object_id": "x", "name": "scaled", "type": "Number", "expression": "${@value * 10}"}
        ],
        "static_attributes": [
            {"name": "category", "type": "Text", "value": "sensor"}
        ]
    }))
}

#[test]
fn ul_manual_example_with_types() {
    check_ul(
        "t|15|k|abc",
        &sensor(),
        None,
        json!([{
            "temperature": {"type": "Property", "value": 15, "unitCode": "CEL"},
            "note": {"type": "Property", "value": "abc"},
            "category": {"type": "Property", "value": "sensor"}
        }]),
    );
}

#[test]
fn conversions() {
    let dev = sensor();
    let one = |payload: &str, name: &str, expected: Value| {
        let groups = ul::decode(payload.as_bytes()).expect("decodes");
        let got = to_attributes(&groups, &dev, None).expect("maps");
        let attr = got[0]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        assert_eq!(attr, Some(expected), "{payload}");
    };
    one(
        "t|21.5",
        "temperature",
        json!({"type": "Property", "value": 21.5, "unitCode": "CEL"}),
    );
    one(
        "t|-3",
        "temperature",
        json!({"type": "Property", "value": -3, "unitCode": "CEL"}),
    );
    one(
        "t|1e3",
        "temperature",
        json!({"type": "Property", "value": 1000.0, "unitCode": "CEL"}),
    );
    one(
        "on|true",
        "power",
        json!({"type": "Property", "value": true}),
    );
    one("on|0", "power", json!({"type": "Property", "value": false}));
    one(
        "on|FALSE",
        "power",
        json!({"type": "Property", "value": false}),
    );
    one(
        "gps|40.4168, -3.7038",
        "location",
        json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-3.7038, 40.4168]}}),
    );
    one(
        r#"shape|{"type":"Point","coordinates":[1,2]}"#,
        "area",
        json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}),
    );
    one(
        "d|2016-06-13T02:35:30+02:00",
        "installedAt",
        json!({"type": "Property", "value": {"@type": "DateTime", "@value": "2016-06-13T00:35:30Z"}}),
    );
    one(
        "r|urn:ngsi-ld:Room:1",
        "refRoom",
        json!({"type": "Relationship", "object": "urn:ngsi-ld:Room:1"}),
    );
    // The expression transforms the raw value before the type conversion.
    one("x|2", "scaled", json!({"type": "Property", "value": 20}));
    // Unmapped: the measure name, the value as sent.
    one(
        "foo|bar",
        "foo",
        json!({"type": "Property", "value": "bar"}),
    );
}

#[test]
fn json_manual_examples() {
    // No mappings: every measure keeps its name and its value as sent.
    let plain = device(json!({"device_id": "sensor02"}));
    check_json(
        r#"{"h": "45%", "t": "23", "l": "1570"}"#,
        &plain,
        None,
        json!([{
            "h": {"type": "Property", "value": "45%"},
            "t": {"type": "Property", "value": "23"},
            "l": {"type": "Property", "value": "1570"}
        }]),
    );
    check_json(
        r#"[{"h": "45%", "t": "23", "l": "1570"}, {"h": "47%", "t": "21", "l": "1321"}]"#,
        &plain,
        None,
        json!([
            {
                "h": {"type": "Property", "value": "45%"},
                "t": {"type": "Property", "value": "23"},
                "l": {"type": "Property", "value": "1570"}
            },
            {
                "h": {"type": "Property", "value": "47%"},
                "t": {"type": "Property", "value": "21"},
                "l": {"type": "Property", "value": "1321"}
            }
        ]),
    );
    check_json(
        r#"{"l": {"a": 2, "b": "up", "c": ["1", "3"]}}"#,
        &plain,
        None,
        json!([{"l": {"type": "Property", "value": {"a": 2, "b": "up", "c": ["1", "3"]}}}]),
    );
    // Typed by the device: text numbers become numbers.
    check_json(
        r#"{"t": "23", "h": 45, "TimeInstant": "2016-06-13T00:35:30Z"}"#,
        &sensor(),
        None,
        json!([{
            "temperature": {"type": "Property", "value": 23, "unitCode": "CEL", "observedAt": "2016-06-13T00:35:30Z"},
            "humidity": {"type": "Property", "value": 45, "unitCode": "P1", "observedAt": "2016-06-13T00:35:30Z"},
            "category": {"type": "Property", "value": "sensor"}
        }]),
    );
}

#[test]
fn timestamps_and_groups() {
    let dev = device(json!({
        "device_id": "d",
        "timezone": "+09:00",
        "attributes": [{"object_id": "lle", "name": "level", "type": "Number"}]
    }));
    // The UL manual's timestamped group, then a zone-less one read in +09:00,
    // then one without a timestamp.
    check_ul(
        "2016-06-13T00:35:30Z|lle|100#2016-06-13T09:35:30|lle|101#lle|102",
        &dev,
        None,
        json!([
            {"level": {"type": "Property", "value": 100, "observedAt": "2016-06-13T00:35:30Z"}},
            {"level": {"type": "Property", "value": 101, "observedAt": "2016-06-13T00:35:30Z"}},
            {"level": {"type": "Property", "value": 102}}
        ]),
    );
    // An IANA zone name is not applied: UTC.
    let madrid = device(json!({"device_id": "d", "timezone": "Europe/Madrid"}));
    check_ul(
        "2016-06-13T00:35:30|x|1",
        &madrid,
        None,
        json!([{"x": {"type": "Property", "value": "1", "observedAt": "2016-06-13T00:35:30Z"}}]),
    );
    // The UL manual's two-group example.
    check_ul(
        "gps|1.2/3.4#t|10",
        &device(json!({"device_id": "d"})),
        None,
        json!([
            {"gps": {"type": "Property", "value": "1.2/3.4"}},
            {"t": {"type": "Property", "value": "10"}}
        ]),
    );
}

#[test]
fn group_mappings_explicit_attrs_and_statics() {
    let group = service_group(json!({
        "apikey": "k1",
        "entity_type": "Thing",
        "attributes": [
            {"object_id": "t", "name": "groupTemperature", "type": "Number"},
            {"object_id": "p", "name": "pressure", "type": "Number", "unitCode": "A97"}
        ],
        "static_attributes": [
            {"name": "owner", "type": "Relationship", "value": "urn:ngsi-ld:Org:1"},
            {"name": "category", "type": "Text", "value": "from-group"}
        ],
        "explicitAttrs": true
    }));
    let dev = device(json!({
        "device_id": "d",
        "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"}],
        "static_attributes": [{"name": "category", "type": "Text", "value": "from-device"}]
    }));
    // The device's mapping wins; explicitAttrs from the group drops `z`;
    // the device's static attribute wins over the group's of the same name.
    check_ul(
        "t|1|p|1013|z|9",
        &dev,
        Some(&group),
        json!([{
            "temperature": {"type": "Property", "value": 1},
            "pressure": {"type": "Property", "value": 1013, "unitCode": "A97"},
            "category": {"type": "Property", "value": "from-device"},
            "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Org:1"}
        }]),
    );
    // The device's explicitAttrs = false overrides the group's true.
    let mut open = dev.clone();
    open.explicit_attrs = Some(false);
    open.static_attributes.clear();
    check_ul(
        "z|9",
        &open,
        Some(&group),
        json!([{
            "z": {"type": "Property", "value": "9"},
            "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Org:1"},
            "category": {"type": "Property", "value": "from-group"}
        }]),
    );
    // A measure named like a static attribute wins over it.
    check_ul(
        "category|measured",
        &open,
        None,
        json!([{"category": {"type": "Property", "value": "measured"}}]),
    );
}

#[test]
fn metadata_becomes_sub_properties() {
    let dev = device(json!({
        "device_id": "d",
        "attributes": [{
            "object_id": "t", "name": "temperature", "type": "Number",
            "metadata": {"accuracy": {"type": "Number", "value": 0.5}, "sensor": "DHT22"}
        }]
    }));
    check_ul(
        "t|20",
        &dev,
        None,
        json!([{"temperature": {
            "type": "Property", "value": 20,
            "accuracy": {"type": "Property", "value": 0.5},
            "sensor": {"type": "Property", "value": "DHT22"}
        }}]),
    );
}

#[test]
fn errors_are_collected() {
    let groups = ul::decode(b"t|warm|on|maybe|k|ok#gps|91, 0|d|soon|r|nowhere").expect("decodes");
    let err = to_attributes(&groups, &sensor(), None).unwrap_err();
    let MappingError::InvalidMeasures { device_id, errors } = &err;
    assert_eq!(device_id, "sensor01");
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.group, e.measure.as_str()))
        .collect();
    assert_eq!(got, [(1, "t"), (1, "on"), (2, "gps"), (2, "d"), (2, "r")]);
    let text = err.to_string();
    assert!(
        text.contains("group 1 measure `t`: `warm` is not a number"),
        "{text}"
    );
    assert!(text.contains("`maybe` is not a boolean"), "{text}");
    assert!(text.contains("out of range"), "{text}");
    assert!(text.contains("`nowhere` is not a URI"), "{text}");

    // The JSON manual's "45%" under a Number mapping.
    let groups = iota_json::decode(br#"{"h": "45%"}"#).expect("decodes");
    assert!(to_attributes(&groups, &sensor(), None).is_err());
    // Objects, arrays and null are not numbers; null is not a value.
    for payload in [
        r#"{"t": {"v": 1}}"#,
        r#"{"t": [1]}"#,
        r#"{"t": null}"#,
        r#"{"zz": null}"#,
    ] {
        let groups = iota_json::decode(payload.as_bytes()).expect("decodes");
        assert!(
            to_attributes(&groups, &sensor(), None).is_err(),
            "{payload}"
        );
    }
    // A bad timestamp in a hand-built group.
    let mut groups = ul::decode(b"t|1").expect("decodes");
    groups[0].timestamp = Some("noon".into());
    let err = to_attributes(&groups, &sensor(), None).unwrap_err();
    assert!(err.to_string().contains("measure `TimeInstant`"), "{err}");
    // A non-GeoJSON value under geo:json.
    let groups =
        iota_json::decode(br#"{"shape": {"type": "Circle", "radius": 2}}"#).expect("decodes");
    assert!(to_attributes(&groups, &sensor(), None).is_err());
}

#[test]
fn json_typed_values() {
    check_json(
        r#"{"on": 1, "gps": "40.4, -3.7", "shape": "{\"type\":\"LineString\",\"coordinates\":[[0,0],[1,1]]}", "k": 12}"#,
        &sensor(),
        None,
        json!([{
            "power": {"type": "Property", "value": true},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-3.7, 40.4]}},
            "area": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
            "note": {"type": "Property", "value": "12"},
            "category": {"type": "Property", "value": "sensor"}
        }]),
    );
}

#[test]
fn expressions_transform_values() {
    let d = device(json!({
        "device_id": "e1",
        "attributes": [
            {"object_id": "c", "name": "celsius", "type": "Number", "expression": "${(@value - 32) * 5 / 9}"},
            {"object_id": "f", "name": "fahrenheit", "type": "Number"},
            {"object_id": "p", "name": "percent", "type": "Number", "expression": "value / total * 100"},
            {"object_id": "s", "name": "state", "type": "Text", "expression": "if(value > 10, \"high\", \"low\")"},
            {"object_id": "b", "name": "bad", "type": "Number", "expression": "value +"}
        ]
    }));
    let groups = dosi_iot::payload::ul::decode(b"c|212.0|p|5|total|20|s|11").unwrap();
    let out = dosi_iot::to_attributes(&groups, &d, None).unwrap();
    let get = |n: &str| {
        out[0]
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("celsius")["value"], json!(100));
    assert_eq!(get("percent")["value"], json!(25));
    assert_eq!(get("state")["value"], json!("high"));
    // A failing expression is an error of its measure (nothing is returned).
    let groups = dosi_iot::payload::ul::decode(b"b|1").unwrap();
    let err = dosi_iot::to_attributes(&groups, &d, None).unwrap_err();
    assert!(err.to_string().contains("expression"), "{err}");
}
