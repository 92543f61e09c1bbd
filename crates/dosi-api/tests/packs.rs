//! The domain packs' `@context`s are built in: a request naming one in its
//! `Link` header needs no network, and every pack example round-trips.

mod common;

use serde_json::Value;

const PARKING: &str = "<https://dosi.city/contexts/parking.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";
const ALL: &str = "<https://dosi.city/contexts/packs.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

#[tokio::test]
async fn pack_contexts_resolve_without_network() {
    let app = common::app().await;
    let (_, spot) = dosi_packs::entity_type("ParkingSpot").unwrap();
    let body = spot.example.to_string();
    let id = spot.example["id"].as_str().unwrap().to_string();
    let r = app
        .call(
            "POST",
            "/ngsi-ld/v1/entities",
            &[("content-type", "application/json"), ("link", PARKING)],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Without the context the terms come back expanded to the SDM IRIs…
    let plain = app.get(&format!("/ngsi-ld/v1/entities/{id}")).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(
        plain.body["https://smartdatamodels.org/dataModel.Parking/width"].is_object(),
        "{}",
        plain.text
    );
    // …with the pack's own context the entity is short again, and valid…
    let short = app
        .call(
            "GET",
            &format!("/ngsi-ld/v1/entities/{id}"),
            &[("link", PARKING)],
            None,
        )
        .await;
    assert_eq!(short.status, 200, "{}", short.text);
    let mut e: Value = short.body.clone();
    e.as_object_mut().unwrap().remove("@context");
    assert_eq!(
        e["width"]["value"], spot.example["width"]["value"],
        "{}",
        short.text
    );
    dosi_packs::validate(&e).unwrap_or_else(|errs| panic!("{errs:?}: {e}"));
    // …and with the merged packs context, terms the packs define differently
    // keep a vocabulary prefix (docs/packs/README.md).
    let merged = app
        .call(
            "GET",
            &format!("/ngsi-ld/v1/entities/{id}"),
            &[("link", ALL)],
            None,
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert!(
        merged.body["sdm-parking:category"].is_object(),
        "{}",
        merged.text
    );
    assert!(merged.body["width"].is_object(), "{}", merged.text);
}

#[tokio::test]
async fn pack_contexts_are_served_over_http() {
    let app = common::app().await;
    for p in dosi_packs::packs() {
        let r = app.get(&format!("/contexts/{}.jsonld", p.name)).await;
        assert_eq!(r.status, 200, "{}: {}", p.name, r.text);
        assert_eq!(r.body, p.context(), "{}", p.name);
    }
    let all = app.get("/contexts/packs.jsonld").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert!(all.body["@context"].is_object() || all.body["@context"].is_array());
    // The same documents under the NGSI-LD context API, by their URL.
    let by_url = app
        .get("/ngsi-ld/v1/jsonldContexts/https%3A%2F%2Fdosi.city%2Fcontexts%2Fflood.jsonld")
        .await;
    assert_eq!(by_url.status, 200, "{}", by_url.text);
    assert_eq!(by_url.body, dosi_packs::pack("flood").unwrap().context());
    let missing = app.get("/contexts/nope.jsonld").await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert!(
        missing.body["detail"]
            .as_str()
            .unwrap()
            .contains("parking.jsonld"),
        "{}",
        missing.text
    );
}
