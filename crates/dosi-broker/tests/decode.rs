//! Entity-body validation: what `codec::decode` accepts, how it normalizes
//! it, and which rule refuses the rest (clauses 4.5–4.7, 5.2.1, 5.5.4).

use dosi_broker::codec::decode::{
    self, AttrInput, EntityInput, Mode, ENTITY_ID_SEALED, ENTITY_TYPE_SEALED, NGSILD_PROOF,
};
use dosi_broker::codec::{Terms, NGSI_LD_NULL};
use dosi_ngsi::{AttrKind, Attribute, ErrorKind, Timestamp};
use proptest::prelude::*;
use serde_json::{json, Value};

const BASE: &str = "https://uri.etsi.org/ngsi-ld/";
const EX: &str = "https://example.org/";

/// A stand-in for the core context: keywords, the core terms these tests
/// use, and a vocabulary for everything else.
struct Core;

impl Terms for Core {
    fn expand(&self, term: &str) -> String {
        match term {
            "type" => "@type".into(),
            "id" => "@id".into(),
            "location" | "observationSpace" | "operationSpace" | "datasetId" | "instanceId"
            | "observedAt" | "unitCode" | "ngsildproof" => format!("{BASE}{term}"),
            "value" => format!("{BASE}hasValue"),
            t if t.starts_with("ngsi-ld:") => format!("{BASE}{}", &t[8..]),
            t if t.contains(':') => t.into(),
            t => format!("{EX}{t}"),
        }
    }
    fn compact(&self, iri: &str) -> String {
        iri.strip_prefix(EX).unwrap_or(iri).into()
    }
}

fn now() -> Timestamp {
    Timestamp(1_700_000_000_000_000)
}

fn decode(body: &Value, mode: Mode) -> Result<EntityInput, ErrorKind> {
    decode::entity(body, &Core, mode, mode == Mode::Full, now()).map_err(|e| e.kind)
}

/// An entity with one attribute `probe` (or the given members) decoded in `mode`.
fn probe(attr: Value, mode: Mode) -> Result<EntityInput, ErrorKind> {
    decode(
        &json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "probe": attr}),
        mode,
    )
}

const OK: Result<(), ErrorKind> = Ok(());
const BAD: Result<(), ErrorKind> = Err(ErrorKind::BadRequestData);

#[track_caller]
fn check(body: Value, expected: Result<(), ErrorKind>) {
    assert_eq!(decode(&body, Mode::Full).map(|_| ()), expected, "{body}");
}

#[track_caller]
fn check_attr(attr: Value, mode: Mode, expected: Result<(), ErrorKind>) {
    assert_eq!(probe(attr.clone(), mode).map(|_| ()), expected, "{attr}");
}

/// The single instance of `probe` (or the named attribute).
fn only(e: &EntityInput, name: &str) -> Attribute {
    let list = e
        .attrs
        .get(format!("{EX}{name}").as_str())
        .or_else(|| e.attrs.get(format!("{BASE}{name}").as_str()))
        .unwrap_or_else(|| panic!("no attribute {name}"));
    match list.as_slice() {
        [AttrInput::Set(a)] => a.clone(),
        other => panic!("expected one instance, got {other:?}"),
    }
}

fn entity_with(members: Value) -> Value {
    let mut e = json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle"});
    if let (Value::Object(m), Value::Object(extra)) = (&mut e, members) {
        m.extend(extra);
    }
    e
}

#[test]
fn entity_ids_and_types() {
    let id = |s: &str| json!({"id": s, "type": "Vehicle"});
    let ty = |t: Value| json!({"id": "urn:ngsi-ld:Vehicle:1", "type": t});
    check(id("urn:ngsi-ld:Vehicle:1"), OK);
    check(id("urn:ngsi-ld:Ciudad:París"), OK);
    check(id("urn:ngsi-ld:Vehicle:A\u{202E}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{200B}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{FEFF}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{FE0F}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{E0100}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{FDD0}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{FFFE}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{115F}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{3164}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{FFA0}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A\u{2800}B"), BAD);
    check(id("urn:ngsi-ld:Vehicle:A<B"), BAD);
    check(id(NGSI_LD_NULL), BAD);
    check(id("Vehicle1"), BAD);
    check(json!({"type": "Vehicle"}), BAD);
    check(json!({"id": "urn:ngsi-ld:Vehicle:1"}), BAD);
    check(ty(json!("Vehicle")), OK);
    check(ty(json!("Škola")), OK);
    check(ty(json!("ngsi-ld:Vehicle")), OK);
    check(ty(json!("https://example.org/Vehicle")), OK);
    check(ty(json!(["Vehicle", "Car"])), OK);
    check(ty(json!("type")), BAD);
    check(ty(json!("9Vehicle")), BAD);
    check(ty(json!("_Vehicle")), BAD);
    check(ty(json!("Veh icle")), BAD);
    check(ty(json!("Veh-icle")), BAD);
    check(ty(json!([])), BAD);
    check(ty(json!(5)), BAD);
    check(
        json!({"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "scope": NGSI_LD_NULL}),
        BAD,
    );
    check(json!([]), BAD);
}

#[test]
fn attribute_names() {
    let attr = |name: &str| entity_with(json!({name: {"type": "Property", "value": 1}}));
    check(attr("speed"), OK);
    check(attr("výška_1"), OK);
    check(attr("ngsi-ld:speed"), OK);
    check(attr("https://example.org/speed"), OK);
    check(attr("my attr"), BAD);
    check(attr("9speed"), BAD);
    check(attr("sp-eed"), BAD);
    check(attr("@speed"), BAD);
    check(attr("datasetId"), BAD);
    check(attr("instanceId"), BAD);
    check(attr("observedAt"), BAD);
    check(attr("unitCode"), BAD);
    check(attr("value"), BAD);
    check(attr("ngsi-ld:datasetId"), BAD);
    check(attr("previousValue"), BAD);
    // Entity members are no attributes, whatever their value.
    check(
        entity_with(json!({"createdAt": "2024-01-01T00:00:00Z"})),
        OK,
    );
}

#[test]
fn embedded_context_in_an_attribute() {
    check_attr(
        json!({"type": "Property", "value": 1, "@context": {"probe": "https://evil.example/p"}}),
        Mode::Full,
        BAD,
    );
    check_attr(
        json!({"type": "Property", "value": 1, "sub": {"type": "Property", "value": 2, "@context": {}}}),
        Mode::Full,
        BAD,
    );
    check_attr(json!({"value": 1, "@context": {}}), Mode::Merge, BAD);
    // At the entity level it is the request's context.
    check(
        entity_with(json!({"@context": ["https://example.org/ctx.jsonld"]})),
        OK,
    );
}

#[test]
fn member_prohibitions() {
    let cases = [
        (
            json!({"type": "Property", "value": 1, "object": "urn:a:b"}),
            BAD,
        ),
        (
            json!({"type": "Property", "value": 1, "languageMap": {"en": "x"}}),
            BAD,
        ),
        (
            json!({"type": "Property", "value": 1, "valueList": [1]}),
            BAD,
        ),
        (
            json!({"type": "Property", "value": 1, "previousValue": 0}),
            BAD,
        ),
        (
            json!({"type": "Property", "value": 1, "entityIdSealed": true}),
            BAD,
        ),
        (
            json!({"type": "Property", "value": 1, "entityTypeSealed": "Vehicle"}),
            BAD,
        ),
        (
            json!({"type": "Property", "value": 1, "valueType": "xsd:double"}),
            OK,
        ),
        (json!({"type": "Property", "value": 1, "valueType": 5}), BAD),
        (
            json!({"type": "Property", "value": 1, "unitCode": "MTR"}),
            OK,
        ),
        (
            json!({"type": "Relationship", "object": "urn:a:b", "unitCode": "MTR"}),
            BAD,
        ),
        (
            json!({"type": "Relationship", "object": "urn:a:b", "value": 42}),
            BAD,
        ),
        (
            json!({"type": "Relationship", "object": "urn:a:b", "languageMap": {"en": "x"}}),
            BAD,
        ),
        (
            json!({"type": "Relationship", "object": "urn:a:b", "previousObject": "urn:a:a"}),
            BAD,
        ),
        (
            json!({"type": "Relationship", "object": "urn:a:b", "objectType": "Parking"}),
            OK,
        ),
        (
            json!({"type": "ListProperty", "valueList": [1.2], "value": 3}),
            BAD,
        ),
        (json!({"type": "ListProperty", "valueList": [1.2]}), OK),
        (
            json!({"type": "ListRelationship", "objectList": ["urn:a:b"], "unitCode": "MTR"}),
            BAD,
        ),
        (
            json!({"type": "ListRelationship", "objectList": ["urn:a:b", {"object": "urn:a:c"}]}),
            OK,
        ),
        (
            json!({"type": "ListRelationship", "objectList": ["not a uri"]}),
            BAD,
        ),
        (
            json!({"type": "JsonProperty", "json": {"a": 1}, "unitCode": "MTR"}),
            BAD,
        ),
        (
            json!({"type": "JsonProperty", "json": {"a": 1}, "value": 1}),
            BAD,
        ),
        (json!({"type": "JsonProperty", "json": 5}), BAD),
        (json!({"json": {"speed": 3, "type": "raw"}}), OK),
        (
            json!({"type": "VocabProperty", "vocab": "Blue", "value": "x"}),
            BAD,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"en": "x"}, "object": "urn:a:b"}),
            BAD,
        ),
        (json!({"type": "Property"}), BAD),
        (json!({"type": "Widget", "value": 1}), BAD),
    ];
    for (attr, expected) in cases {
        check_attr(attr, Mode::Full, expected);
    }
}

#[test]
fn language_properties() {
    let cases = [
        (
            json!({"type": "LanguageProperty", "languageMap": {"sk": "škola", "en": ["school", "academy"], "@none": "x"}}),
            OK,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "langString"}),
            OK,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "rdf:langString"}),
            OK,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "xsd:string"}),
            BAD,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"en": 5}}),
            BAD,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"en": ["a", 5]}}),
            BAD,
        ),
        (
            json!({"type": "LanguageProperty", "languageMap": {"": "x"}}),
            BAD,
        ),
        (json!({"type": "LanguageProperty"}), BAD),
        (
            json!({"type": "LanguageProperty", "languageMap": {"@none": NGSI_LD_NULL}}),
            BAD,
        ),
    ];
    for (attr, expected) in cases {
        check_attr(attr, Mode::Full, expected);
    }
    // The null encoding deletes one language in patches.
    let lp = json!({"type": "LanguageProperty", "languageMap": {"@none": NGSI_LD_NULL}});
    check_attr(lp.clone(), Mode::Merge, OK);
    check_attr(lp, Mode::Partial, OK);
}

#[test]
fn observed_at_is_utc_with_z() {
    let at = |t: Value| json!({"type": "Property", "value": 3, "observedAt": t});
    check_attr(at(json!("2026-08-10T12:00:00Z")), Mode::Full, OK);
    check_attr(at(json!("2026-08-10T12:00:00.123Z")), Mode::Full, OK);
    check_attr(at(json!("2026-08-10T12:00:00+02:00")), Mode::Full, BAD);
    check_attr(at(json!("2026-08-10T12:00:00+00:00")), Mode::Full, BAD);
    check_attr(at(json!("not-a-date")), Mode::Full, BAD);
    check_attr(
        at(json!({"type": "Property", "value": "2026-08-10T12:00:00Z"})),
        Mode::Full,
        BAD,
    );
    check_attr(
        json!({"observedAt": "2026-08-10T12:00:00+02:00"}),
        Mode::Merge,
        BAD,
    );
}

#[test]
fn dataset_ids() {
    let two = |a: Value, b: Value| json!([{"type": "Property", "value": 55, "datasetId": a}, {"type": "Property", "value": 11, "datasetId": b}]);
    check_attr(
        two(json!("@none"), json!("urn:ngsi-ld:Dataset:gps")),
        Mode::Full,
        OK,
    );
    check_attr(
        two(
            json!("urn:ngsi-ld:Dataset:a"),
            json!("urn:ngsi-ld:Dataset:a"),
        ),
        Mode::Full,
        BAD,
    );
    check_attr(
        two(json!("not a uri"), json!("urn:ngsi-ld:Dataset:a")),
        Mode::Full,
        BAD,
    );
    check_attr(
        json!([{"type": "Property", "value": 55}, {"type": "Property", "value": 11, "datasetId": "@none"}]),
        Mode::Full,
        BAD,
    );
    // "@none" is stored as the default instance: no datasetId at all.
    let e = probe(
        two(json!("@none"), json!("urn:ngsi-ld:Dataset:gps")),
        Mode::Full,
    )
    .unwrap();
    let ds: Vec<Option<&str>> = e.attrs[format!("{EX}probe").as_str()]
        .iter()
        .map(AttrInput::dataset_id)
        .collect();
    assert_eq!(ds, [None, Some("urn:ngsi-ld:Dataset:gps")]);
}

#[test]
fn geo_properties() {
    let point = json!({"type": "Point", "coordinates": [17.1, 48.7]});
    let loc = |attr: Value| entity_with(json!({"location": attr}));
    check(loc(json!({"type": "GeoProperty", "value": point})), OK);
    check(loc(point.clone()), OK);
    check(loc(json!({"value": point})), OK);
    check(
        loc(
            json!({"type": "GeoProperty", "value": {"type": "GeometryCollection", "geometries": [point]}}),
        ),
        BAD,
    );
    check(
        loc(json!({"type": "GeometryCollection", "geometries": [point]})),
        BAD,
    );
    check(
        loc(
            json!({"type": "GeoProperty", "value": "{\"type\": \"Point\", \"coordinates\": [17.1, 48.7]}"}),
        ),
        OK,
    );
    check(
        loc(json!({"type": "GeoProperty", "value": "not a geometry"})),
        BAD,
    );
    check(loc(json!({"type": "GeoProperty", "value": "[1, 2]"})), BAD);
    check(loc(json!({"type": "Property", "value": 7})), BAD);
    check(
        loc(json!({"type": "Relationship", "object": "urn:a:b"})),
        BAD,
    );
    check(loc(json!({"value": 7})), BAD);
    check(loc(json!(7)), BAD);
    check(loc(json!({"street": "x"})), BAD);
    check(
        entity_with(json!({"operationSpace": {"type": "Property", "value": 7}})),
        BAD,
    );
    // Other names may hold any Property, also one that looks like geometry text.
    check(
        entity_with(json!({"area": {"type": "Property", "value": "{\"type\": \"Point\"}"}})),
        OK,
    );

    // The string encoding is normalized to the geometry object.
    let e = decode(
        &loc(json!({"type": "GeoProperty", "value": point.to_string()})),
        Mode::Full,
    )
    .unwrap();
    let a = only(&e, "location");
    assert_eq!((a.kind, a.value), (AttrKind::GeoProperty, point.clone()));
    let e = decode(&loc(json!(point.to_string())), Mode::Full).unwrap();
    assert_eq!(only(&e, "location").value, point);
    // A merge may touch location's metadata only.
    let e = decode(
        &loc(json!({"observedAt": "2024-01-01T00:00:00Z"})),
        Mode::Merge,
    )
    .unwrap();
    assert_eq!(only(&e, "location").value, Value::Null);
}

#[test]
fn ngsi_ld_null_on_create() {
    let cases = [
        json!({"type": "Property", "value": NGSI_LD_NULL}),
        json!({"type": "Relationship", "object": NGSI_LD_NULL}),
        json!({"type": "Property", "value": 1, "sub": {"type": "Property", "value": NGSI_LD_NULL}}),
        json!({"type": "Property", "value": 1, "sub": NGSI_LD_NULL}),
        json!({"type": "Property", "value": {"country": NGSI_LD_NULL}}),
        json!({"type": "Property", "value": {"geo": {"country": NGSI_LD_NULL}}}),
        json!({"type": "Property", "value": [1, {"a": NGSI_LD_NULL}]}),
        json!({"type": "ListProperty", "valueList": [NGSI_LD_NULL, 2]}),
        json!({"type": "ListRelationship", "objectList": [NGSI_LD_NULL]}),
        json!({"type": "VocabProperty", "vocab": NGSI_LD_NULL}),
        json!({"value": {"country": NGSI_LD_NULL}}),
        json!({"country": NGSI_LD_NULL}),
        json!(NGSI_LD_NULL),
        json!([NGSI_LD_NULL]),
        json!({"type": "Property", "value": null}),
        json!(null),
    ];
    for attr in cases {
        check_attr(attr, Mode::Full, BAD);
    }
    // Raw JSON is never interpreted.
    check_attr(
        json!({"type": "JsonProperty", "json": {"a": NGSI_LD_NULL}}),
        Mode::Full,
        OK,
    );
}

#[test]
fn ngsi_ld_null_in_patches() {
    let nested =
        json!({"type": "Property", "value": {"street": "Pariser Platz", "country": NGSI_LD_NULL}});
    check_attr(nested.clone(), Mode::Merge, OK);
    check_attr(nested.clone(), Mode::Partial, BAD);
    // A merge keeps the sentinel inside the value for the merge to apply.
    let e = probe(nested, Mode::Merge).unwrap();
    assert_eq!(only(&e, "probe").value["country"], json!(NGSI_LD_NULL));
    for mode in [Mode::Merge, Mode::Partial] {
        for attr in [
            json!(NGSI_LD_NULL),
            json!({"value": NGSI_LD_NULL}),
            json!({"type": "Relationship", "object": NGSI_LD_NULL}),
        ] {
            let e = probe(attr.clone(), mode).unwrap();
            let list = &e.attrs[format!("{EX}probe").as_str()];
            assert!(
                matches!(list.as_slice(), [AttrInput::Delete(None)]),
                "{attr}"
            );
        }
        let e = probe(
            json!({"value": NGSI_LD_NULL, "datasetId": "urn:ds:1"}),
            mode,
        )
        .unwrap();
        let list = &e.attrs[format!("{EX}probe").as_str()];
        assert!(matches!(list.as_slice(), [AttrInput::Delete(Some(d))] if &**d == "urn:ds:1"));
        // A null sub-attribute is a deletion marker.
        let e = probe(json!({"value": 1, "sub": NGSI_LD_NULL}), mode).unwrap();
        let sub = &only(&e, "probe").sub[format!("{EX}sub").as_str()];
        assert_eq!(sub.value, json!(NGSI_LD_NULL));
    }
}

#[test]
fn concise_forms_keep_working() {
    let e = decode(
        &entity_with(json!({
            "speed": 5,
            "name": {"value": "x"},
            "address": {"street": "x", "city": "y"},
            "owner": {"object": "urn:ngsi-ld:Person:1"},
            "where": {"type": "Point", "coordinates": [1.0, 2.0]},
            "pos": {"value": {"type": "Point", "coordinates": [1.0, 2.0]}},
            "label": {"languageMap": {"en": "x"}},
            "colour": {"vocab": "Blue"},
            "sizes": {"valueList": [1, 2]},
            "route": {"objectList": ["urn:a:b"]},
            "raw": {"json": {"a": 1}},
            "temp": {"value": 20, "unitCode": "CEL", "observedAt": "2024-01-01T00:00:00Z",
                     "accuracy": 0.5, "sensor": {"object": "urn:ngsi-ld:Device:1"}},
        })),
        Mode::Full,
    )
    .unwrap();
    let kind = |n: &str| only(&e, n).kind;
    assert_eq!(kind("speed"), AttrKind::Property);
    assert_eq!(kind("name"), AttrKind::Property);
    assert_eq!(
        only(&e, "address").value,
        json!({"street": "x", "city": "y"})
    );
    assert_eq!(kind("owner"), AttrKind::Relationship);
    assert_eq!(kind("where"), AttrKind::GeoProperty);
    assert_eq!(kind("pos"), AttrKind::GeoProperty);
    assert_eq!(kind("label"), AttrKind::LanguageProperty);
    assert_eq!(kind("colour"), AttrKind::VocabProperty);
    assert_eq!(only(&e, "colour").value, json!(format!("{EX}Blue")));
    assert_eq!(kind("sizes"), AttrKind::ListProperty);
    assert_eq!(kind("route"), AttrKind::ListRelationship);
    assert_eq!(kind("raw"), AttrKind::JsonProperty);
    let temp = only(&e, "temp");
    assert_eq!(temp.unit_code.as_deref(), Some("CEL"));
    assert_eq!(temp.sub.len(), 2);
    assert_eq!(
        temp.sub[format!("{EX}sensor").as_str()].kind,
        AttrKind::Relationship
    );
    // Multi-instance arrays versus array values.
    let e = probe(
        json!([{"value": 1}, {"value": 2, "datasetId": "urn:ds:2"}]),
        Mode::Full,
    )
    .unwrap();
    assert_eq!(e.attrs[format!("{EX}probe").as_str()].len(), 2);
    let e = probe(json!([1, 2]), Mode::Full).unwrap();
    assert_eq!(only(&e, "probe").value, json!([1, 2]));
}

#[test]
fn ngsildproof() {
    let proof =
        json!({"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofValue": "z"});
    let body = |attr: Value| entity_with(json!({"ngsildproof": attr}));
    let e = decode(
        &body(json!({"type": "Property", "value": proof, "entityIdSealed": "urn:ngsi-ld:Vehicle:1", "entityTypeSealed": "Vehicle"})),
        Mode::Full,
    )
    .unwrap();
    let list = &e.attrs[NGSILD_PROOF];
    let [AttrInput::Set(a)] = list.as_slice() else {
        panic!("{list:?}")
    };
    assert_eq!(a.value, proof);
    assert_eq!(
        a.sub[ENTITY_ID_SEALED].value,
        json!("urn:ngsi-ld:Vehicle:1")
    );
    assert_eq!(
        a.sub[ENTITY_TYPE_SEALED].value,
        json!(format!("{EX}Vehicle"))
    );
    assert_eq!(a.sub.len(), 2);
    check(
        body(json!({"type": "Property", "value": "not-a-proof-object"})),
        BAD,
    );
    check(
        body(json!({"type": "Property", "value": proof, "entityTypeSealed": 42})),
        BAD,
    );
    check(
        body(json!({"type": "Relationship", "object": "urn:a:b"})),
        BAD,
    );
}

#[test]
fn attribute_bodies_and_path_names() {
    let at = |v: Value, mode: Mode, name: &str| {
        decode::attribute_instances(&v, &Core, mode, now(), name)
            .map(|_| ())
            .map_err(|e| e.kind)
    };
    assert_eq!(
        at(
            json!({"value": {"country": NGSI_LD_NULL}}),
            Mode::Partial,
            "address"
        ),
        BAD
    );
    assert_eq!(
        at(
            json!({"value": {"country": NGSI_LD_NULL}}),
            Mode::Merge,
            "address"
        ),
        OK
    );
    assert_eq!(
        at(
            json!({"type": "Property", "value": 7}),
            Mode::Full,
            "location"
        ),
        BAD
    );
    assert_eq!(at(json!({"value": 7}), Mode::Partial, "location"), BAD);
    assert_eq!(
        at(
            json!({"observedAt": "2024-01-01T00:00:00Z"}),
            Mode::Partial,
            "location"
        ),
        OK
    );
    let attrs = |v: Value| {
        decode::attributes(&v, &Core, Mode::Full, now())
            .map(|_| ())
            .map_err(|e| e.kind)
    };
    assert_eq!(attrs(json!({"speed": 1})), OK);
    assert_eq!(attrs(json!({"datasetId": {"value": 1}})), BAD);
    assert_eq!(attrs(json!([1])), BAD);
}

#[test]
fn names() {
    let check_name = |n: &str| decode::check_name(n, "t").is_ok();
    for ok in [
        "speed",
        "výška_1",
        "a1",
        "ngsi-ld:x",
        "https://ex.org/a#b",
        "字",
    ] {
        assert!(check_name(ok), "{ok}");
    }
    for bad in [
        "",
        "1a",
        "_a",
        "a b",
        "a-b",
        "a.b",
        "@a",
        "a\u{200B}",
        "ex:a b",
        "ex:a\u{202E}",
    ] {
        assert!(!check_name(bad), "{bad}");
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_json(s in "\\PC{0,64}", n in any::<i64>(), key in "[a-zA-Z@:_ -]{0,12}") {
        let bodies = [
            json!({"id": "urn:a:b", "type": "T", key.clone(): s.clone()}),
            json!({"id": "urn:a:b", "type": "T", "p": {"type": "GeoProperty", "value": s.clone()}}),
            json!({"id": "urn:a:b", "type": "T", "p": {key.clone(): n, "value": {key.clone(): s.clone()}}}),
            json!({"id": s.clone(), "type": key.clone()}),
            json!({"id": "urn:a:b", "type": "T", "location": s.clone()}),
        ];
        for b in &bodies {
            for mode in [Mode::Full, Mode::Merge, Mode::Partial] {
                let _ = decode::entity(b, &Core, mode, true, now());
            }
        }
    }

    #[test]
    fn accepted_ids_have_no_invisible_characters(s in "urn:x:\\PC{1,16}") {
        let ok = decode(&json!({"id": s.clone(), "type": "T"}), Mode::Full).is_ok();
        prop_assert_eq!(ok, !s.chars().any(|c| c.is_whitespace() || c.is_control()
            || dosi_ngsi::ids::is_invisible(c) || "<>\"{}|\\^`".contains(c)));
    }
}
