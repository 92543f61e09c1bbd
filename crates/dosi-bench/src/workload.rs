//! Request generators, one per scenario. Everything that can be prepared
//! before the run (URIs, bodies, entity text) is, so that producing a request
//! in the hot loop is a clone of shared bytes or a short splice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Uri};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::data::{self, EntityWriter, BANDS};
use crate::notify::Updates;
use crate::target::{query_string, Target};
use crate::{BenchError, Scenario};

/// Variants of entity values kept pre-serialized.
const ENTITY_VARIANTS: usize = 256;
/// Distinct random points pre-built into geo-query URIs.
const GEO_POINTS: usize = 4096;
/// Distinct temperature values pre-built into PATCH bodies.
const PATCH_BODIES: usize = 64;

/// One request to send.
#[derive(Debug, Clone)]
pub struct Req {
    /// HTTP method.
    pub method: Method,
    /// Origin-form URI (path and query).
    pub uri: Uri,
    /// JSON body, empty for none.
    pub body: Bytes,
    /// Entities carried (batch size for upserts, 1 otherwise).
    pub items: u64,
    /// Told back to the workload when the request is acknowledged (`notify`).
    pub tag: u64,
}

/// Produces the requests of one scenario; shared by all connections.
#[derive(Debug)]
pub enum Workload {
    /// Writes ids `0..entities` once, `batch` per request, then ends.
    Populate {
        writer: EntityWriter,
        uri: Uri,
        entities: u64,
        batch: u64,
        next_batch: AtomicU64,
    },
    /// Upserts batches of ids spread randomly over `0..entities` until the time is up.
    RandomUpsert {
        writer: EntityWriter,
        uri: Uri,
        entities: u64,
        batch: u64,
    },
    /// GET of a random entity.
    Get { prefix: String, entities: u64 },
    /// PATCH of a random entity's temperature.
    Patch {
        prefix: String,
        entities: u64,
        bodies: Vec<Bytes>,
    },
    /// GET of one of a pool of pre-built URIs (queries, geo-queries, raw paths).
    Uris(Vec<Uri>),
    /// Numbered `level` updates of subscribed entities (`notify`).
    Notify(Updates),
    /// History ingest, seeding or a sequential query stage (`temporal`).
    Temporal(crate::temporal::Work),
}

impl Workload {
    /// Prepares the workload of `scenario` against `target`; `seed` fixes the data.
    pub fn new(scenario: &Scenario, target: &Target, seed: u64) -> Result<Workload, BenchError> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let entities_path = target.path("/ngsi-ld/v1/entities");
        Ok(match scenario {
            Scenario::Load {
                entities,
                batch,
                entity_type,
                random,
            } => {
                let entities = positive("--entities", *entities)?;
                let batch = positive("--batch", *batch)?.min(entities);
                check_type(entity_type)?;
                let writer = EntityWriter::new(entity_type, ENTITY_VARIANTS, &mut rng);
                let uri = uri(target.path("/ngsi-ld/v1/entityOperations/upsert"))?;
                if *random {
                    Workload::RandomUpsert {
                        writer,
                        uri,
                        entities,
                        batch,
                    }
                } else {
                    Workload::Populate {
                        writer,
                        uri,
                        entities,
                        batch,
                        next_batch: AtomicU64::new(0),
                    }
                }
            }
            Scenario::Get {
                entities,
                entity_type,
            } => {
                check_type(entity_type)?;
                Workload::Get {
                    prefix: format!("{entities_path}/urn:ngsi-ld:{entity_type}:bench-"),
                    entities: positive("--entities", *entities)?,
                }
            }
            Scenario::Patch {
                entities,
                entity_type,
            } => {
                check_type(entity_type)?;
                let bodies = (0..PATCH_BODIES)
                    .map(|_| {
                        let t = (rng.random_range(220..400) as f64) / 10.0;
                        Bytes::from(format!(
                            r#"{{"temperature":{{"type":"Property","value":{t},"unitCode":"CEL"}}}}"#
                        ))
                    })
                    .collect();
                Workload::Patch {
                    prefix: format!("{entities_path}/urn:ngsi-ld:{entity_type}:bench-"),
                    entities: positive("--entities", *entities)?,
                    bodies,
                }
            }
            Scenario::Query {
                entity_type,
                q,
                limit,
                count,
            } => {
                check_type(entity_type)?;
                let qs: Vec<String> = match q {
                    Some(q) => vec![q.clone()],
                    None => (0..BANDS).map(|b| format!("band=={b}")).collect(),
                };
                let uris = qs
                    .iter()
                    .map(|q| {
                        let limit = limit.to_string();
                        let mut pairs =
                            vec![("type", entity_type.as_str()), ("q", q), ("limit", &limit)];
                        if *count {
                            pairs.push(("count", "true"));
                        }
                        uri(format!("{entities_path}{}", query_string(&pairs)))
                    })
                    .collect::<Result<_, _>>()?;
                Workload::Uris(uris)
            }
            Scenario::Geo {
                entity_type,
                radius,
                limit,
                count,
            } => {
                check_type(entity_type)?;
                if !(radius.is_finite() && *radius > 0.0) {
                    return Err(BenchError::InvalidArg {
                        name: "--radius",
                        reason: format!("{radius} is not a positive distance in metres"),
                    });
                }
                let uris = (0..GEO_POINTS)
                    .map(|_| {
                        uri(geo_query(
                            &entities_path,
                            entity_type,
                            *radius,
                            *limit,
                            *count,
                            &mut rng,
                        ))
                    })
                    .collect::<Result<_, _>>()?;
                Workload::Uris(uris)
            }
            Scenario::Raw { path } => {
                if !path.starts_with('/') {
                    return Err(BenchError::InvalidArg {
                        name: "--path",
                        reason: format!("{path:?} does not start with '/'"),
                    });
                }
                Workload::Uris(vec![uri(target.path(path))?])
            }
            Scenario::Notify(args) => Workload::Notify(Updates::new(args, target)?),
            Scenario::Temporal(args) => crate::temporal::workload(args, target, seed)?,
            Scenario::Mqtt(_) => {
                return Err(BenchError::InvalidArg {
                    name: "scenario",
                    reason: "mqtt drives a broker, not HTTP requests".into(),
                })
            }
        })
    }

    /// True when requests carry several entities and a 207 answer means partial failure.
    pub fn is_batch(&self) -> bool {
        match self {
            Workload::Populate { .. } | Workload::RandomUpsert { .. } | Workload::Notify(_) => true,
            Workload::Temporal(work) => work.is_batch(),
            _ => false,
        }
    }

    /// True when the run ends once the work is done rather than after a duration.
    pub fn is_finite(&self) -> bool {
        match self {
            Workload::Populate { .. } => true,
            Workload::Temporal(work) => work.is_finite(),
            _ => false,
        }
    }

    /// When the next request may start, for a workload with a fixed rate.
    pub fn slot(&self) -> Option<Instant> {
        match self {
            Workload::Notify(updates) => updates.slot(),
            _ => None,
        }
    }

    /// Request `tag` was acknowledged.
    pub fn acknowledged(&self, tag: u64) {
        if let Workload::Notify(updates) = self {
            updates.acknowledged(tag);
        }
    }

    /// The `notify` updates, if this is that workload.
    pub fn updates(&self) -> Option<&Updates> {
        match self {
            Workload::Notify(updates) => Some(updates),
            _ => None,
        }
    }

    /// The next request, or `None` when a finite workload is done.
    pub fn next(&self, rng: &mut SmallRng) -> Option<Req> {
        match self {
            Workload::Populate {
                writer,
                uri,
                entities,
                batch,
                next_batch,
            } => {
                let index = next_batch.fetch_add(1, Ordering::Relaxed);
                let first = index.checked_mul(*batch).filter(|f| f < entities)?;
                let last = first.saturating_add(*batch).min(*entities);
                let variants = writer.variants() as u64;
                let body = writer.batch(first..last, |n| (n % variants) as usize);
                Some(post(uri, body, last - first))
            }
            Workload::RandomUpsert {
                writer,
                uri,
                entities,
                batch,
            } => {
                // Spread the batch over the id space with a fixed stride so that its ids
                // are distinct (a duplicate id inside one batch is a different workload).
                let start = rng.random_range(0..*entities);
                let stride = (*entities / *batch).max(1);
                let variants = writer.variants();
                let shift = rng.random_range(0..variants);
                let ids = (0..*batch).map(|k| (start + k * stride) % *entities);
                let body = writer.batch(ids, |n| (n as usize + shift) % variants);
                Some(post(uri, body, *batch))
            }
            Workload::Get { prefix, entities } => {
                let n = rng.random_range(0..*entities);
                Some(get(uri(format!("{prefix}{n}")).ok()?))
            }
            Workload::Patch {
                prefix,
                entities,
                bodies,
            } => {
                let n = rng.random_range(0..*entities);
                Some(Req {
                    method: Method::PATCH,
                    uri: uri(format!("{prefix}{n}/attrs")).ok()?,
                    body: bodies[rng.random_range(0..bodies.len())].clone(),
                    items: 1,
                    tag: 0,
                })
            }
            Workload::Uris(uris) => {
                let i = if uris.len() == 1 {
                    0
                } else {
                    rng.random_range(0..uris.len())
                };
                Some(get(uris[i].clone()))
            }
            Workload::Notify(updates) => Some(updates.next()),
            Workload::Temporal(work) => work.next(rng),
        }
    }
}

/// The geo-query path for a random point, e.g.
/// `…/entities?type=T&geometry=Point&georel=near%3BmaxDistance%3D%3D500&coordinates=%5B…%5D&limit=20`.
fn geo_query(
    entities_path: &str,
    entity_type: &str,
    radius: f64,
    limit: u32,
    count: bool,
    rng: &mut SmallRng,
) -> String {
    let (lon, lat) = data::random_point(rng);
    let georel = format!("near;maxDistance=={radius}");
    let coordinates = format!("[{lon},{lat}]");
    let limit = limit.to_string();
    let mut pairs = vec![
        ("type", entity_type),
        ("geometry", "Point"),
        ("georel", georel.as_str()),
        ("coordinates", coordinates.as_str()),
        ("limit", limit.as_str()),
    ];
    if count {
        pairs.push(("count", "true"));
    }
    format!("{entities_path}{}", query_string(&pairs))
}

fn get(uri: Uri) -> Req {
    Req {
        method: Method::GET,
        uri,
        body: Bytes::new(),
        items: 1,
        tag: 0,
    }
}

fn post(uri: &Uri, body: Vec<u8>, items: u64) -> Req {
    Req {
        method: Method::POST,
        uri: uri.clone(),
        body: Bytes::from(body),
        items,
        tag: 0,
    }
}

fn uri(path: String) -> Result<Uri, BenchError> {
    Uri::try_from(path.as_str()).map_err(|e| BenchError::InvalidArg {
        name: "path",
        reason: format!("{path:?} is not a valid request path: {e}"),
    })
}

fn positive<T: Into<u64> + Copy>(name: &'static str, value: T) -> Result<u64, BenchError> {
    match value.into() {
        0 => Err(BenchError::InvalidArg {
            name,
            reason: "must be at least 1".into(),
        }),
        v => Ok(v),
    }
}

/// Entity types go into URNs and paths unescaped, so keep them to NGSI-LD-friendly names.
pub(crate) fn check_type(entity_type: &str) -> Result<(), BenchError> {
    let ok = !entity_type.is_empty()
        && entity_type.len() <= 128
        && entity_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BenchError::InvalidArg {
            name: "--type",
            reason: format!("{entity_type:?} must be 1-128 ASCII letters, digits, '_' or '-'"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:1026/pre", false).expect("valid")
    }

    fn workload(scenario: Scenario) -> Workload {
        Workload::new(&scenario, &target(), 1).expect("valid scenario")
    }

    fn load(entities: u64, batch: u64, random: bool) -> Scenario {
        Scenario::Load {
            entities,
            batch,
            entity_type: "Sensor".into(),
            random,
        }
    }

    fn ids_of(req: &Req) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON body");
        v.as_array()
            .expect("array")
            .iter()
            .map(|e| e["id"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn populate_writes_each_id_once_then_ends() {
        let w = workload(load(250, 100, false));
        let mut rng = SmallRng::seed_from_u64(0);
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        while let Some(req) = w.next(&mut rng) {
            assert_eq!(req.method, Method::POST);
            assert_eq!(req.uri, "/pre/ngsi-ld/v1/entityOperations/upsert");
            sizes.push(req.items);
            all.extend(ids_of(&req));
        }
        assert_eq!(sizes, [100, 100, 50]);
        let expected: Vec<String> = (0..250)
            .map(|n| format!("urn:ngsi-ld:Sensor:bench-{n}"))
            .collect();
        assert_eq!(all, expected);
        assert!(w.next(&mut rng).is_none(), "stays exhausted");
    }

    #[test]
    fn random_upsert_batches_have_distinct_ids_in_range() {
        for (entities, batch) in [(1000, 100), (150, 100), (7, 100), (1, 1)] {
            let w = workload(load(entities, batch, true));
            let mut rng = SmallRng::seed_from_u64(3);
            for _ in 0..20 {
                let req = w.next(&mut rng).expect("endless");
                let mut ids = ids_of(&req);
                assert_eq!(ids.len() as u64, batch.min(entities));
                assert_eq!(req.items, batch.min(entities));
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len() as u64, batch.min(entities), "distinct");
                for id in ids {
                    let n: u64 = id
                        .rsplit('-')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .expect("number");
                    assert!(n < entities);
                }
            }
        }
    }

    /// The first request of `scenario` (rng seed 5) has `method` and a URI starting with `uri_prefix`.
    fn check_first(scenario: Scenario, method: Method, uri_prefix: &str) {
        let w = workload(scenario);
        let req = w.next(&mut SmallRng::seed_from_u64(5)).expect("a request");
        assert_eq!(req.method, method);
        assert!(
            req.uri.to_string().starts_with(uri_prefix),
            "{} vs {uri_prefix}",
            req.uri
        );
    }

    #[test]
    fn request_shapes() {
        let ty = || "Sensor".to_string();
        check_first(
            Scenario::Get {
                entities: 10,
                entity_type: ty(),
            },
            Method::GET,
            "/pre/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:bench-",
        );
        check_first(
            Scenario::Patch {
                entities: 10,
                entity_type: ty(),
            },
            Method::PATCH,
            "/pre/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:bench-",
        );
        check_first(
            Scenario::Query {
                entity_type: ty(),
                q: Some("temperature>30".into()),
                limit: 20,
                count: true,
            },
            Method::GET,
            "/pre/ngsi-ld/v1/entities?type=Sensor&q=temperature%3E30&limit=20&count=true",
        );
        check_first(
            Scenario::Query {
                entity_type: ty(),
                q: None,
                limit: 5,
                count: false,
            },
            Method::GET,
            "/pre/ngsi-ld/v1/entities?type=Sensor&q=band%3D%3D",
        );
        check_first(Scenario::Geo { entity_type: ty(), radius: 500.0, limit: 20, count: false }, Method::GET, "/pre/ngsi-ld/v1/entities?type=Sensor&geometry=Point&georel=near%3BmaxDistance%3D%3D500&coordinates=%5B102.");
        check_first(
            Scenario::Raw {
                path: "/health".into(),
            },
            Method::GET,
            "/pre/health",
        );
    }

    #[test]
    fn patch_bodies_set_temperature() {
        let w = workload(Scenario::Patch {
            entities: 10,
            entity_type: "Sensor".into(),
        });
        let req = w.next(&mut SmallRng::seed_from_u64(5)).expect("a request");
        assert!(req.uri.path().ends_with("/attrs"));
        let v: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON");
        assert_eq!(v["temperature"]["type"], "Property");
        assert!(v["temperature"]["value"].is_f64());
    }

    /// Building `scenario` fails with an error mentioning `fragment`.
    fn check_invalid(scenario: Scenario, fragment: &str) {
        let err = Workload::new(&scenario, &target(), 1).expect_err("invalid");
        assert!(err.to_string().contains(fragment), "{err}");
    }

    #[test]
    fn invalid_scenarios() {
        check_invalid(load(0, 100, false), "--entities");
        check_invalid(load(10, 0, false), "--batch");
        check_invalid(
            Scenario::Get {
                entities: 0,
                entity_type: "S".into(),
            },
            "--entities",
        );
        check_invalid(
            Scenario::Get {
                entities: 1,
                entity_type: "a b".into(),
            },
            "--type",
        );
        check_invalid(
            Scenario::Get {
                entities: 1,
                entity_type: "".into(),
            },
            "--type",
        );
        check_invalid(
            Scenario::Geo {
                entity_type: "S".into(),
                radius: -1.0,
                limit: 1,
                count: false,
            },
            "--radius",
        );
        check_invalid(
            Scenario::Geo {
                entity_type: "S".into(),
                radius: f64::NAN,
                limit: 1,
                count: false,
            },
            "--radius",
        );
        check_invalid(
            Scenario::Raw {
                path: "health".into(),
            },
            "--path",
        );
        check_invalid(
            Scenario::Raw {
                path: "/a b".into(),
            },
            "not a valid request path",
        );
    }
}
