//! What the history answers with, and what reads ask for.

use std::collections::BTreeMap;

use dosi_ngsi::model::Iri;
use dosi_ngsi::{Attribute, EntityId, Timestamp};

/// The time property a temporal query looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeProp {
    /// The instance's `observedAt` (instances without it never match a range).
    #[default]
    ObservedAt,
    /// When the instance was recorded.
    CreatedAt,
    /// When the instance was last changed (recording or instance update).
    ModifiedAt,
    /// Deletion markers only: when the attribute (or entity) was deleted.
    DeletedAt,
}

/// Which instances of an attribute a delete touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSel {
    /// The default instance (no datasetId).
    Default,
    /// The instances with this datasetId.
    Id(String),
    /// Every datasetId.
    All,
}

/// What a read asks for.
#[derive(Debug, Clone, Default)]
pub struct ReadSpec {
    /// Attribute names (expanded); `None` = every attribute.
    pub attrs: Option<Vec<Iri>>,
    /// datasetIds to keep (`None` in the list = the default instance);
    /// `None` = all.
    pub datasets: Option<Vec<Option<String>>>,
    /// The time property of the range.
    pub timeprop: TimeProp,
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
    /// Keep only the last `n` instances per attribute (and datasetId).
    pub last_n: Option<usize>,
}

/// One attribute instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `instanceId` (a URI).
    pub id: String,
    /// The attribute as it was; `created_at`/`modified_at` are the instance's.
    pub attr: Attribute,
    /// Set on a deletion marker: when the attribute was deleted.
    pub deleted_at: Option<Timestamp>,
    /// The instance's time on the read's time property (what it is ordered by).
    pub time: Option<Timestamp>,
}

/// One scope instance (the scope of an entity is kept in history too).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeInstance {
    /// The scopes from this instant on (empty on a removal).
    pub scope: Vec<String>,
    /// When it was set.
    pub at: Timestamp,
    /// Set when the scope was removed.
    pub deleted_at: Option<Timestamp>,
    /// `instanceId`.
    pub id: String,
}

/// The range a paged answer covers (the `Content-Range` of 6.3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    /// First instant covered (in the answer's order).
    pub start: Timestamp,
    /// Last instant covered.
    pub end: Timestamp,
    /// `lastN` when asked, else unknown (`*`).
    pub size: Option<usize>,
}

/// The temporal representation of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalEntity {
    /// Entity id.
    pub id: EntityId,
    /// Its types (the latest known).
    pub types: Vec<Iri>,
    /// Scope history (in time order).
    pub scope: Vec<ScopeInstance>,
    /// When the history of the entity began.
    pub created_at: Timestamp,
    /// Its latest change.
    pub modified_at: Timestamp,
    /// When the entity was deleted (its history kept).
    pub deleted_at: Option<Timestamp>,
    /// Instances per attribute, oldest first (attributes asked for but
    /// without instances in range are present with an empty list).
    pub attrs: BTreeMap<Iri, Vec<Instance>>,
}

/// What an aggregation asks for.
#[derive(Debug, Clone, Default)]
pub struct AggSpec {
    /// Attribute names (expanded); `None` = every attribute.
    pub attrs: Option<Vec<Iri>>,
    /// datasetIds to keep (see [`ReadSpec::datasets`]).
    pub datasets: Option<Vec<Option<String>>>,
    /// The time property of the range and of the periods.
    pub timeprop: TimeProp,
    /// Inclusive lower bound (also the origin of the periods).
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
    /// Period length in µs (`None` = the whole range is one period).
    pub period: Option<i64>,
    /// The distinct count is needed (it costs a decode of every point).
    pub distinct: bool,
}

/// Aggregates of one attribute (one datasetId) per period.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedAttr {
    /// The attribute kind name (`Property`, …) of its latest instance.
    pub kind: dosi_ngsi::AttrKind,
    /// Its datasetId.
    pub dataset_id: Option<Iri>,
    /// Buckets with at least one instance, in time order.
    pub buckets: Vec<dosi_tsdb::Bucket>,
    /// Length of each period (µs) to compute the end of a bucket.
    pub period: i64,
}

/// The aggregated representation of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedEntity {
    /// Entity id.
    pub id: EntityId,
    /// Its types (the latest known).
    pub types: Vec<Iri>,
    /// Per attribute, per datasetId.
    pub attrs: BTreeMap<Iri, Vec<AggregatedAttr>>,
}
