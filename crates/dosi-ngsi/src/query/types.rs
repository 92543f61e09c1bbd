//! Entity type selection expressions (ETSI GS CIM 009 clause 4.17): type
//! names joined by `;` (AND: the entity has all), `|` or `,` (OR: any), with
//! parentheses; AND binds tighter than OR. `Building,House` or
//! `(Building;Smart)|House`.

use std::fmt;

use super::expr::{parse_expr, BoolExpr, Cursor, Ops};
use crate::error::Result;
use crate::model::Iri;

const OPS: Ops = Ops {
    and: &[';'],
    or: &['|', ','],
};

/// A parsed type expression; names are compact until [`TypeExpr::expand_names`].
#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    expr: BoolExpr<String>,
}

impl TypeExpr {
    /// Parses `s`; empty names, dangling operators and unbalanced parentheses
    /// are `InvalidRequest`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut cur = Cursor::new(s, "type");
        let expr = parse_expr(&mut cur, &OPS, &mut |cur| {
            let name = cur.take_while(|c| {
                !matches!(c, ';' | '|' | ',' | '(' | ')' | '"') && !c.is_whitespace()
            });
            if name.is_empty() {
                return Err(cur.expected("a type name"));
            }
            Ok(name.to_owned())
        })?;
        Ok(Self { expr })
    }

    /// An expression selecting any of `names` (no validation; for callers
    /// that already hold expanded IRIs).
    pub fn any_of<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let items = names
            .into_iter()
            .map(|n| BoolExpr::Leaf(n.into()))
            .collect::<Vec<_>>();
        Self {
            expr: if items.is_empty() {
                BoolExpr::Or(Vec::new())
            } else {
                BoolExpr::or(items)
            },
        }
    }

    /// Maps every type name through `f` (JSON-LD expansion).
    pub fn expand_names(&mut self, f: &dyn Fn(&str) -> String) {
        self.expr.for_each_leaf_mut(&mut |n| *n = f(n));
    }

    /// True if an entity with `types` matches.
    pub fn matches(&self, types: &[Iri]) -> bool {
        self.expr
            .eval(&mut |name| types.iter().any(|t| **t == **name))
    }

    /// The names when the expression is a plain OR list (or a single name),
    /// so a store can answer it from its type index.
    pub fn simple_any_of(&self) -> Option<Vec<&str>> {
        match &self.expr {
            BoolExpr::Leaf(n) => Some(vec![n.as_str()]),
            BoolExpr::Or(children) => children
                .iter()
                .map(|c| match c {
                    BoolExpr::Leaf(n) => Some(n.as_str()),
                    _ => None,
                })
                .collect(),
            BoolExpr::And(_) => None,
        }
    }

    /// Every type name the expression mentions, in order of appearance.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.expr.for_each_leaf(&mut |n: &String| {
            if !out.contains(&n.as_str()) {
                out.push(n.as_str());
            }
        });
        out
    }
}

/// Canonical text (`|` for OR, `;` for AND).
impl fmt::Display for TypeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorKind;

    fn check(expr: &str, types: &[&str], expected: bool) {
        let t = TypeExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let types: Vec<Iri> = types.iter().map(|t| Arc::from(*t)).collect();
        assert_eq!(t.matches(&types), expected, "{expr} on {types:?}");
    }

    fn check_err(expr: &str) {
        match TypeExpr::parse(expr) {
            Ok(t) => panic!("{expr}: expected an error, got {t:?}"),
            Err(e) => assert_eq!(e.kind, ErrorKind::InvalidRequest, "{expr}: {e}"),
        }
    }

    #[test]
    fn matching() {
        check("Building", &["Building"], true);
        check("Building", &["House"], false);
        check("Building,House", &["House"], true);
        check("Building|House", &["Shed"], false);
        check("Building;Smart", &["Building"], false);
        check("Building;Smart", &["Smart", "Building"], true);
        check("(Building;Smart)|House", &["House"], true);
        check("(Building;Smart)|House", &["Smart"], false);
        check("Building;Smart|House", &["House"], true); // AND binds tighter
        check("Building;(Smart|House)", &["House"], false);
        check("Building;(Smart|House)", &["House", "Building"], true);
        check("((A))", &["A"], true);
        check(" A , B ", &["B"], true);
        check("https://ex.org/T#x", &["https://ex.org/T#x"], true);
        check("ex:T", &["ex:T"], true);
    }

    #[test]
    fn errors() {
        for bad in [
            "", "  ", ",", "A,", ",A", "A;;B", "A|", "(A", "A)", "()", "(A;B", "A B", "A(B)",
            "\"A\"",
        ] {
            check_err(bad);
        }
    }

    #[test]
    fn simple_any_of_and_expand() {
        let mut t = TypeExpr::parse("A,B|C").unwrap();
        assert_eq!(t.simple_any_of(), Some(vec!["A", "B", "C"]));
        t.expand_names(&|n| format!("https://ex.org/{n}"));
        assert_eq!(
            t.simple_any_of(),
            Some(vec![
                "https://ex.org/A",
                "https://ex.org/B",
                "https://ex.org/C"
            ])
        );
        assert_eq!(
            TypeExpr::parse("A").unwrap().simple_any_of(),
            Some(vec!["A"])
        );
        assert_eq!(TypeExpr::parse("A;B").unwrap().simple_any_of(), None);
        assert_eq!(TypeExpr::parse("(A;B)|C").unwrap().simple_any_of(), None);
        assert_eq!(TypeExpr::any_of(["X", "Y"]).to_string(), "X|Y");
        assert_eq!(
            TypeExpr::parse("(A|B);C,D").unwrap().to_string(),
            "(A|B);C|D"
        );
        assert_eq!(TypeExpr::parse("A;B;A").unwrap().names(), vec!["A", "B"]);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = TypeExpr::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_operator_soup(s in "[A-C;|,() ]{0,40}") {
            if let Ok(t) = TypeExpr::parse(&s) {
                // Canonical text parses back to the same expression.
                let again = TypeExpr::parse(&t.to_string()).unwrap();
                prop_assert_eq!(again, t);
            }
        }
    }
}
