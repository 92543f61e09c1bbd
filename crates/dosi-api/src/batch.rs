//! `/entityOperations/*` (clause 6.14–6.19, 6.31, 6.23): batch create, upsert,
//! update, delete, merge, and query by POST.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dosi_broker::codec::decode::{self, EntityInput, Mode};
use dosi_broker::BatchOutcome;
use dosi_ngsi::{EntityId, NgsiError, Result, Timestamp};
use serde_json::{json, Value};

use crate::params::Params;
use crate::problem::{self, ApiResult};
use crate::req::{self, BodyKind};
use crate::state::{AppState, Ctx};

const MAX_BATCH: usize = 10_000;

/// Decodes a batch body: an array of entities, each with its own context when
/// ld+json. Items that fail to decode are reported as errors, not fatal.
async fn decode_batch(
    st: &AppState,
    h: &HeaderMap,
    bytes: &Bytes,
    mode: Mode,
    require_type: bool,
) -> Result<(
    dosi_ngsi::TenantId,
    Vec<EntityInput>,
    Vec<(String, NgsiError)>,
)> {
    let tenant = req::tenant(h)?;
    let b = req::body(h, bytes, BodyKind::Array)?;
    let Value::Array(items) = &b.json else {
        return Err(NgsiError::bad_data(
            "a batch body must be a JSON array of entities",
        ));
    };
    if items.is_empty() {
        return Err(NgsiError::bad_data("a batch body must not be empty"));
    }
    if items.len() > MAX_BATCH {
        return Err(NgsiError::bad_data(format!(
            "a batch holds at most {MAX_BATCH} entities"
        )));
    }
    let now = Timestamp::now();
    let mut inputs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let link_ctx = if b.ld { None } else { b.context.clone() };
    let shared = req::active(st, &tenant, link_ctx.as_ref()).await?;
    if items.iter().any(|i| !i.is_object()) {
        return Err(NgsiError::bad_data(
            "every batch item must be an entity object",
        ));
    }
    for item in items {
        let id_text = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match (b.ld, item.get("@context").is_some()) {
            (true, false) => {
                errors.push((
                    id_text,
                    NgsiError::bad_data("application/ld+json items must carry an @context"),
                ));
                continue;
            }
            (false, true) => {
                errors.push((
                    id_text,
                    NgsiError::bad_data("application/json items must not carry an @context"),
                ));
                continue;
            }
            _ => {}
        }
        let own;
        let ctx = if b.ld {
            own = match req::active(st, &tenant, item.get("@context")).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push((id_text.clone(), e));
                    continue;
                }
            };
            &own
        } else {
            &shared
        };
        let id_text = item
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match decode::entity(item, &Ctx(ctx), mode, require_type, now) {
            Ok(i) => inputs.push(i),
            Err(e) => errors.push((id_text, e)),
        }
    }
    Ok((tenant, inputs, errors))
}

fn batch_reply(
    mut out: BatchOutcome,
    pre_errors: Vec<(String, NgsiError)>,
    all_created: bool,
) -> Response {
    out.errors.extend(pre_errors);
    if out.errors.is_empty() {
        if all_created {
            let ids: Vec<String> = out.success.iter().map(|i| i.to_string()).collect();
            return (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_vec(&ids).unwrap_or_default(),
            )
                .into_response();
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    let body = json!({
        "success": out.success.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "errors": out.errors.iter().map(|(id, e)| json!({"entityId": id, "error": problem::body(e)})).collect::<Vec<_>>(),
    });
    (
        StatusCode::MULTI_STATUS,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response()
}

/// POST /entityOperations/create
pub async fn create(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let (tenant, inputs, errs) = decode_batch(&st, &h, &bytes, Mode::Full, true).await?;
    let out = st.broker.batch_create(&tenant, inputs).await?;
    Ok(batch_reply(out, errs, true))
}

/// POST /entityOperations/upsert (`options=update|replace`)
pub async fn upsert(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let update = p.has_option("update");
    if update && p.has_option("replace") {
        return Err(NgsiError::bad_data("options update and replace exclude each other").into());
    }
    let (tenant, inputs, errs) = decode_batch(&st, &h, &bytes, Mode::Full, true).await?;
    let out = st.broker.batch_upsert(&tenant, inputs, update).await?;
    // 201 with the created ids when some were created, 204 when all existed.
    if errs.is_empty() && out.errors.is_empty() {
        if out.created.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let ids: Vec<String> = out.created.iter().map(|i| i.to_string()).collect();
        return Ok((
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&ids).unwrap_or_default(),
        )
            .into_response());
    }
    Ok(batch_reply(out, errs, false))
}

/// POST /entityOperations/update (`options=noOverwrite`)
pub async fn update(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let (tenant, inputs, errs) = decode_batch(&st, &h, &bytes, Mode::Full, false).await?;
    let out = st
        .broker
        .batch_update(&tenant, inputs, p.has_option("noOverwrite"))
        .await?;
    Ok(batch_reply(out, errs, false))
}

/// POST /entityOperations/merge
pub async fn merge(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let (tenant, inputs, errs) = decode_batch(&st, &h, &bytes, Mode::Merge, false).await?;
    let out = st.broker.batch_merge(&tenant, inputs).await?;
    Ok(batch_reply(out, errs, false))
}

/// POST /entityOperations/delete (body: array of ids)
pub async fn delete(State(st): State<AppState>, h: HeaderMap, bytes: Bytes) -> ApiResult<Response> {
    let tenant = req::tenant(&h)?;
    let b = req::body(&h, &bytes, BodyKind::Array)?;
    let Value::Array(items) = &b.json else {
        return Err(
            NgsiError::bad_data("a batch delete body must be a JSON array of entity ids").into(),
        );
    };
    if items.is_empty() {
        return Err(NgsiError::bad_data("a batch body must not be empty").into());
    }
    let mut ids = Vec::new();
    let mut errs = Vec::new();
    for i in items {
        match i.as_str().map(EntityId::parse) {
            Some(Ok(id)) => ids.push(id),
            Some(Err(e)) => errs.push((i.as_str().unwrap_or("").to_string(), e)),
            None => return Err(NgsiError::bad_data(format!("{i} is not an entity id")).into()),
        }
    }
    let out = st.broker.batch_delete(&tenant, ids).await?;
    Ok(batch_reply(out, errs, false))
}

/// POST /entityOperations/query (clause 6.23): a Query object in the body.
pub async fn query(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Response> {
    let accept = req::accept(&h, true)?;
    let b = req::body(&h, &bytes, BodyKind::Json)?;
    let Value::Object(m) = &b.json else {
        return Err(NgsiError::bad_data("the body must be a Query object").into());
    };
    if m.get("type").and_then(Value::as_str) != Some("Query") {
        return Err(NgsiError::bad_data("the body's type must be \"Query\"").into());
    }
    // Translate the Query object into the GET parameters it stands for.
    let mut p = Params::parse(q.as_deref())?;
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(Value::Array(ents)) = m.get("entities") {
        let mut ids = Vec::new();
        let mut types = Vec::new();
        for e in ents {
            match e.get("id") {
                None => {}
                Some(Value::String(id)) => ids.push(id.clone()),
                Some(Value::Array(list))
                    if !list.is_empty() && list.iter().all(Value::is_string) =>
                {
                    ids.extend(list.iter().filter_map(Value::as_str).map(String::from));
                }
                Some(other) => {
                    return Err(NgsiError::bad_data(format!(
                        "entities[].id must be a string, not {other}"
                    ))
                    .into())
                }
            }
            if let Some(t) = e.get("type").and_then(Value::as_str) {
                types.push(t.to_string());
            }
            if let Some(pat) = e.get("idPattern").and_then(Value::as_str) {
                extra.push(("idPattern".into(), pat.to_string()));
            }
        }
        if !ids.is_empty() {
            extra.push(("id".into(), ids.join(",")));
        }
        if !types.is_empty() {
            extra.push(("type".into(), types.join(",")));
        }
    }
    if let Some(Value::Array(a)) = m.get("attrs") {
        extra.push((
            "attrs".into(),
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    if m.contains_key("temporalQ") {
        return Err(NgsiError::bad_data(
            "temporalQ belongs to temporal queries, not to entity queries",
        )
        .into());
    }
    for key in ["q", "scopeQ", "lang", "join", "csf"] {
        match m.get(key) {
            None => {}
            Some(Value::String(s)) => extra.push((key.into(), s.clone())),
            Some(other) => {
                return Err(
                    NgsiError::bad_data(format!("{key} must be a string, not {other}")).into(),
                )
            }
        }
    }
    if let Some(l) = m.get("joinLevel") {
        match l.as_u64() {
            Some(n) if n >= 1 => extra.push(("joinLevel".into(), n.to_string())),
            _ => {
                return Err(NgsiError::bad_data(format!(
                    "joinLevel must be a positive integer, not {l}"
                ))
                .into())
            }
        }
    }
    for key in ["pick", "omit"] {
        match m.get(key) {
            None => {}
            Some(Value::String(s)) => extra.push((key.into(), s.clone())),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                extra.push((
                    key.into(),
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                ));
            }
            Some(other) => {
                return Err(NgsiError::bad_data(format!(
                    "{key} must be a string or list of strings, not {other}"
                ))
                .into())
            }
        }
    }
    if let Some(o) = m.get("ordering") {
        let Value::Object(o) = o else {
            return Err(NgsiError::bad_data("ordering must be an object").into());
        };
        if o.get("geometry").is_some_and(|g| !g.is_string()) {
            return Err(NgsiError::bad_data("ordering.geometry must be a string").into());
        }
        if o.get("coordinates").is_some_and(|c| !c.is_array()) {
            return Err(NgsiError::bad_data("ordering.coordinates must be an array").into());
        }
        let keys: Vec<String> = match o.get("orderBy") {
            None => Vec::new(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(other) => {
                return Err(NgsiError::bad_data(format!(
                    "ordering.orderBy must be a list of strings, not {other}"
                ))
                .into())
            }
        };
        if keys.iter().any(|k| k.contains(";dist")) && o.get("coordinates").is_none() {
            return Err(NgsiError::bad_data("distance ordering needs ordering.coordinates").into());
        }
        if !keys.is_empty() {
            extra.push(("orderBy".into(), keys.join(",")));
        }
    }
    if let Some(g) = m.get("geoQ") {
        if !g.is_object() {
            return Err(NgsiError::bad_data("geoQ must be an object").into());
        }
        if g.get("geometry").is_some_and(|x| !x.is_string()) {
            return Err(NgsiError::bad_data("geoQ.geometry must be a string").into());
        }
        if g.get("coordinates")
            .is_some_and(|x| !(x.is_array() || x.is_string()))
        {
            return Err(NgsiError::bad_data("geoQ.coordinates must be an array").into());
        }
        let get = |k: &str| {
            g.get(k).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        for (k, name) in [
            ("georel", "georel"),
            ("geometry", "geometry"),
            ("coordinates", "coordinates"),
            ("geoproperty", "geoproperty"),
        ] {
            if let Some(v) = get(k) {
                extra.push((name.into(), v));
            }
        }
    }
    p = p.with(extra);
    let ctx = b.context.clone();
    crate::entities::run_query(&st, &h, p, ctx, accept).await
}
