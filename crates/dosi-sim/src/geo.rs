//! Small planar geometry around the city centre: metres east/north of the
//! centre to longitude/latitude and back (equirectangular, good to a few metres
//! over the city's 20 km), GeoJSON values, point-in-polygon.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Metres per degree of latitude.
const M_PER_DEG_LAT: f64 = 111_320.0;

/// A position, WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LonLat {
    /// Longitude, degrees east.
    pub lon: f64,
    /// Latitude, degrees north.
    pub lat: f64,
}

/// The centre of Dosi City (a fictional city near Khon Kaen, Thailand).
pub const CITY_CENTRE: LonLat = LonLat {
    lon: 102.83,
    lat: 16.43,
};

fn m_per_deg_lon() -> f64 {
    M_PER_DEG_LAT * CITY_CENTRE.lat.to_radians().cos()
}

impl LonLat {
    /// The position `x` metres east and `y` metres north of the city centre.
    pub fn from_xy(x: f64, y: f64) -> Self {
        LonLat {
            lon: CITY_CENTRE.lon + x / m_per_deg_lon(),
            lat: CITY_CENTRE.lat + y / M_PER_DEG_LAT,
        }
    }

    /// Metres east and north of the city centre.
    pub fn xy(self) -> (f64, f64) {
        (
            (self.lon - CITY_CENTRE.lon) * m_per_deg_lon(),
            (self.lat - CITY_CENTRE.lat) * M_PER_DEG_LAT,
        )
    }

    /// The position `dx` metres east and `dy` metres north of this one.
    pub fn offset(self, dx: f64, dy: f64) -> Self {
        let (x, y) = self.xy();
        LonLat::from_xy(x + dx, y + dy)
    }

    /// Distance in metres (planar approximation).
    pub fn distance_m(self, other: LonLat) -> f64 {
        let (ax, ay) = self.xy();
        let (bx, by) = other.xy();
        (ax - bx).hypot(ay - by)
    }

    /// `[lon, lat]` rounded to 6 decimals (about 10 cm).
    pub fn position(self) -> Value {
        json!([round6(self.lon), round6(self.lat)])
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A GeoJSON Point.
pub fn point(p: LonLat) -> Value {
    json!({"type": "Point", "coordinates": p.position()})
}

/// A GeoJSON LineString.
pub fn line_string(ps: &[LonLat]) -> Value {
    let coords: Vec<Value> = ps.iter().map(|p| p.position()).collect();
    json!({"type": "LineString", "coordinates": coords})
}

/// A GeoJSON Polygon from one outer ring (closed here if it is not).
pub fn polygon(ring: &[LonLat]) -> Value {
    let mut coords: Vec<Value> = ring.iter().map(|p| p.position()).collect();
    if let (Some(first), Some(last)) = (coords.first().cloned(), coords.last()) {
        if &first != last {
            coords.push(first);
        }
    }
    json!({"type": "Polygon", "coordinates": [coords]})
}

/// A ring of `n` vertices approximating a circle of `radius_m` around `c`.
pub fn circle(c: LonLat, radius_m: f64, n: usize) -> Vec<LonLat> {
    (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            c.offset(radius_m * a.cos(), radius_m * a.sin())
        })
        .collect()
}

/// Whether `p` is inside the ring (even-odd rule, planar).
pub fn in_polygon(p: LonLat, ring: &[LonLat]) -> bool {
    let (px, py) = p.xy();
    let pts: Vec<(f64, f64)> = ring.iter().map(|q| q.xy()).collect();
    let mut inside = false;
    let mut j = pts.len().saturating_sub(1);
    for i in 0..pts.len() {
        let (xi, yi) = pts[i];
        let (xj, yj) = pts[j];
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Length of a polyline, metres.
pub fn length_m(ps: &[LonLat]) -> f64 {
    ps.windows(2).map(|w| w[0].distance_m(w[1])).sum()
}

/// The point at `frac` (0..1) of a polyline's length.
pub fn along(ps: &[LonLat], frac: f64) -> LonLat {
    let total = length_m(ps);
    let mut left = total * frac.clamp(0.0, 1.0);
    for w in ps.windows(2) {
        let d = w[0].distance_m(w[1]);
        if left <= d && d > 0.0 {
            let f = left / d;
            let (ax, ay) = w[0].xy();
            let (bx, by) = w[1].xy();
            return LonLat::from_xy(ax + (bx - ax) * f, ay + (by - ay) * f);
        }
        left -= d;
    }
    *ps.last().expect("a polyline has points")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_polygon() {
        let p = LonLat::from_xy(1000.0, -2000.0);
        let (x, y) = p.xy();
        assert!((x - 1000.0).abs() < 1e-6 && (y + 2000.0).abs() < 1e-6);
        assert!((CITY_CENTRE.distance_m(p) - 2236.07).abs() < 0.1);
        let ring = circle(CITY_CENTRE, 500.0, 12);
        assert!(in_polygon(CITY_CENTRE.offset(100.0, 100.0), &ring));
        assert!(!in_polygon(CITY_CENTRE.offset(600.0, 0.0), &ring));
        let line = [CITY_CENTRE, CITY_CENTRE.offset(1000.0, 0.0)];
        assert!((along(&line, 0.25).xy().0 - 250.0).abs() < 1e-6);
    }
}
