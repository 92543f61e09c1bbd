//! The operations console's web assets, embedded in the binary.
//!
//! The console is hand-written HTML, CSS and plain ES modules under
//! `assets/`: no framework, no bundler, no network access at run time (the
//! map, the charts and the translations are all in these files). This crate
//! only holds the files with their media types and entity tags; `dosi-api`
//! serves them at `/` and `/console/*` (it stays the only crate that knows
//! HTTP).
//!
//! Must not depend on any other dosi crate, nor do IO.

use std::sync::OnceLock;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/console/` (`app.js`).
    pub name: &'static str,
    /// Its media type, with charset for text.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
    /// A strong entity tag of the bytes (quoted, as sent in `ETag`).
    pub etag: String,
}

macro_rules! files {
    ($($name:literal => $ct:expr),* $(,)?) => {
        &[$(($name, $ct, include_bytes!(concat!("../assets/", $name)) as &[u8])),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The embedded files: name, media type, bytes.
const FILES: &[(&str, &str, &[u8])] = files! {
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => JS,
    "api.js" => JS,
    "i18n.js" => JS,
    "map.js" => JS,
    "status.js" => JS,
    "chart.js" => JS,
    "browser.js" => JS,
};

/// Every asset, tags computed once.
pub fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|&(name, content_type, body)| Asset {
                name,
                content_type,
                body,
                etag: format!("\"{:016x}\"", fnv1a(body)),
            })
            .collect()
    })
}

/// The asset named `name` (`app.js`), if any.
pub fn asset(name: &str) -> Option<&'static Asset> {
    assets().iter().find(|a| a.name == name)
}

/// The console's page, served at `/`.
pub fn index() -> &'static Asset {
    asset("index.html").expect("index.html is embedded")
}

/// FNV-1a, 64 bits: enough to tell versions of a file apart for caching.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_with_a_tag() {
        for a in assets() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert_eq!(asset(a.name).map(|x| &x.etag), Some(&a.etag));
        }
        assert!(index().content_type.starts_with("text/html"));
        assert!(asset("nope.js").is_none());
    }

    #[test]
    fn page_and_modules_name_no_external_url() {
        for a in assets() {
            let text = String::from_utf8_lossy(a.body);
            for bad in [
                "src=\"http",
                "href=\"http",
                "from \"http",
                "from 'http",
                "import(\"http",
            ] {
                assert!(!text.contains(bad), "{} loads {bad}…", a.name);
            }
        }
    }
}
