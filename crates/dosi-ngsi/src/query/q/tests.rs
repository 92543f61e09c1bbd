use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::error::ErrorKind;
use crate::query::test_support::{entity, expand};

fn parse_expanded(q: &str) -> Q {
    let mut parsed = Q::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    parsed.expand_names(&expand);
    parsed
}

#[track_caller]
fn check(q: &str, e: Value, expected: bool) {
    let parsed = parse_expanded(q);
    assert_eq!(parsed.matches(&entity(e.clone())), expected, "{q} on {e}");
}

#[track_caller]
fn check_err(q: &str, kind: ErrorKind) {
    match Q::parse(q) {
        Ok(p) => panic!("{q}: expected {kind:?}, parsed as {p}"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{q}: {e}");
            assert!(e.detail.starts_with("q: "), "{q}: {e}");
        }
    }
}

#[track_caller]
fn check_canon(q: &str, canon: &str) {
    assert_eq!(
        Q::parse(q)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .to_string(),
        canon
    );
}

#[test]
fn numbers_and_strings() {
    let car = || json!({"speed": 55, "brand": "Mercedes", "weight": 1.5e3, "temp": -3.5});
    check("speed>50", car(), true);
    check("speed>55", car(), false);
    check("speed>=55", car(), true);
    check("speed<55", car(), false);
    check("speed<=55", car(), true);
    check("speed==55", car(), true);
    check("speed==55.0", car(), true);
    check("speed!=55", car(), false);
    check("speed!=54", car(), true);
    check("weight==1500", car(), true);
    check("weight>1e3", car(), true);
    check("temp<-3", car(), true);
    check("temp==-3.5", car(), true);
    check("brand==\"Mercedes\"", car(), true);
    check("brand==\"mercedes\"", car(), false);
    check("brand!=\"Audi\"", car(), true);
    check("brand>\"Audi\"", car(), true);
    check("brand<\"Audi\"", car(), false);
    check("speed>50;brand==\"Mercedes\"", car(), true);
    check("speed>60;brand==\"Mercedes\"", car(), false);
    // Unlike kinds never match, in either direction, and are not errors.
    check("speed==\"55\"", car(), false);
    check("brand>5", car(), false);
    check("speed!=\"55\"", car(), true);
    check("brand==true", car(), false);
    // Terms on missing attributes do not match (except `!attr`).
    check("nothing==1", car(), false);
    check("nothing!=1", car(), false);
    check("nothing<1", car(), false);
}

#[test]
fn logic_and_grouping() {
    let e = || json!({"a": 1, "b": 2, "c": 3});
    check("a==1|b==9;c==9", e(), true); // AND binds tighter: a==1 | (b==9;c==9)
    check("(a==1|b==9);c==9", e(), false);
    check("a==9|b==2;c==3", e(), true);
    check("a==9|b==2;c==9", e(), false);
    check("a==1;b==2;c==3", e(), true);
    check("a==0|b==0|c==3", e(), true);
    check("((a==1))", e(), true);
    check("(a==9|(b==2;(c==3)))", e(), true);
    check("(a==9|(b==2;(c==4)))", e(), false);
    check("a;b;c", e(), true);
    check("a;z", e(), false);
    check("!z", e(), true);
    check("!a", e(), false);
    check("!z;a==1", e(), true);
    check(" a == 1 ; b == 2 ", e(), true);
}

#[test]
fn ranges_and_lists() {
    let e = || json!({"n": 5, "s": "m", "t": "2018-12-04T12:00:00Z", "arr": [1, 7]});
    check("n==1..5", e(), true);
    check("n==5..9", e(), true);
    check("n==6..9", e(), false);
    check("n!=6..9", e(), true);
    check("n!=1..9", e(), false);
    check("n==-10..-1", e(), false);
    check("n==1.5..5.5", e(), true);
    check("s==\"a\"..\"z\"", e(), true);
    check("s==\"n\"..\"z\"", e(), false);
    check("t==2018-12-04T00:00:00Z..2018-12-05T00:00:00Z", e(), true);
    check("t==2018-12-05T00:00:00Z..2018-12-06T00:00:00Z", e(), false);
    check("n==1,3,5", e(), true);
    check("n==1,3", e(), false);
    check("n!=1,3", e(), true);
    check("n!=1,5", e(), false);
    check("s==\"x\",\"m\"", e(), true);
    check("n==\"5\",5", e(), true);
    check("arr==7", e(), true);
    check("arr==2..3", e(), false);
    check("arr==6..8", e(), true);
    check("arr!=7", e(), false);
    check("arr!=3", e(), true);
    check("arr>6", e(), true);
    check("arr>7", e(), false);
}

#[test]
fn dates_and_times() {
    let e = || {
        json!({
            "dt": "2018-12-04T12:00:00Z",
            "dt9": "2018-12-04T21:00:00+09:00",
            "d": "2018-12-04",
            "tm": "12:30:00Z",
            "notdate": "hello",
            "at": {"type": "Property", "value": 1, "observedAt": "2020-01-01T00:00:00Z",
                   "createdAt": "2021-06-01T00:00:00Z", "modifiedAt": "2022-06-01T00:00:00Z",
                   "unitCode": "KMH", "datasetId": "urn:ds:1"}
        })
    };
    check("dt==2018-12-04T12:00:00Z", e(), true);
    check("dt==2018-12-04T13:00:00+01:00", e(), true); // same instant
    check("dt9==2018-12-04T12:00:00Z", e(), true);
    check("dt>2018-12-04T11:59:59Z", e(), true);
    check("dt<2018-12-04T11:59:59.5Z", e(), false);
    check("dt9<2018-12-04T12:00:01Z", e(), true);
    check("d==2018-12-04", e(), true);
    check("d>2018-12-03", e(), true);
    check("d<2018-12-04", e(), false);
    check("dt==2018-12-04", e(), true); // a DateTime compared by its UTC date
    check("tm==12:30:00Z", e(), true);
    check("tm>12:00:00", e(), true);
    check("tm<12:00:00Z", e(), false);
    check("dt==12:00:00Z", e(), true);
    check("tm==12:30:00.000Z", e(), true);
    check("notdate==2018-12-04T12:00:00Z", e(), false);
    check("notdate!=2018-12-04T12:00:00Z", e(), true);
    check("dt==\"2018-12-04T12:00:00Z\"", e(), true); // quoted: plain string
    check("dt==\"2018-12-04T13:00:00+01:00\"", e(), false);
    check("at.observedAt>2019-01-01T00:00:00Z", e(), true);
    check("at.observedAt<2019-01-01T00:00:00Z", e(), false);
    check("at.observedAt==2020-01-01", e(), true);
    check("at.createdAt==2021-06-01T00:00:00Z", e(), true);
    check("at.createdAt<2021-06-01T00:00:00Z", e(), false);
    check("at.modifiedAt>2022-01-01T00:00:00Z", e(), true);
    check("at.modifiedAt==2022-06-01", e(), true);
    check("at.unitCode==\"KMH\"", e(), true);
    check("at.unitCode~=K.H", e(), true);
    check("at.datasetId==urn:ds:1", e(), true);
    check("at.observedAt", e(), true);
    check("dt.observedAt", e(), false);
    check("!dt.observedAt", e(), true);
    check("!at.observedAt", e(), false);
    check("dt.createdAt", e(), true);
}

#[test]
fn booleans_regex_and_uris() {
    let e = || {
        json!({
            "on": true,
            "name": "Parque Norte",
            "n": 3,
            "ref": {"type": "Relationship", "object": "urn:ngsi-ld:Building:1"},
            "refs": {"type": "Relationship", "object": ["urn:ngsi-ld:B:1", "urn:ngsi-ld:B:2"]},
            "list": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:L:1"}, "urn:ngsi-ld:L:2"]},
            "home": "https://ex.org/home"
        })
    };
    check("on==true", e(), true);
    check("on==false", e(), false);
    check("on!=false", e(), true);
    check("name~=Parque", e(), true);
    check("name~=^Norte", e(), false);
    check("name~=(?i)parque.*", e(), true);
    check("name~=\"(?i)PARQUE\"", e(), true);
    check("name~=(Sur|Norte)$", e(), true);
    check("name~=\"a|b\";n==3", e(), true);
    check("name~=[|;)]", e(), false);
    check("name~=x|n==3", e(), true); // unquoted: '|' outside a group ends the pattern
    check("name!~=Sur", e(), true);
    check("name!~=Norte", e(), false);
    check("n~=3", e(), false); // numbers are not strings
    check("name~=\"\\d\"", e(), false);
    check("ref==urn:ngsi-ld:Building:1", e(), true);
    check("ref==urn:ngsi-ld:Building:2", e(), false);
    check("ref!=urn:ngsi-ld:Building:2", e(), true);
    check("ref==\"urn:ngsi-ld:Building:1\"", e(), true);
    check(
        "ref==urn:ngsi-ld:Building:2,urn:ngsi-ld:Building:1",
        e(),
        true,
    );
    check("refs==urn:ngsi-ld:B:2", e(), true);
    check("refs!=urn:ngsi-ld:B:2", e(), false);
    check("list==urn:ngsi-ld:L:1", e(), true);
    check("list==urn:ngsi-ld:L:2", e(), true);
    check("list==urn:ngsi-ld:L:3", e(), false);
    check("home==https://ex.org/home", e(), true);
    check("ref~=Building", e(), true);
}

#[test]
fn paths() {
    let e = || {
        json!({
            "speed": {"type": "Property", "value": 50,
                      "accuracy": {"type": "Property", "value": 0.9,
                                   "method": {"type": "Property", "value": "gps"}}},
            "address": {"streetAddress": "Main St", "geo": {"zip": "1010", "n": 12},
                        "tags": [{"k": "a"}, {"k": "b"}]},
            "name": {"type": "LanguageProperty", "languageMap": {"en": "Park", "es": "Parque"}},
            "cat": {"type": "VocabProperty", "vocab": "https://ex.org/commercial"},
            "vals": {"type": "ListProperty", "valueList": [1, 2, 3]},
            "empty": {"type": "ListProperty", "valueList": []},
            "js": {"type": "JsonProperty", "json": {"x": 1}}
        })
    };
    check("speed.accuracy>0.5", e(), true);
    check("speed.accuracy<0.5", e(), false);
    check("speed.accuracy.method==\"gps\"", e(), true);
    check("speed.accuracy", e(), true);
    check("speed.nothing", e(), false);
    check("!speed.nothing", e(), true);
    check("!speed.accuracy", e(), false);
    check("speed.accuracy.method.observedAt", e(), false);
    check("address[streetAddress]==\"Main St\"", e(), true);
    check("address[geo.zip]==\"1010\"", e(), true);
    check("address[geo][zip]==\"1010\"", e(), true);
    check("address[geo.n]>10", e(), true);
    check("address[geo.zip]", e(), true);
    check("address[geo.nothing]", e(), false);
    check("!address[geo.nothing]", e(), true);
    check("address[tags.k]==\"b\"", e(), true);
    check("address[nothing]==1", e(), false);
    check("speed[x]", e(), false);
    check("name==\"Parque\"", e(), true);
    check("name==\"Park\"", e(), true);
    check("name==\"Parc\"", e(), false);
    check("name[en]==\"Park\"", e(), true);
    check("name[en]==\"Parque\"", e(), false);
    check("name~=^Par", e(), true);
    check("cat==https://ex.org/commercial", e(), true);
    check("cat==\"https://ex.org/commercial\"", e(), true);
    check("vals==2", e(), true);
    check("vals==4", e(), false);
    check("vals>2", e(), true);
    check("vals", e(), true);
    check("empty", e(), true);
    check("empty==1", e(), false);
    check("empty!=1", e(), false);
    check("js[x]==1", e(), true);
    // Full and compact IRIs as names.
    check("https://ex.org/speed>10", e(), true);
    check("https://ex.org/speed<10", e(), false);
    check("ex:speed>10", e(), true);
    check("ex:speed.accuracy>0.5", e(), true);
    check("https://ex.org/address[geo.zip]==\"1010\"", e(), true);
    check("(https://ex.org/speed==50|speed==1);vals", e(), true);
}

#[test]
fn dataset_instances() {
    let e = || {
        json!({
            "temp": [
                {"type": "Property", "value": 10},
                {"type": "Property", "value": 30, "datasetId": "urn:ds:b",
                 "observedAt": "2024-01-01T00:00:00Z"}
            ]
        })
    };
    check("temp==10", e(), true);
    check("temp==30", e(), true);
    check("temp>20", e(), true);
    check("temp<5", e(), false);
    check("temp!=10", e(), true); // the second instance differs
    check("temp.datasetId==\"urn:ds:b\"", e(), true);
    check("temp.datasetId", e(), true);
    check("temp.observedAt==2024-01-01T00:00:00Z", e(), true);
    check("temp==10;temp.observedAt", e(), true); // each term may use another instance
}

#[test]
fn names_and_expansion() {
    let mut q =
        Q::parse("a.b.observedAt>2020-01-01T00:00:00Z;c[x.y]==1|!a|https://o.org/z").unwrap();
    assert_eq!(q.attribute_names(), vec!["a", "c", "https://o.org/z"]);
    q.expand_names(&expand);
    assert_eq!(
        q.attribute_names(),
        vec!["https://ex.org/a", "https://ex.org/c", "https://o.org/z"]
    );
    assert_eq!(
        q.to_string(),
        "https://ex.org/a.https://ex.org/b.observedAt>2020-01-01T00:00:00Z;https://ex.org/c[x.y]==1|!https://ex.org/a|https://o.org/z"
    );
}

#[test]
fn value_conjuncts() {
    use super::{Scalar as S, ValueTest as V};
    let check = |q: &str, want: Vec<(&str, V<'static>)>| {
        let parsed = Q::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let got: Vec<(String, String)> = parsed
            .value_conjuncts()
            .iter()
            .map(|c| (c.attr.to_owned(), format!("{:?}", c.test)))
            .collect();
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, t)| (a.to_owned(), format!("{t:?}")))
            .collect();
        assert_eq!(got, want, "{q}");
    };
    check("a==5", vec![("a", V::AnyOf(vec![S::Num(5.0)]))]);
    check(
        "a==1,\"x\",true,urn:a:b",
        vec![(
            "a",
            V::AnyOf(vec![
                S::Num(1.0),
                S::Str("x"),
                S::Bool(true),
                S::Str("urn:a:b"),
            ]),
        )],
    );
    check("a==1..2.5", vec![("a", V::Range(S::Num(1.0), S::Num(2.5)))]);
    check(
        "a>1;b<=\"m\";c==3",
        vec![
            (
                "a",
                V::Above {
                    bound: S::Num(1.0),
                    inclusive: false,
                },
            ),
            (
                "b",
                V::Below {
                    bound: S::Str("m"),
                    inclusive: true,
                },
            ),
            ("c", V::AnyOf(vec![S::Num(3.0)])),
        ],
    );
    check(
        "(a==1|b==2);c>=0",
        vec![(
            "c",
            V::Above {
                bound: S::Num(0.0),
                inclusive: true,
            },
        )],
    );
    // Nothing an index on plain values could answer.
    for q in [
        "a==1|b==2",
        "a!=1",
        "a",
        "!a",
        "a~=x",
        "a.b==1",
        "a.observedAt==1",
        "a[x]==1",
        "a==2024-01-01",
        "a>2024-01-01T00:00:00Z",
        "a==1,2024-01-01",
        "a<12:00:00",
    ] {
        check(q, vec![]);
    }
}

#[test]
fn canonical_text() {
    check_canon("a==1", "a==1");
    check_canon("(a==1)", "a==1");
    check_canon("a==1;(b==2;c==3)", "a==1;b==2;c==3");
    check_canon("a==1|(b==2|c==3)", "a==1|b==2|c==3");
    check_canon("(a|b);c", "(a|b);c");
    check_canon("a|b;c", "a|b;c");
    check_canon("a[x][y]==\"q\\\"\"", "a[x.y]==\"q\\\"\"");
    check_canon("a~=^x(y|z)", "a~=\"^x(y|z)\"");
    check_canon("a==1..2", "a==1..2");
    check_canon("a!=\"x\",true,urn:a:b", "a!=\"x\",true,urn:a:b");
    check_canon(
        "a.observedAt>=2018-12-04T12:00:00Z",
        "a.observedAt>=2018-12-04T12:00:00Z",
    );
    check_canon(" ! a ", "!a");
    check_canon(
        "https://ex.org/a.b.observedAt<1",
        "https://ex.org/a.b.observedAt<1",
    );
}

#[test]
fn errors() {
    use ErrorKind::{BadRequestData as Bad, InvalidRequest as Inv};
    for (q, kind) in [
        ("", Inv),
        ("   ", Inv),
        (";", Inv),
        ("a;", Inv),
        ("a|", Inv),
        ("|a", Inv),
        ("a;;b", Inv),
        ("(a", Inv),
        ("a)", Inv),
        ("()", Inv),
        ("((a)", Inv),
        ("a b", Inv),
        ("a=1", Inv),
        ("a=<1", Inv),
        ("a==", Inv),
        ("a>", Inv),
        ("a==fast", Inv),
        ("a==\"open", Inv),
        ("a==1 2", Inv),
        ("a>true", Inv),
        ("a>urn:x:y", Inv),
        ("a>1..2", Inv),
        ("a<1,2", Inv),
        ("a==1..\"x\"", Inv),
        ("a==true..false", Inv),
        ("a==1..2..3", Inv),
        ("a==1,2..3", Inv),
        ("a==1,", Inv),
        ("a.", Inv),
        (".a", Inv),
        ("a..b", Inv),
        ("a[", Inv),
        ("a[]", Inv),
        ("a[x", Inv),
        ("a[x.]==1", Inv),
        ("a.observedAt.b", Inv),
        ("a.observedAt[x]", Inv),
        ("!a==1", Inv),
        ("!", Inv),
        ("a~=", Inv),
        ("a~=(", Inv),
        ("a~=\"[\"", Inv),
        ("a~=x{100000}{100000}", Inv),
        ("a==1(", Inv),
        ("a==1e999", Bad),
        ("a==2018-13-01", Bad),
        ("a==2018-12-04T25:00:00Z", Bad),
        ("a==2018-12-04T12:00:00", Bad),
        ("a==25:00:00", Bad),
        ("a==12:00", Bad),
    ] {
        check_err(q, kind);
    }
    let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    check_err(&deep, Inv);
    let ok = format!("{}a{}", "(".repeat(60), ")".repeat(60));
    assert!(Q::parse(&ok).is_ok());
}

#[test]
fn error_details_name_the_position() {
    let e = Q::parse("speed 5").unwrap_err();
    assert!(
        e.detail.contains("after 'speed'") && e.detail.contains("offset 6"),
        "{e}"
    );
    let e = Q::parse("speed>50;brand==fast").unwrap_err();
    assert!(
        e.detail.contains("found 'fast'") && e.detail.contains("offset 16"),
        "{e}"
    );
    let e = Q::parse("(a==1").unwrap_err();
    assert!(e.detail.contains("closing the '(' at offset 0"), "{e}");
}

// ------------------------------------------------------------ properties

/// Random valid terms over a small vocabulary, so generated entities hit them.
fn arb_lit() -> impl Strategy<Value = Lit> {
    prop_oneof![
        (-3i32..8).prop_map(|n| Lit::Num {
            value: f64::from(n),
            text: n.to_string()
        }),
        (-3i32..8).prop_map(|n| {
            let v = f64::from(n) + 0.5;
            Lit::Num {
                value: v,
                text: v.to_string(),
            }
        }),
        prop::sample::select(vec!["x", "y", "z", "a \"q\"", "b;|()\\"])
            .prop_map(|s| Lit::Str(s.to_owned())),
        any::<bool>().prop_map(Lit::Bool),
        (0u32..4).prop_map(|d| {
            let text = format!("2020-01-0{}T00:00:00Z", d + 1);
            Lit::DateTime {
                micros: super::parse_datetime(&text).unwrap(),
                text,
            }
        }),
        prop::sample::select(vec!["urn:x:1", "urn:x:2"]).prop_map(|s| Lit::Uri(s.to_owned())),
    ]
}

fn arb_term() -> impl Strategy<Value = Term> {
    let path = (
        prop::sample::select(vec!["a", "b", "c"]),
        prop::option::of(Just("s")),
        prop::option::weighted(0.2, Just(Member::ObservedAt)),
        prop::option::weighted(0.2, Just("k")),
    )
        .prop_map(|(name, sub, member, key)| AttrPath {
            name: name.to_owned(),
            sub: sub.into_iter().map(str::to_owned).collect(),
            json: if member.is_some() {
                Vec::new()
            } else {
                key.into_iter().map(str::to_owned).collect()
            },
            member,
        });
    let test = prop_oneof![
        Just(Test::Exists),
        Just(Test::NotExists),
        (
            prop::sample::select(vec![OrderOp::Gt, OrderOp::Ge, OrderOp::Lt, OrderOp::Le]),
            arb_lit()
        )
            .prop_filter("ordered", |(_, l)| l.is_ordered())
            .prop_map(|(op, l)| Test::Order(op, l)),
        (any::<bool>(), prop::collection::vec(arb_lit(), 1..4)).prop_map(|(negated, l)| {
            Test::Equal {
                negated,
                rhs: EqRhs::Any(l),
            }
        }),
        (any::<bool>(), -3i32..8, 0i32..4).prop_map(|(negated, lo, w)| Test::Equal {
            negated,
            rhs: EqRhs::Range(
                Lit::Num {
                    value: f64::from(lo),
                    text: lo.to_string()
                },
                Lit::Num {
                    value: f64::from(lo + w),
                    text: (lo + w).to_string()
                },
            ),
        }),
        (
            any::<bool>(),
            prop::sample::select(vec!["^x", "y|z", "(?i)X", "\"", "a;b"])
        )
            .prop_map(|(negated, p)| Test::Regex {
                negated,
                re: Regex::new(p).unwrap()
            }),
    ];
    (path, test).prop_map(|(path, test)| Term { path, test })
}

fn arb_expr() -> impl Strategy<Value = BoolExpr<Term>> {
    arb_term()
        .prop_map(BoolExpr::Leaf)
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(BoolExpr::and),
                prop::collection::vec(inner, 2..4).prop_map(BoolExpr::or),
            ]
        })
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        (-3i32..8).prop_map(|n| json!(n)),
        (-3i32..8).prop_map(|n| json!(f64::from(n) + 0.5)),
        prop::sample::select(vec![
            "x",
            "y",
            "z",
            "X",
            "a \"q\"",
            "urn:x:1",
            "2020-01-02T00:00:00Z"
        ])
        .prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
    ];
    prop_oneof![
        leaf.clone(),
        prop::collection::vec(leaf.clone(), 0..3).prop_map(Value::from),
        leaf.prop_map(|v| json!({ "k": v })),
    ]
}

fn arb_attr() -> impl Strategy<Value = Value> {
    (
        arb_value(),
        prop::option::of(arb_value()),
        prop::option::of(0u32..4),
    )
        .prop_map(|(v, sub, obs)| {
            let mut a = json!({"type": "Property", "value": v});
            if let Some(s) = sub {
                a["s"] = json!({"type": "Property", "value": s});
            }
            if let Some(d) = obs {
                a["observedAt"] = json!(format!("2020-01-0{}T00:00:00Z", d + 1));
            }
            a
        })
}

fn arb_entity() -> impl Strategy<Value = Value> {
    (
        prop::option::of(arb_attr()),
        prop::option::of(arb_attr()),
        prop::option::of(arb_attr()),
    )
        .prop_map(|(a, b, c)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [("a", a), ("b", b), ("c", c)] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = Q::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_misses(s in r#"[ab.\[\]!=<>~;|(),"0-9:TZ\- ]{0,30}"#) {
        if let Ok(q) = Q::parse(&s) {
            let text = q.to_string();
            let again = Q::parse(&text).unwrap_or_else(|e| panic!("{s:?} -> {text:?}: {e}"));
            prop_assert_eq!(again.to_string(), text);
        }
    }

    #[test]
    fn canonical_text_round_trips(expr in arb_expr(), entities in prop::collection::vec(arb_entity(), 1..6)) {
        let mut q = Q { expr };
        let text = q.to_string();
        let mut again = Q::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        prop_assert_eq!(again.to_string(), text.clone());
        q.expand_names(&expand);
        again.expand_names(&expand);
        for e in entities {
            let e = entity(e);
            prop_assert_eq!(q.matches(&e), again.matches(&e), "{} on {:?}", text, e);
        }
    }
}
