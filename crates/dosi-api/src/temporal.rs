//! `/temporal/entities` handlers: the NGSI-LD temporal API (clause 6.18–6.24):
//! create/upsert a temporal representation, add attributes, delete entity,
//! attribute or instance, modify an instance, retrieve and query in the
//! normalized, simplified (`temporalValues`) and aggregated representations,
//! with the temporal pagination of clause 6.3.10.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_broker::codec::decode::{self, check_name, AttrInput, Mode};
use dosi_broker::codec::encode::{self, EncodeOptions, Format};
use dosi_broker::codec::ENTITY_MEMBERS;
use dosi_history::{
    AggSpec, AggregatedEntity, DatasetSel, History, NewInstance, PageRange, ReadSpec,
    TemporalEntity, TimeProp,
};
use dosi_jsonld::ActiveContext;
use dosi_ngsi::model::Iri;
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::temporal::{self, AggrMethod, TemporalQuery, TimeProperty};
use dosi_ngsi::{Attribute, Entity, EntityId, ErrorKind, NgsiError, Result, TenantId, Timestamp};
use serde_json::{Map, Value};

use crate::params::{self, Params};
use crate::problem::ApiResult;
use crate::req::{self, BodyKind};
use crate::state::{AppState, Ctx};

/// Query parameters of temporal reads on top of the core ones.
const TEMPORAL_PARAMS: &[&str] = &[
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "aggrMethods",
    "aggrPeriodDuration",
];

fn history(st: &AppState) -> Result<&Arc<History>> {
    st.history
        .as_ref()
        .ok_or_else(|| NgsiError::new(ErrorKind::OperationNotSupported, "history is disabled"))
}

/// How the answer is represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repr {
    Normalized,
    TemporalValues,
    Aggregated,
}

/// `format` takes precedence over `options` (clause 6.3.7).
fn repr(p: &Params) -> Result<Repr> {
    let pick = |s: &str| match s {
        "temporalValues" | "simplified" | "keyValues" => Some(Repr::TemporalValues),
        "aggregatedValues" => Some(Repr::Aggregated),
        "normalized" => Some(Repr::Normalized),
        _ => None,
    };
    if let Some(f) = p.get("format") {
        return pick(f).ok_or_else(|| NgsiError::invalid(format!("unknown format '{f}'")));
    }
    let mut r = Repr::Normalized;
    for o in p.list("options").unwrap_or_default() {
        match pick(&o) {
            Some(x) => r = x,
            None if matches!(o.as_str(), "sysAttrs" | "concise") => {}
            None => return Err(NgsiError::invalid(format!("unknown option '{o}'"))),
        }
    }
    Ok(r)
}

fn timeprop(t: TimeProperty) -> TimeProp {
    match t {
        TimeProperty::ObservedAt => TimeProp::ObservedAt,
        TimeProperty::CreatedAt => TimeProp::CreatedAt,
        TimeProperty::ModifiedAt => TimeProp::ModifiedAt,
        TimeProperty::DeletedAt => TimeProp::DeletedAt,
    }
}

/// Everything a temporal read asks for.
struct Ask {
    repr: Repr,
    tq: TemporalQuery,
    opts: EncodeOptions,
    read: ReadSpec,
}

fn ask(p: &Params, ctx: &ActiveContext, parsed: Option<TemporalQuery>) -> Result<Ask> {
    let mut repr = repr(p)?;
    for v in [p.get("pick"), p.get("omit")].into_iter().flatten() {
        if v.contains('{') {
            return Err(NgsiError::bad_data(format!(
                "pick/omit: linked-entity projections ('{v}') do not apply to temporal representations"
            )));
        }
    }
    if let Some(csf) = p.get("csf") {
        dosi_ngsi::query::Q::parse(csf)
            .map_err(|e| NgsiError::bad_data(format!("csf: {}", e.detail)))?;
    }
    let tq = match parsed {
        Some(tq) => tq,
        None => temporal::parse_temporal_query(
            |k| p.get(k).map(String::from),
            repr == Repr::Aggregated,
        )?,
    };
    if tq.is_aggregated() {
        repr = Repr::Aggregated;
    }
    let mut opts = params::encode_options(&strip_repr(p), ctx)?;
    opts.format = Format::Normalized;
    let (from, to) = tq
        .timerel
        .as_ref()
        .map(|t| t.bounds())
        .unwrap_or((None, None));
    let attrs = opts
        .attrs
        .as_ref()
        .map(|a| {
            let mut v: Vec<Iri> = a.iter().map(|s| Iri::from(s.as_str())).collect();
            v.sort();
            v
        })
        .or_else(|| {
            // pick naming only core members (id, type, scope) selects no
            // attributes: the window still looks at all of them.
            opts.pick.as_ref().and_then(|p| {
                let mut v: Vec<Iri> = p
                    .iter()
                    .filter(|m| !matches!(m.as_str(), "id" | "type" | "scope"))
                    .map(|s| Iri::from(s.as_str()))
                    .collect();
                v.sort();
                (!v.is_empty()).then_some(v)
            })
        });
    let read = ReadSpec {
        attrs,
        datasets: opts.datasets.clone(),
        timeprop: timeprop(tq.timeproperty),
        from,
        to,
        last_n: tq.last_n,
    };
    Ok(Ask {
        repr,
        tq,
        opts,
        read,
    })
}

/// The params without the temporal representation options, for the core
/// option parser.
fn strip_repr(p: &Params) -> Params {
    let mut out = Vec::new();
    for (k, v) in p.pairs() {
        match k.as_str() {
            "format" => {}
            "options" => {
                let kept: Vec<&str> = v
                    .split(',')
                    .filter(|o| !matches!(*o, "temporalValues" | "aggregatedValues"))
                    .collect();
                if !kept.is_empty() {
                    out.push((k.clone(), kept.join(",")));
                }
            }
            _ => out.push((k.clone(), v.clone())),
        }
    }
    Params::from_pairs(out)
}

fn entity_id(raw: &str) -> Result<EntityId> {
    EntityId::parse(raw)
}

fn attr_name(ctx: &ActiveContext, raw: &str) -> Result<Iri> {
    check_name(raw, "path")?;
    if raw.starts_with('@') || raw.contains("..") || raw == "." {
        return Err(NgsiError::bad_data(format!(
            "'{raw}' is not an attribute name"
        )));
    }
    Ok(Arc::from(ctx.expand_term(raw)))
}

// ----- provision -----

/// Decodes a temporal entity fragment: attributes are arrays of instances.
fn instances(
    obj: &Map<String, Value>,
    terms: &dyn dosi_broker::codec::Terms,
    now: Timestamp,
    at: &str,
) -> Result<Vec<NewInstance>> {
    let mut out = Vec::new();
    for (name, v) in obj {
        if ENTITY_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        check_name(name, at)?;
        let iri: Iri = Arc::from(terms.expand(name));
        let items: Vec<&Value> = match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                items.iter().collect()
            }
            Value::Array(items) if items.is_empty() => {
                return Err(NgsiError::bad_data(format!(
                    "attribute '{name}' of '{at}' has no instances"
                )))
            }
            other => vec![other],
        };
        for item in items {
            if let Some(a) = deletion_marker(item, name, at)? {
                out.push(NewInstance {
                    name: iri.clone(),
                    attr: a,
                    deleted: true,
                });
                continue;
            }
            match decode::attribute(item, terms, Mode::Full, now, name)? {
                AttrInput::Set(a) => out.push(NewInstance {
                    name: iri.clone(),
                    attr: a,
                    deleted: false,
                }),
                AttrInput::Delete(_) => {
                    return Err(NgsiError::bad_data(format!(
                        "attribute '{name}' of '{at}': the NGSI-LD Null is no instance"
                    )))
                }
            }
        }
    }
    Ok(out)
}

/// An instance whose value is the NGSI-LD Null records a deletion (clause
/// 5.5.4: deleted instances in a temporal body), at its `observedAt`.
fn deletion_marker(item: &Value, name: &str, at: &str) -> Result<Option<Attribute>> {
    let Some(obj) = item.as_object() else {
        return Ok(None);
    };
    let null = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s == dosi_broker::codec::NGSI_LD_NULL,
        Some(Value::Object(m)) => {
            m.values()
                .all(|x| x.as_str() == Some(dosi_broker::codec::NGSI_LD_NULL))
                && !m.is_empty()
        }
        _ => false,
    };
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .and_then(dosi_ngsi::AttrKind::from_name)
        .unwrap_or(dosi_ngsi::AttrKind::Property);
    if !null(obj.get(kind.value_key())) {
        return Ok(None);
    }
    let mut a = Attribute::new(
        kind,
        Value::String(dosi_broker::codec::NGSI_LD_NULL.into()),
        Timestamp::now(),
    );
    if let Some(o) = obj.get("observedAt") {
        let text = o.as_str().ok_or_else(|| {
            NgsiError::bad_data(format!(
                "attribute '{name}' of '{at}': observedAt must be a DateTime"
            ))
        })?;
        if !text.ends_with('Z') {
            return Err(NgsiError::bad_data(format!(
                "attribute '{name}' of '{at}': observedAt '{text}' must be in UTC ('Z')"
            )));
        }
        Timestamp::parse(text)?;
        a.observed_at = Some(text.to_string());
    }
    if let Some(d) = obj.get("datasetId").and_then(Value::as_str) {
        a.dataset_id = Some(Iri::from(d));
    }
    Ok(Some(a))
}

/// Scope instances: the scopes and when they became valid.
type ScopeList = Vec<(Vec<String>, Timestamp)>;

/// The scope of a temporal body given as instances (`[{type, value, observedAt}]`).
fn scope_instances(v: &Value) -> Result<Option<ScopeList>> {
    let Value::Array(items) = v else {
        return Ok(None);
    };
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for i in items {
        let scope = match i.get("value") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| NgsiError::bad_data("scope values must be strings"))
                })
                .collect::<Result<_>>()?,
            _ => return Err(NgsiError::bad_data("a scope instance needs a value")),
        };
        for sc in &scope {
            dosi_ngsi::query::ScopeQ::parse(sc)
                .map_err(|e| NgsiError::bad_data(format!("scope '{sc}': {}", e.detail)))?;
        }
        let at = match i.get("observedAt").and_then(Value::as_str) {
            Some(t) => Timestamp::parse(t)?,
            None => Timestamp::now(),
        };
        out.push((scope, at));
    }
    Ok(Some(out))
}

/// POST /temporal/entities
pub async fn create(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let hist = history(&st)?;
    let tenant = req::tenant(&h)?;
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    let Some(obj) = b.json.as_object() else {
        return Err(NgsiError::bad_data("a temporal entity must be a JSON object").into());
    };
    let ctx = req::active(&st, &tenant, b.context.as_ref()).await?;
    let terms = Ctx(&ctx);
    let now = Timestamp::now();
    // id, type and scope are checked like a core entity's.
    let scope_list = obj.get("scope").map(scope_instances).transpose()?.flatten();
    let mut head = Map::new();
    for k in ["id", "@id", "type", "@type", "scope"] {
        if let Some(v) = obj.get(k) {
            if k == "scope" && scope_list.is_some() {
                continue;
            }
            head.insert(k.into(), v.clone());
        }
    }
    let e = decode::entity(&Value::Object(head), &terms, Mode::Full, true, now)?;
    let id =
        e.id.clone()
            .ok_or_else(|| NgsiError::bad_data("entity has no 'id'"))?;
    let list = instances(obj, &terms, now, id.as_str())?;
    let created = !hist.exists(&tenant, &id);
    // The latest instance of each attribute also becomes the entity's
    // current state when the entity has no such attribute yet (through the
    // one write path, whose history hook records it); the rest goes to the
    // history directly.
    let rest = write_current(&st, &tenant, &id, &e, list).await?;
    if let Some(sl) = &scope_list {
        hist.provide_scope(&tenant, &id, sl);
    }
    hist.upsert(&tenant, &id, &e.types, None, rest).await?;
    if created {
        let mut r = StatusCode::CREATED.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("/ngsi-ld/v1/temporal/entities/{id}")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Ok(r)
    } else {
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

/// Writes the latest instance of each attribute into the current state
/// (creating the entity, or appending without overwriting); returns the
/// instances the history must record itself.
async fn write_current(
    st: &AppState,
    tenant: &TenantId,
    id: &EntityId,
    head: &decode::EntityInput,
    list: Vec<NewInstance>,
) -> Result<Vec<NewInstance>> {
    // Index of the latest live instance per (attribute, datasetId).
    let mut latest: BTreeMap<(Iri, Option<String>), usize> = BTreeMap::new();
    for (n, i) in list.iter().enumerate() {
        if i.deleted {
            continue;
        }
        let key = (i.name.clone(), i.attr.dataset().map(String::from));
        let newer = match latest.get(&key) {
            None => true,
            Some(&m) => observed_of(&list[n]) >= observed_of(&list[m]),
        };
        if newer {
            latest.insert(key, n);
        }
    }
    let mut input = decode::EntityInput {
        id: Some(id.clone()),
        types: head.types.clone(),
        scope: head.scope.clone(),
        attrs: BTreeMap::new(),
    };
    for n in latest.values() {
        let i = &list[*n];
        input
            .attrs
            .entry(i.name.clone())
            .or_default()
            .push(AttrInput::Set(i.attr.clone()));
    }
    let exists = st.broker.get(tenant, id).await?.is_some();
    let written: HashSet<usize> = if !exists {
        match st.broker.create_entity(tenant, input).await {
            Ok(_) => latest.values().copied().collect(),
            Err(e) if e.kind == ErrorKind::AlreadyExists => HashSet::new(),
            Err(e) => return Err(e),
        }
    } else {
        input.scope = None;
        let current = st.broker.get(tenant, id).await?;
        let missing: Vec<usize> = latest
            .iter()
            .filter(|((name, ds), _)| {
                current
                    .as_ref()
                    .is_none_or(|c| c.instance(name, ds.as_deref()).is_none())
            })
            .map(|(_, n)| *n)
            .collect();
        input
            .attrs
            .retain(|name, _| missing.iter().any(|n| &list[*n].name == name));
        if input.attrs.is_empty() {
            HashSet::new()
        } else {
            match st.broker.append_attrs(tenant, id, input, true).await {
                Ok(out) => missing
                    .into_iter()
                    .filter(|n| out.updated.contains(&list[*n].name))
                    .collect(),
                Err(_) => HashSet::new(),
            }
        }
    };
    Ok(list
        .into_iter()
        .enumerate()
        .filter(|(n, _)| !written.contains(n))
        .map(|(_, i)| i)
        .collect())
}

fn observed_of(i: &NewInstance) -> Option<Timestamp> {
    i.attr
        .observed_at
        .as_deref()
        .and_then(|o| Timestamp::parse(o).ok())
}

/// POST /temporal/entities/{id}/attrs
pub async fn add_attrs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let hist = history(&st)?;
    let tenant = req::tenant(&h)?;
    let id = entity_id(&id)?;
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    let Some(obj) = b.json.as_object() else {
        return Err(NgsiError::bad_data("the attributes body must be a JSON object").into());
    };
    let ctx = req::active(&st, &tenant, b.context.as_ref()).await?;
    let list = instances(obj, &Ctx(&ctx), Timestamp::now(), id.as_str())?;
    if list.is_empty() {
        return Err(NgsiError::bad_data("no attributes to add").into());
    }
    hist.add_instances(&tenant, &id, list).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /temporal/entities/{id}
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> ApiResult<Response> {
    let hist = history(&st)?;
    let tenant = req::existing_tenant(&st, &h).await?;
    let id = entity_id(&id)?;
    if !hist.exists(&tenant, &id) {
        return Err(
            NgsiError::not_found(format!("entity '{id}' has no temporal representation")).into(),
        );
    }
    // The entity goes as a whole: current state and history.
    match st.broker.delete_entity(&tenant, &id).await {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::ResourceNotFound => {}
        Err(e) => return Err(e.into()),
    }
    hist.delete_entity(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /temporal/entities/{id}/attrs/{attr}
pub async fn delete_attr(
    State(st): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let hist = history(&st)?;
    let tenant = req::existing_tenant(&st, &h).await?;
    let id = entity_id(&id)?;
    let p = Params::parse(q.as_deref())?;
    p.allow(&["datasetId", "deleteAll"])?;
    let ctx = req::active(&st, &tenant, req::get_context(&h)?.as_ref()).await?;
    let name = attr_name(&ctx, &attr)?;
    let sel = if p.flag("deleteAll")? {
        DatasetSel::All
    } else {
        match p.get("datasetId") {
            Some(d) => DatasetSel::Id(d.to_string()),
            None => DatasetSel::Default,
        }
    };
    hist.delete_attribute(&tenant, &id, &name, &sel).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}
pub async fn modify_instance(
    State(st): State<AppState>,
    Path((id, attr, instance)): Path<(String, String, String)>,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let hist = history(&st)?;
    let tenant = req::tenant(&h)?;
    let id = entity_id(&id)?;
    if !dosi_ngsi::ids::is_absolute_uri(&instance) {
        return Err(NgsiError::bad_data(format!("instanceId '{instance}' is not a URI")).into());
    }
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    let Some(fragment) = b.json.as_object() else {
        return Err(NgsiError::bad_data("an attribute instance must be a JSON object").into());
    };
    let ctx = req::active(&st, &tenant, b.context.as_ref()).await?;
    let terms = Ctx(&ctx);
    let name = attr_name(&ctx, &attr)?;
    // The body is the attribute fragment, either bare or under its name.
    let fragment = match fragment.get(&attr) {
        Some(Value::Object(inner)) if fragment.len() <= 2 => inner.clone(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_object() => {
            items[0].as_object().cloned().unwrap_or_default()
        }
        _ => fragment.clone(),
    };
    let old = hist.instance(&tenant, &id, &name, &instance)?;
    let mut merged = match encode::attribute(&old, &terms, &EncodeOptions::default()) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in fragment {
        if k == "@context" || k == "instanceId" {
            continue;
        }
        if k == "type" && v.as_str() != merged.get("type").and_then(Value::as_str) {
            // A new type replaces the shape: drop the old value member.
            merged.retain(|k, _| {
                !matches!(
                    k.as_str(),
                    "value"
                        | "object"
                        | "languageMap"
                        | "vocab"
                        | "json"
                        | "valueList"
                        | "objectList"
                )
            });
        }
        merged.insert(k, v);
    }
    let new = match decode::attribute(
        &Value::Object(merged),
        &terms,
        Mode::Full,
        old.created_at,
        &attr,
    )? {
        AttrInput::Set(a) => a,
        AttrInput::Delete(_) => {
            return Err(NgsiError::bad_data("the NGSI-LD Null is no instance").into())
        }
    };
    let mut new = new;
    new.dataset_id = old.dataset_id.clone();
    hist.replace_instance(&tenant, &id, &name, &instance, &new)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}
pub async fn delete_instance(
    State(st): State<AppState>,
    Path((id, attr, instance)): Path<(String, String, String)>,
    h: HeaderMap,
) -> ApiResult<Response> {
    let hist = history(&st)?;
    let tenant = req::existing_tenant(&st, &h).await?;
    let id = entity_id(&id)?;
    if !dosi_ngsi::ids::is_absolute_uri(&instance) {
        return Err(NgsiError::bad_data(format!("instanceId '{instance}' is not a URI")).into());
    }
    let ctx = req::active(&st, &tenant, req::get_context(&h)?.as_ref()).await?;
    let name = attr_name(&ctx, &attr)?;
    hist.delete_instance(&tenant, &id, &name, &instance).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- reads -----

/// GET /temporal/entities/{id}
pub async fn retrieve(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let hist = history(&st)?;
    let mut allowed = params::READ_PARAMS.to_vec();
    allowed.extend_from_slice(TEMPORAL_PARAMS);
    let r = req::Read::new(&st, &h, q.as_deref(), &allowed).await?;
    let id = entity_id(&id)?;
    let a = ask(&r.params, &r.ctx, None)?;
    if !hist.exists(&r.tenant, &id) {
        return Err(
            NgsiError::not_found(format!("entity '{id}' has no temporal representation")).into(),
        );
    }
    if let Some(t) = r.params.get("type") {
        let f = params::filter(&Params::from_pairs(vec![("type".into(), t.into())]), &r.ctx)?;
        let keep = hist.entities(&r.tenant, &|x, ty| {
            x == &id
                && f.types.as_ref().is_none_or(|te| {
                    te.matches(&ty.iter().map(|s| Iri::from(s.as_str())).collect::<Vec<_>>())
                })
        });
        if keep.is_empty() {
            return Err(NgsiError::not_found(format!("entity '{id}' is not of type '{t}'")).into());
        }
    }
    let terms = Ctx(&r.ctx);
    if a.repr == Repr::Aggregated {
        let spec = agg_spec(&a);
        let e = hist.aggregate(&r.tenant, &id, &spec).ok_or_else(|| {
            NgsiError::not_found(format!("entity '{id}' has no temporal representation"))
        })?;
        check_attrs_exist(&a, e.attrs.values().all(Vec::is_empty), &id)?;
        let body = render_aggregated(&e, &terms, &a, &mut HashMap::new());
        return Ok(r.reply(body));
    }
    let cap = st.config.temporal_page.saturating_add(1);
    let e = hist.read(&r.tenant, &id, &a.read, cap).ok_or_else(|| {
        NgsiError::not_found(format!("entity '{id}' has no temporal representation"))
    })?;
    check_attrs_exist(
        &a,
        e.attrs.values().all(Vec::is_empty) && a.read.attrs.is_some(),
        &id,
    )?;
    let mut list = vec![e];
    let range = History::paginate(&mut list, &a.read, st.config.temporal_page);
    let body = render(&list[0], &terms, &a);
    if (a.opts.pick.is_some() || a.opts.omit.is_some())
        && body.as_object().is_some_and(|m| m.is_empty())
    {
        return Err(NgsiError::not_found(format!(
            "nothing of entity {id} is left after pick/omit"
        ))
        .into());
    }
    Ok(with_range(r.reply(body), range, &a))
}

fn check_attrs_exist(a: &Ask, none: bool, id: &EntityId) -> Result<()> {
    if a.opts.attrs.is_some() && none {
        return Err(NgsiError::not_found(format!(
            "entity '{id}' has none of the attributes asked for in its temporal representation"
        )));
    }
    Ok(())
}

fn agg_spec(a: &Ask) -> AggSpec {
    AggSpec {
        attrs: a.read.attrs.clone(),
        datasets: a.read.datasets.clone(),
        timeprop: a.read.timeprop,
        from: a.read.from,
        to: a.read.to,
        period: a
            .tq
            .aggr_period
            .as_ref()
            .and_then(|d| d.fixed_micros().or_else(|| Some(d.approx_micros())))
            .filter(|p| *p > 0),
        distinct: a
            .tq
            .aggr_methods
            .as_ref()
            .is_some_and(|m| m.contains(&AggrMethod::DistinctCount)),
    }
}

fn with_range(mut r: Response, range: Option<PageRange>, a: &Ask) -> Response {
    let Some(range) = range else { return r };
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    let size = range.size.map_or("*".to_string(), |n| n.to_string());
    let v = format!(
        "date-time {}-{}/{}",
        range.start.to_iso(),
        range.end.to_iso(),
        size
    );
    let _ = a;
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// GET /temporal/entities
pub async fn query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let mut allowed = params::READ_PARAMS.to_vec();
    allowed.extend_from_slice(params::QUERY_PARAMS);
    allowed.extend_from_slice(TEMPORAL_PARAMS);
    let r = req::Read::new(&st, &h, q.as_deref(), &allowed).await?;
    run_query(&st, r, None).await
}

/// POST /temporal/entityOperations/query
pub async fn post_query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    let Some(obj) = b.json.as_object() else {
        return Err(NgsiError::bad_data("a query must be a JSON object").into());
    };
    if obj.get("type").and_then(Value::as_str) != Some("Query") {
        return Err(NgsiError::bad_data("a query body needs \"type\": \"Query\"").into());
    }
    // The body's members become parameters (plus the query string's
    // paging and format parameters).
    let mut pairs = Params::parse(q.as_deref())?.pairs().to_vec();
    let mut push = |k: &str, v: String| pairs.push((k.to_string(), v));
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    for (k, v) in obj {
        match k.as_str() {
            "type" | "@context" => {}
            "entities" => {
                let Some(list) = v.as_array() else {
                    return Err(NgsiError::bad_data("entities must be an array").into());
                };
                let mut ids = Vec::new();
                let mut types = Vec::new();
                for sel in list {
                    if let Some(id) = sel.get("id").and_then(Value::as_str) {
                        ids.push(id.to_string());
                    }
                    if let Some(p) = sel.get("idPattern").and_then(Value::as_str) {
                        push("idPattern", p.to_string());
                    }
                    if let Some(t) = sel.get("type").and_then(Value::as_str) {
                        types.push(t.to_string());
                    }
                }
                if !ids.is_empty() {
                    push("id", ids.join(","));
                }
                if !types.is_empty() {
                    push("type", types.join(","));
                }
            }
            "attrs" => push("attrs", text(v)),
            "q" => push("q", text(v)),
            "scopeQ" => push("scopeQ", text(v)),
            "lang" => push("lang", text(v)),
            "geoQ" => {
                for (gk, gv) in v.as_object().into_iter().flatten() {
                    let val = match gk.as_str() {
                        "coordinates" => match gv {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                        _ => text(gv),
                    };
                    push(gk, val);
                }
            }
            _ => {}
        }
    }
    let mut allowed = params::READ_PARAMS.to_vec();
    allowed.extend_from_slice(params::QUERY_PARAMS);
    allowed.extend_from_slice(TEMPORAL_PARAMS);
    allowed.extend_from_slice(&["georel", "geometry", "coordinates", "geoproperty"]);
    let accept = req::accept(&h, false)?;
    let tenant = req::existing_tenant(&st, &h).await?;
    let params = Params::from_pairs(pairs);
    params.allow(&allowed)?;
    let aggregated = repr(&params)? == Repr::Aggregated;
    let tq = temporal::parse_temporal_query_json(
        obj.get("temporalQ"),
        obj.get("aggrParams"),
        aggregated,
    )?;
    let link = b.context.clone().or(req::get_context(&h)?);
    let ctx = req::active(&st, &tenant, link.as_ref()).await?;
    let r = req::Read {
        accept,
        tenant,
        params,
        link: req::get_context(&h)?,
        ctx,
    };
    run_query(&st, r, Some(tq)).await
}

async fn run_query(st: &AppState, r: req::Read, tq: Option<TemporalQuery>) -> ApiResult<Response> {
    let hist = history(st)?;
    let p = &r.params;
    let a = ask(p, &r.ctx, tq)?;
    let has_minimal = ["type", "attrs", "q", "georel", "scopeQ", "idPattern"]
        .iter()
        .any(|k| p.get(k).is_some());
    let only_system_attrs = p.get("type").is_none()
        && p.get("q").is_none()
        && p.list("attrs").is_some_and(|l| {
            l.iter()
                .all(|n| params::SYSTEM_MEMBERS.contains(&n.as_str()))
        });
    if only_system_attrs {
        return Err(NgsiError::bad_data(
            "a temporal query selecting only by system attributes is too wide",
        )
        .into());
    }
    if !has_minimal && !p.flag("local")? {
        return Err(NgsiError::bad_data(
            "a temporal query needs at least one of type, attrs, q, a geo-query or scopeQ",
        )
        .into());
    }
    let mut desc_by_key = false;
    if let Some(o) = p.get("orderBy") {
        let keys: Vec<&str> = o.split(',').map(str::trim).collect();
        if keys.len() == 1 && keys[0] == "id;desc" {
            desc_by_key = true;
        } else if keys.iter().any(|k| *k != "id" && *k != "id;asc") {
            return Err(NgsiError::bad_data(format!(
                "orderBy: temporal queries may only order by 'id', not '{o}'"
            ))
            .into());
        }
    }
    let desc = desc_by_key
        || match p.get("orderDirection") {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => {
                return Err(NgsiError::bad_data(format!(
                    "orderDirection must be asc or desc, not '{o}'"
                ))
                .into())
            }
        };
    let windowed = a.tq.timerel.is_some();
    let filter = params::filter(p, &r.ctx)?;
    let page = params::page(p, st.config.default_limit, st.config.max_limit)?;
    let type_ok = |ty: &[String]| {
        filter.types.as_ref().is_none_or(|te| {
            te.matches(&ty.iter().map(|s| Iri::from(s.as_str())).collect::<Vec<_>>())
        })
    };
    let mut ids = hist.entities(&r.tenant, &|id, ty| {
        (filter.ids.is_empty() || filter.ids.contains(id))
            && filter
                .id_pattern
                .as_ref()
                .is_none_or(|re| re.is_match(id.as_str()))
            && type_ok(ty)
    });
    // q, scopeQ and geoQ need the instances in the window; attrs and the
    // window alone only need to know one instance is there.
    let needs_window = filter.q.is_some() || filter.scope_q.is_some() || filter.geo_q.is_some();
    if (windowed || !filter.attrs.is_empty()) && !needs_window {
        ids.retain(|id| hist.has_instances(&r.tenant, id, &a.read));
    }
    // With scopeQ, the intervals in which each entity's scope matched
    // (C.5.16): only instances inside them qualify and are returned.
    let mut scoped: HashMap<EntityId, Vec<(i64, i64)>> = HashMap::new();
    if needs_window {
        ids.retain(|id| {
            let Some(mut w) = hist.window(&r.tenant, id, &a.read, usize::MAX) else {
                return false;
            };
            if let Some(sq) = &filter.scope_q {
                let iv = scope_intervals(&w, sq, a.read.from, a.read.to);
                if iv.is_empty() {
                    return false;
                }
                keep_in(&mut w, &iv);
                scoped.insert(id.clone(), iv);
            }
            window_matches(&filter, &w)
        });
    }
    if desc {
        ids.reverse();
    }
    let total = ids.len();
    let chosen: Vec<EntityId> = ids.into_iter().skip(page.offset).take(page.limit).collect();
    let terms = Ctx(&r.ctx);
    let body;
    let mut range = None;
    if a.repr == Repr::Aggregated {
        let spec = agg_spec(&a);
        // Period bounds repeat across entities: format each instant once.
        let mut times = HashMap::new();
        let list: Vec<Value> = chosen
            .iter()
            .filter_map(|id| hist.aggregate(&r.tenant, id, &spec))
            .map(|e| render_aggregated(&e, &terms, &a, &mut times))
            .collect();
        body = Value::Array(list);
    } else {
        let cap = st.config.temporal_page.saturating_add(1);
        let mut list: Vec<TemporalEntity> = chosen
            .iter()
            .filter_map(|id| hist.read(&r.tenant, id, &a.read, cap))
            .collect();
        for e in &mut list {
            if let Some(iv) = scoped.get(&e.id) {
                keep_in(e, iv);
            }
        }
        range = History::paginate(&mut list, &a.read, st.config.temporal_page);
        body = Value::Array(
            list.iter()
                .map(|e| render(e, &terms, &a))
                .filter(|v| v.as_object().is_none_or(|m| !m.is_empty()))
                .collect(),
        );
    }
    let returned = chosen.len();
    let mut resp = with_range(r.reply(body), range, &a);
    if page.count {
        resp.headers_mut()
            .insert("NGSILD-Results-Count", HeaderValue::from(total));
    }
    let more = page.offset + returned < total;
    req::page_links(
        &mut resp,
        "/ngsi-ld/v1/temporal/entities",
        p,
        &page,
        more && returned > 0,
        r.accept,
    );
    Ok(resp)
}

/// q, scopeQ, geoQ and attrs checked against the instances in the window
/// (clause 5.7.4.4: an instance outside the window never satisfies them).
/// The time intervals (µs, half-open) in which the entity's scope satisfied
/// `sq`, cut to the window: each scope instance is valid from its time until
/// the next one (C.5.16).
fn scope_intervals(
    w: &TemporalEntity,
    sq: &dosi_ngsi::query::ScopeQ,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Vec<(i64, i64)> {
    let (lo, hi) = (from.map_or(i64::MIN, |t| t.0), to.map_or(i64::MAX, |t| t.0));
    let mut out = Vec::new();
    for (n, s) in w.scope.iter().enumerate() {
        let start = s.at.0;
        let end = w.scope.get(n + 1).map_or(i64::MAX, |x| x.at.0);
        let live = s.deleted_at.is_none() && !s.scope.is_empty();
        if live && sq.matches(&s.scope) {
            let (a, b) = (start.max(lo), end.min(hi));
            if a < b {
                out.push((a, b));
            }
        }
    }
    out
}

/// Keeps only the instances whose time lies in one of `iv`.
fn keep_in(e: &mut TemporalEntity, iv: &[(i64, i64)]) {
    for list in e.attrs.values_mut() {
        list.retain(|i| {
            i.time
                .is_some_and(|t| iv.iter().any(|(a, b)| t.0 >= *a && t.0 < *b))
        });
    }
    e.attrs.retain(|_, l| !l.is_empty());
}

fn window_matches(f: &EntityFilter, w: &TemporalEntity) -> bool {
    let mut e = Entity::new(w.id.clone(), w.types.clone(), w.created_at);
    for (name, list) in &w.attrs {
        let live: Vec<Attribute> = list
            .iter()
            .filter(|i| i.deleted_at.is_none())
            .map(|i| i.attr.clone())
            .collect();
        if !live.is_empty() {
            e.attrs.insert(name.clone(), live);
        }
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in &w.scope {
        if s.deleted_at.is_none() {
            scopes.clone_from(&s.scope);
        }
    }
    e.scope = scopes;
    (f.attrs.is_empty() || f.attrs.iter().any(|a| e.attrs.contains_key(a)))
        && f.q.as_ref().is_none_or(|q| q.matches(&e))
        && (f.scope_q.is_none() || !e.attrs.is_empty())
        && f.geo_q.as_ref().is_none_or(|g| g.matches(&e))
}

// ----- rendering -----

fn keep(o: &EncodeOptions, member: &str) -> bool {
    o.pick.as_ref().is_none_or(|p| p.contains(member))
        && o.omit.as_ref().is_none_or(|x| !x.contains(member))
}

fn head(
    id: &EntityId,
    types: &[Iri],
    terms: &dyn dosi_broker::codec::Terms,
    o: &EncodeOptions,
) -> Map<String, Value> {
    let mut m = Map::new();
    if keep(o, "id") {
        m.insert("id".into(), Value::String(id.to_string()));
    }
    if keep(o, "type") && !types.is_empty() {
        m.insert("type".into(), encode::types(types, terms));
    }
    m
}

fn time_text(i: &dosi_history::Instance, prop: TimeProp) -> Value {
    match (prop, &i.attr.observed_at) {
        (TimeProp::ObservedAt, Some(o)) => Value::String(o.clone()),
        _ => i.time.map_or(Value::Null, |t| Value::String(t.to_iso())),
    }
}

/// The member holding the list of values in the simplified representation.
fn values_key(kind: dosi_ngsi::AttrKind) -> &'static str {
    use dosi_ngsi::AttrKind::*;
    match kind {
        Property | GeoProperty => "values",
        Relationship => "objects",
        LanguageProperty => "languageMaps",
        VocabProperty => "vocabs",
        JsonProperty => "jsons",
        ListProperty => "valueLists",
        ListRelationship => "objectLists",
    }
}

fn render(e: &TemporalEntity, terms: &dyn dosi_broker::codec::Terms, a: &Ask) -> Value {
    let o = &a.opts;
    let mut m = head(&e.id, &e.types, terms, o);
    if keep(o, "scope") && !e.scope.is_empty() {
        let live: Vec<&dosi_history::ScopeInstance> = e.scope.iter().collect();
        if a.repr == Repr::TemporalValues {
            let values: Vec<Value> = live
                .iter()
                .map(|s| {
                    Value::Array(vec![
                        if s.deleted_at.is_some() {
                            Value::Array(Vec::new())
                        } else {
                            scope_value(&s.scope)
                        },
                        Value::String(s.at.to_iso_compact()),
                    ])
                })
                .collect();
            let mut sm = Map::new();
            sm.insert("type".into(), Value::String("Property".into()));
            sm.insert("values".into(), Value::Array(values));
            m.insert("scope".into(), Value::Object(sm));
        } else {
            let list: Vec<Value> = live
                .iter()
                .map(|s| {
                    let mut sm = Map::new();
                    sm.insert("type".into(), Value::String("Property".into()));
                    match s.deleted_at {
                        Some(d) => {
                            sm.insert("value".into(), Value::Array(Vec::new()));
                            sm.insert("deletedAt".into(), Value::String(d.to_iso()));
                        }
                        None => {
                            sm.insert("value".into(), scope_value(&s.scope));
                            sm.insert("observedAt".into(), Value::String(s.at.to_iso_compact()));
                        }
                    }
                    sm.insert("instanceId".into(), Value::String(s.id.clone()));
                    if o.sys_attrs {
                        sm.insert("createdAt".into(), Value::String(s.at.to_iso()));
                        sm.insert("modifiedAt".into(), Value::String(s.at.to_iso()));
                    }
                    Value::Object(sm)
                })
                .collect();
            m.insert("scope".into(), Value::Array(list));
        }
    }
    if o.sys_attrs {
        m.insert("createdAt".into(), Value::String(e.created_at.to_iso()));
        m.insert("modifiedAt".into(), Value::String(e.modified_at.to_iso()));
        if let Some(d) = e.deleted_at {
            m.insert("deletedAt".into(), Value::String(d.to_iso()));
        }
    }
    let plain = EncodeOptions {
        sys_attrs: o.sys_attrs,
        lang: o.lang.clone(),
        ..EncodeOptions::default()
    };
    for (name, list) in &e.attrs {
        if !keep(o, name) {
            continue;
        }
        let key = terms.compact(name);
        if a.repr == Repr::TemporalValues {
            // One object per datasetId.
            let mut groups: BTreeMap<Option<&str>, Vec<&dosi_history::Instance>> = BTreeMap::new();
            for i in list {
                groups.entry(i.attr.dataset()).or_default().push(i);
            }
            let mut objs: Vec<Value> = groups
                .into_iter()
                .map(|(ds, items)| {
                    let kind = items
                        .last()
                        .map_or(dosi_ngsi::AttrKind::Property, |i| i.attr.kind);
                    let mut g = Map::new();
                    g.insert("type".into(), Value::String(kind.name().into()));
                    let values: Vec<Value> = items
                        .iter()
                        .map(|i| {
                            let v = encode::simple_value(&i.attr, terms, o.lang.as_deref());
                            Value::Array(vec![v, time_text(i, a.read.timeprop)])
                        })
                        .collect();
                    g.insert(values_key(kind).into(), Value::Array(values));
                    if let Some(ds) = ds {
                        g.insert("datasetId".into(), Value::String(ds.into()));
                    }
                    Value::Object(g)
                })
                .collect();
            let v = if objs.len() == 1 {
                objs.pop().unwrap_or(Value::Null)
            } else if objs.is_empty() {
                let mut g = Map::new();
                g.insert("type".into(), Value::String("Property".into()));
                g.insert("values".into(), Value::Array(Vec::new()));
                Value::Object(g)
            } else {
                Value::Array(objs)
            };
            m.insert(key, v);
            continue;
        }
        let items: Vec<Value> = list
            .iter()
            .map(|i| {
                let mut v = encode::attribute(&i.attr, terms, &plain);
                if let Value::Object(im) = &mut v {
                    im.insert("instanceId".into(), Value::String(i.id.clone()));
                    if let Some(d) = i.deleted_at {
                        im.insert("deletedAt".into(), Value::String(d.to_iso()));
                    }
                    if a.read.timeprop == TimeProp::ModifiedAt
                        || a.read.timeprop == TimeProp::CreatedAt
                    {
                        let t = Value::String(i.attr.modified_at.to_iso());
                        im.entry("createdAt")
                            .or_insert(Value::String(i.attr.created_at.to_iso()));
                        im.entry("modifiedAt").or_insert(t);
                    }
                }
                v
            })
            .collect();
        m.insert(key, Value::Array(items));
    }
    Value::Object(m)
}

fn scope_value(s: &[String]) -> Value {
    if s.len() == 1 {
        Value::String(s[0].clone())
    } else {
        Value::Array(s.iter().cloned().map(Value::String).collect())
    }
}

fn render_aggregated(
    e: &AggregatedEntity,
    terms: &dyn dosi_broker::codec::Terms,
    a: &Ask,
    times: &mut HashMap<i64, Value>,
) -> Value {
    let o = &a.opts;
    let mut m = head(&e.id, &e.types, terms, o);
    let methods: Vec<AggrMethod> = a.tq.aggr_methods.clone().unwrap_or_default();
    for (name, list) in &e.attrs {
        if !keep(o, name) {
            continue;
        }
        let objs: Vec<Value> = list
            .iter()
            .map(|attr| {
                let mut g = Map::new();
                g.insert("type".into(), Value::String(attr.kind.name().into()));
                for meth in &methods {
                    let rows: Vec<Value> = attr
                        .buckets
                        .iter()
                        .filter_map(|b| {
                            let v = temporal::aggregate_value(
                                *meth, b.count, b.distinct, b.num, b.sum, b.sumsq, b.min, b.max,
                            )?;
                            let end = Timestamp(b.start + attr.period);
                            Some(Value::Array(vec![
                                number(v),
                                iso(times, b.start),
                                iso(times, end.0),
                            ]))
                        })
                        .collect();
                    g.insert(meth.name().into(), Value::Array(rows));
                }
                if let Some(ds) = &attr.dataset_id {
                    g.insert("datasetId".into(), Value::String(ds.to_string()));
                }
                Value::Object(g)
            })
            .collect();
        let v = match objs.len() {
            0 => {
                let mut g = Map::new();
                g.insert("type".into(), Value::String("Property".into()));
                for meth in &methods {
                    g.insert(meth.name().into(), Value::Array(Vec::new()));
                }
                Value::Object(g)
            }
            1 => objs.into_iter().next().unwrap_or(Value::Null),
            _ => Value::Array(objs),
        };
        m.insert(terms.compact(name), v);
    }
    Value::Object(m)
}

/// An instant as compact ISO 8601 text, formatted once per answer.
fn iso(cache: &mut HashMap<i64, Value>, us: i64) -> Value {
    cache
        .entry(us)
        .or_insert_with(|| Value::String(Timestamp(us).to_iso_compact()))
        .clone()
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
