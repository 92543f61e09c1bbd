//! Geo-queries `geoQ` (ETSI GS CIM 009 clause 4.10) and the validation of
//! GeoJSON geometries held by GeoProperties.
//!
//! A query names a relation (`georel`), a reference geometry (`geometry` +
//! `coordinates`) and the GeoProperty to test (`geoproperty`, default
//! `location`). Coordinates are WGS84 longitude/latitude; distances are in
//! meters on the mean-radius sphere (haversine), which is within 0.5 % of the
//! ellipsoid and what the spec's "near" needs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use geo::relate::IntersectionMatrix;
use geo::{
    BoundingRect, Closest, Coord, CoordsIter, Distance, Geometry, GeometryCollection, Haversine,
    HaversineClosestPoint, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
    Relate,
};
use serde_json::Value;

use crate::error::{NgsiError, Result};
use crate::model::{core_iri, Entity};

/// Meters per degree of latitude on the haversine sphere (R · π / 180).
const METERS_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// Deepest `GeometryCollection` nesting accepted.
const MAX_COLLECTION_DEPTH: usize = 8;

/// The geometry types a query's `geometry` parameter may name.
const QUERY_GEOMETRIES: [&str; 6] = [
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
];

/// The spatial relation of a geo-query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoRel {
    /// Within `max_distance` and/or beyond `min_distance` meters of a point.
    Near {
        /// `maxDistance`: the distance must be at most this many meters.
        max_distance: Option<f64>,
        /// `minDistance`: the distance must be at least this many meters.
        min_distance: Option<f64>,
    },
    /// The entity's geometry lies within the query geometry.
    Within,
    /// The entity's geometry contains the query geometry.
    Contains,
    /// The geometries share at least one point.
    Intersects,
    /// The geometries are topologically equal.
    Equals,
    /// The geometries share no point.
    Disjoint,
    /// The geometries overlap (same dimension, each has points outside the other).
    Overlaps,
}

impl GeoRel {
    /// Parses a `georel` value such as `near;maxDistance==500` or `within`.
    /// Unknown words are `InvalidRequest`; bad distances `BadRequestData`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut parts = s.split(';');
        let word = parts.next().unwrap_or_default().trim();
        let rel = match word {
            "near" => {
                let (mut max_distance, mut min_distance) = (None, None);
                for modifier in parts {
                    let (key, value) = modifier.split_once("==").ok_or_else(|| {
                        NgsiError::invalid(format!(
                            "georel: expected 'maxDistance==<meters>' or 'minDistance==<meters>', found '{modifier}'"
                        ))
                    })?;
                    let slot = match key.trim() {
                        "maxDistance" => &mut max_distance,
                        "minDistance" => &mut min_distance,
                        other => {
                            return Err(NgsiError::invalid(format!(
                                "georel: unknown near modifier '{other}' (expected maxDistance or minDistance)"
                            )))
                        }
                    };
                    if slot.is_some() {
                        return Err(NgsiError::invalid(format!(
                            "georel: '{}' given twice",
                            key.trim()
                        )));
                    }
                    *slot = Some(parse_distance(key.trim(), value.trim())?);
                }
                if max_distance.is_some() && min_distance.is_some() {
                    return Err(NgsiError::bad_data(
                        "georel: 'near' takes one of maxDistance or minDistance, not both",
                    ));
                }
                if max_distance == Some(0.0) {
                    return Err(NgsiError::bad_data("georel: maxDistance must be greater than 0"));
                }
                if max_distance.is_none() && min_distance.is_none() {
                    return Err(NgsiError::invalid(
                        "georel: 'near' needs ';maxDistance==<meters>' or ';minDistance==<meters>'",
                    ));
                }
                return Ok(Self::Near {
                    max_distance,
                    min_distance,
                });
            }
            "within" => Self::Within,
            "contains" => Self::Contains,
            "intersects" => Self::Intersects,
            "equals" => Self::Equals,
            "disjoint" => Self::Disjoint,
            "overlaps" => Self::Overlaps,
            other => {
                return Err(NgsiError::bad_data(format!(
                    "georel: unknown relation '{other}' (expected near, within, contains, intersects, equals, disjoint or overlaps)"
                )))
            }
        };
        if let Some(extra) = parts.next() {
            return Err(NgsiError::invalid(format!(
                "georel: '{word}' takes no modifiers, found '{extra}'"
            )));
        }
        Ok(rel)
    }
}

fn parse_distance(key: &str, value: &str) -> Result<f64> {
    let d: f64 = value.parse().map_err(|_| {
        NgsiError::bad_data(format!("georel: {key} '{value}' is not a number of meters"))
    })?;
    if !d.is_finite() || d < 0.0 {
        return Err(NgsiError::bad_data(format!(
            "georel: {key} must be a non-negative number of meters, found '{value}'"
        )));
    }
    Ok(d)
}

/// A parsed geo-query.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoQuery {
    /// The relation to test.
    pub georel: GeoRel,
    /// The reference geometry.
    pub geometry: Geometry<f64>,
    /// The GeoProperty tested, expanded (default `https://uri.etsi.org/ngsi-ld/location`).
    pub geoproperty: String,
}

impl GeoQuery {
    /// Builds a query from the GET parameters `georel`, `geometry` and
    /// `coordinates` (JSON array text, possibly still percent-encoded). The
    /// GeoProperty defaults to `location`; see [`GeoQuery::with_geoproperty`].
    pub fn parse(georel: &str, geometry: &str, coordinates: &str) -> Result<GeoQuery> {
        let georel = GeoRel::parse(georel)?;
        let coordinates = coordinates_from_text(coordinates)?;
        Self::build(georel, geometry, coordinates)
    }

    /// Builds a query from its JSON form (POST /entityOperations/query,
    /// subscriptions): `{"geometry", "coordinates" (array or text), "georel",
    /// "geoproperty"?}`. A missing or mistyped member is `BadRequestData`.
    pub fn from_json(v: &Value) -> Result<GeoQuery> {
        let obj = v.as_object().ok_or_else(|| {
            NgsiError::bad_data(format!("geoQ: expected an object, found {}", short(v)))
        })?;
        let text = |key: &str| -> Result<&str> {
            match obj.get(key) {
                Some(Value::String(s)) => Ok(s),
                Some(other) => Err(NgsiError::bad_data(format!(
                    "geoQ: '{key}' must be a string, found {}",
                    short(other)
                ))),
                None => Err(NgsiError::bad_data(format!("geoQ: '{key}' is missing"))),
            }
        };
        let georel = GeoRel::parse(text("georel")?)?;
        let geometry = text("geometry")?;
        let coordinates = match obj.get("coordinates") {
            Some(Value::String(s)) => coordinates_from_text(s)?,
            Some(v @ Value::Array(_)) => v.clone(),
            Some(other) => {
                return Err(NgsiError::bad_data(format!(
                    "geoQ: 'coordinates' must be an array, found {}",
                    short(other)
                )))
            }
            None => return Err(NgsiError::bad_data("geoQ: 'coordinates' is missing")),
        };
        let mut q = Self::build(georel, geometry, coordinates)?;
        if obj.contains_key("geoproperty") {
            q.geoproperty = text("geoproperty")?.to_owned();
        }
        Ok(q)
    }

    fn build(georel: GeoRel, geometry: &str, coordinates: Value) -> Result<GeoQuery> {
        if !QUERY_GEOMETRIES.contains(&geometry) {
            return Err(NgsiError::invalid(format!(
                "geometry: unknown geometry '{geometry}' (expected one of {})",
                QUERY_GEOMETRIES.join(", ")
            )));
        }
        let geometry = geometry_from_json(&serde_json::json!({
            "type": geometry,
            "coordinates": coordinates,
        }))?;
        Ok(GeoQuery {
            georel,
            geometry,
            geoproperty: core_iri::LOCATION.to_owned(),
        })
    }

    /// The same query on GeoProperty `name` (compact until [`GeoQuery::expand_names`]).
    pub fn with_geoproperty(mut self, name: impl Into<String>) -> Self {
        self.geoproperty = name.into();
        self
    }

    /// Maps the GeoProperty name through `f` (JSON-LD expansion).
    pub fn expand_names(&mut self, f: &dyn Fn(&str) -> String) {
        self.geoproperty = f(&self.geoproperty);
    }

    /// True if any instance of the entity's GeoProperty holds a geometry that
    /// satisfies the query; no such attribute (or no valid geometry) is false.
    pub fn matches(&self, e: &Entity) -> bool {
        e.attrs
            .get(self.geoproperty.as_str())
            .is_some_and(|instances| {
                instances
                    .iter()
                    .any(|a| geometry_from_json(&a.value).is_ok_and(|g| self.matches_geometry(&g)))
            })
    }

    /// True if geometry `g` stands in the query's relation to its geometry.
    pub fn matches_geometry(&self, g: &Geometry<f64>) -> bool {
        let q = &self.geometry;
        if let GeoRel::Near {
            max_distance,
            min_distance,
        } = self.georel
        {
            return geometry_distance_m(q, g).is_some_and(|d| {
                max_distance.is_none_or(|m| d <= m) && min_distance.is_none_or(|m| d >= m)
            });
        }
        // Disjoint bounding boxes decide every relation without the full
        // DE-9IM computation.
        let boxes_meet = match (g.bounding_rect(), q.bounding_rect()) {
            (Some(a), Some(b)) => {
                a.min().x <= b.max().x
                    && b.min().x <= a.max().x
                    && a.min().y <= b.max().y
                    && b.min().y <= a.max().y
            }
            _ => false,
        };
        if !boxes_meet {
            return self.georel == GeoRel::Disjoint;
        }
        let Some(m) = relate(g, q) else {
            return false;
        };
        match self.georel {
            GeoRel::Within => m.is_within(),
            GeoRel::Contains => m.is_contains(),
            GeoRel::Intersects => m.is_intersects(),
            GeoRel::Equals => m.is_equal_topo(),
            GeoRel::Disjoint => m.is_disjoint(),
            GeoRel::Overlaps => m.is_overlaps(),
            GeoRel::Near { .. } => false,
        }
    }

    /// The box `[min lon, min lat, max lon, max lat]` every match must
    /// intersect, for a spatial index; `None` when the relation cannot prune
    /// (`disjoint`, `near` with only `minDistance`).
    pub fn candidate_bbox(&self) -> Option<[f64; 4]> {
        match self.georel {
            GeoRel::Near {
                max_distance: Some(d),
                ..
            } => {
                // The reference may be extended (clause 4.10: distance from its closest point).
                let r = self.geometry.bounding_rect()?;
                let lo = near_bbox(Point::new(r.min().x, r.min().y), d);
                let hi = near_bbox(Point::new(r.max().x, r.max().y), d);
                Some([
                    lo[0].min(hi[0]),
                    lo[1].min(hi[1]),
                    lo[2].max(hi[2]),
                    lo[3].max(hi[3]),
                ])
            }
            GeoRel::Near { .. } | GeoRel::Disjoint => None,
            _ => self
                .geometry
                .bounding_rect()
                .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y]),
        }
    }
}

/// A box around `p` holding every point within `d` meters (generously: 1 %
/// margin, the whole longitude range near the poles or across ±180°).
fn near_bbox(p: Point<f64>, d: f64) -> [f64; 4] {
    let dlat = d / METERS_PER_DEGREE * 1.01 + 1e-9;
    let (lon, lat) = (p.x(), p.y());
    let min_lat = (lat - dlat).max(-90.0);
    let max_lat = (lat + dlat).min(90.0);
    let far_lat = lat.abs() + dlat;
    let whole = [-180.0, min_lat, 180.0, max_lat];
    if far_lat >= 89.0 {
        return whole;
    }
    let dlon = dlat / far_lat.to_radians().cos();
    if lon - dlon < -180.0 || lon + dlon > 180.0 {
        return whole;
    }
    [lon - dlon, min_lat, lon + dlon, max_lat]
}

/// Runs a `geo` algorithm that may panic on degenerate geometries (rings of
/// repeated points and the like, which pass GeoJSON validation); a panic
/// means "no answer" instead of taking the broker down with it.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

fn relate(a: &Geometry<f64>, b: &Geometry<f64>) -> Option<IntersectionMatrix> {
    guarded(|| a.relate(b))
}

/// Great-circle distance in meters from `p` to the closest point of `g`
/// (0 when `p` lies on or inside it).
/// Distance in meters between the closest points of `a` and `b` (exact for a
/// point reference; for extended ones, from every vertex of each to the other).
fn geometry_distance_m(a: &Geometry<f64>, b: &Geometry<f64>) -> Option<f64> {
    if let Geometry::Point(p) = a {
        return distance_m(*p, b);
    }
    let from_a = a
        .coords_iter()
        .filter_map(|c| distance_m(Point::from(c), b));
    let from_b = b
        .coords_iter()
        .filter_map(|c| distance_m(Point::from(c), a));
    from_a.chain(from_b).min_by(f64::total_cmp)
}

fn distance_m(p: Point<f64>, g: &Geometry<f64>) -> Option<f64> {
    guarded(|| match g.haversine_closest_point(&p) {
        Closest::Intersection(_) => Some(0.0),
        Closest::SinglePoint(c) => Some(Haversine.distance(p, c)),
        // Several equally close points (or a degenerate shape): the nearest
        // vertex is a good enough answer.
        Closest::Indeterminate => g
            .coords_iter()
            .map(|c| Haversine.distance(p, Point::from(c)))
            .min_by(f64::total_cmp),
    })
    .flatten()
}

/// Parses `coordinates` text: a JSON array, percent-encoded or not.
fn coordinates_from_text(s: &str) -> Result<Value> {
    let s = s.trim();
    let parsed = serde_json::from_str::<Value>(s).or_else(|e| match percent_decode(s) {
        Some(decoded) if decoded != s => serde_json::from_str::<Value>(&decoded),
        _ => Err(e),
    });
    match parsed {
        Ok(v @ Value::Array(_)) => Ok(v),
        _ => Err(NgsiError::bad_data(format!(
            "coordinates: expected a JSON array such as [8.68,49.39], found '{}'",
            truncate(s)
        ))),
    }
}

/// Decodes `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

fn short(v: &Value) -> String {
    truncate(&v.to_string())
}

fn bad(msg: String) -> NgsiError {
    NgsiError::bad_data(format!("geometry: {msg}"))
}

/// Parses and validates a GeoJSON geometry (a GeoProperty value): `type` and
/// `coordinates` (or `geometries` for a GeometryCollection), positions of 2
/// or 3 numbers with longitude in [-180, 180] and latitude in [-90, 90],
/// LineStrings of 2 or more positions, closed polygon rings of 4 or more.
/// Anything else is `BadRequestData` naming the offending member.
pub fn geometry_from_json(v: &Value) -> Result<Geometry<f64>> {
    geometry_at(v, 0)
}

fn geometry_at(v: &Value, depth: usize) -> Result<Geometry<f64>> {
    let obj = v.as_object().ok_or_else(|| {
        bad(format!(
            "expected a GeoJSON geometry object, found {}",
            short(v)
        ))
    })?;
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            return Err(bad(format!(
                "'type' must be a string, found {}",
                short(other)
            )))
        }
        None => return Err(bad("the 'type' member is missing".to_owned())),
    };
    if ty == "GeometryCollection" {
        if depth >= MAX_COLLECTION_DEPTH {
            return Err(bad(format!(
                "GeometryCollections nested deeper than {MAX_COLLECTION_DEPTH} levels"
            )));
        }
        let items = obj
            .get("geometries")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("a GeometryCollection needs a 'geometries' array".to_owned()))?;
        let geoms = items
            .iter()
            .map(|g| geometry_at(g, depth + 1))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Geometry::GeometryCollection(GeometryCollection(geoms)));
    }
    let c = obj
        .get("coordinates")
        .ok_or_else(|| bad(format!("the 'coordinates' member of the {ty} is missing")))?;
    let at = "coordinates";
    Ok(match ty {
        "Point" => Geometry::Point(Point(position(c, at)?)),
        "MultiPoint" => Geometry::MultiPoint(MultiPoint(
            non_empty(c, at, "MultiPoint", "position")?
                .iter()
                .enumerate()
                .map(|(i, p)| position(p, &format!("{at}[{i}]")).map(Point))
                .collect::<Result<_>>()?,
        )),
        "LineString" => Geometry::LineString(line(c, at)?),
        "MultiLineString" => Geometry::MultiLineString(MultiLineString(
            non_empty(c, at, "MultiLineString", "LineString")?
                .iter()
                .enumerate()
                .map(|(i, l)| line(l, &format!("{at}[{i}]")))
                .collect::<Result<_>>()?,
        )),
        "Polygon" => Geometry::Polygon(polygon(c, at)?),
        "MultiPolygon" => Geometry::MultiPolygon(MultiPolygon(
            non_empty(c, at, "MultiPolygon", "Polygon")?
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &format!("{at}[{i}]")))
                .collect::<Result<_>>()?,
        )),
        other => {
            return Err(bad(format!(
                "unknown geometry type '{other}' (expected Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon or GeometryCollection)"
            )))
        }
    })
}

/// `v` as a non-empty array.
fn non_empty<'a>(v: &'a Value, at: &str, what: &str, item: &str) -> Result<&'a [Value]> {
    match v {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Array(_) => Err(bad(format!("{at} of a {what} needs at least one {item}"))),
        other => Err(bad(format!(
            "{at} must be an array, found {}",
            short(other)
        ))),
    }
}

fn position(v: &Value, at: &str) -> Result<Coord<f64>> {
    let items = v.as_array().ok_or_else(|| {
        bad(format!(
            "{at} must be a position [longitude, latitude], found {}",
            short(v)
        ))
    })?;
    if !(2..=3).contains(&items.len()) {
        return Err(bad(format!(
            "{at} has {} number(s), a position needs 2 or 3",
            items.len()
        )));
    }
    let mut n = [0.0; 3];
    for (i, item) in items.iter().enumerate() {
        n[i] = item
            .as_f64()
            .ok_or_else(|| bad(format!("{at}[{i}] must be a number, found {}", short(item))))?;
    }
    let (lon, lat) = (n[0], n[1]);
    if !(-180.0..=180.0).contains(&lon) {
        return Err(bad(format!(
            "longitude {lon} at {at} is outside [-180, 180]"
        )));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(bad(format!("latitude {lat} at {at} is outside [-90, 90]")));
    }
    Ok(Coord { x: lon, y: lat })
}

fn positions(v: &Value, at: &str) -> Result<Vec<Coord<f64>>> {
    let items = v.as_array().ok_or_else(|| {
        bad(format!(
            "{at} must be an array of positions, found {}",
            short(v)
        ))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, p)| position(p, &format!("{at}[{i}]")))
        .collect()
}

fn line(v: &Value, at: &str) -> Result<LineString<f64>> {
    let coords = positions(v, at)?;
    if coords.len() < 2 {
        return Err(bad(format!(
            "{at}: a LineString needs at least 2 positions, found {}",
            coords.len()
        )));
    }
    Ok(LineString(coords))
}

fn polygon(v: &Value, at: &str) -> Result<Polygon<f64>> {
    let rings = non_empty(v, at, "Polygon", "linear ring")?;
    let mut parsed = Vec::with_capacity(rings.len());
    for (i, r) in rings.iter().enumerate() {
        let ring_at = format!("{at}[{i}]");
        let coords = positions(r, &ring_at)?;
        if coords.len() < 4 {
            return Err(bad(format!(
                "{ring_at}: a linear ring needs at least 4 positions, found {}",
                coords.len()
            )));
        }
        let (first, last) = (coords[0], coords[coords.len() - 1]);
        if first != last {
            return Err(bad(format!(
                "{ring_at}: the linear ring is not closed (first position [{}, {}] differs from last [{}, {}])",
                first.x, first.y, last.x, last.y
            )));
        }
        parsed.push(LineString(coords));
    }
    let mut parsed = parsed.into_iter();
    let exterior = parsed.next().expect("non_empty checked at least one ring");
    Ok(Polygon::new(exterior, parsed.collect()))
}

#[cfg(test)]
mod tests;
