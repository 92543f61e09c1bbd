//! `/entities` handlers: create, retrieve, query, replace, merge, delete, the
//! attribute operations and purge (clause 6.4, 6.5, 6.6, 6.7).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_broker::codec::decode::{self, check_name, Mode};
use dosi_broker::codec::encode::{self, EncodeOptions, Format};
use dosi_broker::UpdateOutcome;
use dosi_jsonld::ActiveContext;
use dosi_ngsi::model::{core_iri, Iri};
use dosi_ngsi::query::Q;
use dosi_ngsi::{AttrKind, Entity, EntityId, NgsiError, Result, TenantId, Timestamp};
use serde_json::{json, Value};

use crate::params::{self, Params};
use crate::problem::ApiResult;
use crate::req::{self, Accept, BodyKind};
use crate::state::{AppState, Ctx};

fn entity_id(raw: &str) -> Result<EntityId> {
    EntityId::parse(raw)
}

fn attr_name(ctx: &ActiveContext, raw: &str) -> Result<Iri> {
    check_name(raw, "path")?;
    if raw.starts_with('@') {
        return Err(NgsiError::bad_data(format!(
            "'{raw}' is a JSON-LD keyword, not an attribute name"
        )));
    }
    Ok(Arc::from(ctx.expand_term(raw)))
}

/// POST /entities
pub async fn create(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    if !b.json.is_object() {
        return Err(NgsiError::bad_data("an entity must be a JSON object").into());
    }
    let ctx = req::active(&st, &tenant, b.context.as_ref()).await?;
    let input = decode::entity(&b.json, &Ctx(&ctx), Mode::Full, true, Timestamp::now())?;
    let id = st.broker.create_entity(&tenant, input).await?;
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/ngsi-ld/v1/entities/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// GET /entities/{id}
pub async fn retrieve(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let accept = req::accept(&h, true)?;
    let tenant = req::existing_tenant(&st, &h).await?;
    let id = entity_id(&id)?;
    let p = Params::parse(q.as_deref())?;
    p.allow(params::READ_PARAMS)?;
    let link = req::get_context(&h)?;
    let ctx = req::active(&st, &tenant, link.as_ref()).await?;
    let opts = params::encode_options(&p, &ctx)?;
    check_attr_names(&p)?;
    if p.get("geometryProperty").is_some() && !accept.is_geo() {
        return Err(
            NgsiError::bad_data("geometryProperty needs Accept: application/geo+json").into(),
        );
    }
    let e = st
        .broker
        .get(&tenant, &id)
        .await?
        .ok_or_else(|| NgsiError::not_found(format!("entity {id} does not exist")))?;
    type_gate(&p, &ctx, &e)?;
    if let Some(attrs) = &opts.attrs {
        if !attrs.iter().any(|a| e.attrs.contains_key(a.as_str())) {
            return Err(NgsiError::not_found(format!(
                "entity {id} has none of the attributes asked for"
            ))
            .into());
        }
    }
    let join = join_mode(&p)?;
    check_projection_depth(&p, &ctx, join)?;
    let body = match (accept, join) {
        (Accept::GeoJson { .. }, _) => {
            let gp = geometry_property(&p, &ctx)?;
            encode::feature(&e, &Ctx(&ctx), &opts, &gp)
        }
        (_, Some((flat, level))) => {
            let mut out = Vec::new();
            let mut kept = Vec::new();
            JoinProj::from_params(&p, &ctx, &mut kept)?;
            let proj = JoinProj::new(&p, &kept);
            let v = joined(
                &st,
                &tenant,
                &e,
                &ctx,
                &opts,
                proj,
                flat,
                level,
                &mut out,
                &mut HashSet::new(),
            )
            .await?;
            if flat && !out.is_empty() {
                let mut all = vec![v];
                all.extend(out);
                Value::Array(all)
            } else {
                v
            }
        }
        _ => {
            // The common case, written straight from the entity.
            let mut out = Vec::with_capacity(1024);
            encode::write_entity(&mut out, &e, &Ctx(&ctx), &opts);
            if (opts.pick.is_some() || opts.omit.is_some()) && out == b"{}" {
                return Err(nothing_left(&id));
            }
            return Ok(req::reply_object(
                StatusCode::OK,
                out,
                accept,
                link.as_ref(),
            ));
        }
    };
    if (opts.pick.is_some() || opts.omit.is_some())
        && body.as_object().is_some_and(|m| m.is_empty())
    {
        return Err(nothing_left(&id));
    }
    Ok(req::reply(StatusCode::OK, body, accept, link.as_ref()))
}

fn nothing_left(id: &EntityId) -> crate::problem::ApiError {
    NgsiError::not_found(format!("nothing of entity {id} is left after pick/omit")).into()
}

/// The `type` parameter on single-entity operations selects: an entity whose
/// types do not match is not found (clause 5.7.1, 5.6.x "type selector").
fn type_gate(p: &Params, ctx: &ActiveContext, e: &Entity) -> Result<()> {
    let Some(t) = p.get("type") else {
        return Ok(());
    };
    let mut te = dosi_ngsi::query::TypeExpr::parse(t)?;
    te.expand_names(&|s| ctx.expand_term(s));
    if te.matches(&e.types) {
        Ok(())
    } else {
        Err(NgsiError::not_found(format!(
            "entity {} is not of type {t}",
            e.id
        )))
    }
}

/// Reads an entity and applies the type selector, before a write.
async fn gate_write(
    st: &AppState,
    tenant: &TenantId,
    id: &EntityId,
    p: &Params,
    ctx: &ActiveContext,
) -> Result<()> {
    if p.get("type").is_none() {
        return Ok(());
    }
    let e = st
        .broker
        .get(tenant, id)
        .await?
        .ok_or_else(|| NgsiError::not_found(format!("entity {id} does not exist")))?;
    type_gate(p, ctx, &e)
}

/// `join=flat|inline` with `joinLevel` (clause 4.5.23).
/// Checks that nested `pick`/`omit` projections stay within the join.
fn check_projection_depth(
    p: &Params,
    ctx: &ActiveContext,
    join: Option<(bool, u32)>,
) -> Result<()> {
    let allowed = join.map(|(_, l)| l).unwrap_or(0);
    for k in ["pick", "omit"] {
        if let Some(v) = p.get(k) {
            let depth = params::projection(v, ctx)?.depth();
            if depth > allowed {
                return Err(NgsiError::bad_data(format!(
                    "{k} projects linked entities {depth} level(s) deep but the join reaches {allowed}"
                )));
            }
        }
    }
    Ok(())
}

fn join_mode(p: &Params) -> Result<Option<(bool, u32)>> {
    let level = match p.get("joinLevel") {
        None => 1,
        Some(l) => l.parse::<u32>().ok().filter(|l| *l >= 1).ok_or_else(|| {
            NgsiError::bad_data(format!("joinLevel must be a positive integer, not '{l}'"))
        })?,
    };
    match p.get("join") {
        None => Ok(None),
        Some("flat") => Ok(Some((true, level))),
        Some("inline") => Ok(Some((false, level))),
        Some("@none") => Ok(None),
        Some(o) => Err(NgsiError::bad_data(format!(
            "join must be flat, inline or @none, not '{o}'"
        ))),
    }
}

/// What a join carries down to linked entities: the pick/omit projections
/// that apply at this level.
#[derive(Clone, Copy, Default)]
struct JoinProj<'p> {
    pick: Option<&'p params::Projection>,
    omit: Option<&'p params::Projection>,
}

impl<'p> JoinProj<'p> {
    fn from_params(
        p: &Params,
        ctx: &ActiveContext,
        keep: &'p mut Vec<params::Projection>,
    ) -> Result<()> {
        for k in ["pick", "omit"] {
            if let Some(v) = p.get(k) {
                keep.push(params::projection(v, ctx)?);
            } else {
                keep.push(params::Projection::default());
            }
        }
        Ok(())
    }
    fn new(p: &Params, kept: &'p [params::Projection]) -> Self {
        Self {
            pick: p.get("pick").and_then(|_| kept.first()),
            omit: p.get("omit").and_then(|_| kept.get(1)),
        }
    }
    /// The projection for entities linked through `rel`.
    fn through(&self, rel: &str) -> JoinProj<'p> {
        JoinProj {
            pick: self.pick.and_then(|p| p.nested.get(rel)),
            omit: self.omit.and_then(|o| o.nested.get(rel)),
        }
    }
}

/// Renders `e` with its related entities: inline puts them under `entity`
/// members of the relationships (keyValues: in place of the object); flat
/// appends them to `flat_out`.
#[allow(clippy::too_many_arguments)]
fn joined<'a>(
    st: &'a AppState,
    tenant: &'a TenantId,
    e: &'a Entity,
    ctx: &'a ActiveContext,
    opts: &'a EncodeOptions,
    proj: JoinProj<'a>,
    flat: bool,
    level: u32,
    flat_out: &'a mut Vec<Value>,
    seen: &'a mut HashSet<EntityId>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value>> + Send + 'a>> {
    Box::pin(async move {
        seen.insert(e.id.clone());
        let mut v = encode::entity(e, &Ctx(ctx), opts);
        if level == 0 {
            return Ok(v);
        }
        for (name, instances) in &e.attrs {
            let key = ctx.compact_iri(name);
            if !opts.pick.as_ref().is_none_or(|p| p.contains(&**name)) {
                continue;
            }
            let sub = proj.through(name);
            // Linked entities are rendered whole unless a nested projection says otherwise.
            let sub_opts = EncodeOptions {
                attrs: None,
                pick: sub.pick.map(|p| p.members.clone()),
                // `rel{...}` inside an omit projects the linked entity, it does not omit rel.
                omit: sub.omit.map(|o| {
                    o.members
                        .iter()
                        .filter(|m| !o.nested.contains_key(*m))
                        .cloned()
                        .collect()
                }),
                ..opts.clone()
            };
            let multi = instances.len() > 1;
            for (i, a) in instances.iter().enumerate() {
                if !matches!(a.kind, AttrKind::Relationship | AttrKind::ListRelationship) {
                    continue;
                }
                let targets: Vec<String> = match &a.value {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(l) => l
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    _ => vec![],
                };
                let mut inlined = Vec::new();
                for t in targets {
                    let Ok(tid) = EntityId::parse(&t) else {
                        continue;
                    };
                    if flat && seen.contains(&tid) {
                        continue;
                    }
                    let Some(target) = st.broker.get(tenant, &tid).await? else {
                        continue;
                    };
                    let rendered = joined(
                        st,
                        tenant,
                        &target,
                        ctx,
                        &sub_opts,
                        sub,
                        flat,
                        level - 1,
                        flat_out,
                        seen,
                    )
                    .await?;
                    if flat {
                        flat_out.push(rendered);
                    } else {
                        inlined.push(rendered);
                    }
                }
                if flat || inlined.is_empty() {
                    continue;
                }
                let ent = if inlined.len() == 1 {
                    inlined.remove(0)
                } else {
                    Value::Array(inlined)
                };
                let slot = v.get_mut(&key).map(|s| {
                    if multi && s.is_array() {
                        s.get_mut(i)
                    } else {
                        Some(s)
                    }
                });
                if let Some(Some(slot)) = slot {
                    if opts.format == Format::Simplified {
                        // keyValues: the related entity takes the relationship's place.
                        *slot = ent;
                    } else if let Value::Object(m) = slot {
                        m.insert("entity".into(), ent);
                    }
                }
            }
        }
        Ok(v)
    })
}

fn check_attr_names(p: &Params) -> Result<()> {
    for name in ["attrs"] {
        for a in p.list(name).unwrap_or_default() {
            check_name(&a, name)?;
        }
    }
    Ok(())
}

fn geometry_property(p: &Params, ctx: &ActiveContext) -> Result<String> {
    match p.get("geometryProperty") {
        None => Ok(core_iri::LOCATION.to_string()),
        Some(g) => {
            check_name(g, "geometryProperty")?;
            Ok(ctx.expand_term(g))
        }
    }
}

/// GET /entities
pub async fn query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let accept = req::accept(&h, true)?;
    let p = Params::parse(q.as_deref())?;
    let mut allowed = params::READ_PARAMS.to_vec();
    allowed.extend_from_slice(params::QUERY_PARAMS);
    p.allow(&allowed)?;
    let link = req::get_context(&h)?;
    run_query(&st, &h, p, link, accept).await
}

/// Runs an entity query from parameters (shared by GET /entities and POST /entityOperations/query).
pub async fn run_query(
    st: &AppState,
    h: &HeaderMap,
    p: Params,
    link: Option<Value>,
    accept: Accept,
) -> ApiResult<Response> {
    let tenant = req::tenant(h)?;
    let ctx = req::active(st, &tenant, link.as_ref()).await?;
    check_attr_names(&p)?;
    let filter = params::filter(&p, &ctx)?;
    if p.get("type") == Some("*") && p.get("local") == Some("false") {
        return Err(NgsiError::bad_data("type=* is only allowed for local queries").into());
    }
    if let Some(csf) = p.get("csf") {
        Q::parse(csf).map_err(|e| NgsiError::bad_data(format!("csf: {}", e.detail)))?;
    }
    // System members alone select everything: too wide (clause 5.7.2).
    let only_system_attrs = p.get("type").is_none()
        && p.get("q").is_none()
        && p.list("attrs").is_some_and(|a| {
            a.iter()
                .all(|n| params::SYSTEM_MEMBERS.contains(&n.as_str()))
        });
    let only_system_q = p.get("type").is_none()
        && p.get("attrs").is_none()
        && filter.q.as_ref().is_some_and(|q| {
            q.attribute_names().iter().all(|n| {
                params::SYSTEM_MEMBERS
                    .iter()
                    .any(|s| n.ends_with(&format!("/{s}")) || n == s)
            })
        });
    if only_system_attrs || only_system_q {
        return Err(NgsiError::bad_data(
            "a query selecting only by system attributes (createdAt, modifiedAt, ...) is too wide",
        )
        .into());
    }
    let has_minimal = ["type", "attrs", "q", "georel", "scopeQ", "idPattern"]
        .iter()
        .any(|k| p.get(k).is_some());
    if !has_minimal && !p.flag("local")? {
        return Err(NgsiError::bad_data(
            "a query needs at least one of type, attrs, q, geo-query (georel/geometry/coordinates) or scopeQ",
        )
        .into());
    }
    let opts = params::encode_options(&p, &ctx)?;
    let page = params::page(&p, st.config.default_limit, st.config.max_limit)?;
    if p.get("geometryProperty").is_some() && !accept.is_geo() {
        return Err(
            NgsiError::bad_data("geometryProperty needs Accept: application/geo+json").into(),
        );
    }
    let order = p.get("orderBy").map(|o| order_by(o, &ctx)).transpose()?;
    let gp = if accept.is_geo() {
        Some(geometry_property(&p, &ctx)?)
    } else {
        None
    };
    let join = join_mode(&p)?;
    check_projection_depth(&p, &ctx, join)?;
    if !tenant.is_default() && !st.broker.tenant_exists(&tenant).await? {
        return Err(NgsiError::new(
            dosi_ngsi::ErrorKind::NonexistentTenant,
            format!("tenant {tenant} does not exist"),
        )
        .into());
    }
    let res = match &order {
        None => st.broker.query(&tenant, &filter, page).await?,
        Some(keys) => {
            // Ordering needs every match: sort, then slice the page.
            let mut all = st
                .broker
                .query(&tenant, &filter, dosi_store::Page::ALL)
                .await?
                .entities;
            all.sort_by(|a, b| compare(a, b, keys));
            let total = all.len();
            dosi_store::QueryResult {
                entities: all.into_iter().skip(page.offset).take(page.limit).collect(),
                total: page.count.then_some(total),
            }
        }
    };
    let terms = Ctx(&ctx);
    let mut r = if let Some(gp) = gp {
        let body = encode::feature_collection(
            res.entities
                .iter()
                .map(|e| encode::feature(e, &terms, &opts, &gp))
                .collect(),
        );
        req::reply(StatusCode::OK, body, accept, link.as_ref())
    } else if let Some((flat, level)) = join {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for e in &res.entities {
            seen.insert(e.id.clone());
        }
        let mut kept = Vec::new();
        JoinProj::from_params(&p, &ctx, &mut kept)?;
        let proj = JoinProj::new(&p, &kept);
        let mut roots = Vec::new();
        for e in &res.entities {
            roots.push(
                joined(
                    st, &tenant, e, &ctx, &opts, proj, flat, level, &mut out, &mut seen,
                )
                .await?,
            );
        }
        roots.extend(out);
        req::reply(StatusCode::OK, Value::Array(roots), accept, link.as_ref())
    } else {
        // The common case, written straight from the entities.
        let member = req::context_member(accept, link.as_ref());
        let mut out = Vec::with_capacity(1024 * res.entities.len() + 2);
        out.push(b'[');
        for e in &res.entities {
            let start = out.len();
            if start > 1 {
                out.push(b',');
            }
            let obj = out.len();
            encode::write_entity(&mut out, e, &terms, &opts);
            // An entity that pick/omit leaves empty is not part of the answer.
            if out[obj..] == *b"{}" {
                out.truncate(start);
                continue;
            }
            if let Some(m) = &member {
                req::append_member(&mut out, m);
            }
        }
        out.push(b']');
        req::reply_written(StatusCode::OK, out, accept, link.as_ref())
    };
    let returned = res.entities.len();
    if let Some(total) = res.total {
        r.headers_mut()
            .insert("NGSILD-Results-Count", HeaderValue::from(total));
    }
    // Pagination links (clause 5.5.9): prev when not at the start, next when more remain.
    let more = match res.total {
        Some(t) => page.offset + returned < t,
        None => returned == page.limit,
    };
    req::page_links(
        &mut r,
        "/ngsi-ld/v1/entities",
        &p,
        &page,
        more && returned > 0,
        accept,
    );
    Ok(r)
}

/// One `orderBy` key: a path (`id`, `type`, `createdAt`, `attr`, `attr.sub`, ...) and direction.
struct OrderKey {
    path: Vec<String>,
    desc: bool,
}

fn order_by(spec: &str, ctx: &ActiveContext) -> Result<Vec<OrderKey>> {
    spec.split(',')
        .map(|part| {
            let (path, dir) = part.split_once(';').unwrap_or((part, "asc"));
            let desc = match dir.trim() {
                "asc" | "ascending" => false,
                "desc" | "descending" => true,
                d => {
                    return Err(NgsiError::bad_data(format!(
                        "orderBy direction must be asc or desc, not '{d}'"
                    )))
                }
            };
            let segs: Vec<&str> = path.trim().split('.').collect();
            if segs.iter().any(|s| s.is_empty()) {
                return Err(NgsiError::bad_data(format!(
                    "orderBy key '{part}' is empty"
                )));
            }
            let single = segs.len() == 1;
            let path = segs
                .iter()
                .enumerate()
                .map(|(i, seg)| {
                    let literal = if i == 0 {
                        single && matches!(*seg, "id" | "type" | "createdAt" | "modifiedAt")
                    } else {
                        matches!(*seg, "createdAt" | "modifiedAt" | "observedAt" | "unitCode")
                    };
                    if literal {
                        seg.to_string()
                    } else {
                        ctx.expand_term(seg)
                    }
                })
                .collect();
            Ok(OrderKey { path, desc })
        })
        .collect()
}

fn sort_value(e: &Entity, path: &[String]) -> Option<Value> {
    let first = path.first()?;
    if path.len() == 1 {
        match first.as_str() {
            "id" => return Some(Value::String(e.id.to_string())),
            "type" => return e.types.first().map(|t| Value::String(t.to_string())),
            "createdAt" => return Some(Value::from(e.created_at.0)),
            "modifiedAt" => return Some(Value::from(e.modified_at.0)),
            _ => {}
        }
    }
    let mut a = e.attr(first)?;
    for seg in &path[1..] {
        match seg.as_str() {
            "createdAt" => return Some(Value::from(a.created_at.0)),
            "modifiedAt" => return Some(Value::from(a.modified_at.0)),
            "observedAt" => return a.observed_at.clone().map(Value::String),
            "unitCode" => return a.unit_code.clone().map(Value::String),
            name => a = a.sub.get(name)?,
        }
    }
    Some(a.value.clone())
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(_), _) => Ordering::Less,
        (_, Value::Number(_)) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn compare(a: &Entity, b: &Entity, keys: &[OrderKey]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for k in keys {
        let o = match (sort_value(a, &k.path), sort_value(b, &k.path)) {
            (Some(x), Some(y)) => {
                let o = cmp_values(&x, &y);
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
            // Entities without the key go last whatever the direction.
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// DELETE /entities/{id}
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::existing_tenant(&st, &h).await?;
    let id = entity_id(&id)?;
    let p = Params::parse(q.as_deref())?;
    p.allow(&["type", "local", "via"])?;
    let link = req::get_context(&h)?;
    let ctx = req::active(&st, &tenant, link.as_ref()).await?;
    gate_write(&st, &tenant, &id, &p, &ctx).await?;
    st.broker.delete_entity(&tenant, &id).await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// What every write to one entity needs, checked in this order: an existing
/// tenant, a valid entity id, the parameters, an acceptable body and its context.
struct EntityWrite {
    tenant: TenantId,
    id: EntityId,
    params: Params,
    /// The body (its `@context` member removed).
    json: Value,
    ctx: ActiveContext,
}

impl EntityWrite {
    async fn new(
        st: &AppState,
        h: &HeaderMap,
        id: &str,
        query: Option<&str>,
        bytes: &Bytes,
        kind: BodyKind,
    ) -> Result<Self> {
        let tenant = req::existing_tenant(st, h).await?;
        let id = entity_id(id)?;
        let params = Params::parse(query)?;
        let b = req::body(h, bytes, kind)?;
        let ctx = req::active(st, &tenant, b.context.as_ref()).await?;
        let mut json = b.json;
        if let Value::Object(m) = &mut json {
            m.remove("@context");
        }
        Ok(Self {
            tenant,
            id,
            params,
            json,
            ctx,
        })
    }

    /// Applies the `type` selector (a mismatch is ResourceNotFound).
    async fn gate(&self, st: &AppState) -> Result<()> {
        gate_write(st, &self.tenant, &self.id, &self.params, &self.ctx).await
    }

    /// Decodes the body as an entity fragment (attributes, types, scope).
    fn attributes(&self, mode: Mode) -> Result<decode::EntityInput> {
        decode::entity(&self.json, &Ctx(&self.ctx), mode, false, Timestamp::now())
    }

    /// Decodes the body as a whole entity, whose id (if given) must be the path's.
    fn entity(&self, mode: Mode) -> Result<decode::EntityInput> {
        let input = self.attributes(mode)?;
        if input.id.as_ref().is_some_and(|i| *i != self.id) {
            return Err(NgsiError::bad_data(
                "the body's id differs from the id in the path",
            ));
        }
        Ok(input)
    }

    /// The attribute named in the path; `scope`, `type` and `id` are not attributes.
    fn attribute(&self, raw: &str, what: &str) -> Result<Iri> {
        if matches!(raw, "scope" | "type" | "id") {
            return Err(NgsiError::bad_data(format!(
                "'{raw}' is not an attribute and cannot be {what}"
            )));
        }
        attr_name(&self.ctx, raw)
    }
}

/// PUT /entities/{id}
pub async fn replace(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let w = EntityWrite::new(&st, &h, &id, q.as_deref(), &bytes, BodyKind::Json).await?;
    let input = w.entity(Mode::Full)?;
    if input.types.is_empty() {
        return Err(NgsiError::bad_data("a replacement entity needs a type").into());
    }
    st.broker.replace_entity(&w.tenant, &w.id, input).await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// PATCH /entities/{id} (merge)
pub async fn merge(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let w = EntityWrite::new(&st, &h, &id, q.as_deref(), &bytes, BodyKind::MergePatch).await?;
    let input = w.entity(Mode::Merge)?;
    st.broker.merge_entity(&w.tenant, &w.id, input).await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// POST /entities/{id}/attrs (append)
pub async fn append(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let w = EntityWrite::new(&st, &h, &id, q.as_deref(), &bytes, BodyKind::Json).await?;
    let no_overwrite = w.params.has_option("noOverwrite");
    let input = w.attributes(Mode::Full)?;
    w.gate(&st).await?;
    let out = st
        .broker
        .append_attrs(&w.tenant, &w.id, input, no_overwrite)
        .await?;
    Ok(update_reply(out, &w.ctx))
}

/// PATCH /entities/{id}/attrs (update)
pub async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let w = EntityWrite::new(&st, &h, &id, q.as_deref(), &bytes, BodyKind::Json).await?;
    let input = w.attributes(Mode::Partial)?;
    if input.attrs.is_empty() && input.types.is_empty() && input.scope.is_none() {
        return Err(NgsiError::bad_data("no attributes to update").into());
    }
    w.gate(&st).await?;
    let out = st.broker.update_attrs(&w.tenant, &w.id, input).await?;
    Ok(update_reply(out, &w.ctx))
}

/// 204 when everything was written, else 207 with an UpdateResult.
fn update_reply(out: UpdateOutcome, ctx: &ActiveContext) -> Response {
    if out.not_updated.is_empty() {
        return req::empty(StatusCode::NO_CONTENT);
    }
    let mut updated: Vec<String> = out.updated.iter().map(|n| ctx.compact_iri(n)).collect();
    updated.dedup();
    let body = json!({
        "updated": updated,
        "notUpdated": out.not_updated.iter().map(|(n, r)| json!({"attributeName": ctx.compact_iri(n), "reason": r})).collect::<Vec<_>>(),
    });
    (
        StatusCode::MULTI_STATUS,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response()
}

/// PATCH /entities/{id}/attrs/{attr} (partial update)
pub async fn partial_update(
    State(st): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let w = EntityWrite::new(&st, &h, &id, q.as_deref(), &bytes, BodyKind::MergePatch).await?;
    let name = w.attribute(&attr, "partially updated")?;
    w.gate(&st).await?;
    let inst = decode::attribute_instances(
        &w.json,
        &Ctx(&w.ctx),
        Mode::Partial,
        Timestamp::now(),
        &attr,
    )?;
    st.broker
        .partial_update_attr(&w.tenant, &w.id, &name, inst)
        .await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// PUT /entities/{id}/attrs/{attr} (replace attribute)
pub async fn replace_attr(
    State(st): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let w = EntityWrite::new(&st, &h, &id, q.as_deref(), &bytes, BodyKind::Json).await?;
    let name = w.attribute(&attr, "replaced")?;
    let inst =
        decode::attribute_instances(&w.json, &Ctx(&w.ctx), Mode::Full, Timestamp::now(), &attr)?;
    st.broker
        .replace_attr(&w.tenant, &w.id, &name, inst)
        .await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// DELETE /entities/{id}/attrs/{attr}
pub async fn delete_attr(
    State(st): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::existing_tenant(&st, &h).await?;
    let id = entity_id(&id)?;
    let p = Params::parse(q.as_deref())?;
    let link = req::get_context(&h)?;
    let ctx = req::active(&st, &tenant, link.as_ref()).await?;
    gate_write(&st, &tenant, &id, &p, &ctx).await?;
    if attr == "scope" {
        st.broker.delete_scope(&tenant, &id).await?;
        return Ok(req::empty(StatusCode::NO_CONTENT));
    }
    let name = attr_name(&ctx, &attr)?;
    let delete_all = p.flag("deleteAll")?;
    let ds = p.get("datasetId");
    if let Some(d) = ds {
        if !dosi_ngsi::ids::is_absolute_uri(d) {
            return Err(NgsiError::bad_data(format!("datasetId '{d}' is not a URI")).into());
        }
    }
    st.broker
        .delete_attr(&tenant, &id, &name, ds, delete_all)
        .await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// DELETE /entities (purge with filters, clause 6.4.3.3)
pub async fn purge(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let tenant = req::existing_tenant(&st, &h).await?;
    let p = Params::parse(q.as_deref())?;
    p.allow(&[
        "type",
        "id",
        "idPattern",
        "q",
        "scopeQ",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "attrs",
        "local",
        "keep",
        "drop",
    ])?;
    let link = req::get_context(&h)?;
    let ctx = req::active(&st, &tenant, link.as_ref()).await?;
    let filter = params::filter(&p, &ctx)?;
    // Purging needs a real selector: ids, idPattern or system members alone are too wide.
    let real_attr = p.list("attrs").is_some_and(|a| {
        a.iter()
            .any(|n| !params::SYSTEM_MEMBERS.contains(&n.as_str()))
    });
    let real_q = filter.q.as_ref().is_some_and(|q| {
        q.attribute_names().iter().any(|n| {
            !params::SYSTEM_MEMBERS
                .iter()
                .any(|s| n.ends_with(&format!("/{s}")) || n == s)
        })
    });
    let selective = p.get("type").is_some()
        || real_attr
        || real_q
        || filter.geo_q.is_some()
        || filter.scope_q.is_some();
    if !selective && !p.flag("local")? {
        return Err(NgsiError::bad_data(
            "purging needs at least one of type, id, idPattern, q, scopeQ, attrs, a geo-query, or local=true",
        )
        .into());
    }
    let names = |k: &str| -> Option<Vec<Iri>> {
        p.list(k)
            .map(|l| l.iter().map(|n| Iri::from(ctx.expand_term(n))).collect())
    };
    let what = match (names("keep"), names("drop")) {
        (Some(_), Some(_)) => {
            return Err(NgsiError::bad_data("keep and drop cannot be used together").into())
        }
        (Some(k), None) => dosi_broker::Purge::Keep(k),
        (None, Some(d)) => dosi_broker::Purge::Drop(d),
        (None, None) => dosi_broker::Purge::Entities,
    };
    st.broker.purge(&tenant, &filter, what).await?;
    Ok(req::empty(StatusCode::NO_CONTENT))
}

/// PUT or PATCH /entities without an id: the id is missing.
pub async fn missing_id() -> ApiResult<Response> {
    Err(NgsiError::bad_data("the entity id is missing from the path").into())
}
