//! The boolean skeleton shared by `q`, `scopeQ` and type expressions: terms
//! joined by AND (`;`) and OR (`|`, plus `,` where the language allows it),
//! AND binding tighter than OR, parentheses at any depth.
//!
//! Each language supplies a leaf parser working on a [`Cursor`]; this module
//! handles the operators, grouping, nesting limits and error positions.

use std::fmt;

use crate::error::{NgsiError, Result};

/// Deepest parenthesis nesting accepted; bounds recursion on hostile input.
pub(crate) const MAX_DEPTH: usize = 64;

/// A boolean combination of leaves. `And`/`Or` always hold two or more
/// children and never directly nest the same operator (see [`BoolExpr::and`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BoolExpr<L> {
    /// A single term.
    Leaf(L),
    /// All children hold.
    And(Vec<BoolExpr<L>>),
    /// Any child holds.
    Or(Vec<BoolExpr<L>>),
}

impl<L> BoolExpr<L> {
    /// The conjunction of `items`, flattened (a single item stays as it is).
    pub(crate) fn and(items: Vec<Self>) -> Self {
        Self::join(items, true)
    }

    /// The disjunction of `items`, flattened (a single item stays as it is).
    pub(crate) fn or(items: Vec<Self>) -> Self {
        Self::join(items, false)
    }

    fn join(items: Vec<Self>, is_and: bool) -> Self {
        let mut flat = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Self::And(children) if is_and => flat.extend(children),
                Self::Or(children) if !is_and => flat.extend(children),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            return flat.pop().expect("length checked to be 1");
        }
        if is_and {
            Self::And(flat)
        } else {
            Self::Or(flat)
        }
    }

    /// Evaluates the expression with `leaf` deciding each term (short-circuiting).
    pub(crate) fn eval(&self, leaf: &mut impl FnMut(&L) -> bool) -> bool {
        match self {
            Self::Leaf(l) => leaf(l),
            Self::And(children) => children.iter().all(|c| c.eval(leaf)),
            Self::Or(children) => children.iter().any(|c| c.eval(leaf)),
        }
    }

    /// Visits every leaf.
    pub(crate) fn for_each_leaf<'a>(&'a self, f: &mut impl FnMut(&'a L)) {
        match self {
            Self::Leaf(l) => f(l),
            Self::And(children) | Self::Or(children) => {
                children.iter().for_each(|c| c.for_each_leaf(f))
            }
        }
    }

    /// Visits every leaf mutably.
    pub(crate) fn for_each_leaf_mut(&mut self, f: &mut impl FnMut(&mut L)) {
        match self {
            Self::Leaf(l) => f(l),
            Self::And(children) | Self::Or(children) => {
                children.iter_mut().for_each(|c| c.for_each_leaf_mut(f))
            }
        }
    }
}

/// Canonical text: `;` for AND, `|` for OR, parentheses only where needed.
impl<L: fmt::Display> fmt::Display for BoolExpr<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leaf(l) => l.fmt(f),
            Self::And(children) => {
                for (i, c) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(";")?;
                    }
                    if matches!(c, Self::Or(_)) {
                        write!(f, "({c})")?;
                    } else {
                        c.fmt(f)?;
                    }
                }
                Ok(())
            }
            Self::Or(children) => {
                for (i, c) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str("|")?;
                    }
                    if matches!(c, Self::Or(_)) {
                        write!(f, "({c})")?;
                    } else {
                        c.fmt(f)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A position in a query string, with the parameter name for error messages.
pub(crate) struct Cursor<'a> {
    /// The whole input.
    pub(crate) src: &'a str,
    /// Byte offset of the next unread character (always a char boundary).
    pub(crate) pos: usize,
    /// The parameter being parsed (`q`, `scopeQ`, `type`), for error details.
    pub(crate) param: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `src`.
    pub(crate) fn new(src: &'a str, param: &'static str) -> Self {
        Self { src, pos: 0, param }
    }

    /// The unread rest of the input.
    pub(crate) fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// The next character, if any.
    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// True at the end of input.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `s` if it is next.
    pub(crate) fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Consumes one character.
    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips ASCII whitespace (query strings are usually percent-decoded
    /// before they reach us, so stray spaces around operators are tolerated).
    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Consumes characters while `f` holds and returns them.
    pub(crate) fn take_while(&mut self, mut f: impl FnMut(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.src[start..self.pos]
    }

    /// What is next, for error messages: `'x'` or `end of input`.
    pub(crate) fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("'{c}'"),
            None => "end of input".to_owned(),
        }
    }

    /// An `InvalidRequest` saying what was expected at the current offset.
    pub(crate) fn expected(&self, what: &str) -> NgsiError {
        self.error_at(
            self.pos,
            &format!("expected {what}, found {}", self.found()),
        )
    }

    /// An `InvalidRequest` with `msg` at byte offset `at`.
    pub(crate) fn error_at(&self, at: usize, msg: &str) -> NgsiError {
        NgsiError::invalid(format!("{}: {msg} at offset {at}", self.param))
    }
}

/// The operator characters of a language.
pub(crate) struct Ops {
    /// Characters meaning AND.
    pub(crate) and: &'static [char],
    /// Characters meaning OR.
    pub(crate) or: &'static [char],
}

/// Parses a whole expression: `leaf` parses one term and must stop before an
/// operator, a parenthesis or the end. Fails on trailing input.
pub(crate) fn parse_expr<L>(
    cur: &mut Cursor<'_>,
    ops: &Ops,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L>,
) -> Result<BoolExpr<L>> {
    cur.skip_ws();
    if cur.at_end() {
        return Err(NgsiError::invalid(format!(
            "{}: the expression is empty",
            cur.param
        )));
    }
    let e = parse_or(cur, ops, leaf, 0)?;
    cur.skip_ws();
    if !cur.at_end() {
        return Err(if cur.peek() == Some(')') {
            cur.error_at(cur.pos, "unbalanced ')'")
        } else {
            cur.expected("an operator or the end of the expression")
        });
    }
    Ok(e)
}

fn parse_or<L>(
    cur: &mut Cursor<'_>,
    ops: &Ops,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L>,
    depth: usize,
) -> Result<BoolExpr<L>> {
    let mut items = vec![parse_and(cur, ops, leaf, depth)?];
    loop {
        cur.skip_ws();
        match cur.peek() {
            Some(c) if ops.or.contains(&c) => {
                cur.bump();
                items.push(parse_and(cur, ops, leaf, depth)?);
            }
            _ => return Ok(BoolExpr::or(items)),
        }
    }
}

fn parse_and<L>(
    cur: &mut Cursor<'_>,
    ops: &Ops,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L>,
    depth: usize,
) -> Result<BoolExpr<L>> {
    let mut items = vec![parse_atom(cur, ops, leaf, depth)?];
    loop {
        cur.skip_ws();
        match cur.peek() {
            Some(c) if ops.and.contains(&c) => {
                cur.bump();
                items.push(parse_atom(cur, ops, leaf, depth)?);
            }
            _ => return Ok(BoolExpr::and(items)),
        }
    }
}

fn parse_atom<L>(
    cur: &mut Cursor<'_>,
    ops: &Ops,
    leaf: &mut impl FnMut(&mut Cursor<'_>) -> Result<L>,
    depth: usize,
) -> Result<BoolExpr<L>> {
    cur.skip_ws();
    let open = cur.pos;
    if cur.eat('(') {
        if depth >= MAX_DEPTH {
            return Err(cur.error_at(
                open,
                &format!("parentheses nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let inner = parse_or(cur, ops, leaf, depth + 1)?;
        cur.skip_ws();
        if !cur.eat(')') {
            return Err(cur.expected(&format!("')' closing the '(' at offset {open}")));
        }
        return Ok(inner);
    }
    if cur.at_end() {
        return Err(cur.expected("a term"));
    }
    let l = leaf(cur)?;
    cur.skip_ws();
    match cur.peek() {
        None | Some(')') => {}
        Some(c) if ops.and.contains(&c) || ops.or.contains(&c) => {}
        Some(_) => {
            let list: String = ops
                .and
                .iter()
                .chain(ops.or)
                .map(|c| format!("'{c}', "))
                .collect();
            return Err(cur.expected(&format!("{list}')' or the end")));
        }
    }
    Ok(BoolExpr::Leaf(l))
}
