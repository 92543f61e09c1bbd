//! The NGSI-LD query language `q` (ETSI GS CIM 009 clause 4.9).
//!
//! Terms are joined by `;` (AND) and `|` (OR), AND binding tighter, with
//! parentheses at any depth. A term is `attr` (exists), `!attr` (does not
//! exist), `attr op value` with `op` one of `==`, `!=`, `>`, `>=`, `<`, `<=`,
//! or `attr ~= pattern` / `attr !~= pattern` (regular expressions).
//!
//! Paths: `attr`, `attr.sub.subsub` (sub-attributes), `attr.observedAt`
//! (also `createdAt`, `modifiedAt`, `unitCode`, `datasetId`), and
//! `attr[key.key2]` / `attr[key][key2]` into a compound Property value. A name
//! containing `://` is a full IRI that runs up to an operator or `[` (its
//! dots belong to it), optionally followed by a `.member`.
//!
//! Values: numbers, `"quoted strings"` (with `\"` and `\\` escapes), `true`,
//! `false`, unquoted DateTime / Date / Time (compared chronologically with
//! string values), URIs (for Relationship objects), ranges `min..max` and
//! lists `a,b,c` (with `==` and `!=` only).
//!
//! A term matches an entity when any instance (any `datasetId`) of the
//! attribute matches; a value array matches `==` when any element does, and
//! `!=` when none does. Comparisons between unlike kinds (a number and a
//! string) never match and are not errors.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::expr::{parse_expr, BoolExpr, Cursor, Ops};
use crate::error::{NgsiError, Result};
use crate::ids::is_absolute_uri;
use crate::model::{AttrKind, Attribute, Entity};

const OPS: Ops = Ops {
    and: &[';'],
    or: &['|'],
};

/// Upper bound on a compiled regular expression, so a hostile pattern cannot
/// make the broker allocate without limit.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A parsed `q` expression.
#[derive(Debug, Clone)]
pub struct Q {
    expr: BoolExpr<Term>,
}

impl Q {
    /// Parses `s`; syntax errors are `InvalidRequest` naming the offset,
    /// impossible values (a 13th month, an overflowing number) `BadRequestData`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut cur = Cursor::new(s, "q");
        let expr = parse_expr(&mut cur, &OPS, &mut parse_term)?;
        Ok(Self { expr })
    }

    /// Maps every attribute name through `f` (JSON-LD expansion): the first
    /// segment of each path and every sub-attribute segment; JSON-path keys
    /// and the core members (`observedAt`, ...) are left alone.
    pub fn expand_names(&mut self, f: &dyn Fn(&str) -> String) {
        self.expr.for_each_leaf_mut(&mut |t: &mut Term| {
            t.path.name = f(&t.path.name);
            for s in &mut t.path.sub {
                *s = f(s);
            }
        });
    }

    /// True if `e` satisfies the expression.
    pub fn matches(&self, e: &Entity) -> bool {
        self.expr.eval(&mut |t| t.matches(e))
    }

    /// The attribute names the expression refers to (first path segments,
    /// expanded once [`Q::expand_names`] ran), without duplicates.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        self.expr.for_each_leaf(&mut |t: &Term| {
            if !out.contains(&t.path.name) {
                out.push(t.path.name.clone());
            }
        });
        out
    }

    /// The top-level conjuncts that compare a plain attribute (no
    /// sub-attribute, member or JSON path) with numbers, strings, URIs or
    /// booleans using `==` (one value, a list or a range), `>`, `>=`, `<` or
    /// `<=`. Every entity the whole expression matches satisfies each of
    /// them, so a store may take its candidates from an index on attribute
    /// values and evaluate the whole expression on those.
    pub fn value_conjuncts(&self) -> Vec<ValueConjunct<'_>> {
        let leaves: Vec<&Term> = match &self.expr {
            BoolExpr::Leaf(t) => vec![t],
            BoolExpr::And(children) => children
                .iter()
                .filter_map(|c| match c {
                    BoolExpr::Leaf(t) => Some(t),
                    _ => None,
                })
                .collect(),
            BoolExpr::Or(_) => Vec::new(),
        };
        leaves
            .into_iter()
            .filter_map(Term::value_conjunct)
            .collect()
    }
}

/// A top-level conjunct `attr op value` of a `q` expression; see
/// [`Q::value_conjuncts`].
///
/// On a `Property` instance it holds when the value, or one element of an
/// array value, is a JSON number, string or boolean passing `test`: numbers
/// compare as numbers (`5` equals `5.0`), strings byte-wise, booleans for
/// equality only, values of different kinds never. It holds for an entity
/// when it holds for any instance (any `datasetId`). Other attribute kinds
/// (Relationship objects, language maps, ...) follow the evaluator's own
/// rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueConjunct<'a> {
    /// The attribute name (expanded once [`Q::expand_names`] ran).
    pub attr: &'a str,
    /// What the value must satisfy.
    pub test: ValueTest<'a>,
}

/// The test of a [`ValueConjunct`].
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest<'a> {
    /// Equal to one of these.
    AnyOf(Vec<Scalar<'a>>),
    /// Between the bounds, inclusive; both of the same kind.
    Range(Scalar<'a>, Scalar<'a>),
    /// Greater than `bound`, or equal to it when `inclusive`.
    Above {
        /// The bound.
        bound: Scalar<'a>,
        /// `>=` rather than `>`.
        inclusive: bool,
    },
    /// Less than `bound`, or equal to it when `inclusive`.
    Below {
        /// The bound.
        bound: Scalar<'a>,
        /// `<=` rather than `<`.
        inclusive: bool,
    },
}

/// A literal of a [`ValueTest`]; URIs are strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// A number (finite).
    Num(f64),
    /// A string or URI.
    Str(&'a str),
    /// `true` or `false`.
    Bool(bool),
}

impl Term {
    fn value_conjunct(&self) -> Option<ValueConjunct<'_>> {
        let p = &self.path;
        if !p.sub.is_empty() || p.member.is_some() || !p.json.is_empty() {
            return None;
        }
        let test = match &self.test {
            Test::Equal {
                negated: false,
                rhs: EqRhs::Any(list),
            } => ValueTest::AnyOf(list.iter().map(Lit::scalar).collect::<Option<_>>()?),
            Test::Equal {
                negated: false,
                rhs: EqRhs::Range(lo, hi),
            } => ValueTest::Range(lo.scalar()?, hi.scalar()?),
            Test::Order(op, lit) => {
                let bound = lit.scalar()?;
                match op {
                    OrderOp::Gt | OrderOp::Ge => ValueTest::Above {
                        bound,
                        inclusive: *op == OrderOp::Ge,
                    },
                    OrderOp::Lt | OrderOp::Le => ValueTest::Below {
                        bound,
                        inclusive: *op == OrderOp::Le,
                    },
                }
            }
            _ => return None,
        };
        Some(ValueConjunct {
            attr: &p.name,
            test,
        })
    }
}

impl Lit {
    /// The literal as a [`Scalar`]; times and dates compare by parsing
    /// strings, so they have none.
    fn scalar(&self) -> Option<Scalar<'_>> {
        match self {
            Self::Num { value, .. } => Some(Scalar::Num(*value)),
            Self::Str(s) | Self::Uri(s) => Some(Scalar::Str(s)),
            Self::Bool(b) => Some(Scalar::Bool(*b)),
            Self::DateTime { .. } | Self::Date { .. } | Self::Time { .. } => None,
        }
    }
}

/// Canonical `q` text that parses back to the same expression (before
/// [`Q::expand_names`]; expanded sub-attribute IRIs are not re-parseable).
impl fmt::Display for Q {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

/// One comparison term.
#[derive(Debug, Clone)]
struct Term {
    path: AttrPath,
    test: Test,
}

/// `name.sub.sub.member[json.keys]`.
#[derive(Debug, Clone, PartialEq)]
struct AttrPath {
    name: String,
    sub: Vec<String>,
    member: Option<Member>,
    json: Vec<String>,
}

/// A core member of an attribute addressable in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    ObservedAt,
    CreatedAt,
    ModifiedAt,
    UnitCode,
    DatasetId,
}

impl Member {
    const ALL: [Member; 5] = [
        Self::ObservedAt,
        Self::CreatedAt,
        Self::ModifiedAt,
        Self::UnitCode,
        Self::DatasetId,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::ObservedAt => "observedAt",
            Self::CreatedAt => "createdAt",
            Self::ModifiedAt => "modifiedAt",
            Self::UnitCode => "unitCode",
            Self::DatasetId => "datasetId",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// What a term checks.
#[derive(Debug, Clone)]
enum Test {
    Exists,
    NotExists,
    /// `>`, `>=`, `<`, `<=` against one value.
    Order(OrderOp, Lit),
    /// `==` (or `!=` when `negated`) against a list or a range.
    Equal {
        negated: bool,
        rhs: EqRhs,
    },
    /// `~=` (or `!~=` when `negated`).
    Regex {
        negated: bool,
        re: Regex,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl OrderOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Self::Gt => o == Ordering::Greater,
            Self::Ge => o != Ordering::Less,
            Self::Lt => o == Ordering::Less,
            Self::Le => o != Ordering::Greater,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
        }
    }
}

/// The right-hand side of `==` / `!=`.
#[derive(Debug, Clone, PartialEq)]
enum EqRhs {
    /// One value or a list: equal to any of them.
    Any(Vec<Lit>),
    /// `min..max`, inclusive.
    Range(Lit, Lit),
}

/// A literal value; the source text of numbers and times is kept so the
/// canonical text reproduces it exactly.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Num { value: f64, text: String },
    Str(String),
    Bool(bool),
    DateTime { micros: i64, text: String },
    Date { days: i32, text: String },
    Time { micros: i64, text: String },
    Uri(String),
}

impl Lit {
    /// True for the kinds that have an order (allowed with `<`, ranges, ...).
    fn is_ordered(&self) -> bool {
        !matches!(self, Self::Bool(_) | Self::Uri(_))
    }

    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num { text, .. }
            | Self::DateTime { text, .. }
            | Self::Date { text, .. }
            | Self::Time { text, .. } => f.write_str(text),
            Self::Str(s) => write_quoted(f, s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Uri(u) => f.write_str(u),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for s in &self.sub {
            write!(f, ".{s}")?;
        }
        if let Some(m) = self.member {
            write!(f, ".{}", m.name())?;
        }
        if !self.json.is_empty() {
            write!(f, "[{}]", self.json.join("."))?;
        }
        Ok(())
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            Test::Exists => write!(f, "{}", self.path),
            Test::NotExists => write!(f, "!{}", self.path),
            Test::Order(op, lit) => write!(f, "{}{}{lit}", self.path, op.text()),
            Test::Equal { negated, rhs } => {
                write!(f, "{}{}", self.path, if *negated { "!=" } else { "==" })?;
                match rhs {
                    EqRhs::Any(list) => {
                        for (i, l) in list.iter().enumerate() {
                            if i > 0 {
                                f.write_str(",")?;
                            }
                            write!(f, "{l}")?;
                        }
                        Ok(())
                    }
                    EqRhs::Range(lo, hi) => write!(f, "{lo}..{hi}"),
                }
            }
            Test::Regex { negated, re } => {
                write!(f, "{}{}", self.path, if *negated { "!~=" } else { "~=" })?;
                write_quoted(f, re.as_str())
            }
        }
    }
}

// ---------------------------------------------------------------- parsing

/// Characters that end a compact name segment.
fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '=' | '!' | '<' | '>' | '~' | ';' | '|' | '(' | ')' | '[' | ']' | '.' | ',' | '"'
    ) && !c.is_whitespace()
        && !c.is_control()
}

fn parse_term(cur: &mut Cursor<'_>) -> Result<Term> {
    let negated = cur.eat('!');
    cur.skip_ws();
    let path = parse_path(cur)?;
    cur.skip_ws();
    if negated {
        return Ok(Term {
            path,
            test: Test::NotExists,
        });
    }
    let op_at = cur.pos;
    let op = if cur.eat_str("==") {
        "=="
    } else if cur.eat_str("!=") {
        "!="
    } else if cur.eat_str(">=") {
        ">="
    } else if cur.eat_str("<=") {
        "<="
    } else if cur.eat_str(">") {
        ">"
    } else if cur.eat_str("<") {
        "<"
    } else if cur.eat_str("~=") {
        "~="
    } else if cur.eat_str("!~=") {
        "!~="
    } else {
        return match cur.peek() {
            None | Some(';' | '|' | ')') => Ok(Term {
                path,
                test: Test::Exists,
            }),
            Some(_) => Err(cur.error_at(
                op_at,
                &format!(
                    "expected an operator (==, !=, >, >=, <, <=, ~=, !~=) or ';', '|', ')' after '{path}', found {}",
                    cur.found()
                ),
            )),
        };
    };
    cur.skip_ws();
    let test = match op {
        "~=" | "!~=" => Test::Regex {
            negated: op == "!~=",
            re: parse_regex(cur)?,
        },
        "==" | "!=" => Test::Equal {
            negated: op == "!=",
            rhs: parse_eq_rhs(cur, op)?,
        },
        _ => {
            let order = match op {
                ">" => OrderOp::Gt,
                ">=" => OrderOp::Ge,
                "<" => OrderOp::Lt,
                _ => OrderOp::Le,
            };
            let at = cur.pos;
            let lit = parse_lit(cur)?;
            if !lit.is_ordered() {
                return Err(cur.error_at(
                    at,
                    &format!("'{op}' needs a number, a quoted string, a DateTime, a Date or a Time, found '{lit}'"),
                ));
            }
            if cur.rest().starts_with("..") || cur.peek() == Some(',') {
                return Err(cur.error_at(
                    cur.pos,
                    &format!("ranges and lists are only allowed with == and !=, not '{op}'"),
                ));
            }
            Test::Order(order, lit)
        }
    };
    Ok(Term { path, test })
}

fn parse_path(cur: &mut Cursor<'_>) -> Result<AttrPath> {
    let start = cur.pos;
    // A full IRI keeps its dots: take the whole run up to an operator or '['.
    let run_len = cur
        .rest()
        .find(|c: char| !(is_name_char(c) || c == '.'))
        .unwrap_or(cur.rest().len());
    let run = &cur.rest()[..run_len];
    let mut path = if run.contains("://") {
        cur.pos += run_len;
        let (name, member) = match run.rsplit_once('.') {
            Some((name, m)) => match Member::from_name(m) {
                Some(member) => (name, Some(member)),
                None => (run, None),
            },
            None => (run, None),
        };
        AttrPath {
            name: name.to_owned(),
            sub: Vec::new(),
            member,
            json: Vec::new(),
        }
    } else {
        let name = cur.take_while(is_name_char);
        if name.is_empty() {
            return Err(cur.expected("an attribute name"));
        }
        let mut path = AttrPath {
            name: name.to_owned(),
            sub: Vec::new(),
            member: None,
            json: Vec::new(),
        };
        while cur.eat('.') {
            let seg = cur.take_while(is_name_char);
            if seg.is_empty() {
                return Err(cur.expected("a sub-attribute or member name after '.'"));
            }
            if path.member.is_some() {
                return Err(cur.error_at(
                    cur.pos - seg.len(),
                    &format!(
                        "nothing may follow the member in '{}'",
                        &cur.src[start..cur.pos]
                    ),
                ));
            }
            match Member::from_name(seg) {
                Some(m) => path.member = Some(m),
                None => path.sub.push(seg.to_owned()),
            }
        }
        path
    };
    while cur.peek() == Some('[') {
        if let Some(m) = path.member {
            return Err(cur.error_at(
                cur.pos,
                &format!("a JSON path cannot follow the member '{}'", m.name()),
            ));
        }
        cur.bump();
        loop {
            let key = cur.take_while(|c| !matches!(c, '[' | ']' | '.') && !c.is_control());
            if key.is_empty() {
                return Err(cur.expected("a key inside '[...]'"));
            }
            path.json.push(key.to_owned());
            if cur.eat(']') {
                break;
            }
            if !cur.eat('.') {
                return Err(cur.expected("'.' or ']'"));
            }
        }
    }
    Ok(path)
}

/// Parses `"..."` with `\"` and `\\` escapes (other backslashes are kept, so
/// regex escapes such as `\d` survive). The cursor is on the opening quote.
fn parse_quoted(cur: &mut Cursor<'_>) -> Result<String> {
    let open = cur.pos;
    cur.bump();
    let mut out = String::new();
    loop {
        match cur.bump() {
            None => return Err(cur.error_at(open, "unterminated quoted string starting")),
            Some('"') => return Ok(out),
            Some('\\') => match cur.peek() {
                Some(c @ ('"' | '\\')) => {
                    cur.bump();
                    out.push(c);
                }
                _ => out.push('\\'),
            },
            Some(c) => out.push(c),
        }
    }
}

fn parse_regex(cur: &mut Cursor<'_>) -> Result<Regex> {
    let start = cur.pos;
    let pattern = if cur.peek() == Some('"') {
        parse_quoted(cur)?
    } else {
        // Unquoted: runs to ';', '|' or ')' outside the pattern's own groups
        // and character classes, so `(?i)a(b|c)` needs no quotes.
        let mut depth = 0usize;
        let mut in_class = false;
        while let Some(c) = cur.peek() {
            match c {
                '\\' => {
                    cur.bump();
                }
                '[' if !in_class => in_class = true,
                ']' if in_class => in_class = false,
                _ if in_class => {}
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                ';' | '|' if depth == 0 => break,
                _ => {}
            }
            cur.bump();
        }
        cur.src[start..cur.pos].to_owned()
    };
    if pattern.is_empty() {
        return Err(cur.error_at(start, "expected a regular expression"));
    }
    RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let msg = e.to_string().replace('\n', " ");
            cur.error_at(
                start,
                &format!("invalid regular expression '{pattern}': {msg}"),
            )
        })
}

fn parse_eq_rhs(cur: &mut Cursor<'_>, op: &str) -> Result<EqRhs> {
    let first_at = cur.pos;
    let first = parse_lit(cur)?;
    if cur.eat_str("..") {
        let hi_at = cur.pos;
        let hi = parse_lit(cur)?;
        if !first.is_ordered() {
            return Err(cur.error_at(first_at, &format!("'{first}' cannot bound a range")));
        }
        if !first.same_kind(&hi) {
            return Err(cur.error_at(
                hi_at,
                &format!("the range bounds '{first}' and '{hi}' are not of the same kind"),
            ));
        }
        if cur.rest().starts_with("..") || cur.peek() == Some(',') {
            return Err(cur.expected(&format!("the end of the range after '{op}'")));
        }
        return Ok(EqRhs::Range(first, hi));
    }
    let mut list = vec![first];
    while cur.eat(',') {
        list.push(parse_lit(cur)?);
        if cur.rest().starts_with("..") {
            return Err(cur.error_at(cur.pos, "a value list cannot contain ranges"));
        }
    }
    Ok(EqRhs::Any(list))
}

fn parse_lit(cur: &mut Cursor<'_>) -> Result<Lit> {
    if cur.peek() == Some('"') {
        return parse_quoted(cur).map(Lit::Str);
    }
    let start = cur.pos;
    let rest = cur.rest();
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        let stop = matches!(c, ';' | '|' | '(' | ')' | ',' | '"')
            || c.is_whitespace()
            || (c == '.' && rest[i + 1..].starts_with('.'));
        if stop {
            end = i;
            break;
        }
    }
    let raw = &rest[..end];
    if raw.is_empty() {
        return Err(cur.expected("a value"));
    }
    cur.pos += end;
    classify(raw).map_err(|e| match e {
        Classify::Unknown => cur.error_at(
            start,
            &format!(
                "expected a value (a number, a \"quoted string\", true, false, a DateTime, Date, Time or URI), found '{raw}'"
            ),
        ),
        Classify::Bad(msg) => NgsiError::bad_data(format!("q: {msg} at offset {start}")),
    })
}

enum Classify {
    Unknown,
    Bad(String),
}

fn classify(raw: &str) -> Result<Lit, Classify> {
    match raw {
        "true" => return Ok(Lit::Bool(true)),
        "false" => return Ok(Lit::Bool(false)),
        _ => {}
    }
    if is_number(raw) {
        return match raw.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Lit::Num {
                value,
                text: raw.to_owned(),
            }),
            _ => Err(Classify::Bad(format!("the number {raw} is out of range"))),
        };
    }
    if looks_like_date(raw) {
        if raw.len() == 10 {
            return NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(|d| Lit::Date {
                    days: d.num_days_from_ce(),
                    text: raw.to_owned(),
                })
                .map_err(|e| Classify::Bad(format!("'{raw}' is not a valid Date: {e}")));
        }
        if matches!(raw.as_bytes()[10], b'T' | b't') {
            return parse_datetime(raw)
                .map(|micros| Lit::DateTime {
                    micros,
                    text: raw.to_owned(),
                })
                .ok_or_else(|| {
                    Classify::Bad(format!(
                        "'{raw}' is not a valid DateTime (e.g. 2024-05-01T10:00:00Z)"
                    ))
                });
        }
    }
    if looks_like_time(raw) {
        return parse_time(raw)
            .map(|micros| Lit::Time {
                micros,
                text: raw.to_owned(),
            })
            .ok_or_else(|| Classify::Bad(format!("'{raw}' is not a valid Time (e.g. 12:00:00Z)")));
    }
    if is_absolute_uri(raw) {
        return Ok(Lit::Uri(raw.to_owned()));
    }
    Err(Classify::Unknown)
}

/// `-?digits(.digits)?([eE][+-]?digits)?`
fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Starts with `dddd-dd-dd`.
fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Starts with `dd:dd`.
fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b':'
}

/// An RFC 3339 DateTime as microseconds since the epoch.
fn parse_datetime(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc).timestamp_micros())
}

/// `hh:mm:ss(.fff)?` with an optional `Z`, as microseconds since midnight.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()?;
    Some(time_micros(t))
}

fn time_micros(t: NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000)
}

// ------------------------------------------------------------- evaluation

/// A value a term is tested against.
#[derive(Debug, Clone, Copy)]
enum Cand<'a> {
    Json(&'a Value),
    Text(&'a str),
    Instant(i64),
}

impl<'a> Cand<'a> {
    fn as_str(self) -> Option<&'a str> {
        match self {
            Self::Json(Value::String(s)) => Some(s),
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Orders this value against `lit`; `None` when they are not comparable.
    fn compare(self, lit: &Lit) -> Option<Ordering> {
        match lit {
            Lit::Num { value, .. } => match self {
                Self::Json(Value::Number(n)) => n.as_f64()?.partial_cmp(value),
                _ => None,
            },
            Lit::Str(s) | Lit::Uri(s) => Some(self.as_str()?.cmp(s.as_str())),
            Lit::Bool(b) => match self {
                Self::Json(Value::Bool(v)) => Some(v.cmp(b)),
                _ => None,
            },
            Lit::DateTime { micros, .. } => match self {
                Self::Instant(m) => Some(m.cmp(micros)),
                _ => Some(parse_datetime(self.as_str()?)?.cmp(micros)),
            },
            Lit::Date { days, .. } => {
                let d = match self {
                    Self::Instant(m) => DateTime::<Utc>::from_timestamp_micros(m)?.date_naive(),
                    _ => {
                        let s = self.as_str()?;
                        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                            Ok(d) => d,
                            Err(_) => DateTime::parse_from_rfc3339(s)
                                .ok()?
                                .with_timezone(&Utc)
                                .date_naive(),
                        }
                    }
                };
                Some(d.num_days_from_ce().cmp(days))
            }
            Lit::Time { micros, .. } => {
                let t = match self {
                    Self::Instant(m) => {
                        time_micros(DateTime::<Utc>::from_timestamp_micros(m)?.time())
                    }
                    _ => {
                        let s = self.as_str()?;
                        match parse_time(s) {
                            Some(t) => t,
                            None => time_micros(
                                DateTime::parse_from_rfc3339(s)
                                    .ok()?
                                    .with_timezone(&Utc)
                                    .time(),
                            ),
                        }
                    }
                };
                Some(t.cmp(micros))
            }
        }
    }
}

impl EqRhs {
    fn holds(&self, c: Cand<'_>) -> bool {
        match self {
            Self::Any(list) => list.iter().any(|l| c.compare(l) == Some(Ordering::Equal)),
            Self::Range(lo, hi) => {
                matches!(c.compare(lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(c.compare(hi), Some(Ordering::Less | Ordering::Equal))
            }
        }
    }
}

impl Term {
    fn matches(&self, e: &Entity) -> bool {
        let instances = e
            .attrs
            .get(self.path.name.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        match self.test {
            Test::NotExists => !instances.iter().any(|i| self.exists_in(i)),
            _ => instances.iter().any(|i| self.instance_matches(i)),
        }
    }

    /// The (sub-)attribute the path names within one instance.
    fn target<'a>(&self, inst: &'a Attribute) -> Option<&'a Attribute> {
        self.path
            .sub
            .iter()
            .try_fold(inst, |a, s| a.sub.get(s.as_str()))
    }

    fn exists_in(&self, inst: &Attribute) -> bool {
        self.target(inst).is_some_and(|a| self.exists_at(a))
    }

    /// True if the path's member or JSON path (if any) is present in `a`.
    fn exists_at(&self, a: &Attribute) -> bool {
        self.path.member.is_none() && self.path.json.is_empty() || !self.raw_values(a).is_empty()
    }

    fn instance_matches(&self, inst: &Attribute) -> bool {
        let Some(a) = self.target(inst) else {
            return false;
        };
        let flat = || {
            let mut cands = Vec::new();
            for c in self.raw_values(a) {
                match c {
                    Cand::Json(Value::Array(items)) => cands.extend(items.iter().map(Cand::Json)),
                    c => cands.push(c),
                }
            }
            cands
        };
        match &self.test {
            Test::Exists => self.exists_at(a),
            Test::NotExists => !self.exists_at(a),
            // Ordering a Relationship's object (a URI) is meaningless: never a match.
            Test::Order(..)
                if self.path.member.is_none()
                    && matches!(a.kind, AttrKind::Relationship | AttrKind::ListRelationship) =>
            {
                false
            }
            Test::Order(op, lit) => flat()
                .iter()
                .any(|c| c.compare(lit).is_some_and(|o| op.holds(o))),
            Test::Equal {
                negated: false,
                rhs,
            } => flat().iter().any(|c| rhs.holds(*c)),
            Test::Equal { negated: true, rhs } => {
                let cands = flat();
                !cands.is_empty() && !cands.iter().any(|c| rhs.holds(*c))
            }
            Test::Regex { negated, re } => {
                let cands = flat();
                let hit = cands
                    .iter()
                    .any(|c| c.as_str().is_some_and(|s| re.is_match(s)));
                if *negated {
                    !cands.is_empty() && !hit
                } else {
                    hit
                }
            }
        }
    }

    /// The values the path selects in attribute `a`, before arrays are
    /// flattened (so an empty array still counts as present).
    fn raw_values<'a>(&self, a: &'a Attribute) -> Vec<Cand<'a>> {
        if let Some(m) = self.path.member {
            let c = match m {
                Member::ObservedAt => a.observed_at.as_deref().map(Cand::Text),
                Member::UnitCode => a.unit_code.as_deref().map(Cand::Text),
                Member::DatasetId => a.dataset().map(Cand::Text),
                Member::CreatedAt => Some(Cand::Instant(a.created_at.0)),
                Member::ModifiedAt => Some(Cand::Instant(a.modified_at.0)),
            };
            return c.into_iter().collect();
        }
        let mut vals: Vec<&'a Value> = match a.kind {
            // A language map without a JSON path offers every language's
            // value; with one (`name[en]`), the path picks the language.
            AttrKind::LanguageProperty if self.path.json.is_empty() => match &a.value {
                Value::Object(map) => map.values().collect(),
                v => vec![v],
            },
            AttrKind::ListRelationship => match &a.value {
                Value::Array(items) => items.iter().map(|i| i.get("object").unwrap_or(i)).collect(),
                v => vec![v],
            },
            _ => vec![&a.value],
        };
        for key in &self.path.json {
            let mut next = Vec::new();
            for v in vals {
                match v {
                    // `name[*]` on a language map: any language.
                    Value::Object(map) if key == "*" && a.kind == AttrKind::LanguageProperty => {
                        next.extend(map.values())
                    }
                    Value::Object(map) => next.extend(map.get(key.as_str())),
                    Value::Array(items) => {
                        next.extend(items.iter().filter_map(|i| i.get(key.as_str())))
                    }
                    _ => {}
                }
            }
            vals = next;
        }
        vals.into_iter().map(Cand::Json).collect()
    }
}

#[cfg(test)]
mod tests;
