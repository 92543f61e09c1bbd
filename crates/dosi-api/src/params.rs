//! Query-string parameters of the NGSI-LD API and their translation into an
//! entity filter, a page and encoding options.

use std::collections::HashSet;

use dosi_broker::codec::encode::{EncodeOptions, Format};
use dosi_jsonld::ActiveContext;
use dosi_ngsi::query::{EntityFilter, GeoQuery, ScopeQ, TypeExpr, Q};
use dosi_ngsi::{EntityId, ErrorKind, NgsiError, Result};
use percent_encoding::percent_decode_str;
use regex::RegexBuilder;

/// Raw query parameters, percent-decoded (`+` is kept as `+`).
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let mut out = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Form encoding: '+' is a space ('+' itself arrives as %2B).
            let dec = |s: &str| {
                let s = s.replace('+', " ");
                percent_decode_str(&s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| {
                        NgsiError::invalid(format!("query parameter '{s}' is not valid UTF-8"))
                    })
            };
            out.push((dec(k)?, dec(v)?));
        }
        Ok(Self(out))
    }
    /// Parameters from name/value pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
    /// The name/value pairs, in request order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
    /// The value of `name` (the last one if repeated).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Comma-separated values of `name`, empty entries dropped.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|v| {
            v.split([',', '|'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
    /// Like [`Params::list`] but an empty entry (`a,,b`, a trailing comma) is an error.
    pub fn strict_list(&self, name: &str) -> Result<Option<Vec<String>>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let items: Vec<String> = v.split([',', '|']).map(|s| s.trim().to_string()).collect();
        if items.iter().any(String::is_empty) {
            return Err(NgsiError::bad_data(format!("{name}: empty entry in '{v}'")));
        }
        Ok(Some(items))
    }
    /// Rejects parameters not in `allowed` (clause 6.3.x: unknown parameters are InvalidRequest).
    pub fn allow(&self, allowed: &[&str]) -> Result<()> {
        for (k, _) in &self.0 {
            if !allowed.contains(&k.as_str()) {
                return Err(NgsiError::invalid(format!("unknown query parameter '{k}'")));
            }
        }
        Ok(())
    }
    /// The parameters re-encoded as a query string, sorted by name, with `offset` set to `offset`.
    pub fn with_offset(&self, offset: usize) -> String {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| k != "offset")
            .cloned()
            .collect();
        pairs.push(("offset".into(), offset.to_string()));
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
    /// True if `options` (or `format`) contains `opt`.
    pub fn has_option(&self, opt: &str) -> bool {
        self.list("options")
            .is_some_and(|l| l.iter().any(|o| o == opt))
    }
    /// A boolean parameter (`true` / `false`).
    pub fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(NgsiError::bad_data(format!(
                "{name} must be true or false, not '{v}'"
            ))),
        }
    }
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | '"' | '#' | '%' | '&' | '+' | ',' | '<' | '>' | '=' | '?' | '[' | ']' | '{'
            | '}' | '|' | '\\' | '^' | '`' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Parameters every entity read understands.
pub const READ_PARAMS: &[&str] = &[
    "attrs",
    "pick",
    "omit",
    "options",
    "format",
    "lang",
    "join",
    "joinLevel",
    "geometryProperty",
    "datasetId",
    "local",
    "type",
    "containedBy",
    "expandValues",
    "entityMap",
    "via",
    "csf",
];
/// Parameters of entity queries on top of [`READ_PARAMS`].
pub const QUERY_PARAMS: &[&str] = &[
    "id",
    "idPattern",
    "q",
    "scopeQ",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "limit",
    "offset",
    "count",
    "orderBy",
    "orderDirection",
    "collapse",
    "doNotCompact",
    "lastN",
];

/// Output format and projection options from `format`, `options`, `attrs`,
/// `pick`, `omit`, `lang`.
pub fn encode_options(p: &Params, ctx: &ActiveContext) -> Result<EncodeOptions> {
    let mut format = Format::Normalized;
    let mut sys_attrs = false;
    for o in p.list("options").unwrap_or_default() {
        match o.as_str() {
            "keyValues" | "simplified" => format = Format::Simplified,
            "concise" => format = Format::Concise,
            "normalized" => format = Format::Normalized,
            "sysAttrs" => sys_attrs = true,
            // Options of other operations are tolerated here.
            "noOverwrite" | "update" | "replace" | "temporalValues" | "aggregatedValues"
            | "audit" | "entityMap" | "splitEntities" | "noDelete" => {}
            other => return Err(NgsiError::invalid(format!("unknown option '{other}'"))),
        }
    }
    if let Some(f) = p.get("format") {
        format = match f {
            "keyValues" | "simplified" => Format::Simplified,
            "concise" => Format::Concise,
            "normalized" => Format::Normalized,
            other => return Err(NgsiError::invalid(format!("unknown format '{other}'"))),
        };
    }
    let attrs = p
        .strict_list("attrs")?
        .map(|l| l.into_iter().map(|n| ctx.expand_term(&n)).collect());
    let pick = p
        .get("pick")
        .map(|v| projection(v, ctx))
        .transpose()?
        .map(|pr| pr.members);
    // `omit=rel{x}` omits x from the linked entities, not rel itself.
    let omit = p
        .get("omit")
        .map(|v| projection(v, ctx))
        .transpose()?
        .map(|pr| {
            pr.members
                .into_iter()
                .filter(|m| !pr.nested.contains_key(m))
                .collect()
        });
    if pick.is_some() && omit.is_some() {
        return Err(NgsiError::bad_data("pick and omit cannot be used together"));
    }
    if (pick.is_some() || omit.is_some()) && attrs.is_some() {
        return Err(NgsiError::bad_data(
            "attrs cannot be combined with pick or omit",
        ));
    }
    let datasets = p.strict_list("datasetId")?.map(|l| {
        l.into_iter()
            .map(|d| if d == "@none" { None } else { Some(d) })
            .collect()
    });
    Ok(EncodeOptions {
        format,
        sys_attrs,
        attrs,
        pick,
        omit,
        lang: p.get("lang").map(String::from),
        datasets,
    })
}

/// The entity filter of a query from its parameters (clause 6.4.3.2).
pub fn filter(p: &Params, ctx: &ActiveContext) -> Result<EntityFilter> {
    let exp = |s: &str| ctx.expand_term(s);
    let mut f = EntityFilter::default();
    if let Some(ids) = p.list("id") {
        f.ids = ids
            .iter()
            .map(|i| EntityId::parse(i))
            .collect::<Result<_>>()?;
    }
    // An explicit id list takes precedence over idPattern (clause 5.7.2).
    if let Some(pat) = p.get("idPattern").filter(|_| f.ids.is_empty()) {
        if has_stacked_quantifiers(pat) {
            return Err(NgsiError::bad_data(format!(
                "idPattern '{pat}' has a quantifier with nothing to repeat"
            )));
        }
        let re = RegexBuilder::new(pat)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                NgsiError::bad_data(format!("idPattern is not a valid regular expression: {e}"))
            })?;
        f.id_pattern = Some(re);
    }
    if let Some(t) = p.get("type").filter(|t| *t != "*") {
        let mut te = TypeExpr::parse(t)?;
        te.expand_names(&exp);
        f.types = Some(te);
    }
    if let Some(a) = p.list("attrs") {
        for n in &a {
            dosi_broker::codec::decode::check_name(n, "attrs")?;
        }
        if let Some(bad) = a
            .iter()
            .find(|n| matches!(n.as_str(), "id" | "type" | "@id" | "@type"))
        {
            return Err(NgsiError::bad_data(format!(
                "attrs: '{bad}' is not an attribute name"
            )));
        }
        f.attrs = a.iter().map(|n| ctx.expand_term(n).into()).collect();
    }
    if let Some(q) = p.get("q") {
        if q.contains('{') {
            return Err(NgsiError::bad_data(
                "q: linked-entity terms (rel{...}) are not supported by this broker",
            ));
        }
        let mut q = Q::parse(q)?;
        q.expand_names(&exp);
        f.q = Some(q);
    }
    if let Some(s) = p.get("scopeQ") {
        f.scope_q = Some(ScopeQ::parse(s)?);
    }
    f.geo_q = geo(p, ctx)?;
    Ok(f)
}

/// The geo-query from `georel`, `geometry`, `coordinates`, `geoproperty`.
pub fn geo(p: &Params, ctx: &ActiveContext) -> Result<Option<GeoQuery>> {
    let (rel, geom, coords) = (p.get("georel"), p.get("geometry"), p.get("coordinates"));
    match (rel, geom, coords) {
        (None, None, None) => Ok(None),
        (Some(r), Some(g), Some(c)) => {
            let mut q = GeoQuery::parse(r, g, c)?;
            if let Some(gp) = p.get("geoproperty") {
                q.geoproperty = gp.to_string();
            }
            q.expand_names(&|s| ctx.expand_term(s));
            Ok(Some(q))
        }
        _ => Err(NgsiError::bad_data(
            "a geo-query needs all of georel, geometry and coordinates",
        )),
    }
}

/// `limit`, `offset` and `count`.
pub fn page(p: &Params, default_limit: usize, max_limit: usize) -> Result<dosi_store::Page> {
    let num = |name: &str| -> Result<Option<usize>> {
        match p.get(name) {
            None => Ok(None),
            Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                NgsiError::bad_data(format!("{name} must be a non-negative integer, not '{v}'"))
            }),
        }
    };
    let count = p.flag("count")?;
    let limit = num("limit")?.unwrap_or(default_limit);
    if limit > max_limit {
        return Err(NgsiError::new(
            ErrorKind::TooManyResults,
            format!("limit {limit} is above the maximum of {max_limit}"),
        ));
    }
    if limit == 0 && !count {
        return Err(NgsiError::bad_data(
            "limit=0 is only allowed with count=true",
        ));
    }
    Ok(dosi_store::Page {
        offset: num("offset")?.unwrap_or(0),
        limit,
        count,
    })
}

impl Params {
    /// These parameters plus `extra` (later ones win).
    pub fn with(mut self, extra: Vec<(String, String)>) -> Self {
        self.0.extend(extra);
        self
    }
}

/// A `pick`/`omit` projection (clause 4.21): members of this entity and, with
/// `rel{...}`, projections of the entities linked through `rel` (for joins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// Expanded attribute names, or `id` / `type` / `scope`.
    pub members: HashSet<String>,
    /// Projections of linked entities by relationship (expanded name).
    pub nested: std::collections::HashMap<String, Projection>,
}

/// Parses `a,b|c,rel{id,name,rel2{x}}`.
pub fn projection(text: &str, ctx: &ActiveContext) -> Result<Projection> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let p = projection_at(&chars, &mut pos, ctx, 0)?;
    if pos != chars.len() {
        return Err(NgsiError::bad_data(format!(
            "projection '{text}': unexpected '{}' at {pos}",
            chars[pos]
        )));
    }
    Ok(p)
}

fn projection_at(
    c: &[char],
    pos: &mut usize,
    ctx: &ActiveContext,
    depth: usize,
) -> Result<Projection> {
    if depth > 8 {
        return Err(NgsiError::bad_data("projection nested too deeply"));
    }
    let mut out = Projection::default();
    loop {
        let start = *pos;
        while *pos < c.len() && !matches!(c[*pos], ',' | '|' | '{' | '}') {
            *pos += 1;
        }
        let name: String = c[start..*pos].iter().collect::<String>().trim().to_string();
        if name.is_empty() {
            return Err(NgsiError::bad_data(format!(
                "projection: empty member at {start}"
            )));
        }
        dosi_broker::codec::decode::check_name(&name, "pick/omit")?;
        let key = match name.as_str() {
            "id" | "type" | "scope" => name.clone(),
            _ => ctx.expand_term(&name),
        };
        if *pos < c.len() && c[*pos] == '{' {
            *pos += 1;
            let inner = projection_at(c, pos, ctx, depth + 1)?;
            if *pos >= c.len() || c[*pos] != '}' {
                return Err(NgsiError::bad_data("projection: missing '}'"));
            }
            *pos += 1;
            out.nested.insert(key.clone(), inner);
        }
        out.members.insert(key);
        if *pos < c.len() && matches!(c[*pos], ',' | '|') {
            *pos += 1;
            continue;
        }
        return Ok(out);
    }
}

/// True for patterns like `a**` or `x+*` (POSIX ERE, which NGSI-LD names,
/// rejects a quantifier applied to a quantifier; the regex crate accepts it).
fn has_stacked_quantifiers(pat: &str) -> bool {
    let mut prev_quant = false;
    let mut escaped = false;
    for c in pat.chars() {
        if escaped {
            escaped = false;
            prev_quant = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                prev_quant = false;
            }
            '*' | '+' => {
                if prev_quant {
                    return true;
                }
                prev_quant = true;
            }
            _ => prev_quant = false,
        }
    }
    false
}

impl Projection {
    /// How many levels of linked entities the projection reaches into.
    pub fn depth(&self) -> u32 {
        self.nested
            .values()
            .map(|n| 1 + n.depth())
            .max()
            .unwrap_or(0)
    }
}

/// System members that cannot select entities on their own.
pub const SYSTEM_MEMBERS: &[&str] = &["createdAt", "modifiedAt", "deletedAt", "observedAt"];
