//! Subscription JSON in and out: the validation of `parse` (each invalid
//! subscription is the precise problem, naming the member), updates, and
//! that `render` is faithful to `parse` whatever the request contexts.

use std::sync::Arc;

use dosi_jsonld::{process_sync_local, ActiveContext};
use dosi_ngsi::{ErrorKind, TenantId, Timestamp};
use dosi_notify::engine::SubscriptionView;
use dosi_notify::model::{BodyType, DeliveryStats, Join, Status, StoredSubscription, Trigger};
use dosi_notify::render::RenderOptions;
use dosi_notify::{parse, render, Subscription};
use proptest::prelude::*;
use serde_json::{json, Value};

const NOW: Timestamp = Timestamp(1_750_000_000_000_000);

fn ctx() -> ActiveContext {
    process_sync_local(&json!({
        "Building": "https://ex.org/Building",
        "Vehicle": "https://ex.org/Vehicle",
        "name": "https://ex.org/name",
        "height": "https://ex.org/height",
        "loc2": "https://ex.org/loc2",
    }))
    .expect("test context")
}

/// Another context naming the same IRIs differently (or not at all).
fn other_ctx() -> ActiveContext {
    process_sync_local(&json!({ "nm": "https://ex.org/name", "B": "https://ex.org/Building" }))
        .expect("other context")
}

fn base() -> Value {
    json!({
        "id": "urn:ngsi-ld:Subscription:s1",
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}
    })
}

/// `base()` with `patch` merged in: objects merge member by member, `null` removes.
fn with(patch: Value) -> Value {
    fn merge(into: &mut Value, patch: Value) {
        match (into, patch) {
            (Value::Object(m), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        m.remove(&k);
                    } else if let Some(slot) = m.get_mut(&k) {
                        merge(slot, v);
                    } else {
                        m.insert(k, v);
                    }
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut doc = base();
    merge(&mut doc, patch);
    doc
}

fn parse(doc: &Value) -> dosi_ngsi::Result<Subscription> {
    parse::subscription(doc, &ctx(), &TenantId::default_tenant(), NOW)
}

fn ok(doc: Value) -> Subscription {
    parse(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

/// `doc` is refused as BadRequestData with a detail that names `member`.
fn bad(doc: Value, member: &str) {
    match parse(&doc) {
        Ok(_) => panic!("accepted, expected BadRequestData about {member}: {doc}"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::BadRequestData, "{doc}: {e}");
            assert!(
                e.detail.contains(member),
                "detail '{}' does not name {member}",
                e.detail
            );
        }
    }
}

#[test]
fn invalid_subscriptions_are_bad_request_data_naming_the_member() {
    type Case = (Value, &'static str);
    let cases: Vec<Case> = vec![
        (json!([1]), "JSON object"),
        (with(json!({"id": "not a uri"})), "id"),
        (with(json!({"id": 5})), "id"),
        (with(json!({"type": "Entity"})), "type"),
        (with(json!({"type": null})), "type"),
        (
            with(json!({"entities": null})),
            "entities or watchedAttributes",
        ),
        (with(json!({"entities": []})), "entities"),
        (with(json!({"entities": "Building"})), "entities"),
        (
            with(json!({"entities": [{"id": "urn:x:1"}]})),
            "entities[0].type",
        ),
        (
            with(json!({"entities": [{"type": "A,"}]})),
            "entities[0].type",
        ),
        (
            with(json!({"entities": [{"type": "A", "id": "x"}]})),
            "entities[0].id",
        ),
        (
            with(json!({"entities": [{"type": "A", "idPattern": "a("}]})),
            "entities[0].idPattern",
        ),
        (
            with(json!({"entities": [{"type": "A", "idPattern": "a)|(b"}]})),
            "idPattern",
        ),
        (with(json!({"watchedAttributes": []})), "watchedAttributes"),
        (
            with(json!({"watchedAttributes": ["has space"]})),
            "watchedAttributes",
        ),
        (
            with(json!({"watchedAttributes": ["@id"]})),
            "watchedAttributes",
        ),
        (with(json!({"watchedAttributes": [3]})), "watchedAttributes"),
        (
            with(json!({"notificationTrigger": ["entityChanged"]})),
            "notificationTrigger",
        ),
        (
            with(json!({"notificationTrigger": []})),
            "notificationTrigger",
        ),
        (with(json!({"timeInterval": 0})), "timeInterval"),
        (with(json!({"timeInterval": -5})), "timeInterval"),
        (with(json!({"timeInterval": "5"})), "timeInterval"),
        (with(json!({"throttling": -30})), "throttling"),
        (with(json!({"throttling": 0})), "throttling"),
        (
            with(json!({"timeInterval": 10, "throttling": 30})),
            "timeInterval",
        ),
        (
            with(json!({"timeInterval": 10, "watchedAttributes": ["name"]})),
            "timeInterval",
        ),
        (with(json!({"q": "name=="})), "q"),
        (with(json!({"q": "((name"})), "q"),
        (with(json!({"q": 5})), "q"),
        (
            with(json!({"geoQ": {"geometry": "Point", "coordinates": [1, 2]}})),
            "geoQ",
        ),
        (
            with(
                json!({"geoQ": {"georel": "near;maxDistance==1", "geometry": "Blob", "coordinates": [1, 2]}}),
            ),
            "geoQ",
        ),
        (
            with(json!({"geoQ": {"georel": "within", "geometry": "Point", "coordinates": "x"}})),
            "geoQ",
        ),
        (
            with(
                json!({"geoQ": {"georel": "intersects", "geometry": "Point", "coordinates": [1, 2], "geoproperty": "a b"}}),
            ),
            "geoQ",
        ),
        (with(json!({"scopeQ": "nope"})), "scopeQ"),
        (with(json!({"csf": "(("})), "csf"),
        (with(json!({"lang": ""})), "lang"),
        (with(json!({"datasetId": ["not a uri"]})), "datasetId"),
        (with(json!({"isActive": "yes"})), "isActive"),
        (
            with(json!({"expiresAt": "2000-01-01T00:00:00Z"})),
            "expiresAt",
        ),
        (with(json!({"expiresAt": "tomorrow"})), "expiresAt"),
        (
            with(json!({"jsonldContext": "unknownContext"})),
            "jsonldContext",
        ),
        (with(json!({"notification": null})), "notification"),
        (
            with(json!({"notification": {"endpoint": null}})),
            "notification.endpoint",
        ),
        (
            with(json!({"notification": {"endpoint": {"uri": null}}})),
            "notification.endpoint.uri",
        ),
        (
            with(json!({"notification": {"endpoint": {"uri": "ftp://h/x"}}})),
            "notification.endpoint.uri",
        ),
        (
            with(json!({"notification": {"endpoint": {"uri": "notify"}}})),
            "notification.endpoint.uri",
        ),
        (
            with(json!({"notification": {"endpoint": {"uri": "mqtt://broker:1883"}}})),
            "MQTT topic",
        ),
        (
            with(json!({"notification": {"endpoint": {"accept": "text/plain"}}})),
            "notification.endpoint.accept",
        ),
        (
            with(json!({"notification": {"endpoint": {"timeout": -1}}})),
            "notification.endpoint.timeout",
        ),
        (
            with(json!({"notification": {"endpoint": {"cooldown": 1.5}}})),
            "notification.endpoint.cooldown",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"receiverInfo": [{"key": "K", "value": 42}]}}}),
            ),
            "receiverInfo[0]",
        ),
        (
            with(json!({"notification": {"endpoint": {"receiverInfo": [{"key": "K"}]}}})),
            "receiverInfo[0]",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"receiverInfo": [{"key": 5, "value": "v"}]}}}),
            ),
            "receiverInfo[0]",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"receiverInfo": [{"key": "a b", "value": "v"}]}}}),
            ),
            "receiverInfo[0]",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"receiverInfo": [{"key": "Content-Length", "value": "1"}]}}}),
            ),
            "receiverInfo[0]",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"receiverInfo": [{"key": "X", "value": "a\r\nb"}]}}}),
            ),
            "receiverInfo[0]",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"notifierInfo": [{"key": "K", "value": {"a": 1}}]}}}),
            ),
            "notifierInfo[0]",
        ),
        (
            with(
                json!({"notification": {"endpoint": {"notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]}}}),
            ),
            "MQTT-QoS",
        ),
        (
            with(json!({"notification": {"format": "xml"}})),
            "notification.format",
        ),
        (
            with(json!({"notification": {"format": "keyValues", "showChanges": true}})),
            "showChanges",
        ),
        (
            with(json!({"notification": {"format": "simplified", "showChanges": true}})),
            "showChanges",
        ),
        (
            with(json!({"notification": {"attributes": []}})),
            "notification.attributes",
        ),
        (
            with(json!({"notification": {"pick": []}})),
            "notification.pick",
        ),
        (
            with(json!({"notification": {"omit": []}})),
            "notification.omit",
        ),
        (
            with(json!({"notification": {"pick": ["id"], "omit": ["id"]}})),
            "omit",
        ),
        (
            with(json!({"notification": {"pick": ["id"], "attributes": ["name"]}})),
            "pick",
        ),
        (
            with(json!({"notification": {"omit": ["id"], "attributes": ["name"]}})),
            "omit",
        ),
        (
            with(json!({"notification": {"join": "sideways"}})),
            "notification.join",
        ),
        (
            with(json!({"notification": {"joinLevel": 0}})),
            "notification.joinLevel",
        ),
        (
            with(json!({"notification": {"sysAttrs": "true"}})),
            "notification.sysAttrs",
        ),
    ];
    for (doc, member) in cases {
        bad(doc, member);
    }
}

#[test]
fn valid_subscriptions_parse_with_names_expanded() {
    let s = ok(with(json!({
        "subscriptionName": "s",
        "entities": [{"type": "Building", "idPattern": "urn:b:.*"}, {"type": "(Building;Vehicle)|ex:T", "id": "urn:v:1"}],
        "watchedAttributes": ["name", "https://other.org/x"],
        "notificationTrigger": ["entityCreated", "attributeUpdated", "entityCreated"],
        "q": "height>10;name",
        "geoQ": {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [8.6, 49.4], "geoproperty": "loc2"},
        "scopeQ": "/Madrid/#",
        "csf": "a==1",
        "datasetId": ["urn:ngsi-ld:Dataset:d1", "@none"],
        "isActive": false,
        "throttling": 0.5,
        "expiresAt": "2099-01-01T00:00:00Z",
        "jsonldContext": "http://127.0.0.1:9/ctx.jsonld",
        "notification": {"attributes": ["name"], "format": "concise", "sysAttrs": true, "showChanges": true,
            "join": "inline", "joinLevel": 2,
            "endpoint": {"uri": "mqtt://broker:1883/city/notify", "accept": "application/ld+json", "timeout": 500, "cooldown": 1000,
                "receiverInfo": [{"key": "Authorization", "value": "Bearer abc"}],
                "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}, {"key": "Prefer", "value": "body=json"}]}},
        "status": "expired",
        "createdAt": "not even a date",
        "__context": "http://hijacked/ctx.jsonld"
    })));
    assert_eq!(s.entities.len(), 2);
    assert!(s.entities[0]
        .types
        .matches(&[Arc::from("https://ex.org/Building")]));
    let re = s.entities[0].id_pattern.as_ref().expect("pattern");
    assert!(re.is_match("urn:b:1") && !re.is_match("xurn:b:1"));
    assert_eq!(
        s.entities[1].id.as_ref().map(|i| i.as_str()),
        Some("urn:v:1")
    );
    let watched: Vec<&str> = s.watched.iter().flatten().map(|w| &**w).collect();
    assert_eq!(watched, ["https://ex.org/name", "https://other.org/x"]);
    assert_eq!(
        s.triggers,
        [Trigger::EntityCreated, Trigger::AttributeUpdated]
    );
    assert_eq!(
        s.q.as_ref().map(|q| q.attribute_names()),
        Some(vec![
            "https://ex.org/height".to_string(),
            "https://ex.org/name".to_string()
        ])
    );
    assert_eq!(
        s.geo_q.as_ref().map(|g| g.geoproperty.as_str()),
        Some("https://ex.org/loc2")
    );
    assert_eq!(s.status(NOW), Status::Paused);
    assert_eq!(s.throttling, Some(0.5));
    let n = &s.notification;
    assert_eq!(n.join, Some(Join::Inline));
    assert_eq!(n.endpoint.accept, BodyType::JsonLd);
    assert_eq!(n.endpoint.notifier("MQTT-QoS"), Some("1"));
    assert_eq!(n.endpoint.timeout_ms, Some(500));
}

#[test]
fn defaults_and_generated_id() {
    let s = ok(with(json!({"id": null})));
    assert!(s.id.starts_with("urn:ngsi-ld:Subscription:"), "{}", s.id);
    assert_eq!(s.triggers, Trigger::defaults());
    assert!(s.is_active && s.watched.is_none() && s.expires_at.is_none());
    assert_eq!(s.notification.endpoint.accept, BodyType::Json);
    assert_eq!(s.status(NOW), Status::Active);
    assert_eq!((s.created_at, s.modified_at), (NOW, NOW));
    // watchedAttributes alone select any entity; a periodic one needs entities.
    ok(with(
        json!({"entities": null, "watchedAttributes": ["name"]}),
    ));
    ok(with(
        json!({"timeInterval": 5, "notificationTrigger": ["entityUpdated"]}),
    ));
}

fn view(sub: Subscription, stats: DeliveryStats) -> SubscriptionView {
    let stored = StoredSubscription {
        tenant: sub.tenant.clone(),
        doc: Value::Null,
        context: None,
        created_at: sub.created_at,
        modified_at: sub.modified_at,
    };
    SubscriptionView {
        sub: Arc::new(sub),
        stored,
        stats,
    }
}

#[test]
fn rendering_for_get() {
    let s = ok(with(
        json!({"timeInterval": 5, "notification": {"format": "keyValues", "endpoint": {"accept": "application/json"}}}),
    ));
    let opts = RenderOptions {
        sys_attrs: false,
        now: NOW,
    };
    let got = render::subscription(&view(s.clone(), DeliveryStats::default()), &ctx(), &opts);
    assert_eq!(
        got,
        json!({
            "id": "urn:ngsi-ld:Subscription:s1",
            "type": "Subscription",
            "entities": [{"type": "Building"}],
            "notificationTrigger": ["attributeCreated", "attributeUpdated"],
            "timeInterval": 5,
            "notification": {"format": "keyValues", "endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}},
            "status": "active"
        })
    );
    // Compacted with whatever context the request names.
    let core = render::subscription(
        &view(s.clone(), DeliveryStats::default()),
        &ActiveContext::core(),
        &opts,
    );
    assert_eq!(core["entities"][0]["type"], "https://ex.org/Building");
    // Delivery statistics once something was attempted; timestamps on request.
    let t = Timestamp(NOW.0 + 1_000_000);
    let stats = DeliveryStats {
        times_sent: 2,
        times_failed: 1,
        last_notification: Some(t),
        last_success: Some(NOW),
        last_failure: Some(t),
    };
    let opts = RenderOptions {
        sys_attrs: true,
        now: NOW,
    };
    let got = render::subscription(&view(s, stats), &ctx(), &opts);
    let n = &got["notification"];
    assert_eq!(
        (
            n["timesSent"].clone(),
            n["timesFailed"].clone(),
            n["status"].clone()
        ),
        (json!(2), json!(1), json!("failed"))
    );
    assert_eq!(n["lastFailure"], t.to_iso());
    assert_eq!(
        (got["createdAt"].clone(), got["modifiedAt"].clone()),
        (json!(NOW.to_iso()), json!(NOW.to_iso()))
    );
    // Expired wins over paused.
    let s = ok(with(
        json!({"isActive": false, "expiresAt": Timestamp(NOW.0 + 1).to_iso()}),
    ));
    let later = RenderOptions {
        sys_attrs: false,
        now: Timestamp(NOW.0 + 2),
    };
    let got = render::subscription(&view(s, DeliveryStats::default()), &ctx(), &later);
    assert_eq!(
        (got["status"].clone(), got["isActive"].clone()),
        (json!("expired"), json!(false))
    );
}

fn update(current: &Subscription, fragment: Value) -> dosi_ngsi::Result<parse::Updated> {
    parse::update(current, &fragment, &ctx(), Timestamp(NOW.0 + 10))
}

#[test]
fn updates_replace_top_level_members() {
    let current = ok(with(json!({"timeInterval": 5, "q": "height>3"})));
    let u = update(&current, json!({"type": "Subscription", "notification": {"endpoint": {"uri": "http://other:1/n"}}, "q": null, "isActive": false}))
        .expect("applies");
    assert_eq!(u.sub.notification.endpoint.uri.as_str(), "http://other:1/n");
    assert!(u.sub.q.is_none() && !u.sub.is_active);
    assert_eq!(u.sub.time_interval, Some(5.0), "untouched members stay");
    assert_eq!(
        (u.sub.created_at, u.sub.modified_at),
        (NOW, Timestamp(NOW.0 + 10))
    );
    assert_eq!(u.doc["isActive"], false);
    // The merged document is what a restart parses back.
    let again = parse(&u.doc).expect("reparses");
    assert_eq!(
        again.notification.endpoint.uri,
        u.sub.notification.endpoint.uri
    );

    // Each refused as the whole subscription would be.
    let refused = |fragment: Value, member: &str| {
        let e = update(&current, fragment.clone())
            .err()
            .unwrap_or_else(|| panic!("{fragment} accepted"));
        assert_eq!(e.kind, ErrorKind::BadRequestData, "{fragment}: {e}");
        assert!(e.detail.contains(member), "{fragment}: {}", e.detail);
    };
    refused(
        json!({"notification": {"format": "keyValues"}}),
        "notification.endpoint",
    );
    refused(
        json!({"notification": {"format": "keyValues", "endpoint": null}}),
        "notification.endpoint",
    );
    refused(json!({"expiresAt": "2020-08-01T22:07:00Z"}), "expiresAt");
    refused(json!({"throttling": 3}), "timeInterval");
    refused(json!({"id": "urn:ngsi-ld:Subscription:other"}), "id");
    refused(json!({"id": null}), "id");
    refused(json!({"entities": null}), "entities or watchedAttributes");
    refused(json!({}), "no member");
    refused(json!({"@context": "http://x/c"}), "no member");
}

#[test]
fn an_expired_subscription_can_be_changed_and_revived() {
    let current = ok(with(json!({"expiresAt": Timestamp(NOW.0 + 5).to_iso()})));
    // Past its expiry (now = NOW + 10), other members still change...
    let u = update(&current, json!({"isActive": false})).expect("applies");
    assert_eq!(u.sub.status(Timestamp(NOW.0 + 10)), Status::Expired);
    // ...and a new expiresAt in the future makes it active again.
    let u = update(&current, json!({"expiresAt": "2030-08-01T22:07:00Z"})).expect("applies");
    assert_eq!(u.sub.status(Timestamp(NOW.0 + 10)), Status::Active);
}

// ---- render ∘ parse is faithful ----------------------------------------

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(items)
}

fn doc_strategy() -> impl Strategy<Value = Value> {
    let entities = prop::collection::vec(
        (
            pick(&[
                "Building",
                "Vehicle",
                "Building;Vehicle",
                "(Building|Vehicle);ex:T",
                "https://x.org/T",
            ]),
            prop::option::of(pick(&["urn:ngsi-ld:Building:1", "urn:x:2"])),
            prop::option::of(pick(&["urn:ngsi-ld:.*", "urn:x:[0-9]+"])),
        ),
        0..3,
    );
    let watched = prop::option::of(prop::sample::subsequence(
        vec!["name", "height", "https://x.org/a"],
        1..3,
    ));
    let triggers = prop::option::of(prop::sample::subsequence(
        vec![
            "entityCreated",
            "entityUpdated",
            "entityDeleted",
            "attributeCreated",
            "attributeUpdated",
            "attributeDeleted",
        ],
        1..4,
    ));
    let q = prop::option::of(pick(&[
        "height>10",
        "name==\"a b\"",
        "height>10;name|height<=2",
        "name~=\"^x\"",
        "height==1..5",
        "!name",
        "name!=\"x\",\"y\"",
    ]));
    let geo = prop::option::of(pick(&[
        r#"{"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": [1.5, 2]}"#,
        r#"{"georel": "within", "geometry": "Polygon", "coordinates": [[[0,0],[0,1],[1,1],[0,0]]], "geoproperty": "loc2"}"#,
    ]));
    let timing = pick(&["none", "interval", "throttling"]);
    let notification = (
        pick(&["all", "attributes", "pick", "omit"]),
        pick(&["normalized", "concise", "keyValues"]),
        any::<bool>(),
        any::<bool>(),
        pick(&[
            "http://127.0.0.1:9/n",
            "https://h.example/x?y=1",
            "mqtt://b:1883/t/1",
        ]),
        pick(&[
            "application/json",
            "application/ld+json",
            "application/geo+json",
        ]),
        prop::option::of(1u64..10_000),
        prop::option::of(pick(&["flat", "inline"])),
    );
    (entities, watched, triggers, q, geo, timing, any::<bool>(), notification).prop_map(
        |(entities, watched, triggers, q, geo, timing, active, n)| {
            let (sel, format, sys, changes, uri, accept, timeout, join) = n;
            let mut d = json!({"id": "urn:ngsi-ld:Subscription:p", "type": "Subscription"});
            let ents: Vec<Value> = entities
                .into_iter()
                .map(|(t, id, pat)| {
                    let mut e = json!({"type": t});
                    if let Some(id) = id { e["id"] = json!(id); }
                    if let Some(p) = pat { e["idPattern"] = json!(p); }
                    e
                })
                .collect();
            let periodic = timing == "interval";
            if !ents.is_empty() || periodic {
                d["entities"] = if ents.is_empty() { json!([{"type": "Building"}]) } else { json!(ents) };
            }
            match watched {
                Some(w) if !periodic => d["watchedAttributes"] = json!(w),
                _ if d.get("entities").is_none() => d["watchedAttributes"] = json!(["name"]),
                _ => {}
            }
            if let Some(t) = triggers { d["notificationTrigger"] = json!(t); }
            if let Some(q) = q { d["q"] = json!(q); }
            if let Some(g) = geo { d["geoQ"] = serde_json::from_str(g).expect("geoQ sample"); }
            match timing {
                "interval" => d["timeInterval"] = json!(7.5),
                "throttling" => d["throttling"] = json!(30),
                _ => {}
            }
            d["isActive"] = json!(active);
            d["expiresAt"] = json!("2099-05-01T10:00:00.250Z");
            let mut np = json!({"format": format, "sysAttrs": sys, "endpoint": {"uri": uri, "accept": accept}});
            match sel {
                "attributes" => np["attributes"] = json!(["name", "https://x.org/a"]),
                "pick" => np["pick"] = json!(["id", "height"]),
                "omit" => np["omit"] = json!(["type", "name"]),
                _ => {}
            }
            if changes && format != "keyValues" { np["showChanges"] = json!(true); }
            if let Some(t) = timeout { np["endpoint"]["timeout"] = json!(t); }
            if let Some(j) = join { np["join"] = json!(j); np["joinLevel"] = json!(2); }
            np["endpoint"]["receiverInfo"] = json!([{"key": "X-Trace", "value": "1"}]);
            d["notification"] = np;
            d
        },
    )
}

fn rendered(doc: &Value, read: &ActiveContext, show: &ActiveContext) -> Value {
    let s = parse::subscription(doc, read, &TenantId::default_tenant(), NOW)
        .unwrap_or_else(|e| panic!("{doc}: {e}"));
    Value::Object(render::document(&s, show))
}

proptest! {
    #[test]
    fn render_then_parse_gives_the_same_subscription(doc in doc_strategy()) {
        let (a, b, core) = (ctx(), other_ctx(), ActiveContext::core());
        let first = rendered(&doc, &a, &a);
        // Parsing what was rendered changes nothing ...
        prop_assert_eq!(&rendered(&first, &a, &a), &first);
        // ... also through a request with another context or none at all.
        for c in [&b, &core] {
            let via = rendered(&doc, &a, c);
            prop_assert_eq!(&rendered(&via, c, &a), &first);
        }
    }

    #[test]
    fn parse_never_panics(doc in any_json(4)) {
        let _ = parse::subscription(&doc, &ctx(), &TenantId::default_tenant(), NOW);
        let _ = parse::subscription(&with(json!({"notification": doc.clone()})), &ctx(), &TenantId::default_tenant(), NOW);
        let _ = parse::subscription(&with(json!({"entities": [doc]})), &ctx(), &TenantId::default_tenant(), NOW);
    }
}

fn any_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z:/.@ ]{0,12}".prop_map(Value::from),
        pick(&[
            "Subscription",
            "Building",
            "http://h/n",
            "keyValues",
            "flat"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        let keys = pick(&[
            "id",
            "type",
            "entities",
            "notification",
            "endpoint",
            "uri",
            "q",
            "geoQ",
            "format",
            "pick",
            "watchedAttributes",
            "timeInterval",
            "key",
            "value",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((keys, inner), 0..5).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}
