use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::error::ErrorKind;
use crate::query::test_support::{entity, expand};

/// A point entity at `[lon, lat]` in `location`.
fn at(lon: f64, lat: f64) -> Value {
    json!({"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}})
}

fn with_geometry(g: Value) -> Value {
    json!({"location": {"type": "GeoProperty", "value": g}})
}

#[track_caller]
fn check(georel: &str, geometry: &str, coordinates: &str, e: Value, expected: bool) {
    let q = GeoQuery::parse(georel, geometry, coordinates)
        .unwrap_or_else(|err| panic!("{georel} {geometry} {coordinates}: {err}"));
    assert_eq!(
        q.matches(&entity(e.clone())),
        expected,
        "{georel} {geometry} {coordinates} on {e}"
    );
}

#[track_caller]
fn check_err(georel: &str, geometry: &str, coordinates: &str, kind: ErrorKind) {
    match GeoQuery::parse(georel, geometry, coordinates) {
        Ok(q) => panic!("{georel} {geometry} {coordinates}: expected {kind:?}, got {q:?}"),
        Err(e) => assert_eq!(e.kind, kind, "{georel} {geometry} {coordinates}: {e}"),
    }
}

#[track_caller]
fn check_geometry_err(v: Value, needle: &str) {
    match geometry_from_json(&v) {
        Ok(g) => panic!("{v}: expected an error, got {g:?}"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::BadRequestData, "{v}: {e}");
            assert!(
                e.detail.contains(needle),
                "{v}: '{}' lacks '{needle}'",
                e.detail
            );
        }
    }
}

const SQUARE: &str = "[[[0,0],[10,0],[10,10],[0,10],[0,0]]]";

#[test]
fn near() {
    // Heidelberg and Mannheim are ~17.8 km apart.
    let hd = "[8.6724,49.3988]";
    check(
        "near;maxDistance==20000",
        "Point",
        hd,
        at(8.4660, 49.4875),
        true,
    );
    check(
        "near;maxDistance==15000",
        "Point",
        hd,
        at(8.4660, 49.4875),
        false,
    );
    check(
        "near;minDistance==15000",
        "Point",
        hd,
        at(8.4660, 49.4875),
        true,
    );
    check(
        "near;minDistance==20000",
        "Point",
        hd,
        at(8.4660, 49.4875),
        false,
    );
    // One distance modifier only, and maxDistance must be positive (clause 4.10).
    check_err(
        "near;minDistance==15000;maxDistance==20000",
        "Point",
        hd,
        ErrorKind::BadRequestData,
    );
    check_err(
        "near;maxDistance==0",
        "Point",
        hd,
        ErrorKind::BadRequestData,
    );
    // An extended reference measures from its closest point.
    check(
        "near;maxDistance==1000",
        "LineString",
        "[[8.6724,49.3900],[8.6724,49.4100]]",
        at(8.6800, 49.3988),
        true,
    );
    check(
        "near;maxDistance==100",
        "LineString",
        "[[8.6724,49.3900],[8.6724,49.4100]]",
        at(8.6800, 49.3988),
        false,
    );
    check(
        "near;maxDistance==1",
        "Point",
        hd,
        at(8.6724, 49.3988),
        true,
    );
    // One degree of latitude is ~111.2 km.
    check(
        "near;maxDistance==111500",
        "Point",
        "[0,0]",
        at(0.0, 1.0),
        true,
    );
    check(
        "near;maxDistance==110000",
        "Point",
        "[0,0]",
        at(0.0, 1.0),
        false,
    );
    // Distance to a polygon is to its closest point, 0 inside it.
    let poly = json!({"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1],[0,0]]]});
    check(
        "near;maxDistance==10",
        "Point",
        "[0.5,0.5]",
        with_geometry(poly.clone()),
        true,
    );
    check(
        "near;maxDistance==115000",
        "Point",
        "[0.5,2]",
        with_geometry(poly.clone()),
        true,
    );
    check(
        "near;maxDistance==100000",
        "Point",
        "[0.5,2]",
        with_geometry(poly),
        false,
    );
    let line = json!({"type": "LineString", "coordinates": [[0,0],[2,0]]});
    check(
        "near;maxDistance==112000",
        "Point",
        "[1,1]",
        with_geometry(line.clone()),
        true,
    );
    check(
        "near;maxDistance==100000",
        "Point",
        "[1,1]",
        with_geometry(line),
        false,
    );
}

#[test]
fn relations() {
    let poly = |c: Value| with_geometry(json!({"type": "Polygon", "coordinates": c}));
    check("within", "Polygon", SQUARE, at(5.0, 5.0), true);
    check("within", "Polygon", SQUARE, at(15.0, 5.0), false);
    check("within", "Polygon", SQUARE, at(0.0, 5.0), false); // boundary is not within
    check("intersects", "Polygon", SQUARE, at(0.0, 5.0), true);
    check("intersects", "Polygon", SQUARE, at(-1.0, 5.0), false);
    check("disjoint", "Polygon", SQUARE, at(-1.0, 5.0), true);
    check("disjoint", "Polygon", SQUARE, at(1.0, 5.0), false);
    check(
        "contains",
        "Point",
        "[5,5]",
        poly(json!([[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]])),
        true,
    );
    check(
        "contains",
        "Point",
        "[50,5]",
        poly(json!([[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]])),
        false,
    );
    check("equals", "Point", "[5,5]", at(5.0, 5.0), true);
    check("equals", "Point", "[5,5]", at(5.0, 5.1), false);
    // Same square, different starting vertex: topologically equal.
    check(
        "equals",
        "Polygon",
        SQUARE,
        poly(json!([[[10, 0], [10, 10], [0, 10], [0, 0], [10, 0]]])),
        true,
    );
    check(
        "overlaps",
        "Polygon",
        SQUARE,
        poly(json!([[[5, 5], [15, 5], [15, 15], [5, 15], [5, 5]]])),
        true,
    );
    check(
        "overlaps",
        "Polygon",
        SQUARE,
        poly(json!([[[2, 2], [3, 2], [3, 3], [2, 3], [2, 2]]])),
        false,
    );
    check(
        "within",
        "Polygon",
        SQUARE,
        poly(json!([[[2, 2], [3, 2], [3, 3], [2, 3], [2, 2]]])),
        true,
    );
    check(
        "intersects",
        "LineString",
        "[[-5,2.5],[15,2.5]]",
        poly(json!([[[2, 2], [3, 2], [3, 3], [2, 3], [2, 2]]])),
        true,
    );
    check(
        "intersects",
        "MultiPoint",
        "[[50,50],[2.5,2.5]]",
        poly(json!([[[2, 2], [3, 2], [3, 3], [2, 3], [2, 2]]])),
        true,
    );
    // A hole excludes.
    check(
        "within",
        "Polygon",
        "[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]",
        at(5.0, 5.0),
        false,
    );
    check(
        "within",
        "Polygon",
        "[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]",
        at(2.0, 2.0),
        true,
    );
    check(
        "within",
        "MultiPolygon",
        "[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],[[[20,20],[21,20],[21,21],[20,21],[20,20]]]]",
        at(20.5, 20.5),
        true,
    );
    check(
        "intersects",
        "MultiLineString",
        "[[[0,0],[1,1]],[[5,0],[5,10]]]",
        with_geometry(json!({"type": "LineString", "coordinates": [[0,5],[10,5]]})),
        true,
    );
}

#[test]
fn entities_and_geoproperty() {
    let two_instances = json!({
        "location": [
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [50, 50]}},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [5, 5]}, "datasetId": "urn:ds:2"}
        ]
    });
    check("within", "Polygon", SQUARE, two_instances, true);
    check("within", "Polygon", SQUARE, json!({"other": 1}), false);
    check(
        "within",
        "Polygon",
        SQUARE,
        with_geometry(json!({"type": "Point"})),
        false,
    );
    let mut q = GeoQuery::parse("within", "Polygon", SQUARE)
        .unwrap()
        .with_geoproperty("observationSpace");
    q.expand_names(&expand);
    assert_eq!(q.geoproperty, "https://ex.org/observationSpace");
    let e = entity(
        json!({"observationSpace": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 1]}}}),
    );
    assert!(q.matches(&e));
    assert!(!GeoQuery::parse("within", "Polygon", SQUARE)
        .unwrap()
        .matches(&e));
    assert_eq!(
        GeoQuery::parse("within", "Polygon", SQUARE)
            .unwrap()
            .geoproperty,
        core_iri::LOCATION
    );
}

#[test]
fn parameters() {
    let q = GeoQuery::parse("near;maxDistance==500", "Point", "%5B8.68%2C49.39%5D").unwrap();
    assert_eq!(
        q.georel,
        GeoRel::Near {
            max_distance: Some(500.0),
            min_distance: None
        }
    );
    assert_eq!(q.geometry, Geometry::Point(Point::new(8.68, 49.39)));
    let q = GeoQuery::parse("near;minDistance==2.5", "Point", " [8.68, 49.39] ").unwrap();
    assert_eq!(
        q.georel,
        GeoRel::Near {
            max_distance: None,
            min_distance: Some(2.5)
        }
    );
    for (word, rel) in [
        ("within", GeoRel::Within),
        ("contains", GeoRel::Contains),
        ("intersects", GeoRel::Intersects),
        ("equals", GeoRel::Equals),
        ("disjoint", GeoRel::Disjoint),
        ("overlaps", GeoRel::Overlaps),
    ] {
        assert_eq!(GeoRel::parse(word).unwrap(), rel);
    }
}

#[test]
fn parameter_errors() {
    use ErrorKind::{BadRequestData as Bad, InvalidRequest as Inv};
    for (georel, geometry, coordinates, kind) in [
        ("nearby", "Point", "[0,0]", Bad),
        ("", "Point", "[0,0]", Bad),
        ("near", "Point", "[0,0]", Inv),
        ("near;maxDistance=5", "Point", "[0,0]", Inv),
        ("near;radius==5", "Point", "[0,0]", Inv),
        ("near;maxDistance==5;maxDistance==6", "Point", "[0,0]", Inv),
        ("within;maxDistance==5", "Polygon", SQUARE, Inv),
        ("near;maxDistance==-1", "Point", "[0,0]", Bad),
        ("near;maxDistance==abc", "Point", "[0,0]", Bad),
        ("near;maxDistance==inf", "Point", "[0,0]", Bad),
        ("within", "Circle", "[0,0]", Inv),
        ("within", "GeometryCollection", "[]", Inv),
        ("within", "point", "[0,0]", Inv),
        ("within", "Point", "0,0", Bad),
        ("within", "Point", "", Bad),
        ("within", "Point", "[0]", Bad),
        ("within", "Point", "[200,0]", Bad),
        ("within", "Point", "%5B0", Bad),
        ("within", "Point", "%ZZ", Bad),
        ("within", "Point", "{\"a\":1}", Bad),
        ("within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", Bad),
        ("within", "Polygon", "[[[0,0],[1,0],[0,0]]]", Bad),
    ] {
        check_err(georel, geometry, coordinates, kind);
    }
}

#[test]
fn json_form() {
    let q = GeoQuery::from_json(&json!({
        "geometry": "Point", "coordinates": [8.68, 49.39], "georel": "near;maxDistance==2000",
        "geoproperty": "observationSpace"
    }))
    .unwrap();
    assert_eq!(q.geoproperty, "observationSpace");
    assert!(matches!(q.georel, GeoRel::Near { max_distance: Some(d), .. } if d == 2000.0));
    let q = GeoQuery::from_json(
        &json!({"geometry": "Polygon", "coordinates": SQUARE, "georel": "within"}),
    )
    .unwrap();
    assert_eq!(q.geoproperty, core_iri::LOCATION);
    for (v, kind) in [
        (json!([]), ErrorKind::BadRequestData),
        (
            json!({"geometry": "Point", "coordinates": [0, 0]}),
            ErrorKind::BadRequestData,
        ),
        (
            json!({"georel": "within", "coordinates": [0, 0]}),
            ErrorKind::BadRequestData,
        ),
        (
            json!({"georel": "within", "geometry": "Point"}),
            ErrorKind::BadRequestData,
        ),
        (
            json!({"georel": "within", "geometry": "Point", "coordinates": 5}),
            ErrorKind::BadRequestData,
        ),
        (
            json!({"georel": "within", "geometry": 1, "coordinates": [0, 0]}),
            ErrorKind::BadRequestData,
        ),
        (
            json!({"georel": "within", "geometry": "Point", "coordinates": [0, 0], "geoproperty": 3}),
            ErrorKind::BadRequestData,
        ),
        (
            json!({"georel": "inside", "geometry": "Point", "coordinates": [0, 0]}),
            ErrorKind::BadRequestData,
        ),
    ] {
        let err = GeoQuery::from_json(&v).unwrap_err();
        assert_eq!(err.kind, kind, "{v}: {err}");
    }
}

#[test]
fn geometry_validation() {
    assert_eq!(
        geometry_from_json(&json!({"type": "Point", "coordinates": [1, 2, 300]})).unwrap(),
        Geometry::Point(Point::new(1.0, 2.0))
    );
    for ok in [
        json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
        json!({"type": "MultiPoint", "coordinates": [[0, 0]]}),
        json!({"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]]]}),
        json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
        json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}),
        json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [180, -90]}]}),
    ] {
        assert!(geometry_from_json(&ok).is_ok(), "{ok}");
    }
    for (bad, needle) in [
        (json!("Point"), "expected a GeoJSON geometry object"),
        (json!({"coordinates": [0, 0]}), "'type' member is missing"),
        (json!({"type": 5, "coordinates": [0, 0]}), "'type' must be a string"),
        (json!({"type": "Circle", "coordinates": [0, 0]}), "unknown geometry type 'Circle'"),
        (json!({"type": "Point"}), "'coordinates' member of the Point is missing"),
        (json!({"type": "Point", "coordinates": [1]}), "has 1 number(s)"),
        (json!({"type": "Point", "coordinates": [1, 2, 3, 4]}), "has 4 number(s)"),
        (json!({"type": "Point", "coordinates": [1, "2"]}), "coordinates[1] must be a number"),
        (json!({"type": "Point", "coordinates": [180.5, 0]}), "longitude 180.5 at coordinates"),
        (json!({"type": "Point", "coordinates": [0, -90.1]}), "latitude -90.1 at coordinates"),
        (json!({"type": "Point", "coordinates": "0,0"}), "must be a position"),
        (json!({"type": "LineString", "coordinates": [[0, 0]]}), "at least 2 positions"),
        (json!({"type": "LineString", "coordinates": [[0, 0], [1, 91]]}), "latitude 91 at coordinates[1]"),
        (json!({"type": "MultiPoint", "coordinates": []}), "at least one position"),
        (json!({"type": "MultiLineString", "coordinates": [[[0, 0]]]}), "coordinates[0]: a LineString"),
        (json!({"type": "Polygon", "coordinates": []}), "at least one linear ring"),
        (json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}), "coordinates[0]: the linear ring is not closed (first position [0, 0] differs from last [0, 1])"),
        (json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}), "at least 4 positions, found 3"),
        (json!({"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 2]]]}), "coordinates[1]: the linear ring is not closed"),
        (json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[0, 0], [1, 0]]]]}), "coordinates[1][0]: a linear ring"),
        (json!({"type": "GeometryCollection"}), "'geometries' array"),
        (json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 100]}]}), "latitude 100"),
    ] {
        check_geometry_err(bad, needle);
    }
    let mut deep = json!({"type": "Point", "coordinates": [0, 0]});
    for _ in 0..20 {
        deep = json!({"type": "GeometryCollection", "geometries": [deep]});
    }
    check_geometry_err(deep, "nested deeper");
}

#[test]
fn candidate_bboxes() {
    let bbox = |georel: &str, geometry: &str, coordinates: &str| {
        GeoQuery::parse(georel, geometry, coordinates)
            .unwrap()
            .candidate_bbox()
    };
    assert_eq!(
        bbox("within", "Polygon", SQUARE),
        Some([0.0, 0.0, 10.0, 10.0])
    );
    assert_eq!(
        bbox("intersects", "LineString", "[[1,2],[3,-4]]"),
        Some([1.0, -4.0, 3.0, 2.0])
    );
    assert_eq!(bbox("disjoint", "Polygon", SQUARE), None);
    assert_eq!(bbox("near;minDistance==10", "Point", "[1,2]"), None);
    let [min_lon, min_lat, max_lon, max_lat] =
        bbox("near;maxDistance==111195", "Point", "[0,60]").unwrap();
    assert!(
        min_lat < 59.0 && min_lat > 58.9 && max_lat > 61.0 && max_lat < 61.1,
        "{min_lat} {max_lat}"
    );
    assert!(
        min_lon < -2.0 && max_lon > 2.0 && max_lon < 2.2,
        "{min_lon} {max_lon}"
    );
    assert_eq!(
        bbox("near;maxDistance==1000", "Point", "[179.999,0]").map(|b| b[0]),
        Some(-180.0)
    );
    assert_eq!(
        bbox("near;maxDistance==1000", "Point", "[0,89.999]").map(|b| b[2]),
        Some(180.0)
    );
}

/// Arbitrary JSON, biased towards geometry-like shapes.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-200.0f64..200.0).prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        prop::sample::select(vec![
            "Point",
            "Polygon",
            "LineString",
            "MultiPolygon",
            "GeometryCollection",
            "x"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            (
                prop::sample::select(vec![
                    "Point",
                    "MultiPoint",
                    "LineString",
                    "MultiLineString",
                    "Polygon",
                    "MultiPolygon",
                    "GeometryCollection"
                ]),
                inner.clone(),
            )
                .prop_map(|(t, c)| json!({"type": t, "coordinates": c, "geometries": [c]})),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Valid but possibly degenerate polygons on a tiny grid (repeated points,
/// zero area, self-intersections).
fn arb_polygon() -> impl Strategy<Value = Value> {
    prop::collection::vec((0i32..3, 0i32..3), 3..6).prop_map(|mut pts| {
        pts.push(pts[0]);
        let ring: Vec<Value> = pts.iter().map(|(x, y)| json!([x, y])).collect();
        json!({"type": "Polygon", "coordinates": [ring]})
    })
}

proptest! {
    #[test]
    fn geometry_from_json_never_panics(v in arb_json()) {
        let _ = geometry_from_json(&v);
    }

    #[test]
    fn parse_never_panics(georel in "\\PC*", geometry in "\\PC*", coordinates in "\\PC*") {
        let _ = GeoQuery::parse(&georel, &geometry, &coordinates);
        let _ = GeoRel::parse(&georel);
    }

    #[test]
    fn near_miss_parameters_never_panic(
        georel in "(near|within|x)(;(max|min)Distance==[-0-9.e]{0,4}){0,3}",
        coordinates in r"[\[\]0-9,.%5BDC-]{0,20}",
    ) {
        let _ = GeoQuery::parse(&georel, "Point", &coordinates);
    }

    #[test]
    fn degenerate_geometries_never_panic(a in arb_polygon(), b in arb_polygon(), px in 0i32..3, py in 0i32..3) {
        let ga = geometry_from_json(&a).unwrap();
        for georel in ["within", "contains", "intersects", "equals", "disjoint", "overlaps"] {
            let q = GeoQuery::from_json(&json!({"georel": georel, "geometry": "Polygon", "coordinates": b["coordinates"]})).unwrap();
            let _ = q.matches_geometry(&ga);
        }
        let q = GeoQuery::parse("near;maxDistance==1000", "Point", &format!("[{px},{py}]")).unwrap();
        let _ = q.matches_geometry(&ga);
    }

    #[test]
    fn near_agrees_with_its_bbox(lon in -179.0f64..179.0, lat in -85.0f64..85.0, d in 1.0f64..500_000.0,
                                 bearing in 0.0f64..360.0, frac in 0.0f64..0.999) {
        use geo::Destination;
        let q = GeoQuery::parse(&format!("near;maxDistance=={d}"), "Point", &format!("[{lon},{lat}]")).unwrap();
        let p = Haversine.destination(Point::new(lon, lat), bearing, d * frac);
        let (plon, plat) = (p.x(), p.y());
        prop_assume!((-180.0..=180.0).contains(&plon));
        prop_assert!(q.matches_geometry(&Geometry::Point(p)), "{:?} should be near", p);
        let [a, b, c, e] = q.candidate_bbox().unwrap();
        prop_assert!(a <= plon && plon <= c && b <= plat && plat <= e, "{:?} outside bbox {:?}", p, [a, b, c, e]);
    }
}
