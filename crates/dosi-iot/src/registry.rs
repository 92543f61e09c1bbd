//! The registry of service groups and devices: in memory for the hot path
//! (every measure looks its device up), persisted in the store's meta space
//! (namespaces `iot-groups`, `iot-devices`) so it survives restarts.
//!
//! Groups and devices belong to a `fiware-service` (the NGSI-LD tenant); a
//! group is named by (apikey, resource), a device by its id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dosi_ngsi::{ErrorKind, NgsiError, Result};
use dosi_store::Store;
use parking_lot::RwLock;
use sha2::Digest as _;

use crate::credentials::{self, DeviceCredentials, DeviceIdentity};
use crate::liveness::Liveness;
use crate::model::{Device, ServiceGroup};

const GROUPS: &str = "iot-groups";
const DEVICES: &str = "iot-devices";
const CREDENTIALS: &str = "iot-credentials";
const LIVENESS: &str = "iot-liveness";

type GroupKey = (String, String, String);
type DeviceKey = (String, String);

#[derive(Default)]
struct Inner {
    groups: BTreeMap<GroupKey, ServiceGroup>,
    devices: BTreeMap<DeviceKey, Device>,
    creds: BTreeMap<DeviceKey, DeviceCredentials>,
    by_username: HashMap<String, DeviceKey>,
    by_token: HashMap<String, DeviceKey>,
    by_cert: HashMap<String, DeviceKey>,
    /// (service, entity id) → device, for the devices that accept commands
    /// (a command written to the entity is sent to the device).
    by_entity: HashMap<(String, String), DeviceKey>,
    /// SHA-256 of (username, password) pairs that verified, so reconnects do
    /// not pay Argon2 again; cleared with the device's credentials.
    verified: HashMap<String, [u8; 32]>,
}

impl Inner {
    fn index_creds(&mut self, key: &DeviceKey, c: &DeviceCredentials) {
        if let Some(u) = &c.mqtt_username {
            self.by_username.insert(u.clone(), key.clone());
        }
        if let Some(t) = &c.token_sha256 {
            self.by_token.insert(t.clone(), key.clone());
        }
        if let Some(f) = &c.cert_sha256 {
            self.by_cert.insert(f.clone(), key.clone());
        }
    }

    fn unindex_creds(&mut self, key: &DeviceKey) -> Option<DeviceCredentials> {
        let old = self.creds.remove(key)?;
        if let Some(u) = &old.mqtt_username {
            self.by_username.remove(u);
            self.verified.remove(u);
        }
        if let Some(t) = &old.token_sha256 {
            self.by_token.remove(t);
        }
        if let Some(f) = &old.cert_sha256 {
            self.by_cert.remove(f);
        }
        Some(old)
    }

    /// The service group a device belongs to: the one of its API key, else
    /// the one of its service path, else any of its service.
    fn group_of(&self, d: &Device) -> Option<&ServiceGroup> {
        let svc = || self.groups.values().filter(|g| g.service == d.service);
        match &d.apikey {
            Some(k) => svc().find(|g| &g.apikey == k),
            None => svc()
                .find(|g| g.subservice == d.service_path)
                .or_else(|| svc().next()),
        }
    }

    fn index_entity(&mut self, key: &DeviceKey) {
        self.unindex_entity(key);
        let Some(d) = self.devices.get(key) else {
            return;
        };
        if d.commands.is_empty() {
            return;
        }
        let (id, _) = entity_of(d, self.group_of(d));
        self.by_entity.insert((key.0.clone(), id), key.clone());
    }

    fn unindex_entity(&mut self, key: &DeviceKey) {
        self.by_entity.retain(|_, v| v != key);
    }

    fn reindex_entities(&mut self) {
        self.by_entity.clear();
        let keys: Vec<DeviceKey> = self
            .devices
            .iter()
            .filter(|(_, d)| !d.commands.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.index_entity(&k);
        }
    }

    fn identity(&self, key: &DeviceKey) -> Option<DeviceIdentity> {
        let d = self.devices.get(key)?;
        let apikey = d
            .apikey
            .clone()
            .or_else(|| self.group_of(d).map(|g| g.apikey.clone()));
        Some(DeviceIdentity {
            service: d.service.clone(),
            device_id: d.device_id.clone(),
            apikey,
        })
    }
}

/// Service groups and devices.
pub struct Registry {
    store: Arc<dyn Store>,
    inner: RwLock<Inner>,
    liveness: Liveness,
}

/// The NGSI-LD entity (id, type) a device writes to: its `entity_name`, else
/// `urn:ngsi-ld:{type}:{device_id}`; the type is the device's, else its
/// group's, else `Thing`.
pub fn entity_of(d: &Device, group: Option<&ServiceGroup>) -> (String, String) {
    let ty = d
        .entity_type
        .clone()
        .or_else(|| group.and_then(|g| g.entity_type.clone()))
        .unwrap_or_else(|| "Thing".into());
    let id = d
        .entity_name
        .clone()
        .unwrap_or_else(|| format!("urn:ngsi-ld:{ty}:{}", d.device_id));
    (id, ty)
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
        for (_, v) in store
            .list_meta(CREDENTIALS)
            .await
            .map_err(NgsiError::internal)?
        {
            if let Ok((service, id, c)) =
                serde_json::from_slice::<(String, String, DeviceCredentials)>(&v)
            {
                let key = (service, id);
                inner.index_creds(&key, &c);
                inner.creds.insert(key, c);
            }
        }
        inner.reindex_entities();
        let liveness = store
            .list_meta(LIVENESS)
            .await
            .map_err(NgsiError::internal)?
            .into_iter()
            .find(|(k, _)| k == "all")
            .map(|(_, v)| Liveness::from_bytes(&v))
            .unwrap_or_default();
        Ok(Arc::new(Self {
            store,
            inner: RwLock::new(inner),
            liveness,
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
                x.check().map_err(NgsiError::bad_data)?;
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
        g.reindex_entities();
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
        new.check().map_err(NgsiError::bad_data)?;
        if new.apikey != old.apikey || new.resource != old.resource {
            return Err(NgsiError::bad_data(
                "apikey and resource of a service group cannot change",
            ));
        }
        self.save_group(&new).await?;
        let mut g = self.inner.write();
        g.groups.insert(key, new);
        g.reindex_entities();
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
        let mut g = self.inner.write();
        g.groups.remove(&key);
        g.reindex_entities();
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
                d.check().map_err(NgsiError::bad_data)?;
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
            let key = (d.service.clone(), d.device_id.clone());
            g.devices.insert(key.clone(), d);
            g.index_entity(&key);
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
        new.check().map_err(NgsiError::bad_data)?;
        if new.device_id != old.device_id {
            return Err(NgsiError::bad_data("device_id cannot change"));
        }
        self.save_device(&new).await?;
        let mut g = self.inner.write();
        g.devices.insert(key.clone(), new);
        g.index_entity(&key);
        Ok(())
    }

    /// Deletes a device.
    pub async fn delete_device(&self, service: &str, id: &str) -> Result<()> {
        let key = (service.to_string(), id.to_string());
        if !self.inner.read().devices.contains_key(&key) {
            return Err(device_not_found(id));
        }
        if self.inner.read().creds.contains_key(&key) {
            self.store
                .put_meta(CREDENTIALS, &meta_key(&[service, id]), None)
                .await
                .map_err(NgsiError::internal)?;
        }
        self.store
            .put_meta(DEVICES, &meta_key(&[service, id]), None)
            .await
            .map_err(NgsiError::internal)?;
        let mut g = self.inner.write();
        g.devices.remove(&key);
        g.unindex_creds(&key);
        g.unindex_entity(&key);
        drop(g);
        self.liveness.remove(service, id);
        Ok(())
    }

    /// Sets (replaces) a device's credentials. The MQTT username, token and
    /// certificate must not belong to another device.
    pub async fn set_credentials(
        &self,
        service: &str,
        id: &str,
        c: DeviceCredentials,
    ) -> Result<()> {
        let key = (service.to_string(), id.to_string());
        {
            let g = self.inner.read();
            if !g.devices.contains_key(&key) {
                return Err(device_not_found(id));
            }
            let taken = |m: &HashMap<String, DeviceKey>, v: &Option<String>| {
                v.as_ref()
                    .and_then(|v| m.get(v))
                    .is_some_and(|owner| *owner != key)
            };
            if taken(&g.by_username, &c.mqtt_username) {
                return Err(NgsiError::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "MQTT username '{}' belongs to another device",
                        c.mqtt_username.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if taken(&g.by_token, &c.token_sha256) || taken(&g.by_cert, &c.cert_sha256) {
                return Err(NgsiError::new(
                    ErrorKind::AlreadyExists,
                    "the token or certificate belongs to another device",
                ));
            }
        }
        let v = serde_json::to_vec(&(service, id, &c)).map_err(NgsiError::internal)?;
        self.store
            .put_meta(CREDENTIALS, &meta_key(&[service, id]), Some(v))
            .await
            .map_err(NgsiError::internal)?;
        let mut g = self.inner.write();
        g.unindex_creds(&key);
        g.index_creds(&key, &c);
        g.creds.insert(key, c);
        Ok(())
    }

    /// A device's credentials (hashes only), if it has any.
    pub fn credentials(&self, service: &str, id: &str) -> Option<DeviceCredentials> {
        self.inner
            .read()
            .creds
            .get(&(service.to_string(), id.to_string()))
            .cloned()
    }

    /// The device an MQTT username and password belong to. Argon2 makes a
    /// first check cost tens of milliseconds of CPU: call it off the async
    /// threads (`spawn_blocking`). A pair that verified once is remembered
    /// (as a digest) until the device's credentials change.
    ///
    /// A device with an access token may also connect with the token as its
    /// password and its device id (or MQTT username) as the username, as
    /// ThingsBoard and others allow: a token is a random secret checked by
    /// its digest, so no slow hash is needed and thousands of devices can
    /// (re)connect at once.
    pub fn authenticate_mqtt(&self, username: &str, password: &[u8]) -> Option<DeviceIdentity> {
        if let Some(id) = std::str::from_utf8(password)
            .ok()
            .and_then(|token| self.token_identity_for(username, token))
        {
            return Some(id);
        }
        let mut h = sha2::Sha256::new();
        sha2::Digest::update(&mut h, username.as_bytes());
        sha2::Digest::update(&mut h, [0u8]);
        sha2::Digest::update(&mut h, password);
        let digest: [u8; 32] = sha2::Digest::finalize(h).into();
        let (key, phc) = {
            let g = self.inner.read();
            let key = g.by_username.get(username)?.clone();
            if g.verified.get(username) == Some(&digest) {
                return g.identity(&key);
            }
            let phc = g.creds.get(&key)?.mqtt_password_hash.clone()?;
            (key, phc)
        };
        if !credentials::verify_password(&phc, password) {
            return None;
        }
        let mut g = self.inner.write();
        // Still the same credentials (not changed while verifying)?
        let same = g
            .creds
            .get(&key)
            .and_then(|c| c.mqtt_password_hash.as_deref())
            == Some(phc.as_str());
        if !same {
            return None;
        }
        if g.verified.len() >= 1_000_000 {
            g.verified.clear();
        }
        g.verified.insert(username.to_string(), digest);
        g.identity(&key)
    }

    /// The device `token` belongs to, if `username` names that device (its
    /// id or its MQTT username).
    fn token_identity_for(&self, username: &str, token: &str) -> Option<DeviceIdentity> {
        let digest = credentials::token_digest(token);
        let g = self.inner.read();
        let key = g.by_token.get(&digest)?;
        let named = key.1 == username
            || g.creds.get(key).and_then(|c| c.mqtt_username.as_deref()) == Some(username);
        if named {
            g.identity(key)
        } else {
            None
        }
    }

    /// The device an access token belongs to.
    pub fn authenticate_token(&self, token: &str) -> Option<DeviceIdentity> {
        let digest = credentials::token_digest(token);
        let g = self.inner.read();
        let key = g.by_token.get(&digest)?;
        g.identity(key)
    }

    /// The device a client certificate (SHA-256 of its DER) belongs to.
    pub fn authenticate_cert(&self, sha256_hex: &str) -> Option<DeviceIdentity> {
        let g = self.inner.read();
        let key = g.by_cert.get(sha256_hex)?;
        g.identity(key)
    }

    /// Whether any device has MQTT credentials (an embedded broker that
    /// allows anonymous clients only while none has, say).
    pub fn has_mqtt_credentials(&self) -> bool {
        !self.inner.read().by_username.is_empty()
    }

    /// The device that accepts commands through entity `entity_id` of `service`.
    pub fn device_by_entity(&self, service: &str, entity_id: &str) -> Option<Device> {
        let g = self.inner.read();
        if g.by_entity.is_empty() {
            return None;
        }
        let key = g
            .by_entity
            .get(&(service.to_string(), entity_id.to_string()))?;
        g.devices.get(key).cloned()
    }

    /// The service group a device belongs to (see [`entity_of`]).
    pub fn group_of(&self, d: &Device) -> Option<ServiceGroup> {
        self.inner.read().group_of(d).cloned()
    }

    /// The entity (id, type) a device writes to.
    pub fn entity_of(&self, d: &Device) -> (String, String) {
        let g = self.inner.read();
        entity_of(d, g.group_of(d))
    }

    /// The services that have a device `id`.
    pub fn services_of(&self, id: &str) -> Vec<String> {
        self.inner
            .read()
            .devices
            .keys()
            .filter(|(_, d)| d == id)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Every device of every service.
    pub fn all_devices(&self) -> Vec<Device> {
        self.inner.read().devices.values().cloned().collect()
    }

    /// When devices were last heard from.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// Persists the last-seen table if it changed since the last call.
    pub async fn persist_liveness(&self) -> Result<()> {
        if !self.liveness.take_dirty() {
            return Ok(());
        }
        self.store
            .put_meta(LIVENESS, "all", Some(self.liveness.to_bytes()))
            .await
            .map_err(NgsiError::internal)
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
    async fn command_devices_are_found_by_entity_and_liveness_persists() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let r = Registry::open(store.clone()).await.unwrap();
        r.add_groups("city", "/", vec![group("k1")]).await.unwrap();
        let mut d: Device = serde_json::from_value(serde_json::json!({
            "device_id": "v1", "apikey": "k1",
            "commands": [{"name": "open", "type": "command"}]
        }))
        .unwrap();
        r.add_devices("city", "/", vec![d.clone(), device("plain")])
            .await
            .unwrap();
        // The type comes from the group.
        assert!(r.device_by_entity("city", "urn:ngsi-ld:Thing:v1").is_some());
        assert!(r
            .device_by_entity("city", "urn:ngsi-ld:Thing:plain")
            .is_none());
        assert!(r
            .device_by_entity("other", "urn:ngsi-ld:Thing:v1")
            .is_none());
        r.update_group(
            "city",
            "k1",
            "/iot/d",
            &serde_json::json!({"entity_type": "Valve"}),
        )
        .await
        .unwrap();
        assert!(r.device_by_entity("city", "urn:ngsi-ld:Valve:v1").is_some());
        d.service = "city".into();
        assert_eq!(r.entity_of(&d).0, "urn:ngsi-ld:Valve:v1");
        r.liveness().seen("city", "v1", 5_000, 60);
        r.persist_liveness().await.unwrap();
        drop(r);
        let r = Registry::open(store).await.unwrap();
        assert!(r.device_by_entity("city", "urn:ngsi-ld:Valve:v1").is_some());
        assert_eq!(r.liveness().get("city", "v1").unwrap().last_ms(), 5_000);
        r.delete_device("city", "v1").await.unwrap();
        assert!(r.device_by_entity("city", "urn:ngsi-ld:Valve:v1").is_none());
        assert!(r.liveness().get("city", "v1").is_none());
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

    #[tokio::test]
    async fn credentials_authenticate_persist_and_go_with_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let r = Registry::open(store.clone()).await.unwrap();
        r.add_groups("city", "/", vec![group("k1")]).await.unwrap();
        r.add_devices("city", "/", vec![device("d1"), device("d2")])
            .await
            .unwrap();
        let token = credentials::new_token();
        let c = DeviceCredentials {
            token_sha256: Some(credentials::token_digest(&token)),
            mqtt_username: Some("gauge-1".into()),
            mqtt_password_hash: Some(credentials::hash_password("pw1").unwrap()),
            cert_sha256: None,
        };
        r.set_credentials("city", "d1", c.clone()).await.unwrap();
        assert!(!r.has_mqtt_credentials() || r.credentials("city", "d1").is_some());
        let me = DeviceIdentity {
            service: "city".into(),
            device_id: "d1".into(),
            apikey: Some("k1".into()),
        };
        assert_eq!(r.authenticate_mqtt("gauge-1", b"pw1"), Some(me.clone()));
        assert_eq!(
            r.authenticate_mqtt("gauge-1", b"pw1"),
            Some(me.clone()),
            "cached"
        );
        assert_eq!(r.authenticate_mqtt("gauge-1", b"pw2"), None);
        assert_eq!(r.authenticate_mqtt("nobody", b"pw1"), None);
        assert_eq!(r.authenticate_token(&token), Some(me.clone()));
        assert_eq!(r.authenticate_token("x"), None);
        // The token is also an MQTT password, with the device id or the
        // MQTT username as the username, and for no other device.
        assert_eq!(
            r.authenticate_mqtt("d1", token.as_bytes()),
            Some(me.clone())
        );
        assert_eq!(
            r.authenticate_mqtt("gauge-1", token.as_bytes()),
            Some(me.clone())
        );
        assert_eq!(r.authenticate_mqtt("d2", token.as_bytes()), None);
        assert_eq!(r.authenticate_mqtt("d1", b"not-the-token"), None);
        // Another device cannot take the username.
        let taken = r
            .set_credentials("city", "d2", c.clone())
            .await
            .unwrap_err();
        assert_eq!(taken.kind, ErrorKind::AlreadyExists);
        // Unknown device.
        assert!(r.set_credentials("city", "d9", c).await.is_err());
        drop(r);
        let r = Registry::open(store).await.unwrap();
        assert_eq!(r.authenticate_mqtt("gauge-1", b"pw1"), Some(me));
        // A password change forgets the remembered pair.
        let c2 = DeviceCredentials {
            mqtt_username: Some("gauge-1".into()),
            mqtt_password_hash: Some(credentials::hash_password("new").unwrap()),
            ..Default::default()
        };
        r.set_credentials("city", "d1", c2).await.unwrap();
        assert_eq!(r.authenticate_mqtt("gauge-1", b"pw1"), None);
        assert!(r.authenticate_mqtt("gauge-1", b"new").is_some());
        assert_eq!(r.authenticate_token(&token), None, "old token replaced");
        r.delete_device("city", "d1").await.unwrap();
        assert_eq!(r.authenticate_mqtt("gauge-1", b"new"), None);
        assert!(!r.has_mqtt_credentials());
    }
}
