//! The JSON-LD context store (clause 5.13): Hosted contexts added by users,
//! Cached remote contexts, and ImplicitlyCreated ones from inline `@context`s;
//! plus the cached processing of a request's context into an active context.
//!
//! Remote contexts are fetched with a timeout; core-context URLs are never
//! fetched: the core context is built in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dosi_jsonld::{is_core_context_url, ActiveContext, ContextLoader};
use dosi_ngsi::{ErrorKind, NgsiError, Result, TenantId, Timestamp};
use parking_lot::RwLock;
use serde_json::{json, Value};

/// How a context came to be in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextKind {
    /// Added with `POST /jsonldContexts`; served by dosi.
    Hosted,
    /// Fetched from its URL and kept.
    Cached,
    /// Created from an inline `@context` object in a request.
    ImplicitlyCreated,
}

impl ContextKind {
    fn name(self) -> &'static str {
        match self {
            Self::Hosted => "Hosted",
            Self::Cached => "Cached",
            Self::ImplicitlyCreated => "ImplicitlyCreated",
        }
    }
    /// Parses a `kind` query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Hosted" | "hosted" => Some(Self::Hosted),
            "Cached" | "cached" => Some(Self::Cached),
            "ImplicitlyCreated" | "implicitlycreated" => Some(Self::ImplicitlyCreated),
            _ => None,
        }
    }
}

/// One stored context.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// The URL it is known by.
    pub url: String,
    /// The local id (used in `/jsonldContexts/{id}`).
    pub local_id: String,
    /// How it came here.
    pub kind: ContextKind,
    /// When it was stored.
    pub created: Timestamp,
    /// When it was last used.
    pub last_usage: Option<Timestamp>,
    /// How often it was used.
    pub hits: u64,
    /// The document (`{"@context": ...}`).
    pub document: Arc<Value>,
    /// The tenant a Hosted context belongs to.
    pub tenant: TenantId,
}

impl ContextEntry {
    /// The `details=true` representation.
    pub fn details(&self) -> Value {
        let mut v = json!({
            "URL": self.url,
            "localId": self.local_id,
            "kind": self.kind.name(),
            "timestamp": self.created.to_iso(),
        });
        if self.kind == ContextKind::Cached {
            v["lastUsage"] = json!(self.last_usage.unwrap_or(self.created).to_iso());
            v["numberOfHits"] = json!(self.hits);
        }
        if self.kind != ContextKind::Hosted {
            v["lastUsage"] = json!(self.last_usage.unwrap_or(self.created).to_iso());
            v["numberOfHits"] = json!(self.hits);
        }
        v
    }
}

/// Context store and processed-context cache.
pub struct Contexts {
    base_url: String,
    entries: RwLock<Vec<ContextEntry>>,
    active: RwLock<HashMap<String, ActiveContext>>,
    http: reqwest::Client,
}

impl Contexts {
    /// A store whose hosted contexts are served under `base_url`
    /// (e.g. `http://host:1026/ngsi-ld/v1/jsonldContexts`).
    pub fn new(base_url: String, fetch_timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(fetch_timeout)
            .connect_timeout(fetch_timeout)
            .build()
            .unwrap_or_default();
        Self {
            base_url,
            entries: RwLock::new(Vec::new()),
            active: RwLock::new(HashMap::new()),
            http,
        }
    }

    /// Processes a request's context (`None` = core only), using the cache.
    pub async fn resolve(&self, tenant: &TenantId, local: Option<&Value>) -> Result<ActiveContext> {
        let Some(local) = local else {
            return Ok(ActiveContext::core());
        };
        let key = format!("{}\u{1}{}", tenant.as_str(), local);
        self.touch_urls(tenant, local);
        if let Some(a) = self.active.read().get(&key) {
            return Ok(a.clone());
        }
        let loader = Loader {
            store: self,
            tenant,
        };
        let active = ActiveContext::process(local, &loader).await?;
        if let Value::Object(_) = local {
            self.implicit(tenant, local);
        }
        let mut cache = self.active.write();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, active.clone());
        Ok(active)
    }

    /// Counts a use of every stored context named in `local`.
    fn touch_urls(&self, tenant: &TenantId, local: &Value) {
        let mut urls = Vec::new();
        collect_urls(local, &mut urls);
        if urls.is_empty() {
            return;
        }
        let now = Timestamp::now();
        let mut entries = self.entries.write();
        for e in entries.iter_mut() {
            if urls.contains(&e.url.as_str())
                && (e.kind != ContextKind::Hosted || e.tenant == *tenant)
            {
                e.hits += 1;
                e.last_usage = Some(now);
            }
        }
    }

    fn implicit(&self, tenant: &TenantId, local: &Value) {
        let doc = Arc::new(json!({ "@context": local }));
        let mut entries = self.entries.write();
        if entries
            .iter()
            .any(|e| e.kind == ContextKind::ImplicitlyCreated && *e.document == *doc)
        {
            return;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        entries.push(ContextEntry {
            url: format!("{}/{}", self.base_url, id),
            local_id: id,
            kind: ContextKind::ImplicitlyCreated,
            created: Timestamp::now(),
            last_usage: None,
            hits: 0,
            document: doc,
            tenant: tenant.clone(),
        });
    }

    /// Adds a Hosted context (`POST /jsonldContexts`); returns its entry.
    pub async fn add_hosted(&self, tenant: &TenantId, doc: Value) -> Result<ContextEntry> {
        let ctx = doc.get("@context").ok_or_else(|| {
            NgsiError::bad_data("the body must be a JSON object with an @context member")
        })?;
        if !(ctx.is_object() || ctx.is_array() || ctx.is_string()) {
            return Err(NgsiError::bad_data(
                "@context must be an object, an array or a URL",
            ));
        }
        // Validate it as JSON-LD before keeping it.
        let loader = Loader {
            store: self,
            tenant,
        };
        ActiveContext::process(ctx, &loader).await.map_err(|e| {
            if e.kind == ErrorKind::LdContextNotAvailable {
                e
            } else {
                NgsiError::bad_data(format!("invalid @context: {}", e.detail))
            }
        })?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let entry = ContextEntry {
            url: format!("{}/{}", self.base_url, id),
            local_id: id,
            kind: ContextKind::Hosted,
            created: Timestamp::now(),
            last_usage: None,
            hits: 0,
            document: Arc::new(doc),
            tenant: tenant.clone(),
        };
        self.entries.write().push(entry.clone());
        Ok(entry)
    }

    /// Lists the contexts a tenant can see, optionally of one kind.
    pub fn list(&self, tenant: &TenantId, kind: Option<ContextKind>) -> Vec<ContextEntry> {
        self.entries
            .read()
            .iter()
            .filter(|e| visible(e, tenant) && kind.is_none_or(|k| e.kind == k))
            .cloned()
            .collect()
    }

    /// Finds a context by local id or URL.
    pub fn find(&self, tenant: &TenantId, id: &str) -> Option<ContextEntry> {
        self.entries
            .read()
            .iter()
            .find(|e| visible(e, tenant) && (e.local_id == id || e.url == id))
            .cloned()
    }

    /// Deletes (or with `reload`, re-fetches) a context.
    pub async fn delete(&self, tenant: &TenantId, id: &str, reload: bool) -> Result<()> {
        if is_core_context_url(id) {
            return Err(NgsiError::bad_data("the core @context cannot be deleted"));
        }
        let entry = self
            .find(tenant, id)
            .ok_or_else(|| NgsiError::not_found(format!("no @context with id {id}")))?;
        if reload {
            if entry.kind != ContextKind::Cached {
                return Err(NgsiError::bad_data(format!(
                    "only Cached contexts can be reloaded; {id} is {}",
                    entry.kind.name()
                )));
            }
            let doc = self.fetch(&entry.url).await?;
            let mut entries = self.entries.write();
            if let Some(e) = entries.iter_mut().find(|e| e.url == entry.url) {
                e.document = doc;
                e.created = Timestamp::now();
            }
        } else {
            self.entries.write().retain(|e| e.url != entry.url);
        }
        self.active.write().clear();
        Ok(())
    }

    async fn fetch(&self, url: &str) -> Result<Arc<Value>> {
        let unavailable = |why: String| {
            NgsiError::new(
                ErrorKind::LdContextNotAvailable,
                format!("@context {url} could not be retrieved: {why}"),
            )
        };
        let resp = self
            .http
            .get(url)
            .header("Accept", "application/ld+json, application/json")
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("not JSON: {e}")))?;
        if v.get("@context").is_none() {
            return Err(unavailable("the document has no @context member".into()));
        }
        Ok(Arc::new(v))
    }

    async fn load(&self, tenant: &TenantId, url: &str) -> Result<Arc<Value>> {
        if let Some(e) = self.find(tenant, url) {
            return Ok(e.document);
        }
        let doc = self.fetch(url).await?;
        let mut entries = self.entries.write();
        if !entries.iter().any(|e| e.url == url) {
            entries.push(ContextEntry {
                url: url.to_string(),
                local_id: uuid::Uuid::new_v4().simple().to_string(),
                kind: ContextKind::Cached,
                created: Timestamp::now(),
                last_usage: Some(Timestamp::now()),
                hits: 1,
                document: doc.clone(),
                tenant: TenantId::default_tenant(),
            });
        }
        Ok(doc)
    }
}

fn visible(e: &ContextEntry, tenant: &TenantId) -> bool {
    e.kind != ContextKind::Hosted || e.tenant == *tenant
}

fn collect_urls<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_urls(x, out)),
        _ => {}
    }
}

struct Loader<'a> {
    store: &'a Contexts,
    tenant: &'a TenantId,
}

#[async_trait]
impl ContextLoader for Loader<'_> {
    async fn load(&self, url: &str) -> Result<Arc<Value>> {
        self.store.load(self.tenant, url).await
    }
}
