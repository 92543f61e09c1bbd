//! Newtypes for the identifiers that cross crate boundaries.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{NgsiError, Result};

/// An entity id: an absolute IRI (URN or URL), e.g. `urn:ngsi-ld:Vehicle:A4567`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(Arc<str>);

impl EntityId {
    /// Validates `s` as an NGSI-LD entity id (an absolute URI with a scheme).
    pub fn parse(s: &str) -> Result<Self> {
        if is_absolute_uri(s) {
            Ok(Self(Arc::from(s)))
        } else {
            Err(NgsiError::bad_data(format!(
                "entity id '{s}' is not a valid URI (it needs a scheme such as urn: or https:)"
            )))
        }
    }
    /// Wraps `s` without validation (ids read back from the store).
    pub fn new_unchecked(s: &str) -> Self {
        Self(Arc::from(s))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `s` looks like an absolute URI: `scheme ":" rest`, with an RFC 3986
/// scheme, a non-empty rest and no whitespace or characters URIs never contain.
pub fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
                || is_invisible(c)
        })
}

/// True for characters that render as nothing (or as something else) and so
/// make two different identifiers look alike: bidi controls, zero-width and
/// other format characters, variation selectors, fillers, noncharacters.
/// RFC 3987 admits some of them in IRIs, but an id carrying one cannot be
/// read back reliably from logs or screens, so ids and names refuse them.
pub fn is_invisible(c: char) -> bool {
    let u = u32::from(c);
    matches!(
        u,
        0x00AD // soft hyphen
            | 0x034F // combining grapheme joiner
            | 0x061C // Arabic letter mark
            | 0x115F..=0x1160 // Hangul choseong / jungseong fillers
            | 0x17B4..=0x17B5 // Khmer inherent vowels
            | 0x180B..=0x180F // Mongolian variation selectors and vowel separator
            | 0x200B..=0x200F // zero-width space/joiners, LRM, RLM
            | 0x202A..=0x202E // bidi embeddings and overrides
            | 0x2060..=0x206F // word joiner, invisible operators, bidi isolates
            | 0x2800 // Braille pattern blank
            | 0x3164 // Hangul filler
            | 0xFDD0..=0xFDEF // noncharacters
            | 0xFE00..=0xFE0F // variation selectors
            | 0xFEFF // byte order mark / zero-width no-break space
            | 0xFFA0 // halfwidth Hangul filler
            | 0xFFF0..=0xFFFB // specials and interlinear annotation controls
            | 0x1D173..=0x1D17A // musical symbol format controls
            | 0xE0000..=0xE007F // tag characters
            | 0xE0100..=0xE01EF // variation selectors supplement
    ) || u & 0xFFFE == 0xFFFE // the last two code points of every plane
}

/// A tenant name (`NGSILD-Tenant`). The default tenant is the empty name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// The default tenant (no `NGSILD-Tenant` header).
    pub fn default_tenant() -> Self {
        Self(Arc::from(""))
    }
    /// Validates a tenant name: 1–64 characters of `[A-Za-z0-9_.:-]`.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(NgsiError::bad_data(format!(
                "tenant '{s}' is not valid: use 1-64 characters of letters, digits, '_', '-', '.', ':'"
            )))
        }
    }
    /// True for the default tenant.
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }
    /// The tenant name as text ("" for the default tenant).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<default>")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids() {
        for ok in ["urn:ngsi-ld:Vehicle:A1", "https://example.org/a", "x:y"] {
            assert!(EntityId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Vehicle", ":x", "urn:", "1a:b", "urn:a b", "urn:<x>"] {
            assert!(EntityId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invisible_characters_are_not_ids() {
        let check = |c: char, ok: bool| {
            let id = format!("urn:ngsi-ld:Vehicle:A{c}B");
            assert_eq!(EntityId::parse(&id).is_ok(), ok, "U+{:04X}", u32::from(c));
        };
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{00A0}',
            '<',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{FDD0}',
            '\u{FFFE}',
            '\u{1FFFF}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{2800}',
            '\u{2066}',
            '\u{00AD}',
        ] {
            check(c, false);
        }
        for c in ['í', 'ß', '한', '字', '-', '.', '~', '😀'] {
            check(c, true);
        }
    }
}
