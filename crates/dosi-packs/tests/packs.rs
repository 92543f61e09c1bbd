//! The packs hold together: examples validate, contexts cover every term,
//! invalid entities fail with precise messages, docs match the packs.

use std::collections::BTreeSet;

use dosi_packs::{
    all_packs_context, entity_type, merge_contexts, pack, packs, urn_type, validate, Pack,
    ShapeError,
};
use serde_json::{json, Value};

#[test]
fn nine_packs_with_unique_type_names() {
    let names: Vec<&str> = packs().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "parking",
            "traffic",
            "air-quality",
            "flood",
            "earthquake",
            "security",
            "social-safety",
            "smart-farm",
            "cctv"
        ]
    );
    let mut seen = BTreeSet::new();
    for t in packs().iter().flat_map(|p| &p.entity_types) {
        assert!(seen.insert(t.name.clone()), "{} defined twice", t.name);
        let mut attrs = BTreeSet::new();
        for a in &t.attributes {
            assert!(
                attrs.insert(&a.name),
                "{}.{} declared twice",
                t.name,
                a.name
            );
        }
    }
}

#[test]
fn every_example_validates_and_is_of_its_type() {
    for p in packs() {
        for t in &p.entity_types {
            assert_eq!(t.example["type"], json!(t.name), "{} example type", t.name);
            let id = t.example["id"].as_str().expect("example id");
            assert_eq!(urn_type(id), Some(t.name.as_str()), "{id}");
            if let Err(errors) = validate(&t.example) {
                panic!(
                    "{} example is invalid: {}",
                    t.name,
                    messages(&errors).join("; ")
                );
            }
            // The example shows every required attribute and at least one
            // optional one, so the docs show the shape at work.
            for a in t.attributes.iter().filter(|a| a.required) {
                assert!(t.example.get(&a.name).is_some(), "{}.{}", t.name, a.name);
            }
        }
    }
}

#[test]
fn shapes_are_coherent() {
    use dosi_packs::AttributeKind as K;
    for t in packs().iter().flat_map(|p| &p.entity_types) {
        assert!(t.vocab.ends_with('/'), "{} vocab", t.name);
        assert_eq!(
            t.model.is_none(),
            t.vocab == dosi_packs::DOSI_VOCAB,
            "{}",
            t.name
        );
        for a in &t.attributes {
            let path = format!("{}.{}", t.name, a.name);
            match a.kind {
                K::GeoProperty => assert!(a.value.is_none() && a.targets.is_empty(), "{path}"),
                K::Relationship => assert!(a.value.is_none() && a.geometry.is_empty(), "{path}"),
                _ => assert!(
                    a.value.is_some() && a.geometry.is_empty() && a.targets.is_empty(),
                    "{path}"
                ),
            }
            assert!(!a.description.is_empty(), "{path} has no description");
        }
    }
}

#[test]
fn pack_contexts_cover_every_term_without_conflict() {
    for p in packs() {
        assert!(
            p.context_conflicts().is_empty(),
            "{}: {:?}",
            p.name,
            p.context_conflicts()
        );
        let ctx = p.context();
        let terms = ctx["@context"].as_object().expect("context object");
        for t in &p.entity_types {
            assert_eq!(terms[&t.name], json!(t.iri()));
            for a in t.attributes.iter().filter(|a| a.name != "location") {
                assert_eq!(
                    terms[&a.name],
                    json!(t.attribute_iri(a)),
                    "{}.{}",
                    t.name,
                    a.name
                );
                let iri = t.attribute_iri(a);
                assert!(
                    iri.starts_with("https://smartdatamodels.org/")
                        || iri.starts_with("https://dosi.city/ns/")
                        || iri.starts_with("https://uri.etsi.org/ngsi-ld/")
                        || iri.starts_with("http://purl.org/dc/terms/"),
                    "{iri}"
                );
            }
        }
        // dosi's core context owns `location`.
        assert!(terms.get("location").is_none());
    }
    assert_eq!(
        pack("parking").expect("parking").context()["@context"]["refParkingSite"],
        json!("https://smartdatamodels.org/dataModel.Parking/refParkingSite")
    );
    assert_eq!(
        pack("earthquake").expect("earthquake").context()["@context"]["peakGroundAcceleration"],
        json!("https://dosi.city/ns/peakGroundAcceleration")
    );
}

#[test]
fn all_packs_context_reports_the_known_conflicts_and_leaves_them_out() {
    let merged = all_packs_context();
    let conflicting: Vec<&str> = merged.conflicts.iter().map(|c| c.term.as_str()).collect();
    // Smart Data Models domains define these terms each in their own
    // namespace. A new entry here is a decision: document it in the pack docs.
    assert_eq!(
        conflicting,
        [
            "allowedVehicleType",
            "category",
            "length",
            "occupancy",
            "refDevice",
            "relativeHumidity",
            "temperature"
        ]
    );
    let terms = merged.terms();
    for term in &conflicting {
        assert!(terms.get(*term).is_none(), "{term} should be left out");
    }
    let occupancy = merged
        .conflicts
        .iter()
        .find(|c| c.term == "occupancy")
        .expect("occupancy conflict");
    assert_eq!(
        occupancy.definitions,
        [
            (
                "https://smartdatamodels.org/dataModel.Parking/occupancy".to_owned(),
                vec!["OffStreetParking.occupancy".to_owned()]
            ),
            (
                "https://smartdatamodels.org/dataModel.Transportation/occupancy".to_owned(),
                vec!["TrafficFlowObserved.occupancy".to_owned()]
            ),
        ]
    );
    // Conflicting terms stay reachable through the vocabulary prefixes.
    assert_eq!(
        terms["sdm-transportation"],
        json!("https://smartdatamodels.org/dataModel.Transportation/")
    );
    assert_eq!(terms["dosi"], json!("https://dosi.city/ns/"));
    // Shared terms with one meaning are kept once.
    assert_eq!(
        terms["batteryLevel"],
        json!("https://smartdatamodels.org/dataModel.Device/batteryLevel")
    );
    assert_eq!(
        terms["dateObserved"],
        json!("https://smartdatamodels.org/dateObserved")
    );
    assert_eq!(
        terms["status"],
        json!("https://uri.etsi.org/ngsi-ld/status")
    );
    // Every term of every pack is either in the merged context or a conflict.
    for p in packs() {
        for (term, _) in p.context()["@context"].as_object().expect("object") {
            assert!(
                terms.contains_key(term) || conflicting.contains(&term.as_str()),
                "{term}"
            );
        }
    }
}

#[test]
fn merge_detects_a_conflict_between_two_packs() {
    let a = tiny_pack("a", "https://smartdatamodels.org/dataModel.A/");
    let b = tiny_pack("b", "https://smartdatamodels.org/dataModel.B/");
    let merged = merge_contexts([&a, &b]);
    assert_eq!(merged.conflicts.len(), 1);
    assert_eq!(merged.conflicts[0].term, "level");
    assert_eq!(
        merged.conflicts[0].definitions,
        [
            (
                "https://smartdatamodels.org/dataModel.A/level".to_owned(),
                vec!["Ta.level".to_owned()]
            ),
            (
                "https://smartdatamodels.org/dataModel.B/level".to_owned(),
                vec!["Tb.level".to_owned()]
            ),
        ]
    );
    assert!(merged.terms().get("level").is_none());
    assert_eq!(
        merged.terms()["sdm-a"],
        json!("https://smartdatamodels.org/dataModel.A/")
    );
    // The same vocabulary twice is no conflict.
    let a2 = tiny_pack("a2", "https://smartdatamodels.org/dataModel.A/");
    assert!(merge_contexts([&a, &a2]).conflicts.is_empty());
}

fn tiny_pack(name: &str, vocab: &str) -> Pack {
    let ty = format!("T{name}");
    serde_json::from_value(json!({
        "name": name, "title": name, "description": "test",
        "entityTypes": [{
            "type": ty, "description": "test", "model": "https://example.org", "vocab": vocab,
            "attributes": [{"name": "level", "kind": "Property", "value": {"type": "number"}, "description": "x"}],
            "example": {}
        }]
    }))
    .expect("test pack")
}

fn messages(errors: &[ShapeError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// The example of `ty`, changed by `edit`, must fail with exactly `expected`.
fn check(ty: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>), expected: &[&str]) {
    let (_, shape) = entity_type(ty).expect("known type");
    let mut entity = shape.example.clone();
    edit(entity.as_object_mut().expect("example is an object"));
    let errors = validate(&entity).expect_err("entity should be invalid");
    assert_eq!(messages(&errors), expected, "{ty}");
}

#[test]
fn invalid_entities_fail_with_precise_messages() {
    // bad enum
    check(
        "ParkingSpot",
        |e| e["status"]["value"] = json!("busy"),
        &[r#"ParkingSpot.status: "busy" is not one of free, occupied, closed, unknown"#],
    );
    // missing required
    check(
        "ParkingSpot",
        |e| {
            e.remove("refParkingSite");
        },
        &["ParkingSpot.refParkingSite: required attribute is missing"],
    );
    // wrong kind
    check(
        "ParkingSpot",
        |e| {
            e["refParkingSite"] =
                json!({"type": "Property", "value": "urn:ngsi-ld:OffStreetParking:x"})
        },
        &["ParkingSpot.refParkingSite: is a Property, expected a Relationship"],
    );
    // out of range, below and above
    check(
        "OffStreetParking",
        |e| e["occupancy"]["value"] = json!(1.2),
        &["OffStreetParking.occupancy: 1.2 is above the maximum 1"],
    );
    check(
        "OffStreetParking",
        |e| e["availableSpotNumber"]["value"] = json!(-3),
        &["OffStreetParking.availableSpotNumber: -3 is below the minimum 0"],
    );
    check(
        "OffStreetParking",
        |e| e["totalSpotNumber"]["value"] = json!(21.5),
        &["OffStreetParking.totalSpotNumber: 21.5 is not an integer"],
    );
    // bad geometry: type and coordinates
    check(
        "RoadSegment",
        |e| e["location"]["value"] = json!({"type": "Point", "coordinates": [126.97, 37.57]}),
        &["RoadSegment.location: geometry Point is not one of LineString, MultiLineString"],
    );
    check(
        "AirQualityObserved",
        |e| e["location"]["value"]["coordinates"] = json!([37.57, 226.97]),
        &["AirQualityObserved.location: Point coordinates [37.57,226.97] are not valid (longitude -180..180, latitude -90..90; rings closed with ≥ 4 positions)"],
    );
    check(
        "Geofence",
        |e| {
            e["location"]["value"]["coordinates"] =
                json!([[[126.0, 37.0], [127.0, 37.0], [127.0, 38.0], [126.5, 38.0]]])
        },
        &["Geofence.location: Polygon coordinates [[[126.0,37.0],[127.0,37.0],[127.0,38.0],[126.5,38.0]]] are not valid (longitude -180..180, latitude -90..90; rings closed with ≥ 4 positions)"],
    );
    // bad relationship target and object
    check(
        "TrafficFlowObserved",
        |e| e["refRoadSegment"]["object"] = json!("urn:ngsi-ld:Road:seoul-sejong-daero"),
        &["TrafficFlowObserved.refRoadSegment: object urn:ngsi-ld:Road:seoul-sejong-daero points at a Road, expected one of RoadSegment"],
    );
    check(
        "TrafficFlowObserved",
        |e| e["refRoadSegment"]["object"] = json!("RoadSegment-1"),
        &[
            r#"TrafficFlowObserved.refRoadSegment: object "RoadSegment-1" is not an urn:ngsi-ld:<Type>:<id> URI"#,
        ],
    );
    // an array object where the shape takes one
    check(
        "AgriParcelRecord",
        |e| e["hasAgriParcel"]["object"] = json!(["urn:ngsi-ld:AgriParcel:a"]),
        &[
            r#"AgriParcelRecord.hasAgriParcel: object ["urn:ngsi-ld:AgriParcel:a"] is not an urn:ngsi-ld:<Type>:<id> URI"#,
        ],
    );
    // unit fixed by the shape
    check(
        "WaterObserved",
        |e| e["height"]["unitCode"] = json!("CMT"),
        &[r#"WaterObserved.height: unitCode "CMT" is not MTR, the unit this shape fixes"#],
    );
    // value types
    check(
        "SosTracker",
        |e| e["sos"]["value"] = json!("yes"),
        &[r#"SosTracker.sos: "yes" is not a boolean"#],
    );
    check(
        "SeismicObserved",
        |e| e["dateObserved"]["value"] = json!("22/11/2026 05:29"),
        &[
            r#"SeismicObserved.dateObserved: "22/11/2026 05:29" is not a date-time (RFC 3339, e.g. 2026-11-22T09:30:00Z)"#,
        ],
    );
    check(
        "Camera",
        |e| e["streamURL"]["value"] = json!("not a url"),
        &[r#"Camera.streamURL: "not a url" is not a URI"#],
    );
    check(
        "ParkingSpot",
        |e| e["category"]["value"] = json!(["onStreet", "kerbside"]),
        &[r#"ParkingSpot.category[1]: "kerbside" is not one of onStreet, offStreet"#],
    );
    check(
        "ParkingSpot",
        |e| e["category"]["value"] = json!([]),
        &["ParkingSpot.category: [] is not an array of at least 1 item(s)"],
    );
    // not normalized, no value
    check(
        "EmergencyBell",
        |e| e["pressed"] = json!(true),
        &[r#"EmergencyBell.pressed: true is not a normalized attribute (an object with a "type")"#],
    );
    check(
        "EmergencyBell",
        |e| e["pressed"] = json!({"type": "Property"}),
        &[r#"EmergencyBell.pressed: has no "value" member"#],
    );
    // several errors at once, in shape order
    check(
        "AgriParcel",
        |e| {
            e.remove("location");
            e["cropStatus"]["value"] = json!("harvested");
            e["hasDevice"]["object"] = json!(["urn:ngsi-ld:Device:a", "urn:ngsi-ld:Camera:b"]);
        },
        &[
            "AgriParcel.location: required attribute is missing",
            r#"AgriParcel.cropStatus: "harvested" is not one of seeded, justBorn, growing, maturing, readyForHarvesting"#,
            "AgriParcel.hasDevice: object urn:ngsi-ld:Camera:b points at a Camera, expected one of Device",
        ],
    );
}

#[test]
fn extra_attributes_are_open_unless_they_misuse_a_known_name() {
    let (_, shape) = entity_type("ParkingSpot").expect("ParkingSpot");
    let mut e = shape.example.clone();
    e["vendorNote"] = json!({"type": "Property", "value": "anything"});
    e["refRoadSegment"] = json!({"type": "Relationship", "object": "urn:ngsi-ld:RoadSegment:x"});
    assert_eq!(validate(&e), Ok(()));
    e["refRoadSegment"] = json!({"type": "Property", "value": "urn:ngsi-ld:RoadSegment:x"});
    assert_eq!(
        messages(&validate(&e).expect_err("misused name")),
        ["ParkingSpot.refRoadSegment: is a Property, expected a Relationship"]
    );
}

#[test]
fn entity_level_errors() {
    let v = |e: Value| messages(&validate(&e).expect_err("invalid"));
    assert_eq!(v(json!(3)), ["entity is not a JSON object"]);
    assert_eq!(
        v(json!({"id": "urn:ngsi-ld:Bus:1", "type": "Bus"})),
        ["entity type Bus is not defined by any pack"]
    );
    assert_eq!(
        v(json!({"type": "Bus"})),
        [
            "entity id (missing) is not a URI",
            "entity type Bus is not defined by any pack"
        ]
    );
    assert_eq!(
        v(json!({"id": "urn:ngsi-ld:Bus:1"})),
        ["entity type (missing) is not a type name"]
    );
}

#[test]
fn multi_attributes_and_typed_literals() {
    let (_, shape) = entity_type("TrafficFlowObserved").expect("type");
    let mut e = shape.example.clone();
    e["dateObserved"] = json!({"type": "Property", "value": {"@type": "DateTime", "@value": "2026-11-22T09:15:00Z"}});
    e["averageVehicleSpeed"] = json!([
        {"type": "Property", "value": 18.5, "datasetId": "urn:ngsi-ld:Dataset:radar"},
        {"type": "Property", "value": -1, "datasetId": "urn:ngsi-ld:Dataset:loop"}
    ]);
    assert_eq!(
        messages(&validate(&e).expect_err("one instance is invalid")),
        ["TrafficFlowObserved.averageVehicleSpeed[1]: -1 is below the minimum 0"]
    );
}

#[test]
fn date_times() {
    use dosi_packs::is_date_time;
    for ok in [
        "2026-11-22T09:15:00Z",
        "2026-11-22T09:15:00.123+09:00",
        "2026-02-28t23:59:60z",
    ] {
        assert!(is_date_time(ok), "{ok}");
    }
    for bad in [
        "2026-11-22",
        "2026-11-22T09:15:00",
        "2026-13-01T00:00:00Z",
        "2026-11-22T09:15:00+9:00",
        "2026-11-22T09:15:00.Z",
        "２026-11-22T09:15:00Z",
    ] {
        assert!(!is_date_time(bad), "{bad}");
    }
}

#[test]
fn docs_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/packs");
    let mut pages = vec![("README.md".to_owned(), dosi_packs::docs::render_index())];
    for p in packs() {
        pages.push((format!("{}.md", p.name), dosi_packs::docs::render_pack(p)));
    }
    let bless = std::env::var_os("DOSI_BLESS_DOCS").is_some();
    for (file, text) in pages {
        let path = dir.join(&file);
        if bless {
            std::fs::create_dir_all(&dir).expect("create docs/packs");
            std::fs::write(&path, &text).expect("write page");
        } else {
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == text,
                "docs/packs/{file} is stale: run DOSI_BLESS_DOCS=1 cargo test -p dosi-packs"
            );
        }
    }
}

mod mutations {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-zA-Z:/._ -]{0,12}".prop_map(Value::String),
            Just(json!("urn:ngsi-ld:Device:x")),
            Just(json!("Point")),
            Just(json!("Relationship")),
            Just(json!("GeoProperty")),
            Just(json!("Property")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("value".to_owned()),
                        Just("object".to_owned()),
                        Just("coordinates".to_owned()),
                        Just("unitCode".to_owned()),
                        Just("languageMap".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Replaces the node at a pseudo-random path of `v` with `new`.
    fn mutate(v: &mut Value, mut path: Vec<usize>, new: Value) {
        let Some(step) = path.pop() else {
            *v = new;
            return;
        };
        match v {
            Value::Object(m) if !m.is_empty() => {
                let key = m.keys().nth(step % m.len()).cloned().expect("in range");
                if step % 7 == 0 {
                    m.remove(&key);
                } else {
                    mutate(m.get_mut(&key).expect("key exists"), path, new);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let len = a.len();
                mutate(&mut a[step % len], path, new);
            }
            _ => *v = new,
        }
    }

    proptest! {
        #[test]
        fn mutated_examples_never_panic(
            which in any::<prop::sample::Index>(),
            edits in prop::collection::vec(
                (prop::collection::vec(any::<usize>(), 0..5), any_json()),
                1..4,
            ),
        ) {
            let types: Vec<&dosi_packs::EntityTypeSpec> =
                packs().iter().flat_map(|p| &p.entity_types).collect();
            let mut entity = types[which.index(types.len())].example.clone();
            for (path, new) in edits {
                mutate(&mut entity, path, new);
            }
            if let Err(errors) = validate(&entity) {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}

#[test]
fn sentinel_values_pass_the_range() {
    let (_, shape) = entity_type("Device").expect("Device");
    let mut e = shape.example.clone();
    e["batteryLevel"]["value"] = json!(-1);
    assert_eq!(validate(&e), Ok(()));
    e["batteryLevel"]["value"] = json!(-0.5);
    assert_eq!(
        messages(&validate(&e).expect_err("out of range")),
        ["Device.batteryLevel: -0.5 is below the minimum 0"]
    );
}
