//! The benchmark data generator: realistic city sensor entities in NGSI-LD
//! normalized form, and a fast writer that turns them into request bodies.
//!
//! [`sensor_entity`] is the single definition of what an entity looks like;
//! [`EntityWriter`] serializes a pool of such entities once and afterwards
//! only splices ids into them, so that building a batch of 100 entities costs
//! a few memcpys instead of building and serializing 100 JSON trees — the
//! load generator shares its cores with the server it measures.

use rand::Rng;
use serde_json::{json, Map, Value};

/// Longitude of the centre of the benchmark city (Khon Kaen, Thailand).
pub const CITY_LON: f64 = 102.83;
/// Latitude of the centre of the benchmark city.
pub const CITY_LAT: f64 = 16.43;
/// Half the side of the square city area, in degrees of longitude (10 km at 16.43° N).
pub const CITY_HALF_LON: f64 = 0.0937;
/// Half the side of the square city area, in degrees of latitude (10 km).
pub const CITY_HALF_LAT: f64 = 0.0904;

/// Number of distinct `band` values: `band == k` selects exactly 1 % of a loaded id range.
pub const BANDS: u64 = 100;

/// Number of districts that `refDistrict` points at.
const DISTRICTS: u32 = 12;

const STATUSES: [&str; 3] = ["ok", "ok", "maintenance"];
const CATEGORIES: [&str; 4] = ["airQuality", "traffic", "parking", "weather"];

/// The entity id of benchmark entity `n` of `entity_type`.
pub fn entity_id(entity_type: &str, n: u64) -> String {
    format!("urn:ngsi-ld:{entity_type}:bench-{n}")
}

/// The `band` value of benchmark entity `n` (0..[`BANDS`]).
pub fn band(n: u64) -> u64 {
    n % BANDS
}

/// A uniformly random point `(lon, lat)` inside the ~20 km × 20 km city area.
pub fn random_point<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
    let lon = CITY_LON + rng.random_range(-CITY_HALF_LON..CITY_HALF_LON);
    let lat = CITY_LAT + rng.random_range(-CITY_HALF_LAT..CITY_HALF_LAT);
    (round_to(lon, 6), round_to(lat, 6))
}

/// The location of benchmark entity `n`: a point inside the city that
/// depends on `n` only, spread uniformly, so that every entity of a loaded
/// range has its own place (geo queries then see a realistic density).
pub fn entity_point(n: u64) -> (f64, f64) {
    // splitmix64: a cheap, well-mixed hash of n.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    // Two 32-bit halves, each mapped to [-1, 1).
    let unit = |bits: u64| (bits as f64 / (1u64 << 31) as f64) - 1.0;
    let lon = CITY_LON + CITY_HALF_LON * unit(z >> 32);
    let lat = CITY_LAT + CITY_HALF_LAT * unit(z & 0xffff_ffff);
    (round_to(lon, 6), round_to(lat, 6))
}

/// Benchmark entity `n`: a city sensor with a dozen attributes in NGSI-LD
/// normalized form (no `@context`, so terms resolve against the core context).
///
/// `id`, `band` and `location` depend on `n` only; every other value comes from `rng`.
pub fn sensor_entity<R: Rng + ?Sized>(entity_type: &str, n: u64, rng: &mut R) -> Value {
    let mut entity = Map::new();
    entity.insert("id".into(), Value::String(entity_id(entity_type, n)));
    entity.insert("type".into(), Value::String(entity_type.to_owned()));
    entity.insert("band".into(), property(json!(band(n))));
    let (lon, lat) = entity_point(n);
    for (name, value) in measurements(rng) {
        let value = if name == "location" {
            location(&json!(lon), &json!(lat))
        } else {
            value
        };
        entity.insert(name.into(), value);
    }
    Value::Object(entity)
}

/// A GeoProperty `location` holding the point `[lon, lat]`.
fn location(lon: &Value, lat: &Value) -> Value {
    json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}})
}

/// The attributes of a sensor apart from `id`, `type` and `band`, in a fixed
/// order; `location` holds placeholder coordinates that callers replace.
fn measurements<R: Rng + ?Sized>(rng: &mut R) -> Vec<(&'static str, Value)> {
    let pm25 = round_to(rng.random_range(2.0..180.0), 1);
    vec![
        (
            "name",
            property(json!(format!(
                "KK sensor {:04}",
                rng.random_range(0..10_000)
            ))),
        ),
        (
            "status",
            property(json!(STATUSES[rng.random_range(0..STATUSES.len())])),
        ),
        (
            "category",
            property(json!(CATEGORIES[rng.random_range(0..CATEGORIES.len())])),
        ),
        (
            "temperature",
            measured(round_to(rng.random_range(22.0..40.0), 1), "CEL"),
        ),
        (
            "humidity",
            measured(round_to(rng.random_range(30.0..95.0), 1), "P1"),
        ),
        ("pm25", measured(pm25, "GQ")),
        (
            "pm10",
            measured(round_to(pm25 * rng.random_range(1.1..1.9), 1), "GQ"),
        ),
        (
            "no2",
            measured(round_to(rng.random_range(5.0..120.0), 1), "GQ"),
        ),
        (
            "speed",
            measured(round_to(rng.random_range(0.0..90.0), 1), "KMH"),
        ),
        (
            "occupancy",
            property(json!(round_to(rng.random_range(0.0..1.0), 2))),
        ),
        ("location", location(&json!(0.0), &json!(0.0))),
        (
            "refDistrict",
            json!({
                "type": "Relationship",
                "object": format!("urn:ngsi-ld:District:kk-{}", rng.random_range(0..DISTRICTS)),
            }),
        ),
    ]
}

fn property(value: Value) -> Value {
    json!({"type": "Property", "value": value})
}

fn measured(value: f64, unit_code: &str) -> Value {
    json!({"type": "Property", "value": value, "unitCode": unit_code})
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// Writes benchmark entities as JSON text quickly, from a pool of pre-serialized variants.
#[derive(Debug, Clone)]
pub struct EntityWriter {
    /// `{"id":"urn:ngsi-ld:<Type>:bench-` — everything before the number.
    id_prefix: String,
    /// `","type":"<Type>","band":{"type":"Property","value":` — between the number and the band.
    after_id: String,
    /// Each variant after the band value, cut where the location's
    /// coordinates go: `},"name":…"coordinates":[` and `]}},"refDistrict":…}`.
    tails: Vec<(String, String)>,
}

impl EntityWriter {
    /// Prepares `variants` (at least one) differently valued entities of `entity_type`.
    pub fn new<R: Rng + ?Sized>(entity_type: &str, variants: usize, rng: &mut R) -> Self {
        // serde_json escapes the type the same way it would inside `sensor_entity`.
        let type_json = Value::String(entity_type.to_owned()).to_string();
        let id_json = Value::String(entity_id(entity_type, 0)).to_string();
        let id_prefix = format!(
            "{{\"id\":{}",
            id_json
                .strip_suffix("0\"")
                .expect("the serialized id ends with the number 0 and a quote")
        );
        let after_id = format!(",\"type\":{type_json},\"band\":{{\"type\":\"Property\",\"value\":");
        let tails = (0..variants.max(1))
            .map(|_| {
                let mut tail = String::from("}");
                for (name, value) in measurements(rng) {
                    tail.push(',');
                    tail.push_str(&Value::String(name.to_owned()).to_string());
                    tail.push(':');
                    tail.push_str(&value.to_string());
                }
                tail.push('}');
                // The placeholder coordinates are the only `[0.0,0.0]` in the text.
                let (head, rest) = tail
                    .split_once("[0.0,0.0]")
                    .expect("measurements hold a location with placeholder coordinates");
                (format!("{head}["), format!("]{rest}"))
            })
            .collect();
        EntityWriter {
            id_prefix,
            after_id,
            tails,
        }
    }

    /// Number of pre-serialized variants.
    pub fn variants(&self) -> usize {
        self.tails.len()
    }

    /// Appends entity `n` using variant `variant` (taken modulo the pool size).
    pub fn write(&self, out: &mut Vec<u8>, n: u64, variant: usize) {
        out.extend_from_slice(self.id_prefix.as_bytes());
        out.extend_from_slice(n.to_string().as_bytes());
        out.push(b'"');
        out.extend_from_slice(self.after_id.as_bytes());
        out.extend_from_slice(band(n).to_string().as_bytes());
        let (head, rest) = &self.tails[variant % self.tails.len()];
        out.extend_from_slice(head.as_bytes());
        let (lon, lat) = entity_point(n);
        // serde_json writes floats the same way, so the text matches `sensor_entity`.
        out.extend_from_slice(json!(lon).to_string().as_bytes());
        out.push(b',');
        out.extend_from_slice(json!(lat).to_string().as_bytes());
        out.extend_from_slice(rest.as_bytes());
    }

    /// A JSON array of the entities `ids`, variant chosen by `variant_of(n)`.
    pub fn batch(
        &self,
        ids: impl IntoIterator<Item = u64>,
        variant_of: impl Fn(u64) -> usize,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.tails[0].0.len() + self.tails[0].1.len()) * 128);
        out.push(b'[');
        for (i, n) in ids.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write(&mut out, n, variant_of(n));
        }
        out.push(b']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn rng(seed: u64) -> SmallRng {
        SmallRng::seed_from_u64(seed)
    }

    fn entity(n: u64) -> Value {
        sensor_entity("Sensor", n, &mut rng(7))
    }

    /// `attr` of `entity(n)` has NGSI-LD attribute type `kind`.
    fn check_attr(n: u64, attr: &str, kind: &str) {
        assert_eq!(entity(n)[attr]["type"], kind, "{attr}");
    }

    #[test]
    fn attributes_have_their_ngsi_ld_kinds() {
        check_attr(1, "band", "Property");
        check_attr(1, "name", "Property");
        check_attr(1, "status", "Property");
        check_attr(1, "category", "Property");
        check_attr(1, "temperature", "Property");
        check_attr(1, "humidity", "Property");
        check_attr(1, "pm25", "Property");
        check_attr(1, "pm10", "Property");
        check_attr(1, "no2", "Property");
        check_attr(1, "speed", "Property");
        check_attr(1, "occupancy", "Property");
        check_attr(1, "location", "GeoProperty");
        check_attr(1, "refDistrict", "Relationship");
    }

    /// `entity(n)` has id `id` and band `band`.
    fn check_id(n: u64, id: &str, band: u64) {
        let e = entity(n);
        assert_eq!(e["id"], id);
        assert_eq!(e["type"], "Sensor");
        assert_eq!(e["band"]["value"], band);
    }

    #[test]
    fn ids_and_bands_follow_the_number() {
        check_id(0, "urn:ngsi-ld:Sensor:bench-0", 0);
        check_id(7, "urn:ngsi-ld:Sensor:bench-7", 7);
        check_id(107, "urn:ngsi-ld:Sensor:bench-107", 7);
        check_id(999_999, "urn:ngsi-ld:Sensor:bench-999999", 99);
    }

    #[test]
    fn bands_select_one_percent() {
        let sevens = (0..10_000).filter(|&n| band(n) == 7).count();
        assert_eq!(sevens, 100);
    }

    #[test]
    fn same_seed_same_entity() {
        assert_eq!(entity(3), entity(3));
        assert_ne!(
            sensor_entity("Sensor", 3, &mut rng(1)),
            sensor_entity("Sensor", 3, &mut rng(2))
        );
    }

    #[test]
    fn points_stay_inside_the_city() {
        let mut r = rng(11);
        for _ in 0..10_000 {
            let (lon, lat) = random_point(&mut r);
            assert!((lon - CITY_LON).abs() <= CITY_HALF_LON + 1e-6, "{lon}");
            assert!((lat - CITY_LAT).abs() <= CITY_HALF_LAT + 1e-6, "{lat}");
        }
        let e = entity(5);
        let coords = &e["location"]["value"]["coordinates"];
        assert!((coords[0].as_f64().unwrap_or(0.0) - CITY_LON).abs() < 0.1);
        assert!((coords[1].as_f64().unwrap_or(0.0) - CITY_LAT).abs() < 0.1);
        for n in 0..10_000 {
            let (lon, lat) = entity_point(n);
            assert!((lon - CITY_LON).abs() <= CITY_HALF_LON + 1e-6, "{lon}");
            assert!((lat - CITY_LAT).abs() <= CITY_HALF_LAT + 1e-6, "{lat}");
        }
    }

    #[test]
    fn entities_have_their_own_places() {
        let mut seen: Vec<(i64, i64)> = (0..10_000)
            .map(|n| {
                let (lon, lat) = entity_point(n);
                ((lon * 1e6) as i64, (lat * 1e6) as i64)
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 9_990, "{}", seen.len());
        // Quadrants of the city get about a quarter each.
        let north_east = (0..10_000)
            .filter(|&n| {
                let (lon, lat) = entity_point(n);
                lon > CITY_LON && lat > CITY_LAT
            })
            .count();
        assert!((2_200..2_800).contains(&north_east), "{north_east}");
    }

    /// The writer's text for entity `n` equals `sensor_entity` with the same rng stream.
    fn check_writer(entity_type: &str, n: u64) {
        let writer = EntityWriter::new(entity_type, 1, &mut rng(42));
        let mut out = Vec::new();
        writer.write(&mut out, n, 0);
        let written: Value = serde_json::from_slice(&out).expect("writer emits JSON");
        assert_eq!(written, sensor_entity(entity_type, n, &mut rng(42)));
    }

    #[test]
    fn writer_matches_sensor_entity() {
        check_writer("Sensor", 0);
        check_writer("Sensor", 12_345);
        check_writer("AirQualityObserved", u64::MAX);
        check_writer("Odd\"Type\\", 9);
        check_writer("Sensor", 77);
    }

    #[test]
    fn batch_is_an_array_of_the_requested_entities() {
        let writer = EntityWriter::new("Sensor", 4, &mut rng(1));
        assert_eq!(writer.variants(), 4);
        let body = writer.batch(10..15, |n| n as usize);
        let parsed: Value = serde_json::from_slice(&body).expect("batch is JSON");
        let ids: Vec<&str> = parsed
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["id"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            ids,
            (10..15)
                .map(|n| format!("urn:ngsi-ld:Sensor:bench-{n}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(writer.batch(0..0, |_| 0), b"[]");
    }
}
