//! Setting the city up on a server through its public HTTP API: a service
//! group per pack (`/iot/services`), a device per sensor
//! (`/api/v1/devices`, with attribute mappings and its own token; an
//! existing device is updated and its token rotated), and the entities
//! through NGSI-LD batch upserts with each pack's `@context`.

use dosi_packs::{AttributeKind, ValueType};
use dosi_sim::{Reporting, Sim, SimTime};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::{Error, Transport};

/// Entities per batch upsert.
const CHUNK: usize = 200;

/// The API key of a pack's service group.
pub(crate) fn apikey(pack: &str) -> String {
    format!("dosi-sim-{pack}")
}

/// The `@context` URL (built into dosi) of the pack defining `entity_type`.
/// One pack's context each rather than the merged `packs.jsonld`: the merged
/// one leaves out the terms two packs define differently (`occupancy` is a
/// parking and a traffic term), which would put them in the default
/// vocabulary.
pub(crate) fn context_of(entity_type: &str) -> String {
    let pack = dosi_packs::entity_type(entity_type).map_or("packs", |(p, _)| p.name.as_str());
    format!("{}{pack}.jsonld", dosi_packs::CONTEXT_BASE_URL)
}

/// The expanded type IRI of `entity_type`, as its pack's context gives it
/// (the gateway writes device measures with the core context only, so
/// devices are provisioned with expanded names).
fn type_iri(entity_type: &str) -> String {
    dosi_packs::entity_type(entity_type).map_or_else(|| entity_type.to_owned(), |(_, s)| s.iri())
}

/// The attribute mappings of a device of `entity_type`: every attribute of
/// the shape, measure name → expanded attribute IRI, with its NGSI-LD kind
/// (`geo:json` for a GeoProperty) and `unitCode`.
fn mappings(entity_type: &str) -> Vec<Value> {
    let Some((_, spec)) = dosi_packs::entity_type(entity_type) else {
        return Vec::new();
    };
    spec.attributes
        .iter()
        .map(|a| {
            let kind = match a.kind {
                AttributeKind::GeoProperty => "geo:json",
                AttributeKind::Relationship => "Relationship",
                _ => "Property",
            };
            let mut m = json!({
                "object_id": a.name,
                "name": spec.attribute_iri(a),
                "type": kind,
            });
            if let Some(ValueType::Number {
                unit_code: Some(u), ..
            }) = &a.value
            {
                m["unitCode"] = json!(u);
            }
            m
        })
        .collect()
}

/// NGSI-LD terms that cannot name an attribute in a compacted entity.
const RESERVED: [&str; 12] = [
    "value",
    "object",
    "objectList",
    "languageMap",
    "vocab",
    "json",
    "unitCode",
    "observedAt",
    "datasetId",
    "createdAt",
    "modifiedAt",
    "instanceId",
];

/// Renames attributes whose short name is an NGSI-LD reserved term (the
/// Smart Data Models `Device.value`) to their expanded IRI, the only way
/// to write them.
fn expand_reserved(e: &mut Value) {
    let ty = e["type"].as_str().unwrap_or_default().to_owned();
    let Some(obj) = e.as_object_mut() else {
        return;
    };
    for term in RESERVED {
        if let Some(v) = obj.remove(term) {
            let iri = dosi_packs::entity_type(&ty)
                .and_then(|(_, s)| s.attribute(term).map(|a| s.attribute_iri(a)))
                .unwrap_or_else(|| format!("https://uri.etsi.org/ngsi-ld/default-context/{term}"));
            obj.insert(iri, v);
        }
    }
}

const LINK: &str = "rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"";

pub(crate) struct Provisioner<'a> {
    pub client: &'a reqwest::Client,
    pub server: &'a str,
    pub concurrency: usize,
    pub speed: f64,
}

impl Provisioner<'_> {
    async fn send(
        &self,
        what: impl Fn() -> String,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, String), Error> {
        let r = req.send().await.map_err(|e| Error::Http {
            what: what(),
            source: e,
        })?;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        Ok((status, body))
    }

    async fn expect(
        &self,
        what: impl Fn() -> String,
        req: reqwest::RequestBuilder,
        ok: &[u16],
    ) -> Result<u16, Error> {
        let (status, body) = self.send(&what, req).await?;
        if (200..300).contains(&status) || ok.contains(&status) {
            Ok(status)
        } else {
            Err(Error::Refused {
                what: what(),
                status,
                body,
            })
        }
    }

    /// A service group per pack with sensors, then every sensor as a
    /// device. Returns the number of devices.
    pub async fn devices(
        &self,
        sim: &Sim,
        transports: &[Transport],
        tokens: &[std::sync::Arc<str>],
    ) -> Result<usize, Error> {
        let devs = sim.city().devices();
        let mut packs: Vec<&str> = devs
            .iter()
            .filter(|d| d.is_sensor())
            .map(|d| d.pack)
            .collect();
        packs.sort_unstable();
        packs.dedup();
        for pack in packs {
            let body = json!({"services": [{
                "apikey": apikey(pack),
                "resource": "/iot/json",
                "autoprovision": false,
                "explicitAttrs": false,
            }]});
            // 409: the group is there from an earlier run.
            self.expect(
                || format!("creating the service group of pack {pack}"),
                self.client
                    .post(format!("{}/iot/services", self.server))
                    .header("fiware-servicepath", "/")
                    .json(&body),
                &[409],
            )
            .await?;
        }
        let work: Vec<usize> = (0..devs.len())
            .filter(|&i| transports[i] != Transport::Ngsi)
            .collect();
        let n = work.len();
        futures::stream::iter(
            work.into_iter()
                .map(|i| self.device(sim, i, transports[i], &tokens[i])),
        )
        .buffer_unordered(self.concurrency)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(n)
    }

    async fn device(&self, sim: &Sim, i: usize, t: Transport, token: &str) -> Result<(), Error> {
        let d = &sim.city().devices()[i];
        // Silent for three reporting intervals (in real seconds): offline.
        let every = match d.reporting {
            Reporting::Periodic { every_s } => every_s,
            Reporting::OnChange { heartbeat_s, .. } => heartbeat_s,
            Reporting::Static => 3600,
        };
        let liveness = ((3.0 * f64::from(every)) / self.speed).ceil().max(30.0) as u64;
        let transport = if t == Transport::Mqtt { "MQTT" } else { "HTTP" };
        let mut fields = json!({
            "apikey": apikey(d.pack),
            "entityId": d.entity_id,
            "entityType": type_iri(d.entity_type),
            "protocol": "IoTA-JSON",
            "transport": transport,
            "attributes": mappings(d.entity_type),
            "liveness": {"intervalSeconds": liveness},
        });
        let mut create = fields.clone();
        create["id"] = json!(d.id.0);
        create["credentials"] = json!({"token": token});
        let id = &d.id.0;
        let status = self
            .expect(
                || format!("provisioning device {id}"),
                self.client
                    .post(format!("{}/api/v1/devices", self.server))
                    .json(&create),
                &[409],
            )
            .await?;
        if status == 409 {
            // There from an earlier run: bring it up to date, new token.
            self.expect(
                || format!("updating device {id}"),
                self.client
                    .patch(format!("{}/api/v1/devices/{id}", self.server))
                    .json(&fields),
                &[],
            )
            .await?;
            fields = json!({"token": token});
            self.expect(
                || format!("rotating the token of device {id}"),
                self.client
                    .post(format!("{}/api/v1/devices/{id}/credentials", self.server))
                    .json(&fields),
                &[],
            )
            .await?;
        }
        Ok(())
    }

    /// Every entity of the city at `t` (static attributes, location, the
    /// measures at `t`), through NGSI-LD batch upserts. Returns how many.
    pub async fn entities(&self, sim: &Sim, t: SimTime) -> Result<usize, Error> {
        let n = sim.city().devices().len();
        // Built chunk by chunk so 100,000 entities are never all in memory.
        let chunks: Vec<(usize, usize)> = (0..n)
            .step_by(CHUNK)
            .map(|a| (a, (a + CHUNK).min(n)))
            .collect();
        futures::stream::iter(chunks.into_iter().map(|(a, b)| {
            let entities: Vec<Value> = (a..b).map(|i| sim.entity(i, t)).collect();
            self.upsert(entities)
        }))
        .buffer_unordered(self.concurrency.clamp(1, 4))
        .try_collect::<Vec<usize>>()
        .await?;
        Ok(n)
    }

    /// Batch upserts (replace) of normalized entities with short names,
    /// one request per pack context and chunk.
    pub async fn upsert(&self, entities: Vec<Value>) -> Result<usize, Error> {
        let mut by_ctx: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        for mut e in entities {
            expand_reserved(&mut e);
            let ty = e["type"].as_str().unwrap_or_default();
            by_ctx.entry(context_of(ty)).or_default().push(e);
        }
        let mut n = 0;
        for (ctx, list) in by_ctx {
            for chunk in list.chunks(CHUNK) {
                let body = serde_json::to_vec(chunk).unwrap_or_default();
                let what = || format!("writing {} entities ({ctx})", chunk.len());
                let (status, answer) = self
                    .send(
                        what,
                        self.client
                            .post(format!(
                                "{}/ngsi-ld/v1/entityOperations/upsert",
                                self.server
                            ))
                            .header("content-type", "application/json")
                            .header("link", format!("<{ctx}>; {LINK}"))
                            .body(body),
                    )
                    .await?;
                if !(200..300).contains(&status) || status == 207 {
                    return Err(Error::Refused {
                        what: what(),
                        status,
                        body: answer.chars().take(2000).collect(),
                    });
                }
                n += chunk.len();
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_expand_names_and_keep_kinds_and_units() {
        let m = mappings("AirQualityObserved");
        let pm25 = m.iter().find(|m| m["object_id"] == "pm25").unwrap();
        assert_eq!(
            pm25["name"],
            "https://smartdatamodels.org/dataModel.Environment/pm25"
        );
        assert_eq!(pm25["type"], "Property");
        assert_eq!(pm25["unitCode"], "GQ");
        let loc = m.iter().find(|m| m["object_id"] == "location").unwrap();
        assert_eq!(loc["type"], "geo:json");
        assert_eq!(loc["name"], "https://uri.etsi.org/ngsi-ld/location");
        assert!(mappings("NoSuchType").is_empty());
        assert_eq!(
            type_iri("ParkingSpot"),
            "https://smartdatamodels.org/dataModel.Parking/ParkingSpot"
        );
        assert_eq!(
            context_of("TrafficFlowObserved"),
            "https://dosi.city/contexts/traffic.jsonld"
        );
    }

    #[test]
    fn reserved_terms_are_written_expanded() {
        let mut e = json!({"id": "urn:ngsi-ld:Device:v1", "type": "Device",
            "value": {"type": "Property", "value": "open"}});
        expand_reserved(&mut e);
        assert!(e.get("value").is_none());
        assert_eq!(
            e["https://smartdatamodels.org/dataModel.Device/value"]["value"],
            "open"
        );
    }
}
