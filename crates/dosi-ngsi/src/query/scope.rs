//! The NGSI-LD scope query language `scopeQ` (ETSI GS CIM 009 clause 4.19).
//!
//! Scopes are hierarchical paths such as `/Madrid/Gardens/ParqueNorte`. A term
//! is a path pattern: literal segments, `+` for exactly one segment, and a
//! trailing `#` for the pattern's prefix itself and everything below it
//! (`/#` alone matches any scope). Terms are joined by `;` (AND) and `,` or `|`
//! (OR), AND binding tighter, with parentheses. A term is satisfied when any
//! of the entity's scopes matches it; an AND needs each of its terms
//! satisfied (possibly by different scopes).

use std::fmt;

use super::expr::{parse_expr, BoolExpr, Cursor, Ops};
use crate::error::Result;

const OPS: Ops = Ops {
    and: &[';'],
    or: &['|', ','],
};

/// One segment of a scope pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// A literal segment.
    Name(String),
    /// `+`: any single segment.
    One,
}

/// A scope path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segs: Vec<Seg>,
    /// Ends with `/#`: matches the prefix and all descendants.
    descendants: bool,
}

impl Pattern {
    fn matches(&self, scope: &str) -> bool {
        let Some(rest) = scope.strip_prefix('/') else {
            return false;
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let n = self.segs.len();
        if parts.len() < n || (!self.descendants && parts.len() != n) {
            return false;
        }
        self.segs.iter().zip(&parts).all(|(s, p)| match s {
            Seg::Name(name) => name == p,
            Seg::One => !p.is_empty(),
        })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segs {
            match s {
                Seg::Name(n) => write!(f, "/{n}")?,
                Seg::One => f.write_str("/+")?,
            }
        }
        if self.descendants {
            f.write_str("/#")
        } else if self.segs.is_empty() {
            f.write_str("/")
        } else {
            Ok(())
        }
    }
}

/// A parsed `scopeQ` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeQ {
    expr: BoolExpr<Pattern>,
}

impl ScopeQ {
    /// Parses `s`; malformed paths and operators are `InvalidRequest`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut cur = Cursor::new(s, "scopeQ");
        let expr = parse_expr(&mut cur, &OPS, &mut parse_pattern)?;
        Ok(Self { expr })
    }

    /// True if the entity's `scopes` satisfy the expression.
    pub fn matches(&self, scopes: &[String]) -> bool {
        self.expr.eval(&mut |p| scopes.iter().any(|s| p.matches(s)))
    }
}

/// Canonical text (`|` for OR, `;` for AND).
impl fmt::Display for ScopeQ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

fn is_path_char(c: char) -> bool {
    !matches!(c, '/' | ';' | '|' | ',' | '(' | ')') && !c.is_whitespace() && !c.is_control()
}

fn parse_pattern(cur: &mut Cursor<'_>) -> Result<Pattern> {
    if cur.peek() != Some('/') {
        return Err(cur.expected("a scope starting with '/'"));
    }
    let mut segs = Vec::new();
    let mut descendants = false;
    let mut first = true;
    while cur.peek() == Some('/') {
        let slash = cur.pos;
        cur.bump();
        let seg_start = cur.pos;
        let seg = cur.take_while(is_path_char);
        if descendants {
            return Err(cur.error_at(slash, "'#' must be the last segment of a scope"));
        }
        match seg {
            // A lone "/" is the root scope; empty segments elsewhere are errors.
            "" if first && cur.peek() != Some('/') => break,
            "" => return Err(cur.error_at(seg_start, "empty scope segment")),
            "#" => descendants = true,
            "+" => segs.push(Seg::One),
            _ if seg.contains(['#', '+']) => {
                return Err(cur.error_at(
                    seg_start,
                    &format!("'+' and '#' must be whole segments, found '{seg}'"),
                ))
            }
            _ => segs.push(Seg::Name(seg.to_owned())),
        }
        first = false;
    }
    Ok(Pattern { segs, descendants })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorKind;

    fn check(q: &str, scopes: &[&str], expected: bool) {
        let s = ScopeQ::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        assert_eq!(s.matches(&scopes), expected, "{q} on {scopes:?}");
    }

    fn check_err(q: &str) {
        match ScopeQ::parse(q) {
            Ok(s) => panic!("{q}: expected an error, got {s:?}"),
            Err(e) => assert_eq!(e.kind, ErrorKind::InvalidRequest, "{q}: {e}"),
        }
    }

    #[test]
    fn matching() {
        check("/Madrid", &["/Madrid"], true);
        check("/Madrid", &["/Madrid/Gardens"], false);
        check("/Madrid/Gardens", &["/Madrid/Gardens"], true);
        check("/Madrid/Gardens", &["/Madrid"], false);
        check("/Madrid/#", &["/Madrid"], true);
        check("/Madrid/#", &["/Madrid/Gardens/ParqueNorte"], true);
        check("/Madrid/#", &["/Madridx"], false);
        check("/Madrid/#", &["/Seoul"], false);
        check("/Madrid/+/Parks", &["/Madrid/North/Parks"], true);
        check("/Madrid/+/Parks", &["/Madrid/Parks"], false);
        check("/Madrid/+/Parks", &["/Madrid/a/b/Parks"], false);
        check("/Madrid/+", &["/Madrid/North"], true);
        check("/Madrid/+/#", &["/Madrid/North/x/y"], true);
        check("/Madrid/+/#", &["/Madrid"], false);
        check("/#", &["/anything/at/all"], true);
        check("/#", &["/"], true);
        check("/#", &[], false);
        check("/", &["/"], true);
        check("/", &["/a"], false);
        check("/Madrid", &[], false);
        check("/Madrid,/Seoul", &["/Seoul"], true);
        check("/Madrid|/Seoul", &["/Busan"], false);
        check("/Madrid;/Seoul", &["/Seoul"], false);
        check("/Madrid;/Seoul", &["/Seoul", "/Madrid"], true);
        check("/Madrid;/Seoul|/Busan", &["/Busan"], true);
        check("/Madrid;(/Seoul|/Busan)", &["/Busan"], false);
        check("(/Madrid/#;/Seoul/#)", &["/Seoul/x", "/Madrid/y"], true);
    }

    #[test]
    fn errors() {
        for bad in [
            "", "Madrid", "/Madrid/", "//", "/a//b", "/#/a", "/a/#/#", "/a#", "/a+b", "/a;", "(/a",
            "/a)", "/a b", ";/a", "/a,,/b",
        ] {
            check_err(bad);
        }
    }

    #[test]
    fn display() {
        for (q, canon) in [
            ("/a/+/#", "/a/+/#"),
            ("/a,/b;/c", "/a|/b;/c"),
            ("(/a|/b);/c", "(/a|/b);/c"),
            ("/", "/"),
            ("/#", "/#"),
        ] {
            assert_eq!(ScopeQ::parse(q).unwrap().to_string(), canon);
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = ScopeQ::parse(&s);
        }

        #[test]
        fn canonical_text_round_trips(s in "[/ab+#;|,()]{0,30}") {
            if let Ok(q) = ScopeQ::parse(&s) {
                prop_assert_eq!(ScopeQ::parse(&q.to_string()).unwrap(), q);
            }
        }
    }
}
