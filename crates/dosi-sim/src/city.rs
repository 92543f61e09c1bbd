//! The demo city, Dosi City: districts, roads, a river and every device, generated
//! procedurally from a seed.
//!
//! The layout is planned, not noise: a slightly rotated street grid (400 m blocks)
//! forms the old town with three arterials each way, highways leave it in eight
//! directions with sois branching off them, a ring road circles it at about
//! 4.8 km, the Dosi River crosses
//! from north-west to south-east, eight districts surround the old town and farms
//! lie at the edge. The seed moves things around; the plan stays.

use std::collections::HashMap;
use std::f64::consts::{PI, TAU};
use std::ops::Range;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::device::{Device, DeviceId, Kind, LaneDirection, ParkingProfile, Reporting};
use crate::geo::{self, LonLat};
use crate::Error;

/// How many devices to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    devices: usize,
}

impl Scale {
    /// The demo city: 5,000 devices and context entities over the nine packs.
    pub const DEFAULT: Scale = Scale { devices: 5_000 };
    /// The load-test city: 100,000.
    pub const LARGE: Scale = Scale { devices: 100_000 };
    /// The smallest city that still has every kind of device.
    pub const MIN_DEVICES: usize = 2_000;

    /// A city of exactly `n` devices (including static context entities).
    pub fn devices(n: usize) -> Result<Scale, Error> {
        if n < Self::MIN_DEVICES {
            return Err(Error::ScaleTooSmall {
                requested: n,
                minimum: Self::MIN_DEVICES,
            });
        }
        Ok(Scale { devices: n })
    }

    /// The number of devices the city will have.
    pub fn device_count(self) -> usize {
        self.devices
    }
}

impl Default for Scale {
    fn default() -> Self {
        Scale::DEFAULT
    }
}

/// What a district is mostly used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistrictKind {
    /// The dense historic centre (shops, offices, temples).
    OldTown,
    /// Markets, malls, the rail station.
    Commercial,
    /// Housing.
    Residential,
    /// The university and hospitals.
    Campus,
    /// Factories and warehouses.
    Industrial,
    /// Fields and villages.
    Rural,
}

impl DistrictKind {
    /// Short name.
    pub fn as_str(self) -> &'static str {
        match self {
            DistrictKind::OldTown => "oldTown",
            DistrictKind::Commercial => "commercial",
            DistrictKind::Residential => "residential",
            DistrictKind::Campus => "campus",
            DistrictKind::Industrial => "industrial",
            DistrictKind::Rural => "rural",
        }
    }
}

/// A district of the city.
#[derive(Debug, Clone, PartialEq)]
pub struct District {
    /// Name.
    pub name: String,
    /// Main land use.
    pub kind: DistrictKind,
    /// Boundary ring (not closed).
    pub ring: Vec<LonLat>,
    /// A point well inside.
    pub centre: LonLat,
}

/// Road classes, by speed limit and lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoadClass {
    /// Highways leaving the city, 90 km/h.
    Highway,
    /// The ring road, 80 km/h.
    Ring,
    /// Arterials of the old-town grid, 60 km/h.
    Arterial,
    /// Local streets, 40 km/h.
    Local,
}

impl RoadClass {
    /// Short name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoadClass::Highway => "highway",
            RoadClass::Ring => "ring",
            RoadClass::Arterial => "arterial",
            RoadClass::Local => "local",
        }
    }

    fn speed_limit_kmh(self) -> f64 {
        match self {
            RoadClass::Highway => 90.0,
            RoadClass::Ring => 80.0,
            RoadClass::Arterial => 60.0,
            RoadClass::Local => 40.0,
        }
    }

    fn lanes_per_direction(self) -> u32 {
        match self {
            RoadClass::Local => 1,
            _ => 2,
        }
    }
}

/// A named road: a chain of segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    /// Id (`road-07`), also the `Road` entity id suffix.
    pub id: String,
    /// Name.
    pub name: String,
    /// Class.
    pub class: RoadClass,
    /// Its segments in geometry order (indices in [`City::segments`]).
    pub segments: Vec<usize>,
}

/// A stretch of road between two junctions.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Id (`rs-0042`), also the `RoadSegment` entity id suffix.
    pub id: String,
    /// Index of its road in [`City::roads`].
    pub road: usize,
    /// Class.
    pub class: RoadClass,
    /// Centre line, in the forward direction.
    pub points: Vec<LonLat>,
    /// Lanes in each direction.
    pub lanes_per_direction: u32,
    /// Speed limit, km/h.
    pub speed_limit_kmh: f64,
    /// Length, metres.
    pub length_m: f64,
    /// How busy it is relative to its class (about 0.7 to 1.1).
    pub demand_factor: f64,
    /// The previous segment of its road (upstream of forward traffic).
    pub prev: Option<usize>,
    /// The next segment of its road.
    pub next: Option<usize>,
}

/// The river crossing the city.
#[derive(Debug, Clone, PartialEq)]
pub struct River {
    /// Name.
    pub name: String,
    /// Centre line, upstream to downstream.
    pub points: Vec<LonLat>,
}

/// An off-street car park and the spot sensors in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lot {
    /// Name.
    pub name: String,
    /// Entrance.
    pub location: LonLat,
    /// Whose day it follows.
    pub profile: ParkingProfile,
    /// Indices of its `ParkingSpot` devices.
    pub spots: Range<usize>,
    /// Index of its `OffStreetParking` device.
    pub device: usize,
}

/// A junction where cameras stand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Junction {
    /// Where.
    pub location: LonLat,
    /// Number of major roads meeting (0 for two local streets).
    pub importance: u32,
}

/// The generated city.
#[derive(Debug, Clone)]
pub struct City {
    /// "Dosi City".
    pub name: String,
    /// The seed it was generated from.
    pub seed: u64,
    /// The scale it was generated at.
    pub scale: Scale,
    /// Districts (the old town first).
    pub districts: Vec<District>,
    /// Roads.
    pub roads: Vec<Road>,
    /// Road segments.
    pub segments: Vec<Segment>,
    /// The river.
    pub river: River,
    /// Junctions, most important first.
    pub junctions: Vec<Junction>,
    /// Car parks.
    pub lots: Vec<Lot>,
    devices: Vec<Device>,
    by_entity: HashMap<String, usize>,
}

/// Names for the grid streets, west to east and south to north.
const STREET_NAMES: [&str; 13] = [
    "Lotus",
    "Mango",
    "Tamarind",
    "Jasmine",
    "Bamboo",
    "Orchid",
    "Chaloem",
    "Teak",
    "Lychee",
    "Frangipani",
    "Banyan",
    "Rosewood",
    "Palm",
];
const AVENUE_NAMES: [&str; 13] = [
    "Silk", "Temple", "Pottery", "Weaver", "Salt", "Lantern", "Dosi", "Bell", "Kite", "Drum",
    "Rice", "Monsoon", "Naga",
];

/// Grid half-size in blocks and block size in metres.
const GRID_HALF: i32 = 6;
const BLOCK_M: f64 = 400.0;
/// Ring road radius, metres.
const RING_M: f64 = 4_800.0;
/// Where highways end, metres from the centre.
const EDGE_M: f64 = 8_500.0;

struct Gen {
    rng: StdRng,
    rot: f64,
}

impl Gen {
    /// A point `x`, `y` metres in the grid's (rotated) frame.
    fn at(&self, x: f64, y: f64) -> LonLat {
        let (s, c) = self.rot.sin_cos();
        LonLat::from_xy(x * c - y * s, x * s + y * c)
    }

    fn jitter(&mut self, m: f64) -> f64 {
        self.rng.random_range(-m..=m)
    }

    fn in_ring(&mut self, ring: &[LonLat]) -> LonLat {
        let xs: Vec<(f64, f64)> = ring.iter().map(|p| p.xy()).collect();
        let (x0, x1) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        for _ in 0..200 {
            let p = LonLat::from_xy(self.rng.random_range(x0..x1), self.rng.random_range(y0..y1));
            if geo::in_polygon(p, ring) {
                return p;
            }
        }
        ring[0]
    }
}

struct Counts {
    detectors: usize,
    air: usize,
    river: usize,
    rain: usize,
    seismic: usize,
    bells: usize,
    intrusion: usize,
    trackers: usize,
    parcels: usize,
    greenhouses: usize,
    cameras: usize,
    lots: usize,
    lot_spots: usize,
    street_spots: usize,
}

impl Counts {
    fn new(total: usize, segments: usize) -> Counts {
        let share = |f: f64, min: usize| ((total as f64 * f).round() as usize).max(min);
        let mut c = Counts {
            detectors: share(0.08, 40),
            air: share(0.01, 6),
            river: share(0.004, 6),
            rain: share(0.006, 6),
            seismic: share(0.006, 6),
            bells: share(0.04, 20),
            intrusion: share(0.04, 20),
            trackers: share(0.05, 20),
            parcels: share(0.02, 10),
            greenhouses: share(0.005, 3),
            cameras: share(0.06, 30),
            lots: share(0.008, 10),
            lot_spots: 0,
            street_spots: 0,
        };
        // geofences (one a tracker), 2 probes and 1 valve a parcel, the segments:
        // parking spots take what is left so the total is exact.
        let used = segments
            + c.detectors
            + c.air
            + c.river
            + c.rain
            + c.seismic
            + c.bells
            + c.intrusion
            + 2 * c.trackers
            + 4 * c.parcels
            + c.greenhouses
            + c.cameras
            + c.lots;
        let rest = total.saturating_sub(used);
        c.lot_spots = rest * 7 / 10;
        c.street_spots = rest - c.lot_spots;
        c
    }
}

impl City {
    /// Generates Dosi City from `seed` at `scale`. The same seed and scale give the same city.
    pub fn generate(seed: u64, scale: Scale) -> City {
        let mut g = Gen {
            rng: StdRng::seed_from_u64(seed),
            rot: 0.0,
        };
        g.rot = g.rng.random_range(-0.15..0.15);
        let mut city = City {
            name: "Dosi City".into(),
            seed,
            scale,
            districts: Vec::new(),
            roads: Vec::new(),
            segments: Vec::new(),
            river: River {
                name: "Dosi River".into(),
                points: Vec::new(),
            },
            junctions: Vec::new(),
            lots: Vec::new(),
            devices: Vec::new(),
            by_entity: HashMap::new(),
        };
        city.gen_districts(&mut g);
        city.gen_roads(&mut g);
        city.gen_river(&mut g);
        let counts = Counts::new(scale.devices, city.segments.len());
        city.gen_devices(&mut g, &counts);
        city.by_entity = city
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.entity_id.clone(), i))
            .collect();
        city
    }

    /// Every device and context entity.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The device publishing entity `entity_id`.
    pub fn device_by_entity(&self, entity_id: &str) -> Option<(usize, &Device)> {
        self.by_entity
            .get(entity_id)
            .map(|&i| (i, &self.devices[i]))
    }

    /// Device count per pack name.
    pub fn count_by_pack(&self) -> HashMap<&'static str, usize> {
        let mut m = HashMap::new();
        for d in &self.devices {
            *m.entry(d.pack).or_insert(0) += 1;
        }
        m
    }

    /// The index of the district containing `p` (the nearest centre when outside all).
    pub fn district_at(&self, p: LonLat) -> usize {
        self.districts
            .iter()
            .position(|d| geo::in_polygon(p, &d.ring))
            .unwrap_or_else(|| {
                let mut best = (0, f64::MAX);
                for (i, d) in self.districts.iter().enumerate() {
                    let dist = d.centre.distance_m(p);
                    if dist < best.1 {
                        best = (i, dist);
                    }
                }
                best.0
            })
    }

    /// The city's geometry as a GeoJSON FeatureCollection: districts (Polygon),
    /// roads (LineString per segment), the river (LineString), for an offline basemap.
    pub fn geojson(&self) -> Value {
        let mut features = Vec::new();
        for d in &self.districts {
            features.push(json!({
                "type": "Feature",
                "geometry": geo::polygon(&d.ring),
                "properties": {"layer": "district", "name": d.name, "kind": d.kind.as_str()},
            }));
        }
        features.push(json!({
            "type": "Feature",
            "geometry": geo::line_string(&self.river.points),
            "properties": {"layer": "river", "name": self.river.name},
        }));
        for s in &self.segments {
            let road = &self.roads[s.road];
            features.push(json!({
                "type": "Feature",
                "id": s.id,
                "geometry": geo::line_string(&s.points),
                "properties": {
                    "layer": "road",
                    "name": road.name,
                    "class": s.class.as_str(),
                    "segment": format!("urn:ngsi-ld:RoadSegment:{}", s.id),
                },
            }));
        }
        json!({"type": "FeatureCollection", "name": self.name, "features": features})
    }

    fn gen_districts(&mut self, g: &mut Gen) {
        const SECTORS: [(&str, DistrictKind); 8] = [
            ("Industrial Estate", DistrictKind::Industrial),
            ("Ban Mai", DistrictKind::Residential),
            ("University", DistrictKind::Campus),
            ("Nong Bua Lakeside", DistrictKind::Residential),
            ("Rail Quarter", DistrictKind::Commercial),
            ("Garden Homes", DistrictKind::Residential),
            ("Talat Market", DistrictKind::Commercial),
            ("Green Belt", DistrictKind::Rural),
        ];
        let core = 2_600.0;
        // Inner vertices: the old-town square's corners and edge midpoints at 45° steps.
        let inner: Vec<LonLat> = (0..8)
            .map(|k| {
                let a = k as f64 * PI / 4.0;
                let (s, c) = a.sin_cos();
                let m = c.abs().max(s.abs());
                g.at(core * c / m, core * s / m)
            })
            .collect();
        let outer: Vec<LonLat> = (0..16)
            .map(|k| {
                let a = k as f64 * PI / 8.0;
                let r = 9_000.0 + g.jitter(700.0);
                g.at(r * a.cos(), r * a.sin())
            })
            .collect();
        self.districts.push(District {
            name: "Old Town".into(),
            kind: DistrictKind::OldTown,
            ring: inner.clone(),
            centre: g.at(0.0, 0.0),
        });
        for (k, (name, kind)) in SECTORS.iter().enumerate() {
            let k1 = (k + 1) % 8;
            let ring = vec![
                inner[k],
                outer[2 * k],
                outer[2 * k + 1],
                outer[(2 * k + 2) % 16],
                inner[k1],
            ];
            let a = (k as f64 + 0.5) * PI / 4.0;
            let centre = g.at(5_000.0 * a.cos(), 5_000.0 * a.sin());
            self.districts.push(District {
                name: (*name).into(),
                kind: *kind,
                ring,
                centre,
            });
        }
    }

    fn add_road(&mut self, name: String, class: RoadClass, points: &[LonLat], closed: bool) {
        let road = self.roads.len();
        let mut ids = Vec::new();
        let n = if closed {
            points.len()
        } else {
            points.len() - 1
        };
        let mut rng_factor = {
            // The demand factor varies smoothly along a road.
            let mut h = hash(road as u64, 0xD0_51);
            move || {
                h = hash(h, 1);
                0.75 + 0.35 * unit(h)
            }
        };
        for k in 0..n {
            let a = points[k];
            let b = points[(k + 1) % points.len()];
            let idx = self.segments.len();
            let core_bonus = if a.distance_m(geo::CITY_CENTRE) < 2_000.0 {
                0.1
            } else {
                0.0
            };
            self.segments.push(Segment {
                id: format!("rs-{idx:04}"),
                road,
                class,
                points: vec![a, b],
                lanes_per_direction: class.lanes_per_direction(),
                speed_limit_kmh: class.speed_limit_kmh(),
                length_m: a.distance_m(b),
                demand_factor: rng_factor() + core_bonus,
                prev: None,
                next: None,
            });
            ids.push(idx);
        }
        for (k, &s) in ids.iter().enumerate() {
            if k > 0 {
                self.segments[s].prev = Some(ids[k - 1]);
            }
            if k + 1 < ids.len() {
                self.segments[s].next = Some(ids[k + 1]);
            }
        }
        if closed && ids.len() > 1 {
            let (first, last) = (ids[0], ids[ids.len() - 1]);
            self.segments[first].prev = Some(last);
            self.segments[last].next = Some(first);
        }
        self.roads.push(Road {
            id: format!("road-{road:02}"),
            name,
            class,
            segments: ids,
        });
    }

    fn gen_roads(&mut self, g: &mut Gen) {
        let n = (2 * GRID_HALF + 1) as usize;
        let mut nodes = vec![vec![LonLat::from_xy(0.0, 0.0); n]; n];
        for (i, col) in nodes.iter_mut().enumerate() {
            for (j, node) in col.iter_mut().enumerate() {
                let x = (i as f64 - GRID_HALF as f64) * BLOCK_M + g.jitter(25.0);
                let y = (j as f64 - GRID_HALF as f64) * BLOCK_M + g.jitter(25.0);
                *node = g.at(x, y);
            }
        }
        let arterial = |k: usize| k == 3 || k == 6 || k == 9;
        for j in 0..n {
            let pts: Vec<LonLat> = (0..n).map(|i| nodes[i][j]).collect();
            let class = if arterial(j) {
                RoadClass::Arterial
            } else {
                RoadClass::Local
            };
            self.add_road(format!("{} Road", STREET_NAMES[j]), class, &pts, false);
        }
        for (i, col) in nodes.iter().enumerate() {
            let class = if arterial(i) {
                RoadClass::Arterial
            } else {
                RoadClass::Local
            };
            self.add_road(format!("{} Avenue", AVENUE_NAMES[i]), class, col, false);
        }
        for (i, col) in nodes.iter().enumerate() {
            for (j, &p) in col.iter().enumerate() {
                let importance = u32::from(arterial(i)) + u32::from(arterial(j));
                self.junctions.push(Junction {
                    location: p,
                    importance,
                });
            }
        }
        // Highways: from the grid's edge midpoints and corners outwards.
        let highways = [
            ("Highway 12 east", n - 1, GRID_HALF as usize),
            ("Route 209 north-east", n - 1, n - 1),
            ("Highway 2 north", GRID_HALF as usize, n - 1),
            ("Route 2301 north-west", 0, n - 1),
            ("Highway 12 west", 0, GRID_HALF as usize),
            ("Route 230 south-west", 0, 0),
            ("Highway 2 south", GRID_HALF as usize, 0),
            ("Route 2131 south-east", n - 1, 0),
        ];
        for (k, (name, i, j)) in highways.iter().enumerate() {
            let a = k as f64 * PI / 4.0 + g.rot;
            let start = nodes[*i][*j];
            let (sx, sy) = start.xy();
            let r0 = sx.hypot(sy);
            let mut pts = vec![start];
            let mut r = r0;
            let mut ring_point = (start, f64::MAX);
            while r < EDGE_M {
                r = (r + 600.0).min(EDGE_M);
                let bend = g.jitter(0.02);
                let p = LonLat::from_xy(r * (a + bend).cos(), r * (a + bend).sin());
                if (r - RING_M).abs() < ring_point.1 {
                    ring_point = (p, (r - RING_M).abs());
                }
                pts.push(p);
            }
            self.junctions.push(Junction {
                location: ring_point.0,
                importance: 2,
            });
            self.add_road((*name).into(), RoadClass::Highway, &pts, false);
            // Suburban sois branch off the highway on both sides, short of the
            // next highway, except where it meets the ring road.
            let short = name.split(' ').take(2).collect::<Vec<_>>().join(" ");
            let mut soi = 0;
            for p in &pts[1..pts.len() - 1] {
                let (px, py) = p.xy();
                let r = px.hypot(py);
                if (r - RING_M).abs() < 400.0 {
                    continue;
                }
                for side in [1.0, -1.0] {
                    soi += 1;
                    let len = (r * 0.37).min(1_100.0) * g.rng.random_range(0.7..1.0);
                    let perp = a + side * PI / 2.0;
                    let bend = g.jitter(0.15);
                    let mid = p.offset(len / 2.0 * perp.cos(), len / 2.0 * perp.sin());
                    let end = mid.offset(
                        len / 2.0 * (perp + bend).cos(),
                        len / 2.0 * (perp + bend).sin(),
                    );
                    self.junctions.push(Junction {
                        location: *p,
                        importance: 1,
                    });
                    self.add_road(
                        format!("{short} Soi {soi}"),
                        RoadClass::Local,
                        &[*p, mid, end],
                        false,
                    );
                }
            }
        }
        let ring: Vec<LonLat> = (0..28)
            .map(|k| {
                let a = k as f64 * TAU / 28.0;
                let r = RING_M + g.jitter(250.0);
                LonLat::from_xy(r * a.cos(), r * a.sin())
            })
            .collect();
        self.add_road("Outer Ring Road".into(), RoadClass::Ring, &ring, true);
        self.junctions
            .sort_by_key(|j| std::cmp::Reverse(j.importance));
    }

    fn gen_river(&mut self, g: &mut Gen) {
        let phase = g.rng.random_range(0.0..TAU);
        let amp = g.rng.random_range(350.0..650.0);
        let (x0, y0, x1, y1) = (-9_500.0, 6_500.0, 9_500.0, -6_000.0);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = f64::hypot(dx, dy);
        let (nx, ny) = (-dy / len, dx / len);
        self.river.points = (0..=80)
            .map(|k| {
                let s = k as f64 / 80.0;
                let off = amp * (TAU * 2.5 * s + phase).sin() + 120.0 * (TAU * 7.0 * s).sin();
                LonLat::from_xy(x0 + dx * s + nx * off, y0 + dy * s + ny * off)
            })
            .collect();
    }

    fn push(&mut self, d: Device) -> usize {
        self.devices.push(d);
        self.devices.len() - 1
    }

    fn profile_at(&self, p: LonLat, k: usize) -> ParkingProfile {
        match self.districts[self.district_at(p)].kind {
            DistrictKind::OldTown | DistrictKind::Commercial => {
                if k % 7 == 3 {
                    ParkingProfile::Hospital
                } else if k % 3 == 1 {
                    ParkingProfile::Office
                } else {
                    ParkingProfile::Commercial
                }
            }
            DistrictKind::Campus => {
                if k.is_multiple_of(2) {
                    ParkingProfile::Hospital
                } else {
                    ParkingProfile::Office
                }
            }
            DistrictKind::Industrial => ParkingProfile::Office,
            DistrictKind::Residential | DistrictKind::Rural => ParkingProfile::Residential,
        }
    }

    fn gen_devices(&mut self, g: &mut Gen, c: &Counts) {
        self.gen_parking(g, c);
        self.gen_traffic(g, c);
        self.gen_environment(g, c);
        let cameras = self.gen_cameras(g, c);
        self.gen_security(g, c, &cameras);
        self.gen_social(g, c);
        self.gen_farms(g, c);
    }

    fn gen_parking(&mut self, g: &mut Gen, c: &Counts) {
        let weights: Vec<f64> = (0..c.lots).map(|_| g.rng.random_range(0.3..1.7)).collect();
        let total_w: f64 = weights.iter().sum();
        let mut left = c.lot_spots;
        for (k, w) in weights.iter().enumerate() {
            let size = if k + 1 == c.lots {
                left
            } else {
                ((c.lot_spots as f64 * w / total_w) as usize).min(left)
            };
            left -= size;
            let location = if k % 2 == 0 {
                let j = self.junctions[k % self.junctions.len().min(60)].location;
                j.offset(g.jitter(120.0), g.jitter(120.0))
            } else {
                let d = &self.districts[1 + (k / 2) % 8];
                d.centre.offset(g.jitter(900.0), g.jitter(900.0))
            };
            let profile = self.profile_at(location, k);
            let district = self.districts[self.district_at(location)].name.clone();
            let lot_id = format!("lot{k:03}");
            let lot_entity = format!("urn:ngsi-ld:OffStreetParking:{lot_id}");
            let first = self.devices.len();
            for s in 0..size {
                let (row, col) = ((s / 20) as f64, (s % 20) as f64);
                let id = format!("{lot_id}-s{s:04}");
                let stay = g.rng.random_range(30..150);
                self.push(Device {
                    entity_id: format!("urn:ngsi-ld:ParkingSpot:{id}"),
                    pack: "parking",
                    entity_type: "ParkingSpot",
                    location: location.offset(col * 2.5 - 25.0, -10.0 - row * 5.5),
                    geometry: None,
                    static_attrs: vec![
                        ("category", json!(["offStreet"])),
                        ("refParkingSite", json!(lot_entity)),
                        (
                            "name",
                            json!(format!(
                                "{}-{:03}",
                                (b'A' + (s / 100 % 26) as u8) as char,
                                s % 100
                            )),
                        ),
                        ("width", json!(2.5)),
                        ("length", json!(5.0)),
                    ],
                    kind: Kind::ParkingSpot {
                        lot: Some(k),
                        profile,
                        stay_min: stay,
                    },
                    reporting: Reporting::OnChange {
                        check_s: 60,
                        heartbeat_s: 3600,
                    },
                    phase_s: g.rng.random_range(0..60),
                    id: DeviceId(id),
                });
            }
            let spots = first..self.devices.len();
            let kind_label = ["surface", "multiStorey", "underground"][k % 3];
            let device = self.push(Device {
                id: DeviceId(lot_id.clone()),
                pack: "parking",
                entity_type: "OffStreetParking",
                entity_id: lot_entity,
                location,
                geometry: None,
                static_attrs: vec![
                    ("name", json!(format!("{district} car park {k}"))),
                    ("totalSpotNumber", json!(size)),
                    (
                        "category",
                        json!(["public", kind_label, "feeCharged", "barrierAccess"]),
                    ),
                    ("allowedVehicleType", json!(["car", "motorcycle"])),
                    ("maximumParkingDuration", json!("PT12H")),
                    (
                        "address",
                        json!({"addressLocality": "Dosi City", "addressRegion": district, "addressCountry": "TH"}),
                    ),
                ],
                kind: Kind::ParkingLot { lot: k },
                reporting: Reporting::Periodic { every_s: 120 },
                phase_s: g.rng.random_range(0..120),
            });
            self.lots.push(Lot {
                name: format!("{district} car park {k}"),
                location,
                profile,
                spots,
                device,
            });
        }
        // On-street spots along the old town's local streets, both kerbs, every 6 m.
        let locals: Vec<usize> = (0..self.segments.len())
            .filter(|&s| {
                let seg = &self.segments[s];
                seg.class == RoadClass::Local
                    && geo::in_polygon(geo::along(&seg.points, 0.5), &self.districts[0].ring)
            })
            .collect();
        let mut per_seg = vec![0usize; locals.len()];
        for k in 0..c.street_spots {
            let li = k % locals.len();
            let seg = &self.segments[locals[li]];
            let n = per_seg[li];
            per_seg[li] += 1;
            let side = if n.is_multiple_of(2) { 1.0 } else { -1.0 };
            let frac = ((n / 2) as f64 * 6.0 + 12.0) / seg.length_m.max(1.0);
            let p = geo::along(&seg.points, frac.fract());
            let (ax, ay) = seg.points[0].xy();
            let (bx, by) = seg.points[1].xy();
            let l = (bx - ax).hypot(by - ay).max(1.0);
            let loc = p.offset(-(by - ay) / l * 4.0 * side, (bx - ax) / l * 4.0 * side);
            let id = format!("street-{}-s{n:03}", seg.id);
            let site = format!("urn:ngsi-ld:OnStreetParking:street-{}", seg.id);
            let profile = self.profile_at(loc, k);
            let stay = g.rng.random_range(20..120);
            let phase = g.rng.random_range(0..60);
            self.push(Device {
                entity_id: format!("urn:ngsi-ld:ParkingSpot:{id}"),
                pack: "parking",
                entity_type: "ParkingSpot",
                location: loc,
                geometry: None,
                static_attrs: vec![
                    ("category", json!(["onStreet"])),
                    ("refParkingSite", json!(site)),
                    (
                        "name",
                        json!(format!("{} {}", self.roads[seg.road].name, n + 1)),
                    ),
                ],
                kind: Kind::ParkingSpot {
                    lot: None,
                    profile,
                    stay_min: stay,
                },
                reporting: Reporting::OnChange {
                    check_s: 60,
                    heartbeat_s: 3600,
                },
                phase_s: phase,
                id: DeviceId(id),
            });
        }
    }

    fn gen_traffic(&mut self, g: &mut Gen, c: &Counts) {
        for s in 0..self.segments.len() {
            let seg = &self.segments[s];
            let road = &self.roads[seg.road];
            let lanes = seg.lanes_per_direction;
            let mut usage = vec!["forward"; lanes as usize];
            usage.extend(vec!["backward"; lanes as usize]);
            let d = Device {
                id: DeviceId(seg.id.clone()),
                pack: "traffic",
                entity_type: "RoadSegment",
                entity_id: format!("urn:ngsi-ld:RoadSegment:{}", seg.id),
                location: geo::along(&seg.points, 0.5),
                geometry: Some(geo::line_string(&seg.points)),
                static_attrs: vec![
                    ("name", json!(format!("{} ({})", road.name, seg.id))),
                    ("refRoad", json!(format!("urn:ngsi-ld:Road:{}", road.id))),
                    ("totalLaneNumber", json!(2 * lanes)),
                    ("startPoint", geo::point(seg.points[0])),
                    ("endPoint", geo::point(seg.points[seg.points.len() - 1])),
                    (
                        "allowedVehicleType",
                        json!(["car", "bus", "motorcycle", "van", "lorry"]),
                    ),
                    ("maximumAllowedSpeed", json!(seg.speed_limit_kmh)),
                    ("length", json!((seg.length_m / 10.0).round() / 100.0)),
                    ("laneUsage", json!(usage)),
                ],
                kind: Kind::RoadSegment { segment: s },
                reporting: Reporting::Static,
                phase_s: 0,
            };
            self.push(d);
        }
        // Detector slots: lane 1 of every major segment both ways first, then
        // lane 2, then local streets, then more stations along the segments.
        let mut order: Vec<usize> = (0..self.segments.len()).collect();
        order.sort_by_key(|&s| (self.segments[s].class == RoadClass::Local, s));
        let mut slots = Vec::new();
        'outer: for station in 0..64u32 {
            for local in [false, true] {
                for lane in 1..=2u32 {
                    for &s in &order {
                        let seg = &self.segments[s];
                        if (seg.class == RoadClass::Local) != local
                            || lane > seg.lanes_per_direction
                        {
                            continue;
                        }
                        for dir in [LaneDirection::Forward, LaneDirection::Backward] {
                            slots.push((station, s, dir, lane));
                            if slots.len() == c.detectors {
                                break 'outer;
                            }
                        }
                    }
                }
            }
        }
        for (i, (station, s, dir, lane)) in slots.into_iter().enumerate() {
            let seg = &self.segments[s];
            let frac = 0.5 + 0.37 * ((station as f64 * 0.618_034).fract() - 0.5) * 2.0;
            let loc = geo::along(&seg.points, frac.clamp(0.1, 0.9));
            let id = format!("tfo-{i:05}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:TrafficFlowObserved:{id}"),
                id: DeviceId(id),
                pack: "traffic",
                entity_type: "TrafficFlowObserved",
                location: loc,
                geometry: None,
                static_attrs: vec![
                    ("laneId", json!(lane)),
                    ("laneDirection", json!(dir.as_str())),
                    (
                        "refRoadSegment",
                        json!(format!("urn:ngsi-ld:RoadSegment:{}", seg.id)),
                    ),
                ],
                kind: Kind::TrafficDetector {
                    segment: s,
                    direction: dir,
                    lane,
                },
                reporting: Reporting::Periodic { every_s: 60 },
                phase_s: g.rng.random_range(0..60),
            };
            self.push(d);
        }
    }

    fn gen_environment(&mut self, g: &mut Gen, c: &Counts) {
        for k in 0..c.air {
            let (loc, exposure) = if k % 2 == 0 {
                let j = self.junctions[(k * 7) % self.junctions.len()];
                (
                    j.location.offset(g.jitter(20.0), g.jitter(20.0)),
                    g.rng.random_range(0.6..1.0),
                )
            } else {
                let d = self.districts[k % self.districts.len()].ring.clone();
                (g.in_ring(&d), g.rng.random_range(0.05..0.4))
            };
            let id = format!("aq-{k:03}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:AirQualityObserved:{id}"),
                pack: "air-quality",
                entity_type: "AirQualityObserved",
                location: loc,
                geometry: None,
                static_attrs: vec![(
                    "refPointOfInterest",
                    json!(format!("urn:ngsi-ld:PointOfInterest:{id}-station")),
                )],
                kind: Kind::AirQuality {
                    traffic_exposure: exposure,
                },
                reporting: Reporting::Periodic { every_s: 300 },
                phase_s: g.rng.random_range(0..300),
                id: DeviceId(id),
            };
            self.push(d);
        }
        let river_len = geo::length_m(&self.river.points);
        for k in 0..c.river {
            let chainage = (k as f64 + 0.5) / c.river as f64;
            let p = geo::along(&self.river.points, chainage).offset(g.jitter(10.0), g.jitter(10.0));
            let base: f64 = g.rng.random_range(0.8..1.8);
            let id = format!("river-{k:03}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:WaterObserved:{id}"),
                pack: "flood",
                entity_type: "WaterObserved",
                location: p,
                geometry: None,
                static_attrs: vec![
                    (
                        "name",
                        json!(format!(
                            "Dosi River at km {:.1}",
                            chainage * river_len / 1000.0
                        )),
                    ),
                    ("refDevice", json!(format!("urn:ngsi-ld:Device:{id}-radar"))),
                    (
                        "warningStage",
                        json!(((base + 2.0) * 100.0).round() / 100.0),
                    ),
                    ("alertStage", json!(((base + 3.0) * 100.0).round() / 100.0)),
                ],
                kind: Kind::RiverGauge {
                    chainage,
                    base_m: base,
                    warning_m: base + 2.0,
                    alert_m: base + 3.0,
                },
                reporting: Reporting::Periodic { every_s: 300 },
                phase_s: g.rng.random_range(0..300),
                id: DeviceId(id),
            };
            self.push(d);
        }
        let all = geo::circle(geo::CITY_CENTRE, EDGE_M, 24);
        for k in 0..c.rain {
            let p = g.in_ring(&all);
            let id = format!("rain-{k:03}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:WeatherObserved:{id}"),
                pack: "flood",
                entity_type: "WeatherObserved",
                location: p,
                geometry: None,
                static_attrs: vec![("name", json!(format!("Dosi City rain gauge {}", k + 1)))],
                kind: Kind::RainGauge {
                    local_factor: g.rng.random_range(0.8..1.2),
                },
                reporting: Reporting::Periodic { every_s: 300 },
                phase_s: g.rng.random_range(0..300),
                id: DeviceId(id),
            };
            self.push(d);
        }
        for k in 0..c.seismic {
            let p = if k == 0 {
                geo::CITY_CENTRE.offset(30.0, -40.0)
            } else {
                g.in_ring(&all)
            };
            let id = format!("seis-{k:03}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:SeismicObserved:{id}"),
                pack: "earthquake",
                entity_type: "SeismicObserved",
                location: p,
                geometry: None,
                static_attrs: vec![
                    ("name", json!(format!("DSC{:03}", k + 1))),
                    ("component", json!("horizontal")),
                    ("refDevice", json!(format!("urn:ngsi-ld:Device:{id}-acc"))),
                ],
                kind: Kind::Seismic {
                    site_amp: g.rng.random_range(0.8..1.6),
                },
                reporting: Reporting::Periodic { every_s: 60 },
                phase_s: g.rng.random_range(0..60),
                id: DeviceId(id),
            };
            self.push(d);
        }
    }

    /// Cameras at junctions, the most important first; returns (junction, device) pairs.
    fn gen_cameras(&mut self, g: &mut Gen, c: &Counts) -> Vec<(usize, usize)> {
        let nj = self.junctions.len();
        let mut out = Vec::new();
        for k in 0..c.cameras {
            let j = k % nj;
            let num = k / nj + 1;
            let junction = self.junctions[j];
            let usage = match (junction.importance, num) {
                (0, _) => "SURVEILLANCE",
                (_, 1) => "TRAFFIC",
                (_, 2) => "ANPR/LPR",
                (_, 3) => "RLVD",
                _ => "SURVEILLANCE",
            };
            let ctype = match usage {
                "SURVEILLANCE" => "PTZ",
                "TRAFFIC" => "DOME",
                _ => "BULLET",
            };
            let a = num as f64 * 2.1;
            let loc = junction.location.offset(9.0 * a.cos(), 9.0 * a.sin());
            let id = format!("cam-{k:05}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:Camera:{id}"),
                pack: "cctv",
                entity_type: "Camera",
                location: loc,
                geometry: None,
                static_attrs: vec![
                    (
                        "streamURL",
                        json!(format!("rtsp://vms.dosi-city.example/live/{id}")),
                    ),
                    ("cameraName", json!(format!("Junction {j} camera {num}"))),
                    ("cameraType", json!(ctype)),
                    ("cameraUsage", json!(usage)),
                    ("cameraNum", json!(num)),
                    (
                        "imageSnapshot",
                        json!(format!("https://vms.dosi-city.example/snapshot/{id}.jpg")),
                    ),
                ],
                kind: Kind::Camera,
                reporting: Reporting::Periodic { every_s: 300 },
                phase_s: g.rng.random_range(0..300),
                id: DeviceId(id),
            };
            out.push((j, self.push(d)));
        }
        out
    }

    fn gen_security(&mut self, g: &mut Gen, c: &Counts, cameras: &[(usize, usize)]) {
        let nj = self.junctions.len();
        for k in 0..c.bells {
            let j = (k * 5) % nj;
            let loc = self.junctions[j]
                .location
                .offset(g.jitter(60.0), g.jitter(60.0));
            let cams: Vec<String> = cameras
                .iter()
                .filter(|(cj, _)| *cj == j)
                .take(2)
                .map(|(_, d)| self.devices[*d].entity_id.clone())
                .collect();
            let id = format!("bell-{k:04}");
            let mut attrs = vec![
                ("name", json!(format!("Emergency bell {}", k + 1))),
                (
                    "address",
                    json!({"addressLocality": "Dosi City", "description": format!("near junction {j}")}),
                ),
            ];
            if !cams.is_empty() {
                attrs.push(("refCamera", json!(cams)));
            }
            let d = Device {
                entity_id: format!("urn:ngsi-ld:EmergencyBell:{id}"),
                pack: "security",
                entity_type: "EmergencyBell",
                location: loc,
                geometry: None,
                static_attrs: attrs,
                kind: Kind::EmergencyBell,
                reporting: Reporting::OnChange {
                    check_s: 1,
                    heartbeat_s: 3600,
                },
                phase_s: g.rng.random_range(0..3600),
                id: DeviceId(id),
            };
            self.push(d);
        }
        let mut building = geo::CITY_CENTRE;
        for k in 0..c.intrusion {
            if k % 4 == 0 {
                let d = self.districts[(k / 4) % self.districts.len()].ring.clone();
                building = g.in_ring(&d);
            }
            let sensing = if k % 2 == 0 { "motion" } else { "contact" };
            let id = format!("ids-{k:05}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:Device:{id}"),
                pack: "security",
                entity_type: "Device",
                location: building.offset(g.jitter(15.0), g.jitter(15.0)),
                geometry: None,
                static_attrs: vec![
                    ("controlledProperty", json!([sensing])),
                    ("category", json!(["sensor"])),
                    (
                        "name",
                        json!(format!(
                            "Public building {} {sensing} sensor {}",
                            k / 4 + 1,
                            k % 4 + 1
                        )),
                    ),
                    (
                        "serialNumber",
                        json!(format!("DSI-{:08X}", hash(k as u64, 77) as u32)),
                    ),
                ],
                kind: Kind::Intrusion { sensing },
                reporting: Reporting::OnChange {
                    check_s: 1,
                    heartbeat_s: 3600,
                },
                phase_s: g.rng.random_range(0..3600),
                id: DeviceId(id),
            };
            self.push(d);
        }
    }

    fn gen_social(&mut self, g: &mut Gen, c: &Counts) {
        let homes: Vec<usize> = (0..self.districts.len())
            .filter(|&i| {
                matches!(
                    self.districts[i].kind,
                    DistrictKind::Residential | DistrictKind::OldTown | DistrictKind::Commercial
                )
            })
            .collect();
        const CATEGORIES: [&str; 5] = ["child", "elderly", "dementia", "disability", "loneWorker"];
        for k in 0..c.trackers {
            let ring = self.districts[homes[k % homes.len()]].ring.clone();
            let home = g.in_ring(&ring);
            let radius = g.rng.random_range(250.0..600.0);
            let id = format!("sos-{k:05}");
            let fence_id = format!("{id}-home");
            let fence_entity = format!("urn:ngsi-ld:Geofence:{fence_id}");
            let tracker = self.devices.len();
            let fence_ring = geo::circle(home, radius, 16);
            self.push(Device {
                entity_id: format!("urn:ngsi-ld:SosTracker:{id}"),
                pack: "social-safety",
                entity_type: "SosTracker",
                location: home,
                geometry: None,
                static_attrs: vec![
                    ("wearerCategory", json!(CATEGORIES[k % CATEGORIES.len()])),
                    ("refGeofence", json!(fence_entity)),
                ],
                kind: Kind::Tracker {
                    home,
                    fence_radius_m: radius,
                    geofence: tracker + 1,
                },
                reporting: Reporting::Periodic { every_s: 60 },
                phase_s: g.rng.random_range(0..60),
                id: DeviceId(id),
            });
            self.push(Device {
                id: DeviceId(fence_id),
                pack: "social-safety",
                entity_type: "Geofence",
                entity_id: fence_entity,
                location: home,
                geometry: Some(geo::polygon(&fence_ring)),
                static_attrs: vec![
                    ("fenceType", json!("keepIn")),
                    ("name", json!("Home neighbourhood")),
                ],
                kind: Kind::Geofence {
                    tracker,
                    ring: fence_ring,
                },
                reporting: Reporting::Static,
                phase_s: 0,
            });
        }
    }

    fn gen_farms(&mut self, g: &mut Gen, c: &Counts) {
        const CROPS: [&str; 5] = ["rice", "cassava", "sugarcane", "chili", "morning-glory"];
        let mut greenhouses_left = c.greenhouses;
        let farms = c.parcels.div_ceil(5);
        for f in 0..farms {
            // Farms spiral round the edge, denser in the rural south-east.
            let a = f as f64 * 2.399_963 + g.rot - 0.6 * (f as f64 * 2.399_963).sin();
            let r = 7_000.0 + 2_500.0 * ((f as f64 * 0.618_034).fract());
            let origin = LonLat::from_xy(r * a.cos(), r * a.sin());
            let farm_id = format!("farm{f:03}");
            let parcels_here = (c.parcels - f * 5).min(5);
            let mut x = 0.0;
            for p in 0..parcels_here {
                let (w, h) = (
                    g.rng.random_range(80.0..200.0),
                    g.rng.random_range(60.0..150.0),
                );
                let o = origin.offset(x, 0.0);
                x += w + 10.0;
                let ring = vec![o, o.offset(w, 0.0), o.offset(w, h), o.offset(0.0, h)];
                let pid = format!("{farm_id}-p{p:02}");
                let parcel_entity = format!("urn:ngsi-ld:AgriParcel:{pid}");
                let cycle_h = g.rng.random_range(36.0..60.0);
                let cycle_phase_h = g.rng.random_range(0.0..cycle_h);
                let parcel = self.devices.len();
                let probe_ids = [format!("{pid}-probe1"), format!("{pid}-probe2")];
                let valve_id = format!("{pid}-valve");
                let mut has = vec![];
                for pr in &probe_ids {
                    has.push(format!("urn:ngsi-ld:Device:{pr}"));
                }
                has.push(format!("urn:ngsi-ld:Device:{valve_id}"));
                self.push(Device {
                    id: DeviceId(pid.clone()),
                    pack: "smart-farm",
                    entity_type: "AgriParcel",
                    entity_id: parcel_entity.clone(),
                    location: o.offset(w / 2.0, h / 2.0),
                    geometry: Some(geo::polygon(&ring)),
                    static_attrs: vec![
                        ("name", json!(format!("Farm {} plot {}", f + 1, p + 1))),
                        ("area", json!((w * h).round())),
                        ("category", json!("arable")),
                        ("cropStatus", json!("growing")),
                        ("irrigationSystemType", json!("drip")),
                        ("soilTextureType", json!("loamySand")),
                        (
                            "belongsTo",
                            json!(format!("urn:ngsi-ld:AgriFarm:{farm_id}")),
                        ),
                        (
                            "hasAgriCrop",
                            json!(format!(
                                "urn:ngsi-ld:AgriCrop:{}",
                                CROPS[(f + p) % CROPS.len()]
                            )),
                        ),
                        ("hasDevice", json!(has)),
                    ],
                    kind: Kind::Parcel { ring: ring.clone() },
                    reporting: Reporting::Static,
                    phase_s: 0,
                });
                for (i, pr) in probe_ids.iter().enumerate() {
                    let d = Device {
                        entity_id: format!("urn:ngsi-ld:AgriParcelRecord:{pr}"),
                        pack: "smart-farm",
                        entity_type: "AgriParcelRecord",
                        location: o.offset(w * (0.3 + 0.4 * i as f64), h * 0.5),
                        geometry: None,
                        static_attrs: vec![
                            ("hasAgriParcel", json!(parcel_entity)),
                            ("hasDevice", json!(format!("urn:ngsi-ld:Device:{pr}"))),
                        ],
                        kind: Kind::SoilProbe {
                            parcel,
                            cycle_h,
                            cycle_phase_h,
                        },
                        reporting: Reporting::Periodic { every_s: 900 },
                        phase_s: g.rng.random_range(0..900),
                        id: DeviceId(pr.clone()),
                    };
                    self.push(d);
                }
                let d = Device {
                    entity_id: format!("urn:ngsi-ld:Device:{valve_id}"),
                    pack: "smart-farm",
                    entity_type: "Device",
                    location: o.offset(2.0, 2.0),
                    geometry: None,
                    static_attrs: vec![
                        ("controlledProperty", json!(["waterFlow"])),
                        ("category", json!(["actuator"])),
                        (
                            "name",
                            json!(format!("Farm {} plot {} valve", f + 1, p + 1)),
                        ),
                    ],
                    kind: Kind::Valve {
                        parcel,
                        cycle_h,
                        cycle_phase_h,
                    },
                    reporting: Reporting::OnChange {
                        check_s: 60,
                        heartbeat_s: 3600,
                    },
                    phase_s: g.rng.random_range(0..60),
                    id: DeviceId(valve_id),
                };
                self.push(d);
                if greenhouses_left > 0 && p == 0 {
                    greenhouses_left -= 1;
                    let gid = format!("{pid}-gh");
                    let d = Device {
                        entity_id: format!("urn:ngsi-ld:AgriGreenhouse:{gid}"),
                        pack: "smart-farm",
                        entity_type: "AgriGreenhouse",
                        location: o.offset(w * 0.5, h * 0.5),
                        geometry: None,
                        static_attrs: vec![
                            (
                                "name",
                                json!(format!("Farm {} greenhouse {}", f + 1, p + 1)),
                            ),
                            ("hasAgriParcelParent", json!(parcel_entity)),
                            (
                                "belongsTo",
                                json!(format!("urn:ngsi-ld:AgriFarm:{farm_id}")),
                            ),
                        ],
                        kind: Kind::Greenhouse,
                        reporting: Reporting::Periodic { every_s: 600 },
                        phase_s: g.rng.random_range(0..600),
                        id: DeviceId(gid),
                    };
                    self.push(d);
                }
            }
        }
        // Any greenhouses the farms could not take stand on the first parcels' edges.
        let mut k = 0;
        while greenhouses_left > 0 {
            let parcel = self
                .devices
                .iter()
                .filter(|d| d.entity_type == "AgriParcel")
                .nth(k)
                .map(|d| (d.entity_id.clone(), d.location, d.id.0.clone()));
            let Some((pe, loc, pid)) = parcel else { break };
            greenhouses_left -= 1;
            let gid = format!("{pid}-gh{k}");
            let d = Device {
                entity_id: format!("urn:ngsi-ld:AgriGreenhouse:{gid}"),
                pack: "smart-farm",
                entity_type: "AgriGreenhouse",
                location: loc.offset(15.0, 15.0),
                geometry: None,
                static_attrs: vec![
                    ("name", json!(format!("Greenhouse {gid}"))),
                    ("hasAgriParcelParent", json!(pe)),
                ],
                kind: Kind::Greenhouse,
                reporting: Reporting::Periodic { every_s: 600 },
                phase_s: g.rng.random_range(0..600),
                id: DeviceId(gid),
            };
            self.push(d);
            k += 1;
        }
    }
}

/// A 64-bit mix of two values (SplitMix64 finaliser): the simulator's
/// order-independent randomness for slow-changing state (parking stays, showers).
pub(crate) fn hash(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b)
        .wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash as a number in `[0, 1)`.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}
