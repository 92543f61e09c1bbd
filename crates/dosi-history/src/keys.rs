//! Series and meta keys: `tenant \0 entity \0 attribute \0 datasetId`.

use dosi_ngsi::{EntityId, TenantId};

/// Pseudo-attribute holding the entity's scope over time.
pub const SCOPE: &str = "@scope";

/// Key of one series.
pub fn series(tenant: &TenantId, id: &EntityId, attr: &str, dataset: Option<&str>) -> Vec<u8> {
    let mut k = entity_prefix(tenant, id);
    k.extend_from_slice(attr.as_bytes());
    k.push(0);
    if let Some(d) = dataset {
        k.extend_from_slice(d.as_bytes());
    }
    k
}

/// Appends `attribute \0 datasetId` to an entity prefix.
pub fn push_attr(k: &mut Vec<u8>, attr: &str, dataset: Option<&str>) {
    k.extend_from_slice(attr.as_bytes());
    k.push(0);
    if let Some(d) = dataset {
        k.extend_from_slice(d.as_bytes());
    }
}

/// Prefix of every series of one attribute of an entity.
pub fn attr_prefix(tenant: &TenantId, id: &EntityId, attr: &str) -> Vec<u8> {
    let mut k = entity_prefix(tenant, id);
    k.extend_from_slice(attr.as_bytes());
    k.push(0);
    k
}

/// Prefix of every series of an entity.
pub fn entity_prefix(tenant: &TenantId, id: &EntityId) -> Vec<u8> {
    let mut k = tenant_prefix(tenant);
    k.extend_from_slice(id.as_str().as_bytes());
    k.push(0);
    k
}

/// Prefix of everything of a tenant.
pub fn tenant_prefix(tenant: &TenantId) -> Vec<u8> {
    let mut k = tenant.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

/// Splits a series key into (entity, attribute, datasetId) after the tenant prefix.
pub fn split(key: &[u8]) -> Option<(&str, &str, &str, Option<&str>)> {
    let s = std::str::from_utf8(key).ok()?;
    let mut it = s.splitn(4, '\0');
    let tenant = it.next()?;
    let id = it.next()?;
    let attr = it.next()?;
    let ds = it.next()?;
    Some((tenant, id, attr, (!ds.is_empty()).then_some(ds)))
}

/// Meta key of an entity's catalog record.
pub fn entity_meta(tenant: &TenantId, id: &EntityId) -> Vec<u8> {
    let mut k = b"e\0".to_vec();
    k.extend_from_slice(&entity_prefix(tenant, id));
    k
}
