//! Does a committed change concern a subscription, for which trigger, and
//! what entity does the notification carry (clause 5.8.6 / 4.15)?

use std::collections::{BTreeMap, BTreeSet, HashSet};

use dosi_broker::codec::encode::{self, EncodeOptions, Format};
use dosi_broker::codec::Terms;
use dosi_bus::{ChangeEvent, ChangeKind};
use dosi_jsonld::ActiveContext;
use dosi_ngsi::model::Iri;
use dosi_ngsi::{AttrKind, Attribute, Entity, Timestamp};
use serde_json::{Map, Value};

use crate::model::{Subscription, Trigger};

/// The NGSI-LD null marker of deleted attributes.
pub const NGSI_NULL: &str = "urn:ngsi-ld:null";

/// Terms over a subscription's active context.
pub struct SubTerms<'a>(pub &'a ActiveContext);

impl Terms for SubTerms<'_> {
    fn expand(&self, term: &str) -> String {
        self.0.expand_term(term)
    }
    fn compact(&self, iri: &str) -> String {
        self.0.compact_iri(iri)
    }
}

/// Attribute names created, updated and deleted by one change.
#[derive(Debug, Default)]
pub struct AttrChanges {
    /// Names present after and not before.
    pub created: BTreeSet<Iri>,
    /// Names present in both whose instances changed (or were rewritten).
    pub updated: BTreeSet<Iri>,
    /// Names present before and not after.
    pub deleted: BTreeSet<Iri>,
    /// Names still present that lost instances: the datasetIds removed.
    pub deleted_instances: BTreeMap<Iri, Vec<Option<Iri>>>,
}

impl AttrChanges {
    /// Compares the states before and after a change.
    pub fn between(before: Option<&Entity>, after: Option<&Entity>) -> Self {
        let mut c = AttrChanges::default();
        let empty = Default::default();
        let b = before.map_or(&empty, |e| &e.attrs);
        let a = after.map_or(&empty, |e| &e.attrs);
        for (name, inst) in a {
            match b.get(name) {
                None => {
                    c.created.insert(name.clone());
                }
                Some(old) => {
                    let gone: Vec<Option<Iri>> = old
                        .iter()
                        .filter(|o| !inst.iter().any(|n| n.dataset_id == o.dataset_id))
                        .map(|o| o.dataset_id.clone())
                        .collect();
                    if !gone.is_empty() {
                        c.deleted_instances.insert(name.clone(), gone);
                    } else if old != inst {
                        c.updated.insert(name.clone());
                    }
                }
            }
        }
        for name in b.keys() {
            if !a.contains_key(name) {
                c.deleted.insert(name.clone());
            }
        }
        c
    }
    fn retain(&mut self, watched: &[Iri]) {
        let keep = |n: &Iri| watched.iter().any(|w| w == n);
        self.created.retain(keep);
        self.updated.retain(keep);
        self.deleted.retain(keep);
        self.deleted_instances.retain(|n, _| keep(n));
    }
    /// True if an attribute or one of its instances was deleted.
    pub fn any_deleted(&self) -> bool {
        !self.deleted.is_empty() || !self.deleted_instances.is_empty()
    }
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && !self.any_deleted()
    }
}

/// True if the entity is one the subscription's `entities` select.
pub fn selects(sub: &Subscription, e: &Entity) -> bool {
    sub.entities.is_empty()
        || sub.entities.iter().any(|s| {
            s.id.as_ref().is_none_or(|id| *id == e.id)
                && s.id_pattern
                    .as_ref()
                    .is_none_or(|p| p.is_match(e.id.as_str()))
                && s.types.matches(&e.types)
        })
}

/// True if `e` passes the subscription's `q`, `scopeQ` and `geoQ`.
pub fn passes_queries(sub: &Subscription, e: &Entity) -> bool {
    sub.q.as_ref().is_none_or(|q| q.matches(e))
        && sub.scope_q.as_ref().is_none_or(|s| s.matches(&e.scope))
        && sub.geo_q.as_ref().is_none_or(|g| g.matches(e))
}

/// The trigger a change fires for `sub`, if any, and the attribute changes
/// (restricted to the watched attributes) it is about.
pub fn trigger(sub: &Subscription, ev: &ChangeEvent) -> Option<(Trigger, AttrChanges)> {
    let subject = ev.after.as_deref().or(ev.before.as_deref())?;
    if !selects(sub, subject) {
        return None;
    }
    let mut ch = AttrChanges::between(ev.before.as_deref(), ev.after.as_deref());
    if let Some(w) = &sub.watched {
        ch.retain(w);
    }
    let watched_any = sub.watched.is_none();
    let reason = match ev.kind {
        ChangeKind::Created => {
            if sub.wants(Trigger::EntityCreated) && (watched_any || !ch.created.is_empty()) {
                Trigger::EntityCreated
            } else if sub.wants(Trigger::AttributeCreated) && !ch.created.is_empty() {
                Trigger::AttributeCreated
            } else {
                return None;
            }
        }
        ChangeKind::Deleted => {
            if sub.wants(Trigger::EntityDeleted) && (watched_any || !ch.deleted.is_empty()) {
                Trigger::EntityDeleted
            } else if sub.wants(Trigger::AttributeDeleted) && ch.any_deleted() {
                Trigger::AttributeDeleted
            } else {
                return None;
            }
        }
        ChangeKind::Updated => {
            if sub.wants(Trigger::EntityUpdated) && !ch.is_empty() {
                Trigger::EntityUpdated
            } else if sub.wants(Trigger::AttributeCreated) && !ch.created.is_empty() {
                Trigger::AttributeCreated
            } else if sub.wants(Trigger::AttributeUpdated) && !ch.updated.is_empty() {
                Trigger::AttributeUpdated
            } else if sub.wants(Trigger::AttributeDeleted) && ch.any_deleted() {
                Trigger::AttributeDeleted
            } else {
                return None;
            }
        }
    };
    // Queries are evaluated on the state the notification is about.
    if !passes_queries(sub, subject) {
        return None;
    }
    Some((reason, ch))
}

/// How the notification renders entities.
pub fn encode_options(sub: &Subscription) -> EncodeOptions {
    let n = &sub.notification;
    EncodeOptions {
        format: n.format,
        sys_attrs: n.sys_attrs,
        attrs: n
            .attributes
            .as_ref()
            .map(|a| a.iter().map(|s| s.to_string()).collect::<HashSet<_>>()),
        pick: n.pick.as_ref().map(|p| p.iter().cloned().collect()),
        omit: n.omit.as_ref().map(|p| p.iter().cloned().collect()),
        lang: sub.lang.clone(),
        datasets: sub.dataset_ids.as_ref().map(|ds| {
            ds.iter()
                .map(|d| (d != "@none").then(|| d.clone()))
                .collect()
        }),
    }
}

/// The entity a notification for `trigger` carries, in the subscription's
/// format, compacted with its context.
pub fn render(
    sub: &Subscription,
    ev: &ChangeEvent,
    trigger: Trigger,
    ch: &AttrChanges,
    now: Timestamp,
) -> Value {
    let terms = SubTerms(&sub.active);
    let o = encode_options(sub);
    let deleted_at = Value::String(now.to_iso());
    let (Some(subject), after) = (
        ev.after.as_deref().or(ev.before.as_deref()),
        ev.after.as_deref(),
    ) else {
        return Value::Null;
    };
    if trigger == Trigger::EntityDeleted && !sub.notification.show_changes {
        // The entity is gone: id, type, (system times) and when it went.
        let mut m = Map::new();
        m.insert("id".into(), Value::String(subject.id.to_string()));
        m.insert("type".into(), encode::types(&subject.types, &terms));
        if o.sys_attrs {
            m.insert(
                "createdAt".into(),
                Value::String(subject.created_at.to_iso()),
            );
            m.insert("modifiedAt".into(), Value::String(now.to_iso()));
        }
        m.insert("deletedAt".into(), deleted_at);
        return Value::Object(m);
    }
    // The entity as it is now, with the deleted attributes shown as null.
    let mut shown = match after {
        Some(a) => a.clone(),
        None => {
            // attributeDeleted on a deleted entity: only the deleted attributes.
            let mut e = subject.clone();
            e.attrs.clear();
            e
        }
    };
    let before = ev.before.as_deref();
    for name in &ch.deleted {
        // A whole attribute gone is shown once, as its null.
        if let Some(old) = before
            .and_then(|b| b.attrs.get(name))
            .and_then(|l| l.first())
        {
            let mut null = null_of(old, now);
            null.dataset_id = None;
            shown.attrs.insert(name.clone(), vec![null]);
        }
    }
    for (name, gone) in &ch.deleted_instances {
        // Instances gone are shown next to the remaining ones.
        let Some(old) = before.and_then(|b| b.attrs.get(name)) else {
            continue;
        };
        let list = shown.attrs.entry(name.clone()).or_default();
        for a in old.iter().filter(|a| gone.contains(&a.dataset_id)) {
            list.push(null_of(a, now));
        }
    }
    let mut v = encode::entity(&shown, &terms, &o);
    if let Value::Object(m) = &mut v {
        if after.is_none() {
            m.insert("deletedAt".into(), deleted_at.clone());
        }
        if o.sys_attrs && o.format == Format::Simplified {
            // keyValues has no attribute objects, but the entity's system
            // times are still asked for.
            m.insert("createdAt".into(), Value::String(shown.created_at.to_iso()));
            m.insert(
                "modifiedAt".into(),
                Value::String(shown.modified_at.to_iso()),
            );
        }
        if o.format != Format::Simplified && o.sys_attrs {
            // deletedAt is a system attribute: shown with sysAttrs only.
            let names = ch.deleted.iter().chain(ch.deleted_instances.keys());
            for name in names {
                match m.get_mut(&terms.compact(name)) {
                    Some(Value::Object(a)) => {
                        a.insert("deletedAt".into(), deleted_at.clone());
                    }
                    Some(Value::Array(list)) => {
                        for a in list.iter_mut().filter_map(Value::as_object_mut) {
                            if a.get("value").and_then(Value::as_str) == Some(NGSI_NULL)
                                || a.get("object").and_then(Value::as_str) == Some(NGSI_NULL)
                            {
                                a.insert("deletedAt".into(), deleted_at.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if o.format != Format::Simplified && sub.notification.show_changes {
            if let Some(b) = before {
                add_previous(m, b, ch, &terms, &o);
            }
        }
    }
    v
}

/// A deleted attribute as notifications show it: its kind with the null value.
fn null_of(a: &Attribute, now: Timestamp) -> Attribute {
    let value = match a.kind {
        AttrKind::LanguageProperty => {
            let mut m = Map::new();
            m.insert("@none".into(), Value::String(NGSI_NULL.into()));
            Value::Object(m)
        }
        AttrKind::ListProperty | AttrKind::ListRelationship => {
            Value::Array(vec![Value::String(NGSI_NULL.into())])
        }
        _ => Value::String(NGSI_NULL.into()),
    };
    Attribute {
        kind: a.kind,
        value,
        dataset_id: a.dataset_id.clone(),
        observed_at: None,
        unit_code: None,
        object_type: None,
        lang: None,
        created_at: a.created_at,
        modified_at: now,
        sub: Default::default(),
    }
}

/// `showChanges`: `previousValue` (`previousObject`, …) on updated and deleted
/// attributes, from the state before the change.
fn add_previous(
    m: &mut Map<String, Value>,
    before: &Entity,
    ch: &AttrChanges,
    terms: &dyn Terms,
    o: &EncodeOptions,
) {
    for name in ch
        .updated
        .iter()
        .chain(ch.deleted.iter())
        .chain(ch.deleted_instances.keys())
    {
        let Some(old) = before.attrs.get(name) else {
            continue;
        };
        let key = terms.compact(name);
        let Some(slot) = m.get_mut(&key) else {
            continue;
        };
        let apply = |target: &mut Map<String, Value>, old: &Attribute| {
            let rendered = encode::attribute(
                old,
                terms,
                &EncodeOptions {
                    format: Format::Normalized,
                    lang: o.lang.clone(),
                    ..EncodeOptions::default()
                },
            );
            let vkey = old.kind.value_key();
            if let Some(prev) = rendered.get(vkey) {
                let mut k = String::from("previous");
                let mut cs = vkey.chars();
                if let Some(f) = cs.next() {
                    k.extend(f.to_uppercase());
                    k.push_str(cs.as_str());
                }
                target.insert(k, prev.clone());
            }
        };
        match slot {
            Value::Object(target) => {
                let ds = target.get("datasetId").and_then(Value::as_str);
                if let Some(prev) = old.iter().find(|a| a.dataset() == ds) {
                    apply(target, prev);
                }
            }
            Value::Array(list) => {
                for item in list {
                    if let Value::Object(target) = item {
                        let ds = target.get("datasetId").and_then(Value::as_str);
                        if let Some(prev) = old.iter().find(|a| a.dataset() == ds) {
                            apply(target, prev);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dosi_ngsi::query::TypeExpr;
    use dosi_ngsi::{EntityId, TenantId};
    use serde_json::json;

    use super::*;
    use crate::model::{BodyType, Endpoint, EntitySelector, NotificationParams};

    const T: &str = "https://example.org/Building";
    const NAME: &str = "https://example.org/name";
    const LEVEL: &str = "https://example.org/level";

    fn sub(triggers: &[Trigger], watched: Option<&[&str]>, show_changes: bool) -> Subscription {
        Subscription {
            id: "urn:s".into(),
            tenant: TenantId::default_tenant(),
            name: None,
            description: None,
            entities: vec![EntitySelector {
                id: None,
                id_pattern: None,
                id_pattern_src: None,
                types: TypeExpr::any_of([T]),
                types_src: T.into(),
            }],
            watched: watched.map(|w| w.iter().map(|s| Iri::from(*s)).collect()),
            triggers: triggers.to_vec(),
            time_interval: None,
            q: None,
            q_src: None,
            geo_q: None,
            geo_q_src: None,
            scope_q: None,
            scope_q_src: None,
            lang: None,
            csf: None,
            dataset_ids: None,
            notification: NotificationParams {
                attributes: None,
                pick: None,
                omit: None,
                join: None,
                join_level: None,
                format: Format::Normalized,
                sys_attrs: false,
                show_changes,
                endpoint: Endpoint {
                    uri: url::Url::parse("http://127.0.0.1:9/n").unwrap(),
                    accept: BodyType::Json,
                    timeout_ms: None,
                    cooldown_ms: None,
                    receiver_info: vec![],
                    notifier_info: vec![],
                },
            },
            expires_at: None,
            throttling: None,
            is_active: true,
            jsonld_context: None,
            context: None,
            active: Arc::new(ActiveContext::core()),
            created_at: Timestamp(0),
            modified_at: Timestamp(0),
        }
    }

    fn entity(attrs: &[(&str, Value, i64)]) -> Arc<Entity> {
        let mut e = Entity::new(
            EntityId::parse("urn:b:1").unwrap(),
            vec![T.into()],
            Timestamp(1),
        );
        for (n, v, t) in attrs {
            e.attrs.insert(
                Iri::from(*n),
                vec![Attribute::property(v.clone(), Timestamp(*t))],
            );
        }
        Arc::new(e)
    }

    fn ev(
        kind: ChangeKind,
        before: Option<Arc<Entity>>,
        after: Option<Arc<Entity>>,
    ) -> ChangeEvent {
        ChangeEvent {
            seq: 1,
            tenant: TenantId::default_tenant(),
            id: EntityId::parse("urn:b:1").unwrap(),
            kind,
            before,
            after,
            at: Timestamp(5),
        }
    }

    fn reason(s: &Subscription, e: &ChangeEvent) -> Option<&'static str> {
        trigger(s, e).map(|(t, _)| t.name())
    }

    #[test]
    fn triggers_follow_the_kind_of_change() {
        let a = entity(&[(NAME, json!("x"), 1), (LEVEL, json!(1), 1)]);
        let created = ev(ChangeKind::Created, None, Some(a.clone()));
        let default = sub(&Trigger::defaults(), None, false);
        assert_eq!(reason(&default, &created), Some("attributeCreated"));
        let ent = sub(
            &[Trigger::EntityCreated, Trigger::AttributeCreated],
            None,
            false,
        );
        assert_eq!(reason(&ent, &created), Some("entityCreated"));
        // Rewriting the same value is an update (modifiedAt changes).
        let b = entity(&[(NAME, json!("x"), 1), (LEVEL, json!(1), 2)]);
        let updated = ev(ChangeKind::Updated, Some(a.clone()), Some(b.clone()));
        assert_eq!(reason(&default, &updated), Some("attributeUpdated"));
        // Watching another attribute: no notification.
        let w = sub(&Trigger::defaults(), Some(&[NAME]), false);
        assert_eq!(reason(&w, &updated), None);
        // Deletion needs a deletion trigger.
        let deleted = ev(ChangeKind::Deleted, Some(b.clone()), None);
        assert_eq!(reason(&default, &deleted), None);
        let d = sub(&[Trigger::EntityDeleted], None, false);
        assert_eq!(reason(&d, &deleted), Some("entityDeleted"));
        let ad = sub(&[Trigger::AttributeDeleted], Some(&[NAME]), false);
        assert_eq!(reason(&ad, &deleted), Some("attributeDeleted"));
        // Another entity type is not selected.
        let mut other = (*a).clone();
        other.types = vec!["https://example.org/Other".into()];
        let e = ev(ChangeKind::Created, None, Some(Arc::new(other)));
        assert_eq!(reason(&ent, &e), None);
    }

    #[test]
    fn deletions_render_as_null_with_previous_values() {
        let before = entity(&[(NAME, json!("Eiffel"), 1), (LEVEL, json!(3), 1)]);
        let after = entity(&[(LEVEL, json!(3), 1)]);
        let s = sub(&[Trigger::AttributeDeleted], None, true);
        let e = ev(ChangeKind::Updated, Some(before.clone()), Some(after));
        let (t, ch) = trigger(&s, &e).unwrap();
        let v = render(&s, &e, t, &ch, Timestamp(9));
        assert_eq!(v[NAME]["value"], json!(NGSI_NULL));
        assert_eq!(v[NAME]["previousValue"], json!("Eiffel"));
        assert_eq!(v[LEVEL]["value"], json!(3));
        // The whole entity deleted: id, type and deletedAt only.
        let s = sub(&[Trigger::EntityDeleted], None, false);
        let e = ev(ChangeKind::Deleted, Some(before), None);
        let (t, ch) = trigger(&s, &e).unwrap();
        let v = render(&s, &e, t, &ch, Timestamp(9));
        assert_eq!(v.as_object().unwrap().len(), 3);
        assert_eq!(v["id"], json!("urn:b:1"));
        assert!(v["deletedAt"].is_string());
    }

    #[test]
    fn updates_show_previous_values() {
        let before = entity(&[(LEVEL, json!(3), 1)]);
        let after = entity(&[(LEVEL, json!(4), 2)]);
        let s = sub(&Trigger::defaults(), None, true);
        let e = ev(ChangeKind::Updated, Some(before), Some(after));
        let (t, ch) = trigger(&s, &e).unwrap();
        let v = render(&s, &e, t, &ch, Timestamp(9));
        assert_eq!(v[LEVEL]["value"], json!(4));
        assert_eq!(v[LEVEL]["previousValue"], json!(3));
    }
}
