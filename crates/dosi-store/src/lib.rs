//! Storage of current entity state.
//!
//! [`Store`] is the one interface the write path and the query side use. It has
//! one behaviour suite ([`testsuite`], feature `testsuite`) that every backend
//! must pass unchanged: the embedded backend here, PostgreSQL later.
//!
//! Contract every backend keeps:
//! - [`Store::commit`] applies its changes atomically and returns only once they
//!   survive a crash of the process (`kill -9`);
//! - readers only ever see committed (durable) state;
//! - a tenant exists once a commit has written to it.
//!
//! This crate knows nothing of HTTP, JSON-LD or the bus.

use std::sync::Arc;

pub mod embedded;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use embedded::{EmbeddedOptions, EmbeddedStore};

use async_trait::async_trait;
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::{Entity, EntityId, TenantId};

/// One change inside an atomic commit.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace the entity with this id.
    Put(Arc<Entity>),
    /// Remove the entity with this id (no error if absent).
    Delete(EntityId),
}

/// Which slice of a query's matches to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Matches to skip.
    pub offset: usize,
    /// Matches to return at most.
    pub limit: usize,
    /// Whether to count all matches.
    pub count: bool,
}

impl Page {
    /// Everything, uncounted.
    pub const ALL: Page = Page {
        offset: 0,
        limit: usize::MAX,
        count: false,
    };
}

/// The result of [`Store::query`].
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// The matches in the page, in creation order.
    pub entities: Vec<Arc<Entity>>,
    /// The number of all matches, when [`Page::count`] was asked.
    pub total: Option<usize>,
}

/// Errors of a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the data directory failed.
    #[error("storage IO failed at {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store is closed or its writer has stopped.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Current-state storage of entities, per tenant, plus a small durable
/// key-value space for metadata (contexts, subscriptions, ...).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The entity `id` of `tenant`, if present.
    async fn get(&self, tenant: &TenantId, id: &EntityId) -> Result<Option<Arc<Entity>>>;

    /// Applies `changes` to `tenant` atomically; returns once they are durable.
    /// Creates the tenant if it did not exist.
    async fn commit(&self, tenant: &TenantId, changes: Vec<Change>) -> Result<()>;

    /// Entities of `tenant` matching `filter`, in creation order, sliced by `page`.
    /// An unknown tenant yields an empty result.
    async fn query(
        &self,
        tenant: &TenantId,
        filter: &EntityFilter,
        page: Page,
    ) -> Result<QueryResult>;

    /// Every entity of `tenant`, in creation order, with only the attributes
    /// named in `attrs` (expanded names; those it has): an overview that
    /// reads a few attributes of many entities (the console's map) need not
    /// decode the rest. The default answers whole entities.
    async fn project_all(&self, tenant: &TenantId, attrs: &[&str]) -> Result<Vec<Arc<Entity>>> {
        let _ = attrs;
        Ok(self
            .query(tenant, &EntityFilter::default(), Page::ALL)
            .await?
            .entities)
    }

    /// True if `tenant` has been written to (the default tenant always exists).
    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool>;

    /// All tenants that exist, the default one included.
    async fn tenants(&self) -> Result<Vec<TenantId>>;

    /// Stores (`Some`) or removes (`None`) `key` in namespace `ns`; durable on return.
    async fn put_meta(&self, ns: &str, key: &str, value: Option<Vec<u8>>) -> Result<()>;

    /// All `(key, value)` pairs of namespace `ns`, ordered by key.
    async fn list_meta(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Makes everything durable and compacts what can be compacted; called on
    /// graceful shutdown.
    async fn flush(&self) -> Result<()>;
}
