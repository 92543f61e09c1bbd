//! `dosi export`: a time range of attribute history, as CSV or NDJSON, read
//! from a running server through the NGSI-LD temporal API.
//!
//! It is an HTTP client on purpose: it works against a remote server and
//! never touches the server's files. Entities are paged with `limit`/`offset`;
//! inside an entity page the server's instance paging (clause 6.3.10: `206`
//! with `Content-Range: date-time <start>-<end>/*`, every attribute cut at
//! `<end>`) is followed with `timeAt = end + 1 µs` until the page is done.
//!
//! Output: one row (CSV) or line (NDJSON) per attribute instance. Each
//! server answer is written entity by entity and attribute by attribute in
//! time order, so an attribute's instances come out in time order even when
//! an entity's history spans several instance pages.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use dosi_ngsi::Timestamp;
use serde_json::{Map, Value};

/// Flags of `dosi export`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:1026")]
    pub url: String,
    /// Start of the range (RFC 3339, inclusive).
    #[arg(long)]
    pub from: String,
    /// End of the range (RFC 3339, exclusive).
    #[arg(long)]
    pub to: String,
    /// Entity type(s), comma-separated (`type`).
    #[arg(long = "type")]
    pub entity_type: Option<String>,
    /// Attributes to export, comma-separated (`attrs`); all when absent.
    #[arg(long)]
    pub attrs: Option<String>,
    /// Regular expression on entity ids (`idPattern`).
    #[arg(long)]
    pub id_pattern: Option<String>,
    /// NGSI-LD query selecting the entities (`q`).
    #[arg(long)]
    pub q: Option<String>,
    /// Tenant (sent as `NGSILD-Tenant`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Which time the range applies to.
    #[arg(long, value_enum, default_value_t = TimeProperty::Observed)]
    pub timeproperty: TimeProperty,
    /// JSON-LD context URL (sent in the `Link` header).
    #[arg(long)]
    pub context: Option<String>,
    /// Output format [default: from the output file's extension, else ndjson].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Output file [default: stdout].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Entities per request (`limit`, at most 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_entities: u32,
}

/// Output format of `dosi export`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// `csv` for a `.csv` file, `ndjson` otherwise.
    fn for_path(path: Option<&Path>) -> Self {
        match path.and_then(Path::extension).and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Self::Csv,
            _ => Self::Ndjson,
        }
    }
}

/// The `timeproperty` of the temporal query.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeProperty {
    /// `observedAt`.
    #[value(name = "observedAt")]
    Observed,
    /// `createdAt`.
    #[value(name = "createdAt")]
    Created,
    /// `modifiedAt`.
    #[value(name = "modifiedAt")]
    Modified,
}

impl TimeProperty {
    fn member(self) -> &'static str {
        match self {
            Self::Observed => "observedAt",
            Self::Created => "createdAt",
            Self::Modified => "modifiedAt",
        }
    }
}

/// The columns, in order (CSV header and NDJSON keys).
const COLUMNS: [&str; 9] = [
    "entity_id",
    "entity_type",
    "attribute",
    "dataset_id",
    "observed_at",
    "created_at",
    "value",
    "unit_code",
    "instance_id",
];

/// Members of a temporal entity that are not attributes.
const ENTITY_MEMBERS: [&str; 6] = [
    "id",
    "type",
    "@context",
    "createdAt",
    "modifiedAt",
    "deletedAt",
];

/// Members holding an attribute instance's value, by attribute type.
const VALUE_MEMBERS: [&str; 7] = [
    "value",
    "object",
    "languageMap",
    "vocab",
    "json",
    "valueList",
    "objectList",
];

/// Runs `dosi export`.
pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let from = Timestamp::parse(&args.from).map_err(|e| anyhow!("--from: {}", e.detail))?;
    let to = Timestamp::parse(&args.to).map_err(|e| anyhow!("--to: {}", e.detail))?;
    if from >= to {
        bail!("--from ({}) must be before --to ({})", args.from, args.to);
    }
    let format = args
        .format
        .unwrap_or_else(|| Format::for_path(args.output.as_deref()));
    let counters = Arc::new(Counters::default());
    let inner: Box<dyn Write + Send> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let mut sink = Sink::new(inner, format, counters.clone())?;
    // A live line on stderr only when a person watches it, and not over
    // rows printed to the same terminal.
    let live = std::io::stderr().is_terminal()
        && (args.output.is_some() || !std::io::stdout().is_terminal());
    let progress = Progress::start(counters.clone(), live);
    let exporter = Exporter::new(&args, from, to)?;
    let result = exporter.run(&mut sink).await;
    let flushed = sink.finish();
    let elapsed = progress.stop().await;
    result?;
    flushed.context("writing the output")?;
    let instances = counters.instances.load(Ordering::Relaxed);
    eprintln!(
        "exported {} entities, {} instances, {} in {:.1} s ({:.0} instances/s)",
        counters.entities.load(Ordering::Relaxed),
        instances,
        human_bytes(counters.bytes.load(Ordering::Relaxed)),
        elapsed.as_secs_f64(),
        instances as f64 / elapsed.as_secs_f64().max(1e-6),
    );
    Ok(())
}

/// The requests of one export.
struct Exporter {
    client: reqwest::Client,
    endpoint: String,
    args: ExportArgs,
    from: Timestamp,
    to: Timestamp,
    total: Option<u64>,
}

/// What one answer of the server was.
struct Answer {
    entities: Vec<Value>,
    /// `Content-Range` end when the answer was cut (206).
    cut_at: Option<Timestamp>,
    total: Option<u64>,
}

impl Exporter {
    fn new(args: &ExportArgs, from: Timestamp, to: Timestamp) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            endpoint: format!(
                "{}/ngsi-ld/v1/temporal/entities",
                args.url.trim_end_matches('/')
            ),
            args: args.clone(),
            from,
            to,
            total: None,
        })
    }

    async fn run(mut self, sink: &mut Sink) -> anyhow::Result<()> {
        let limit = self.args.page_entities as usize;
        let mut offset = 0usize;
        loop {
            let first = self.page(offset, self.from, None).await?;
            if let Some(t) = first.total {
                self.total = Some(t);
                sink.counters.total.store(t, Ordering::Relaxed);
            }
            let n = first.entities.len();
            if n == 0 {
                return Ok(());
            }
            sink.counters
                .entities
                .fetch_add(n as u64, Ordering::Relaxed);
            // The continuation pins the page's entities by id: with `offset`
            // alone the page would shift as entities whose history ends
            // before the cut drop out of the narrower window.
            let ids: Vec<&str> = first
                .entities
                .iter()
                .filter_map(|e| e.get("id").and_then(Value::as_str))
                .collect();
            let pin = Pin {
                ids: ids.join(","),
                types: self.types_for_pin(&first.entities),
            };
            sink.write_answer(&first.entities, self.args.timeproperty)?;
            let mut cut = first.cut_at;
            while let Some(end) = cut {
                let next = Timestamp(end.0 + 1);
                if next >= self.to {
                    break;
                }
                let more = self.page(0, next, Some(&pin)).await?;
                sink.write_answer(&more.entities, self.args.timeproperty)?;
                cut = more.cut_at;
            }
            offset += n;
            if n < limit || self.total.is_some_and(|t| offset as u64 >= t) {
                return Ok(());
            }
        }
    }

    /// `type` for the continuation: the one asked for, else the types seen
    /// (the server needs some entity selector besides `id`; `q` is dropped
    /// because it is evaluated on the window, which the continuation narrows).
    fn types_for_pin(&self, entities: &[Value]) -> Option<String> {
        if let Some(t) = &self.args.entity_type {
            return Some(t.clone());
        }
        if self.args.attrs.is_some() || self.args.id_pattern.is_some() {
            return None;
        }
        let mut types: Vec<&str> = Vec::new();
        for e in entities {
            let list = match e.get("type") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for t in list {
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
        Some(types.join(","))
    }

    /// One request: an entity page at `offset` from `time_at`, or a
    /// continuation of the pinned entities.
    async fn page(
        &self,
        offset: usize,
        time_at: Timestamp,
        pin: Option<&Pin>,
    ) -> anyhow::Result<Answer> {
        let a = &self.args;
        let mut query: Vec<(&str, String)> = vec![
            ("timerel", "between".into()),
            ("timeAt", time_at.to_iso()),
            ("endTimeAt", self.to.to_iso()),
            ("timeproperty", a.timeproperty.member().into()),
            ("options", "sysAttrs".into()),
            ("limit", a.page_entities.to_string()),
        ];
        let mut opt = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                query.push((k, v.clone()));
            }
        };
        opt("attrs", &a.attrs);
        opt("idPattern", &a.id_pattern);
        match pin {
            None => {
                opt("type", &a.entity_type);
                opt("q", &a.q);
                query.push(("offset", offset.to_string()));
                query.push(("count", "true".into()));
            }
            Some(p) => {
                opt("type", &p.types);
                query.push(("id", p.ids.clone()));
            }
        }
        let mut req = self
            .client
            .get(&self.endpoint)
            .query(&query)
            .header("Accept", "application/json");
        if let Some(t) = &a.tenant {
            req = req.header("NGSILD-Tenant", t);
        }
        if let Some(c) = &a.context {
            req = req.header(
                "Link",
                format!(
                    "<{c}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
                ),
            );
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("GET {}", self.endpoint))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer of GET {}", self.endpoint))?;
        if !status.is_success() {
            bail!("the server answered {status}: {}", problem_text(&body));
        }
        let entities = match serde_json::from_slice(&body) {
            Ok(Value::Array(list)) => list,
            Ok(_) => bail!("the server's answer is not a JSON array"),
            Err(e) => bail!("the server's answer is not JSON: {e}"),
        };
        let cut_at = if status == reqwest::StatusCode::PARTIAL_CONTENT {
            let range = headers
                .get("Content-Range")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow!("206 without a Content-Range header"))?;
            let (_, end) = parse_content_range(range)
                .ok_or_else(|| anyhow!("unreadable Content-Range '{range}'"))?;
            if end < time_at {
                bail!("Content-Range '{range}' ends before the window starts");
            }
            Some(end)
        } else {
            None
        };
        let total = headers
            .get("NGSILD-Results-Count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Answer {
            entities,
            cut_at,
            total,
        })
    }
}

/// The entities of a page, for its continuation requests.
struct Pin {
    ids: String,
    types: Option<String>,
}

/// The `title`/`detail` of a problem details body, or the body itself.
fn problem_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => {
            let get = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
            let mut s = String::new();
            for part in [get("title"), get("detail")] {
                if !part.is_empty() {
                    if !s.is_empty() {
                        s.push_str(": ");
                    }
                    s.push_str(part);
                }
            }
            if !get("type").is_empty() {
                let _ = write!(s, " ({})", get("type"));
            }
            s
        }
        _ => String::from_utf8_lossy(body).chars().take(500).collect(),
    }
}

/// `date-time <start>-<end>/<size>` → (start, end).
fn parse_content_range(v: &str) -> Option<(Timestamp, Timestamp)> {
    let v = v.trim().strip_prefix("date-time")?.trim();
    let v = v.rsplit_once('/').map_or(v, |(r, _)| r);
    // Both times contain '-': take the split where both halves parse.
    v.match_indices('-').find_map(|(i, _)| {
        let a = Timestamp::parse(v[..i].trim()).ok()?;
        let b = Timestamp::parse(v[i + 1..].trim()).ok()?;
        Some((a, b))
    })
}

/// One attribute instance, as exported.
struct Row<'a> {
    entity_id: &'a str,
    entity_type: &'a Value,
    attribute: &'a str,
    dataset_id: Option<&'a str>,
    observed_at: Option<&'a str>,
    created_at: Option<&'a str>,
    value: &'a Value,
    unit_code: Option<&'a str>,
    instance_id: Option<&'a str>,
    /// The `timeproperty` member, the sort key.
    time: Option<&'a str>,
}

/// The rows of one temporal entity: attribute by attribute, each in time
/// order of `tp`.
fn rows(entity: &Value, tp: TimeProperty) -> Vec<Row<'_>> {
    let Some(m) = entity.as_object() else {
        return Vec::new();
    };
    let id = m.get("id").and_then(Value::as_str).unwrap_or("");
    let ty = m.get("type").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    for (name, v) in m {
        if ENTITY_MEMBERS.contains(&name.as_str()) {
            continue;
        }
        let instances: Vec<&Map<String, Value>> = match v {
            Value::Array(list) => list.iter().filter_map(Value::as_object).collect(),
            Value::Object(o) => vec![o],
            _ => continue,
        };
        let start = out.len();
        for i in instances {
            let s = |k: &str| i.get(k).and_then(Value::as_str);
            let value = VALUE_MEMBERS
                .iter()
                .find_map(|k| i.get(*k))
                .unwrap_or(&Value::Null);
            out.push(Row {
                entity_id: id,
                entity_type: ty,
                attribute: name,
                dataset_id: s("datasetId"),
                observed_at: s("observedAt"),
                created_at: s("createdAt"),
                value,
                unit_code: s("unitCode"),
                instance_id: s("instanceId"),
                time: s(tp.member()),
            });
        }
        out[start..].sort_by_cached_key(|r| r.time.and_then(|t| Timestamp::parse(t).ok()));
    }
    out
}

/// Counts shared with the progress line.
#[derive(Default)]
struct Counters {
    entities: AtomicU64,
    total: AtomicU64,
    instances: AtomicU64,
    bytes: AtomicU64,
}

/// The output: format, buffering, byte count.
struct Sink {
    w: std::io::BufWriter<Box<dyn Write + Send>>,
    format: Format,
    counters: Arc<Counters>,
    line: String,
}

impl Sink {
    fn new(
        w: Box<dyn Write + Send>,
        format: Format,
        counters: Arc<Counters>,
    ) -> anyhow::Result<Self> {
        let mut s = Self {
            w: std::io::BufWriter::with_capacity(1 << 16, w),
            format,
            counters,
            line: String::new(),
        };
        if format == Format::Csv {
            for (i, c) in COLUMNS.iter().enumerate() {
                if i > 0 {
                    s.line.push(',');
                }
                s.line.push_str(c);
            }
            s.line.push_str("\r\n");
            s.emit()?;
        }
        Ok(s)
    }

    fn write_answer(&mut self, entities: &[Value], tp: TimeProperty) -> anyhow::Result<()> {
        for e in entities {
            for r in rows(e, tp) {
                match self.format {
                    Format::Csv => csv_row(&mut self.line, &r),
                    Format::Ndjson => ndjson_row(&mut self.line, &r),
                }
                self.emit()?;
                self.counters.instances.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> anyhow::Result<()> {
        self.w
            .write_all(self.line.as_bytes())
            .context("writing the output")?;
        self.counters
            .bytes
            .fetch_add(self.line.len() as u64, Ordering::Relaxed);
        self.line.clear();
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// A CSV field: strings as they are, other JSON as its text.
fn text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => s.as_str().into(),
        Value::Number(n) => n.to_string().into(),
        Value::Bool(b) => b.to_string().into(),
        other => other.to_string().into(),
    }
}

/// Appends `field` with RFC 4180 quoting.
fn csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        for c in field.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

fn csv_row(out: &mut String, r: &Row) {
    let fields: [std::borrow::Cow<'_, str>; 9] = [
        r.entity_id.into(),
        text(r.entity_type),
        r.attribute.into(),
        r.dataset_id.unwrap_or("").into(),
        r.observed_at.unwrap_or("").into(),
        r.created_at.unwrap_or("").into(),
        text(r.value),
        r.unit_code.unwrap_or("").into(),
        r.instance_id.unwrap_or("").into(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

fn ndjson_row(out: &mut String, r: &Row) {
    let opt = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.into()));
    let mut m = Map::new();
    m.insert(COLUMNS[0].into(), Value::String(r.entity_id.into()));
    m.insert(COLUMNS[1].into(), r.entity_type.clone());
    m.insert(COLUMNS[2].into(), Value::String(r.attribute.into()));
    m.insert(COLUMNS[3].into(), opt(r.dataset_id));
    m.insert(COLUMNS[4].into(), opt(r.observed_at));
    m.insert(COLUMNS[5].into(), opt(r.created_at));
    m.insert(COLUMNS[6].into(), r.value.clone());
    m.insert(COLUMNS[7].into(), opt(r.unit_code));
    m.insert(COLUMNS[8].into(), opt(r.instance_id));
    out.push_str(&Value::Object(m).to_string());
    out.push('\n');
}

/// The progress report on stderr: a line rewritten in place (`\r`) on a
/// terminal, a plain line every ten seconds otherwise.
struct Progress {
    started: Instant,
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(counters: Arc<Counters>, live: bool) -> Self {
        let started = Instant::now();
        let stop = Arc::new(tokio::sync::Notify::new());
        let period = if live {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(period);
                tick.tick().await;
                let mut width = 0usize;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.notified() => break,
                    }
                    let line = status_line(&counters, started.elapsed());
                    if live {
                        let pad = width.saturating_sub(line.len());
                        width = line.len();
                        eprint!("\r{line}{:pad$}", "");
                    } else {
                        eprintln!("export: {line}");
                    }
                }
                if live && width > 0 {
                    eprint!("\r{:width$}\r", "");
                }
            }
        });
        Self {
            started,
            stop,
            task,
        }
    }

    /// Stops the report (clearing the live line); the time since the start.
    async fn stop(self) -> Duration {
        self.stop.notify_one();
        let _ = self.task.await;
        self.started.elapsed()
    }
}

fn status_line(c: &Counters, elapsed: Duration) -> String {
    let instances = c.instances.load(Ordering::Relaxed);
    let total = c.total.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let entities = if total > 0 {
        format!("{}/{total}", c.entities.load(Ordering::Relaxed))
    } else {
        c.entities.load(Ordering::Relaxed).to_string()
    };
    format!(
        "{entities} entities, {instances} instances, {}, {:.0} instances/s, {secs:.0} s",
        human_bytes(c.bytes.load(Ordering::Relaxed)),
        instances as f64 / secs.max(1e-6),
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_range() {
        let check = |v: &str, want: Option<(&str, &str)>| {
            let got = parse_content_range(v);
            let want =
                want.map(|(a, b)| (Timestamp::parse(a).unwrap(), Timestamp::parse(b).unwrap()));
            assert_eq!(got, want, "{v}");
        };
        check(
            "date-time 2020-08-01T12:03:00.000Z-2020-08-01T12:05:00.000001Z/*",
            Some(("2020-08-01T12:03:00Z", "2020-08-01T12:05:00.000001Z")),
        );
        check(
            "date-time 2020-08-01T12:03:00Z-2020-08-01T12:05:00Z/3",
            Some(("2020-08-01T12:03:00Z", "2020-08-01T12:05:00Z")),
        );
        check("bytes 0-100/200", None);
        check("date-time yesterday-today/*", None);
    }

    #[test]
    fn csv_quoting() {
        let check = |input: &str, want: &str| {
            let mut s = String::new();
            csv_field(&mut s, input);
            assert_eq!(s, want);
        };
        check("plain", "plain");
        check("a,b", "\"a,b\"");
        check("say \"hi\"", "\"say \"\"hi\"\"\"");
        check("two\nlines", "\"two\nlines\"");
        check("", "");
    }

    #[test]
    fn rows_of_an_entity() {
        let e = json!({
            "id": "urn:ngsi-ld:S:1", "type": "Sensor", "createdAt": "2026-01-01T00:00:00Z",
            "speed": [
                {"type": "Property", "value": 2, "observedAt": "2026-01-01T00:00:02Z", "instanceId": "urn:i:2", "unitCode": "KMH"},
                {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:01.000Z", "instanceId": "urn:i:1", "datasetId": "urn:ds:a"}
            ],
            "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:P:1", "observedAt": "2026-01-01T00:00:00Z"}],
            "note": [{"type": "Property", "value": {"a": [1, "x,y"]}, "observedAt": "2026-01-01T00:00:00Z"}]
        });
        let mut csv = String::new();
        for r in rows(&e, TimeProperty::Observed) {
            csv_row(&mut csv, &r);
        }
        assert_eq!(
            csv,
            "urn:ngsi-ld:S:1,Sensor,speed,urn:ds:a,2026-01-01T00:00:01.000Z,,1,,urn:i:1\r\n\
             urn:ngsi-ld:S:1,Sensor,speed,,2026-01-01T00:00:02Z,,2,KMH,urn:i:2\r\n\
             urn:ngsi-ld:S:1,Sensor,owner,,2026-01-01T00:00:00Z,,urn:ngsi-ld:P:1,,\r\n\
             urn:ngsi-ld:S:1,Sensor,note,,2026-01-01T00:00:00Z,,\"{\"\"a\"\":[1,\"\"x,y\"\"]}\",,\r\n"
        );
        let mut nd = String::new();
        ndjson_row(&mut nd, &rows(&e, TimeProperty::Observed)[3]);
        assert_eq!(
            serde_json::from_str::<Value>(&nd).unwrap(),
            json!({"entity_id": "urn:ngsi-ld:S:1", "entity_type": "Sensor", "attribute": "note",
                   "dataset_id": null, "observed_at": "2026-01-01T00:00:00Z", "created_at": null,
                   "value": {"a": [1, "x,y"]}, "unit_code": null, "instance_id": null})
        );
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::for_path(Some(Path::new("a/b.CSV"))), Format::Csv);
        assert_eq!(
            Format::for_path(Some(Path::new("b.ndjson"))),
            Format::Ndjson
        );
        assert_eq!(Format::for_path(None), Format::Ndjson);
    }
}
