//! The registry of service groups and devices: in memory for the hot path
//! (every measure looks its device up), persisted in the store's meta space
//! (namespaces `iot-groups`, `iot-devices`) so it survives restarts.
//!
//! Groups and devices belong to a `fiware-service` (the NGSI-LD tenant); a
//! group is named by (apikey, resource), a device by its id.

use std::collections::BTreeMap;
use std::sync::Arc;

use dosi_ngsi::{ErrorKind, NgsiError, Result};
use dosi_store::Store;
use parking_lot::RwLock;

use crate::model::{Device, ServiceGroup};

const GROUPS: &str = "iot-groups";
const DEVICES: &str = "iot-devices";

type GroupKey = (String, String, String);
type DeviceKey = (String, String);

#[derive(Default)]
struct Inner {
    groups: BTreeMap<GroupKey, ServiceGroup>,
    devices: BTreeMap<DeviceKey, Device>,
}

/// Service groups and devices.
pub struct Registry {
    store: Arc<dyn Store>,
    inner: RwLock<Inner>,
}

fn meta_key(parts: &[&str]) -> String {
    // Unit separators cannot appear in the (validated) names.
    parts.join("\u{1f}")
}

impl Registry {
    /// Loads the registry persisted in `store`.
    pub async fn open(store: Arc<dyn Store>) -> Result<Arc<Self>> {
        let mut inner = Inner::default();
        for (_, v) in store.list_meta(GROUPS).await.map_err(NgsiError::internal)? {
            if let Ok(g) = serde_json::from_slice::<ServiceGroup>(&v) {
                inner
                    .groups
                    .insert((g.service.clone(), g.apikey.clone(), g.resource.clone()), g);
            }
        }
        for (_, v) in store
            .list_meta(DEVICES)
            .await
            .map_err(NgsiError::internal)?
        {
            if let Ok(d) = serde_json::from_slice::<Device>(&v) {
                inner
                    .devices
                    .insert((d.service.clone(), d.device_id.clone()), d);
            }
        }
        Ok(Arc::new(Self {
            store,
            inner: RwLock::new(inner),
        }))
    }

    async fn save_group(&self, g: &ServiceGroup) -> Result<()> {
        let v = serde_json::to_vec(g).map_err(NgsiError::internal)?;
        self.store
            .put_meta(
                GROUPS,
                &meta_key(&[&g.service, &g.apikey, &g.resource]),
                Some(v),
            )
            .await
            .map_err(NgsiError::internal)
    }

    async fn save_device(&self, d: &Device) -> Result<()> {
        let v = serde_json::to_vec(d).map_err(NgsiError::internal)?;
        self.store
            .put_meta(DEVICES, &meta_key(&[&d.service, &d.device_id]), Some(v))
            .await
            .map_err(NgsiError::internal)
    }

    /// Adds service groups (`POST /iot/services`); all or none: a group
    /// whose (apikey, resource) exists in the service is a conflict.
    pub async fn add_groups(
        &self,
        service: &str,
        subservice: &str,
        list: Vec<ServiceGroup>,
    ) -> Result<()> {
        let mut list = list;
        {
            let g = self.inner.read();
            let mut seen = std::collections::HashSet::new();
            for x in &mut list {
                check_name("apikey", &x.apikey)?;
                x.service = service.to_string();
                x.subservice = subservice.to_string();
                let key = (x.service.clone(), x.apikey.clone(), x.resource.clone());
                if g.groups.contains_key(&key) || !seen.insert(key) {
                    return Err(NgsiError::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "DUPLICATE_GROUP: a service group with apikey '{}' and resource '{}' exists",
                            x.apikey, x.resource
                        ),
                    ));
                }
            }
        }
        for x in &list {
            self.save_group(x).await?;
        }
        let mut g = self.inner.write();
        for x in list {
            g.groups
                .insert((x.service.clone(), x.apikey.clone(), x.resource.clone()), x);
        }
        Ok(())
    }

    /// The service groups of a service.
    pub fn groups(&self, service: &str) -> Vec<ServiceGroup> {
        self.inner
            .read()
            .groups
            .values()
            .filter(|g| g.service == service)
            .cloned()
            .collect()
    }

    /// Replaces fields of a group (`PUT /iot/services?apikey=&resource=`).
    pub async fn update_group(
        &self,
        service: &str,
        apikey: &str,
        resource: &str,
        patch: &serde_json::Value,
    ) -> Result<()> {
        let key = (
            service.to_string(),
            apikey.to_string(),
            resource.to_string(),
        );
        let old = self
            .inner
            .read()
            .groups
            .get(&key)
            .cloned()
            .ok_or_else(|| group_not_found(apikey, resource))?;
        let new: ServiceGroup = merged(&old, patch)?;
        if new.apikey != old.apikey || new.resource != old.resource {
            return Err(NgsiError::bad_data(
                "apikey and resource of a service group cannot change",
            ));
        }
        self.save_group(&new).await?;
        self.inner.write().groups.insert(key, new);
        Ok(())
    }

    /// Deletes a group.
    pub async fn delete_group(&self, service: &str, apikey: &str, resource: &str) -> Result<()> {
        let key = (
            service.to_string(),
            apikey.to_string(),
            resource.to_string(),
        );
        if !self.inner.read().groups.contains_key(&key) {
            return Err(group_not_found(apikey, resource));
        }
        self.store
            .put_meta(GROUPS, &meta_key(&[service, apikey, resource]), None)
            .await
            .map_err(NgsiError::internal)?;
        self.inner.write().groups.remove(&key);
        Ok(())
    }

    /// Adds devices (`POST /iot/devices`); all or none.
    pub async fn add_devices(
        &self,
        service: &str,
        subservice: &str,
        list: Vec<Device>,
    ) -> Result<()> {
        let mut list = list;
        {
            let g = self.inner.read();
            let mut seen = std::collections::HashSet::new();
            for d in &mut list {
                check_name("device_id", &d.device_id)?;
                d.service = service.to_string();
                d.service_path = subservice.to_string();
                let key = (d.service.clone(), d.device_id.clone());
                if g.devices.contains_key(&key) || !seen.insert(key) {
                    return Err(NgsiError::new(
                        ErrorKind::AlreadyExists,
                        format!("DUPLICATE_DEVICE_ID: device '{}' exists", d.device_id),
                    ));
                }
                if let Some(e) = &d.entity_name {
                    dosi_ngsi::EntityId::parse(e).map_err(|_| {
                        NgsiError::bad_data(format!(
                            "entity_name '{e}' of device '{}' is not a URI",
                            d.device_id
                        ))
                    })?;
                }
            }
        }
        for d in &list {
            self.save_device(d).await?;
        }
        let mut g = self.inner.write();
        for d in list {
            g.devices
                .insert((d.service.clone(), d.device_id.clone()), d);
        }
        Ok(())
    }

    /// The devices of a service, in id order.
    pub fn devices(&self, service: &str) -> Vec<Device> {
        self.inner
            .read()
            .devices
            .values()
            .filter(|d| d.service == service)
            .cloned()
            .collect()
    }

    /// One device.
    pub fn device(&self, service: &str, id: &str) -> Option<Device> {
        self.inner
            .read()
            .devices
            .get(&(service.to_string(), id.to_string()))
            .cloned()
    }

    /// Replaces fields of a device (`PUT /iot/devices/{id}`).
    pub async fn update_device(
        &self,
        service: &str,
        id: &str,
        patch: &serde_json::Value,
    ) -> Result<()> {
        let key = (service.to_string(), id.to_string());
        let old = self
            .inner
            .read()
            .devices
            .get(&key)
            .cloned()
            .ok_or_else(|| device_not_found(id))?;
        let new: Device = merged(&old, patch)?;
        if new.device_id != old.device_id {
            return Err(NgsiError::bad_data("device_id cannot change"));
        }
        self.save_device(&new).await?;
        self.inner.write().devices.insert(key, new);
        Ok(())
    }

    /// Deletes a device.
    pub async fn delete_device(&self, service: &str, id: &str) -> Result<()> {
        let key = (service.to_string(), id.to_string());
        if !self.inner.read().devices.contains_key(&key) {
            return Err(device_not_found(id));
        }
        self.store
            .put_meta(DEVICES, &meta_key(&[service, id]), None)
            .await
            .map_err(NgsiError::internal)?;
        self.inner.write().devices.remove(&key);
        Ok(())
    }

    /// The group a device's measures are sent with (`k` on HTTP, the first
    /// topic level on MQTT), in any service.
    pub fn group_by_apikey(&self, apikey: &str) -> Option<ServiceGroup> {
        self.inner
            .read()
            .groups
            .values()
            .find(|g| g.apikey == apikey)
            .cloned()
    }
}

/// `old` with the members of `patch` (a JSON object) replaced.
fn merged<T: serde::Serialize + serde::de::DeserializeOwned>(
    old: &T,
    patch: &serde_json::Value,
) -> Result<T> {
    let Some(p) = patch.as_object() else {
        return Err(NgsiError::bad_data("the update must be a JSON object"));
    };
    let mut v = serde_json::to_value(old).map_err(NgsiError::internal)?;
    if let Some(o) = v.as_object_mut() {
        for (k, x) in p {
            o.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).map_err(|e| NgsiError::bad_data(format!("invalid update: {e}")))
}

fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(NgsiError::bad_data(format!(
            "{what} '{s}' is not valid: use 1-256 characters of letters, digits, '_', '-', '.', ':'"
        )))
    }
}

fn group_not_found(apikey: &str, resource: &str) -> NgsiError {
    NgsiError::not_found(format!(
        "no service group with apikey '{apikey}' and resource '{resource}'"
    ))
}

fn device_not_found(id: &str) -> NgsiError {
    NgsiError::not_found(format!("DEVICE_NOT_FOUND: no device '{id}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dosi_store::embedded::{EmbeddedOptions, EmbeddedStore};

    fn group(apikey: &str) -> ServiceGroup {
        serde_json::from_value(serde_json::json!({
            "apikey": apikey, "resource": "/iot/d", "entity_type": "Thing"
        }))
        .unwrap()
    }

    fn device(id: &str) -> Device {
        serde_json::from_value(serde_json::json!({
            "device_id": id, "entity_name": format!("urn:ngsi-ld:Thing:{id}"), "entity_type": "Thing",
            "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"}]
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn groups_and_devices_persist_and_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let r = Registry::open(store.clone()).await.unwrap();
        r.add_groups("city", "/", vec![group("k1")]).await.unwrap();
        let dup = r
            .add_groups("city", "/", vec![group("k1")])
            .await
            .unwrap_err();
        assert_eq!(dup.kind, ErrorKind::AlreadyExists);
        r.add_devices("city", "/", vec![device("d1"), device("d2")])
            .await
            .unwrap();
        let dup = r
            .add_devices("city", "/", vec![device("d3"), device("d1")])
            .await;
        assert!(dup.is_err());
        assert!(r.device("city", "d3").is_none(), "all or none");
        r.update_device("city", "d1", &serde_json::json!({"timezone": "+09:00"}))
            .await
            .unwrap();
        r.delete_device("city", "d2").await.unwrap();
        assert_eq!(
            r.delete_device("city", "d2").await.unwrap_err().kind,
            ErrorKind::ResourceNotFound
        );
        drop(r);
        let again = Registry::open(store).await.unwrap();
        assert_eq!(again.groups("city").len(), 1);
        let ds = again.devices("city");
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].timezone.as_deref(), Some("+09:00"));
        assert_eq!(ds[0].service_path, "/");
        assert!(again.group_by_apikey("k1").is_some());
        assert!(again.devices("other").is_empty());
    }

    #[tokio::test]
    async fn bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let r = Registry::open(store).await.unwrap();
        assert!(r
            .add_devices("city", "/", vec![device("a b")])
            .await
            .is_err());
        assert!(r.add_groups("city", "/", vec![group("")]).await.is_err());
        let mut d = device("ok");
        d.entity_name = Some("not a uri".into());
        assert!(r.add_devices("city", "/", vec![d]).await.is_err());
    }
}
