//! Discovery (clause 5.7.5–5.7.10): `/types`, `/types/{type}`, `/attributes`,
//! `/attributes/{attr}`, computed from the tenant's current entities.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dosi_ngsi::query::EntityFilter;
use dosi_ngsi::NgsiError;
use dosi_store::Page;
use serde_json::{json, Value};

use crate::problem::ApiResult;
use crate::req::Read;
use crate::state::AppState;

#[derive(Default)]
struct TypeInfo {
    count: usize,
    attrs: BTreeMap<String, BTreeSet<&'static str>>,
}

#[derive(Default)]
struct AttrInfo {
    count: usize,
    kinds: BTreeSet<&'static str>,
    types: BTreeSet<String>,
}

async fn scan(
    st: &AppState,
    tenant: &dosi_ngsi::TenantId,
) -> ApiResult<(BTreeMap<String, TypeInfo>, BTreeMap<String, AttrInfo>)> {
    let all = st
        .broker
        .query(tenant, &EntityFilter::default(), Page::ALL)
        .await?;
    let mut types: BTreeMap<String, TypeInfo> = BTreeMap::new();
    let mut attrs: BTreeMap<String, AttrInfo> = BTreeMap::new();
    for e in &all.entities {
        for t in &e.types {
            let ti = types.entry(t.to_string()).or_default();
            ti.count += 1;
            for (name, inst) in &e.attrs {
                let set = ti.attrs.entry(name.to_string()).or_default();
                for a in inst {
                    set.insert(a.kind.name());
                }
            }
        }
        for (name, inst) in &e.attrs {
            let ai = attrs.entry(name.to_string()).or_default();
            ai.count += inst.len();
            for a in inst {
                ai.kinds.insert(a.kind.name());
            }
            for t in &e.types {
                ai.types.insert(t.to_string());
            }
        }
    }
    Ok((types, attrs))
}

fn list_id(kind: &str) -> String {
    format!("urn:ngsi-ld:{kind}:{}", uuid::Uuid::new_v4().simple())
}

/// GET /types
pub async fn types(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let r = Read::new(&st, &h, q.as_deref(), &["details", "local", "via"]).await?;
    let ctx = &r.ctx;
    let (types, _) = scan(&st, &r.tenant).await?;
    let body = if r.params.flag("details")? {
        Value::Array(
            types
                .iter()
                .map(|(t, ti)| {
                    json!({
                        "id": t,
                        "type": "EntityType",
                        "typeName": ctx.compact_iri(t),
                        "attributeNames": ti.attrs.keys().map(|a| ctx.compact_iri(a)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    } else {
        json!({
            "id": list_id("EntityTypeList"),
            "type": "EntityTypeList",
            "typeList": types.keys().map(|t| ctx.compact_iri(t)).collect::<Vec<_>>(),
        })
    };
    Ok(r.reply(body))
}

/// GET /types/{type}
pub async fn type_info(
    State(st): State<AppState>,
    Path(ty): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let r = Read::new(&st, &h, q.as_deref(), &["local", "via"]).await?;
    let ctx = &r.ctx;
    let iri = ctx.expand_term(&ty);
    let (types, _) = scan(&st, &r.tenant).await?;
    let ti = types
        .get(&iri)
        .ok_or_else(|| NgsiError::not_found(format!("no entity of type {ty} exists")))?;
    let body = json!({
        "id": iri,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact_iri(&iri),
        "entityCount": ti.count,
        "attributeDetails": ti.attrs.iter().map(|(a, kinds)| json!({
            "id": a,
            "type": "Attribute",
            "attributeName": ctx.compact_iri(a),
            "attributeTypes": kinds.iter().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    Ok(r.reply(body))
}

/// GET /attributes
pub async fn attributes(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let r = Read::new(&st, &h, q.as_deref(), &["details", "local", "via"]).await?;
    let ctx = &r.ctx;
    let (_, attrs) = scan(&st, &r.tenant).await?;
    let body = if r.params.flag("details")? {
        Value::Array(
            attrs
                .iter()
                .map(|(a, ai)| {
                    json!({
                        "id": a,
                        "type": "Attribute",
                        "attributeName": ctx.compact_iri(a),
                        "typeNames": ai.types.iter().map(|t| ctx.compact_iri(t)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    } else {
        json!({
            "id": list_id("AttributeList"),
            "type": "AttributeList",
            "attributeList": attrs.keys().map(|a| ctx.compact_iri(a)).collect::<Vec<_>>(),
        })
    };
    Ok(r.reply(body))
}

/// GET /attributes/{attr}
pub async fn attribute_info(
    State(st): State<AppState>,
    Path(attr): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> ApiResult<Response> {
    let r = Read::new(&st, &h, q.as_deref(), &["local", "via"]).await?;
    let ctx = &r.ctx;
    let iri = ctx.expand_term(&attr);
    let (_, attrs) = scan(&st, &r.tenant).await?;
    let ai = attrs
        .get(&iri)
        .ok_or_else(|| NgsiError::not_found(format!("no entity has attribute {attr}")))?;
    let body = json!({
        "id": iri,
        "type": "Attribute",
        "attributeName": ctx.compact_iri(&iri),
        "attributeCount": ai.count,
        "attributeTypes": ai.kinds.iter().collect::<Vec<_>>(),
        "typeNames": ai.types.iter().map(|t| ctx.compact_iri(t)).collect::<Vec<_>>(),
    });
    Ok(r.reply(body))
}
