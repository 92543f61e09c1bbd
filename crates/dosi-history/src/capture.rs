//! History capture: the commit hook that turns committed changes into
//! attribute instances.

use std::sync::Arc;

use async_trait::async_trait;
use dosi_broker::CommitHook;
use dosi_bus::{ChangeEvent, ChangeKind};
use dosi_ngsi::{Entity, Result};

use crate::{keys, History};

/// The commit hook (see [`History::hook`]).
pub struct Capture(pub Arc<History>);

#[async_trait]
impl CommitHook for Capture {
    async fn committed(&self, events: &[ChangeEvent]) -> Result<()> {
        for e in events {
            self.0.capture(e);
        }
        self.0.sync().await
    }
}

impl History {
    /// Records one committed change: every attribute instance that is new
    /// or changed becomes an instance; removed ones get a deletion marker;
    /// scope changes are kept; the catalog follows types and deletion.
    pub(crate) fn capture(&self, ev: &ChangeEvent) {
        let (tenant, id, at) = (&ev.tenant, &ev.id, ev.at);
        match ev.kind {
            ChangeKind::Deleted => {
                let Some(before) = &ev.before else { return };
                if !self.config().keep_on_entity_delete {
                    self.forget(tenant, id);
                    return;
                }
                for (name, list) in &before.attrs {
                    for a in list {
                        self.record_deletion(tenant, id, name, a.dataset(), a.kind, at);
                    }
                }
                if !before.scope.is_empty() {
                    self.record_scope(tenant, id, &[], at, None);
                }
                self.mark_deleted(tenant, id, at);
            }
            ChangeKind::Created | ChangeKind::Updated => {
                let Some(after) = &ev.after else { return };
                let before = ev.before.as_deref();
                self.touch(tenant, id, &after.types, true, after.created_at, at);
                self.capture_attrs(ev, before, after);
                let old_scope = before.map(|b| b.scope.as_slice()).unwrap_or_default();
                if old_scope != after.scope.as_slice() {
                    self.record_scope(tenant, id, &after.scope, at, None);
                }
            }
        }
    }

    fn capture_attrs(&self, ev: &ChangeEvent, before: Option<&Entity>, after: &Entity) {
        let (tenant, id) = (&ev.tenant, &ev.id);
        // One key buffer per entity: the series keys share its prefix.
        let mut key = keys::entity_prefix(tenant, id);
        let base = key.len();
        let mut recorded = 0u64;
        for (name, list) in &after.attrs {
            for a in list {
                let prev = before.and_then(|b| b.instance(name, a.dataset()));
                let changed = prev
                    .is_none_or(|p| p.modified_at != a.modified_at || p.created_at != a.created_at);
                if changed {
                    key.truncate(base);
                    keys::push_attr(&mut key, name, a.dataset());
                    self.record_key(&key, a, a.modified_at);
                    recorded += 1;
                }
            }
        }
        metrics::counter!("dosi_history_instances_recorded_total").increment(recorded);
        let Some(before) = before else { return };
        for (name, list) in &before.attrs {
            for a in list {
                if after.instance(name, a.dataset()).is_none() {
                    self.record_deletion(tenant, id, name, a.dataset(), a.kind, ev.at);
                }
            }
        }
    }
}
