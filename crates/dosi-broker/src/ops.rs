//! NGSI-LD operation semantics (ETSI GS CIM 009 clause 5.6 and 5.9) on top of
//! the one write path. Inputs are already decoded and validated.

use std::sync::Arc;

use dosi_ngsi::model::Iri;
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::{Attribute, Entity, EntityId, ErrorKind, NgsiError, Result, TenantId, Timestamp};
use dosi_store::Page;
use serde_json::Value;

use crate::codec::decode::{AttrInput, EntityInput};
use crate::codec::NGSI_LD_NULL;
use crate::write::{Broker, Txn};

/// What a purge removes from the matching entities.
#[derive(Debug, Clone)]
pub enum Purge {
    /// The entities themselves.
    Entities,
    /// Every attribute except these (expanded names).
    Keep(Vec<Iri>),
    /// These attributes (expanded names).
    Drop(Vec<Iri>),
}

/// What an attribute-level update did (for 204 vs 207 answers).
#[derive(Debug, Default, Clone)]
pub struct UpdateOutcome {
    /// Expanded names of attributes that were written.
    pub updated: Vec<Iri>,
    /// Expanded names that were not, with the reason.
    pub not_updated: Vec<(Iri, String)>,
}

/// What a batch operation did per entity.
#[derive(Debug, Default, Clone)]
pub struct BatchOutcome {
    /// Entities that succeeded.
    pub success: Vec<EntityId>,
    /// Entities that failed, with their error.
    pub errors: Vec<(String, NgsiError)>,
    /// For upserts: the ids that were newly created.
    pub created: Vec<EntityId>,
}

fn not_found(id: &EntityId) -> NgsiError {
    NgsiError::not_found(format!("entity {id} does not exist"))
}

/// Builds a new entity from a complete input.
pub fn new_entity(id: EntityId, input: &EntityInput, now: Timestamp) -> Result<Entity> {
    if input.types.is_empty() {
        return Err(NgsiError::bad_data(format!("entity {id} has no type")));
    }
    let mut e = Entity::new(id, input.types.clone(), now);
    e.scope = input.scope.clone().unwrap_or_default();
    for (name, list) in &input.attrs {
        for inst in list {
            match inst {
                AttrInput::Set(a) => set_instance(&mut e, name, a.clone(), now),
                AttrInput::Delete(_) => {}
            }
        }
    }
    Ok(e)
}

/// Replaces (or adds) the instance of `name` with the same datasetId as `a`.
pub fn set_instance(e: &mut Entity, name: &Iri, mut a: Attribute, now: Timestamp) {
    strip_null_subs(&mut a);
    a.modified_at = now;
    let list = e.attrs.entry(name.clone()).or_default();
    match list.iter_mut().find(|x| x.dataset_id == a.dataset_id) {
        Some(old) => {
            a.created_at = old.created_at;
            *old = a;
        }
        None => {
            a.created_at = now;
            list.push(a);
        }
    }
}

fn strip_null_subs(a: &mut Attribute) {
    a.sub.retain(|_, s| s.value.as_str() != Some(NGSI_LD_NULL));
    for s in a.sub.values_mut() {
        strip_null_subs(s);
    }
}

/// Merges `patch` into `old` (clause 5.5.12 merge-patch of one attribute):
/// the value and given members are replaced, sub-attributes merged, nulls delete.
pub fn merge_instance(old: &Attribute, patch: &Attribute, now: Timestamp) -> Attribute {
    merge_with(old, patch, now, true)
}

/// Merges `patch` into `old`; `deep` merges compound values and language maps
/// key by key (merge-patch), otherwise the value is replaced (partial update).
fn merge_with(old: &Attribute, patch: &Attribute, now: Timestamp, deep: bool) -> Attribute {
    let mut a = old.clone();
    if !patch.value.is_null() {
        if patch.kind != a.kind {
            a.kind = patch.kind;
        }
        a.value = if deep {
            merge_value(&a.value, &patch.value, patch.kind)
        } else {
            patch.value.clone()
        };
    }
    if patch.observed_at.is_some() {
        a.observed_at.clone_from(&patch.observed_at);
    }
    if patch.unit_code.is_some() {
        a.unit_code.clone_from(&patch.unit_code);
    }
    if patch.object_type.is_some() {
        a.object_type.clone_from(&patch.object_type);
    }
    if patch.lang.is_some() {
        a.lang.clone_from(&patch.lang);
    }
    for (name, sp) in &patch.sub {
        if sp.value.as_str() == Some(NGSI_LD_NULL) {
            a.sub.remove(name);
        } else if let Some(so) = a.sub.get(name) {
            let merged = merge_with(so, sp, now, deep);
            a.sub.insert(name.clone(), merged);
        } else {
            let mut s = sp.clone();
            strip_null_subs(&mut s);
            s.created_at = now;
            s.modified_at = now;
            a.sub.insert(name.clone(), s);
        }
    }
    a.modified_at = now;
    a
}

/// Merge of a value: LanguageProperty maps merge per language (null deletes);
/// everything else is replaced.
fn merge_value(old: &Value, new: &Value, kind: dosi_ngsi::AttrKind) -> Value {
    match (kind, old, new) {
        (dosi_ngsi::AttrKind::Property, _, Value::Object(_)) => merge_json(old, new),
        (dosi_ngsi::AttrKind::LanguageProperty, Value::Object(o), Value::Object(n)) => {
            let mut m = o.clone();
            for (k, v) in n {
                if v.as_str() == Some(NGSI_LD_NULL) {
                    m.remove(k);
                } else {
                    m.insert(k.clone(), v.clone());
                }
            }
            Value::Object(m)
        }
        _ => new.clone(),
    }
}

/// Applies a merge-patch entity fragment to `e` (clause 5.6.17).
fn merge_into(e: &mut Entity, input: &EntityInput, now: Timestamp) {
    for t in &input.types {
        if !e.types.contains(t) {
            e.types.push(t.clone());
        }
    }
    if let Some(s) = &input.scope {
        e.scope.clone_from(s);
    }
    for (name, list) in &input.attrs {
        for inst in list {
            match inst {
                AttrInput::Delete(ds) => {
                    if let Some(l) = e.attrs.get_mut(name) {
                        l.retain(|a| a.dataset_id != *ds);
                        if l.is_empty() {
                            e.attrs.remove(name);
                        }
                    }
                }
                AttrInput::Set(p) => {
                    let existing = e.instance(name, p.dataset()).cloned();
                    match existing {
                        Some(old) => {
                            let merged = merge_instance(&old, p, now);
                            set_instance(e, name, merged, now);
                        }
                        None if !p.value.is_null() => set_instance(e, name, p.clone(), now),
                        None => {}
                    }
                }
            }
        }
    }
    e.modified_at = now;
}

impl Broker {
    /// Create Entity (clause 5.6.1).
    pub async fn create_entity(&self, tenant: &TenantId, input: EntityInput) -> Result<EntityId> {
        let id = input
            .id
            .clone()
            .ok_or_else(|| NgsiError::bad_data("entity has no 'id'"))?;
        self.write(tenant, std::slice::from_ref(&id), |tx| {
            if tx.get(&id).is_some() {
                return Err(NgsiError::new(
                    ErrorKind::AlreadyExists,
                    format!("entity {id} already exists"),
                ));
            }
            let e = new_entity(id.clone(), &input, tx.now())?;
            tx.put(e)
        })
        .await?;
        Ok(id)
    }

    /// Replace Entity (PUT, clause 5.6.18): everything but id and createdAt.
    pub async fn replace_entity(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        input: EntityInput,
    ) -> Result<()> {
        self.write(tenant, std::slice::from_ref(id), |tx| {
            let old = tx.get(id).ok_or_else(|| not_found(id))?.clone();
            let mut e = new_entity(id.clone(), &input, tx.now())?;
            e.created_at = old.created_at;
            tx.put(e)
        })
        .await
    }

    /// Changes one existing entity inside the write path: `f` edits a copy
    /// and says whether it changed anything; a changed entity gets a new
    /// `modifiedAt` and is committed. A missing entity is ResourceNotFound.
    async fn modify<T>(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        f: impl FnOnce(&mut Entity, Timestamp) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.write(tenant, std::slice::from_ref(id), |tx| {
            let mut e = Entity::clone(tx.get(id).ok_or_else(|| not_found(id))?);
            let now = tx.now();
            let (out, changed) = f(&mut e, now)?;
            if changed {
                e.modified_at = now;
                tx.put(e)?;
            }
            Ok(out)
        })
        .await
    }

    /// Merge Entity (PATCH /entities/{id}, clause 5.6.17).
    pub async fn merge_entity(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        input: EntityInput,
    ) -> Result<()> {
        self.modify(tenant, id, |e, now| {
            merge_into(e, &input, now);
            Ok(((), true))
        })
        .await
    }

    /// Append Entity Attributes (POST /attrs, clause 5.6.3).
    pub async fn append_attrs(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        input: EntityInput,
        no_overwrite: bool,
    ) -> Result<UpdateOutcome> {
        self.modify(tenant, id, |e, now| {
            let out = append_into(e, &input, no_overwrite, now);
            let changed =
                !out.updated.is_empty() || !input.types.is_empty() || input.scope.is_some();
            Ok((out, changed))
        })
        .await
    }

    /// Update Entity Attributes (PATCH /attrs, clause 5.6.2): only existing
    /// instances are replaced; types are added; an existing scope is replaced.
    pub async fn update_attrs(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        input: EntityInput,
    ) -> Result<UpdateOutcome> {
        self.modify(tenant, id, |e, now| {
            let mut out = update_into(e, &input, now);
            let mut changed = !out.updated.is_empty();
            for t in &input.types {
                if !e.types.contains(t) {
                    e.types.push(t.clone());
                }
                changed = true;
            }
            if let Some(s) = &input.scope {
                if e.scope.is_empty() {
                    out.not_updated.push((
                        Arc::from("scope"),
                        "the entity has no scope to update".to_string(),
                    ));
                } else {
                    e.scope.clone_from(s);
                    changed = true;
                }
            }
            if changed && out.updated.is_empty() && out.not_updated.is_empty() {
                out.updated.push(Arc::from("type"));
            }
            Ok((out, changed))
        })
        .await
    }

    /// Partial Attribute Update (PATCH /attrs/{attrId}, clause 5.6.4): the
    /// given members replace the instance's; the NGSI-LD Null deletes it.
    pub async fn partial_update_attr(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &Iri,
        patch: Vec<AttrInput>,
    ) -> Result<()> {
        self.modify(tenant, id, |e, now| {
            for p in &patch {
                let p = match p {
                    AttrInput::Set(p) => p,
                    AttrInput::Delete(ds) => {
                        remove_instance(e, name, ds.as_deref())?;
                        continue;
                    }
                };
                let old = e.instance(name, p.dataset()).cloned().ok_or_else(|| {
                    NgsiError::not_found(format!(
                        "entity {} has no attribute {name}{}",
                        e.id,
                        p.dataset()
                            .map(|d| format!(" with datasetId {d}"))
                            .unwrap_or_default()
                    ))
                })?;
                if !p.value.is_null() && p.kind != old.kind {
                    return Err(NgsiError::bad_data(format!(
                        "attribute {name} is a {}, the update gives a {}",
                        old.kind.name(),
                        p.kind.name()
                    )));
                }
                let merged = merge_with(&old, p, now, false);
                set_instance(e, name, merged, now);
            }
            Ok(((), true))
        })
        .await
    }

    /// Replace Entity Attribute (PUT /attrs/{attrId}, clause 5.6.19).
    pub async fn replace_attr(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &Iri,
        input: Vec<AttrInput>,
    ) -> Result<()> {
        self.modify(tenant, id, |e, now| {
            for i in &input {
                let AttrInput::Set(a) = i else {
                    return Err(NgsiError::bad_data(
                        "an attribute replacement needs a value",
                    ));
                };
                if e.instance(name, a.dataset()).is_none() {
                    return Err(NgsiError::not_found(format!(
                        "entity {} has no attribute {name}",
                        e.id
                    )));
                }
                set_instance(e, name, a.clone(), now);
            }
            Ok(((), true))
        })
        .await
    }

    /// Delete Entity Attribute (clause 5.6.5): one instance by datasetId (the
    /// default one if none), or all of them with `delete_all`.
    pub async fn delete_attr(
        &self,
        tenant: &TenantId,
        id: &EntityId,
        name: &Iri,
        dataset_id: Option<&str>,
        delete_all: bool,
    ) -> Result<()> {
        self.modify(tenant, id, |e, _| {
            if delete_all {
                if e.attrs.remove(name).is_none() {
                    return Err(NgsiError::not_found(format!(
                        "entity {} has no attribute {name}",
                        e.id
                    )));
                }
            } else {
                remove_instance(e, name, dataset_id)?;
            }
            Ok(((), true))
        })
        .await
    }

    /// Removes the entity's scope (DELETE /attrs/scope).
    pub async fn delete_scope(&self, tenant: &TenantId, id: &EntityId) -> Result<()> {
        self.modify(tenant, id, |e, _| {
            if e.scope.is_empty() {
                return Err(NgsiError::not_found(format!(
                    "entity {} has no scope",
                    e.id
                )));
            }
            e.scope.clear();
            Ok(((), true))
        })
        .await
    }

    /// Delete Entity (clause 5.6.6).
    pub async fn delete_entity(&self, tenant: &TenantId, id: &EntityId) -> Result<()> {
        self.write(tenant, std::slice::from_ref(id), |tx| {
            tx.get(id).ok_or_else(|| not_found(id))?;
            tx.delete(id)
        })
        .await
    }

    /// Batch Entity Creation (clause 5.6.7).
    pub async fn batch_create(
        &self,
        tenant: &TenantId,
        inputs: Vec<EntityInput>,
    ) -> Result<BatchOutcome> {
        self.batch(tenant, inputs, |tx, id, input| {
            if tx.get(id).is_some() {
                return Err(NgsiError::new(
                    ErrorKind::AlreadyExists,
                    format!("entity {id} already exists"),
                ));
            }
            let e = new_entity(id.clone(), input, tx.now())?;
            tx.put(e)?;
            Ok(true)
        })
        .await
    }

    /// Batch Entity Upsert (clause 5.6.8): `update` merges attributes into
    /// existing entities, otherwise existing entities are replaced.
    pub async fn batch_upsert(
        &self,
        tenant: &TenantId,
        inputs: Vec<EntityInput>,
        update: bool,
    ) -> Result<BatchOutcome> {
        self.batch(tenant, inputs, |tx, id, input| match tx.get(id).cloned() {
            None => {
                let e = new_entity(id.clone(), input, tx.now())?;
                tx.put(e)?;
                Ok(true)
            }
            Some(old) => {
                let now = tx.now();
                let e = if update {
                    // append_into also adds the types and replaces the scope.
                    let mut e = Entity::clone(&old);
                    append_into(&mut e, input, false, now);
                    e.modified_at = now;
                    e
                } else {
                    let mut e = new_entity(id.clone(), input, now)?;
                    e.created_at = old.created_at;
                    e
                };
                tx.put(e)?;
                Ok(false)
            }
        })
        .await
    }

    /// Batch Entity Update (clause 5.6.9): append to existing entities. With
    /// `noOverwrite`, attributes that exist are kept and reported.
    pub async fn batch_update(
        &self,
        tenant: &TenantId,
        inputs: Vec<EntityInput>,
        no_overwrite: bool,
    ) -> Result<BatchOutcome> {
        let ids: Vec<EntityId> = inputs.iter().filter_map(|i| i.id.clone()).collect();
        let locked = dedup(&ids);
        self.write(tenant, &locked, |tx| {
            let mut out = BatchOutcome::default();
            for input in &inputs {
                let Some(id) = &input.id else {
                    out.errors
                        .push((String::new(), NgsiError::bad_data("entity has no 'id'")));
                    continue;
                };
                let Some(cur) = tx.get(id) else {
                    out.errors.push((id.to_string(), not_found(id)));
                    continue;
                };
                let mut e = Entity::clone(cur);
                let now = tx.now();
                let res = append_into(&mut e, input, no_overwrite, now);
                if !res.updated.is_empty() || !input.types.is_empty() || input.scope.is_some() {
                    e.modified_at = now;
                    tx.put(e)?;
                }
                if res.not_updated.is_empty() {
                    out.success.push(id.clone());
                } else {
                    let why = res
                        .not_updated
                        .iter()
                        .map(|(n, r)| format!("{n}: {r}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    out.errors.push((
                        id.to_string(),
                        NgsiError::bad_data(format!(
                            "not all attributes of {id} were updated: {why}"
                        )),
                    ));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Batch Entity Merge (clause 5.6.20).
    pub async fn batch_merge(
        &self,
        tenant: &TenantId,
        inputs: Vec<EntityInput>,
    ) -> Result<BatchOutcome> {
        self.batch(tenant, inputs, |tx, id, input| {
            let mut e = Entity::clone(tx.get(id).ok_or_else(|| not_found(id))?);
            merge_into(&mut e, input, tx.now());
            tx.put(e)?;
            Ok(false)
        })
        .await
    }

    /// Batch Entity Delete (clause 5.6.10).
    pub async fn batch_delete(
        &self,
        tenant: &TenantId,
        ids: Vec<EntityId>,
    ) -> Result<BatchOutcome> {
        let locked = dedup(&ids);
        self.write(tenant, &locked, |tx| {
            let mut out = BatchOutcome::default();
            for id in &ids {
                if tx.get(id).is_some() {
                    tx.delete(id)?;
                    out.success.push(id.clone());
                } else {
                    out.errors.push((id.to_string(), not_found(id)));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Purge Entities (DELETE /entities with a filter, clause 5.6.21): deletes
    /// every match, or with `keep`/`drop` only some of their attributes.
    /// Returns how many entities were changed.
    pub async fn purge(
        &self,
        tenant: &TenantId,
        filter: &EntityFilter,
        what: Purge,
    ) -> Result<usize> {
        let found = self.query(tenant, filter, Page::ALL).await?;
        let ids: Vec<EntityId> = found.entities.iter().map(|e| e.id.clone()).collect();
        let mut changed = 0;
        for chunk in ids.chunks(1000) {
            changed += self
                .write(tenant, chunk, |tx| {
                    let mut n = 0;
                    for id in chunk {
                        // Re-check under the lock: it may have changed since the query.
                        let Some(cur) = tx.get(id).filter(|e| filter.matches(e)).cloned() else {
                            continue;
                        };
                        match &what {
                            Purge::Entities => tx.delete(id)?,
                            Purge::Keep(keep) | Purge::Drop(keep) => {
                                let is_keep = matches!(what, Purge::Keep(_));
                                let mut e = Entity::clone(&cur);
                                e.attrs.retain(|name, _| keep.contains(name) == is_keep);
                                if e.attrs.len() == cur.attrs.len() {
                                    continue;
                                }
                                e.modified_at = tx.now();
                                tx.put(e)?;
                            }
                        }
                        n += 1;
                    }
                    Ok(n)
                })
                .await?;
        }
        Ok(changed)
    }

    /// Runs one batch: every entity in one atomic, durable commit; per-entity
    /// failures are reported and leave that entity unchanged.
    async fn batch(
        &self,
        tenant: &TenantId,
        inputs: Vec<EntityInput>,
        op: impl Fn(&mut Txn, &EntityId, &EntityInput) -> Result<bool>,
    ) -> Result<BatchOutcome> {
        let ids: Vec<EntityId> = inputs.iter().filter_map(|i| i.id.clone()).collect();
        let locked = dedup(&ids);
        self.write(tenant, &locked, |tx| {
            let mut out = BatchOutcome::default();
            for input in &inputs {
                let Some(id) = &input.id else {
                    out.errors
                        .push((String::new(), NgsiError::bad_data("entity has no 'id'")));
                    continue;
                };
                let snapshot = tx.get(id).cloned();
                match op(tx, id, input) {
                    Ok(created) => {
                        if created {
                            out.created.push(id.clone());
                        }
                        out.success.push(id.clone());
                    }
                    Err(e) => {
                        // Undo whatever this item did before failing.
                        match snapshot {
                            Some(s) => tx.put(Entity::clone(&s))?,
                            None if tx.get(id).is_some() => tx.delete(id)?,
                            None => {}
                        }
                        out.errors.push((id.to_string(), e));
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

fn dedup(ids: &[EntityId]) -> Vec<EntityId> {
    let mut v = ids.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Removes the instance of `name` with `dataset_id` (None = default instance);
/// ResourceNotFound if there is none.
fn remove_instance(e: &mut Entity, name: &Iri, dataset_id: Option<&str>) -> Result<()> {
    let missing = || {
        NgsiError::not_found(format!(
            "entity {} has no instance of {name} with datasetId {}",
            e.id,
            dataset_id.unwrap_or("(default)")
        ))
    };
    let list = e.attrs.get_mut(name).ok_or_else(missing)?;
    let before = list.len();
    list.retain(|a| a.dataset() != dataset_id);
    if list.len() == before {
        return Err(missing());
    }
    if list.is_empty() {
        e.attrs.remove(name);
    }
    Ok(())
}

/// Append semantics: every instance is set unless `no_overwrite` and it exists.
fn append_into(
    e: &mut Entity,
    input: &EntityInput,
    no_overwrite: bool,
    now: Timestamp,
) -> UpdateOutcome {
    let mut out = UpdateOutcome::default();
    for t in &input.types {
        if !e.types.contains(t) {
            e.types.push(t.clone());
        }
    }
    if let Some(s) = &input.scope {
        if no_overwrite {
            // noOverwrite appends scopes instead of replacing them.
            for x in s {
                if !e.scope.contains(x) {
                    e.scope.push(x.clone());
                }
            }
        } else {
            e.scope.clone_from(s);
        }
    }
    for (name, list) in &input.attrs {
        for inst in list {
            match inst {
                AttrInput::Set(a) => {
                    if no_overwrite && e.instance(name, a.dataset()).is_some() {
                        out.not_updated.push((
                            name.clone(),
                            "attribute exists and noOverwrite was asked".into(),
                        ));
                    } else {
                        set_instance(e, name, a.clone(), now);
                        out.updated.push(name.clone());
                    }
                }
                AttrInput::Delete(_) => out
                    .not_updated
                    .push((name.clone(), "null is not a value to append".into())),
            }
        }
    }
    out
}

/// Update semantics (clause 5.6.2, as the ETSI suite reads it, e.g. 011_01_03):
/// existing instances are replaced (a fragment without a value merges into
/// the instance), and attributes or instances that do not exist yet are added.
fn update_into(e: &mut Entity, input: &EntityInput, now: Timestamp) -> UpdateOutcome {
    let mut out = UpdateOutcome::default();
    for (name, list) in &input.attrs {
        for inst in list {
            match inst {
                AttrInput::Set(a) => {
                    // Without a value the fragment only changes members: merge it.
                    let new = match e.instance(name, a.dataset()) {
                        Some(old) if a.value.is_null() => merge_instance(old, a, now),
                        _ => a.clone(),
                    };
                    set_instance(e, name, new, now);
                    out.updated.push(name.clone());
                }
                AttrInput::Delete(ds) => {
                    if let Some(l) = e.attrs.get_mut(name) {
                        l.retain(|a| a.dataset_id != *ds);
                        if l.is_empty() {
                            e.attrs.remove(name);
                        }
                        out.updated.push(name.clone());
                    } else {
                        out.not_updated
                            .push((name.clone(), "attribute does not exist".into()));
                    }
                }
            }
        }
    }
    out
}

/// Shared handle type used by the API.
pub type SharedBroker = Arc<Broker>;

/// RFC 7396 merge of a compound Property value: keys set to null (JSON null or
/// the NGSI-LD Null) are removed, objects merge recursively, the rest replaces.
fn merge_json(old: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match old {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() || v.as_str() == Some(NGSI_LD_NULL) {
            out.remove(k);
        } else {
            let merged = merge_json(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}
