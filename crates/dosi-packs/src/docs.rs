//! Markdown pages for `docs/packs/`, generated from the packs so they cannot
//! drift (a test compares them; `DOSI_BLESS_DOCS=1 cargo test -p dosi-packs`
//! rewrites them).

use std::fmt::Write as _;

use crate::model::{AttributeKind, AttributeSpec, EntityTypeSpec, Pack};
use crate::{all_packs_context, packs};

/// `docs/packs/README.md`: the index of packs and the context notes.
pub fn render_index() -> String {
    let mut s = String::new();
    s.push_str("# Domain packs\n\n");
    s.push_str(
        "Generated from `crates/dosi-packs/packs/*.json` by `dosi_packs::docs` \
         (`DOSI_BLESS_DOCS=1 cargo test -p dosi-packs` rewrites these pages).\n\n\
         Each smart-city service is a pack. This crate holds the packs' data models: \
         the NGSI-LD entity types, their attributes, a JSON-LD `@context` per pack and \
         a shape validator (`dosi_packs::validate`). Types that follow a FIWARE Smart \
         Data Model keep its attribute names and IRIs; where no model exists dosi \
         defines its own shape under `https://dosi.city/ns/`.\n\n",
    );
    s.push_str("| pack | entity types | typical rules |\n|---|---|---|\n");
    for p in packs() {
        let types: Vec<String> = p
            .entity_types
            .iter()
            .map(|t| {
                if t.is_dosi_shape() {
                    format!("{} (dosi shape)", t.name)
                } else {
                    t.name.clone()
                }
            })
            .collect();
        let rules: Vec<&str> = p.rules.iter().map(|r| r.name.as_str()).collect();
        let _ = writeln!(
            s,
            "| [{}]({}.md) | {} | {} |",
            p.title,
            p.name,
            types.join(", "),
            rules.join("; ")
        );
    }
    s.push_str(
        "\n## Contexts\n\n\
         `Pack::context()` gives one pack's `@context`; `all_packs_context()` merges them. \
         Term IRIs follow the Smart Data Models domain contexts: the GSMA commons \
         (`name`, `address`, `dateObserved`, …) are `https://smartdatamodels.org/<term>`, \
         `status` is `ngsi-ld:status`, every other term is \
         `https://smartdatamodels.org/dataModel.<Domain>/<term>`; dosi shapes use \
         `https://dosi.city/ns/<term>` and reuse an SDM IRI where they reuse its meaning \
         (`batteryLevel`). `location` is left to the NGSI-LD core context.\n\n\
         Smart Data Models domains give some short terms different IRIs. A flat context \
         cannot hold both, so the merged context leaves these terms out and declares one \
         prefix per vocabulary instead (`sdm-parking:occupancy`, \
         `sdm-transportation:occupancy`); the per-pack contexts keep the bare terms. \
         The conflicts (a test pins this list):\n\n",
    );
    s.push_str("| term | IRI | used by |\n|---|---|---|\n");
    for c in &all_packs_context().conflicts {
        for (iri, users) in &c.definitions {
            let _ = writeln!(s, "| `{}` | `{iri}` | {} |", c.term, users.join(", "));
        }
    }
    s.push_str("\n## dosi shapes and extensions\n\nTypes without a Smart Data Model:\n\n");
    for p in packs() {
        for t in p.entity_types.iter().filter(|t| t.is_dosi_shape()) {
            let _ = writeln!(
                s,
                "- **{}** ([{}]({}.md)): {}",
                t.name, p.title, p.name, t.description
            );
        }
    }
    s.push_str("\nAttributes dosi adds to Smart Data Models types:\n\n");
    for p in packs() {
        for t in p.entity_types.iter().filter(|t| !t.is_dosi_shape()) {
            for a in &t.attributes {
                if is_dosi_extension(t, a) {
                    let _ = writeln!(s, "- `{}.{}`: {}", t.name, a.name, a.description);
                }
            }
        }
    }
    s.push_str(
        "\n## Validation\n\n\
         `dosi_packs::validate(&entity)` checks a normalized NGSI-LD entity with short \
         terms (compacted with its pack's context) and returns every problem, each \
         naming `Type.attribute`:\n\n\
         - the type is defined by a pack; `id` is a URI;\n\
         - required attributes are present;\n\
         - each attribute has the shape's NGSI-LD kind and its `value` / `object` / \
         `languageMap` member;\n\
         - Property values: JSON type, enumeration, numeric range (sentinels such as \
         `batteryLevel` -1 aside), RFC 3339 date-times (also as \
         `{\"@type\": \"DateTime\", \"@value\": …}`), URIs, array items;\n\
         - `unitCode`, when the shape fixes a unit: another code is an error, no code \
         means the shape's unit;\n\
         - GeoProperty: GeoJSON geometry type allowed by the shape, positions in \
         longitude/latitude range, closed polygon rings;\n\
         - Relationship: object(s) `urn:ngsi-ld:<Type>:<id>` with an allowed target type;\n\
         - multi-attributes (arrays of instances with `datasetId`) instance by instance.\n\n\
         Attributes the shape does not know are accepted, as Smart Data Models are open, \
         unless they reuse an attribute name of some pack with another kind \
         (a `refRoadSegment` Property on a ParkingSpot).\n",
    );
    s
}

/// Whether `a` is dosi's addition to a Smart Data Models type.
fn is_dosi_extension(t: &EntityTypeSpec, a: &AttributeSpec) -> bool {
    t.attribute_iri(a).starts_with(crate::DOSI_VOCAB) || a.description.starts_with("dosi extension")
}

/// `docs/packs/<name>.md`: one pack's types, attribute tables, rules and examples.
pub fn render_pack(pack: &Pack) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", pack.title);
    s.push_str("Generated from `crates/dosi-packs/packs/");
    s.push_str(&pack.name);
    s.push_str(".json`; do not edit by hand.\n\n");
    let _ = writeln!(s, "{}\n", pack.description);
    if !pack.rules.is_empty() {
        s.push_str("## Typical rules\n\n");
        for r in &pack.rules {
            let _ = writeln!(s, "- **{}**: {}", r.name, r.description);
        }
        s.push('\n');
    }
    for t in &pack.entity_types {
        render_type(&mut s, t);
    }
    s
}

fn render_type(s: &mut String, t: &EntityTypeSpec) {
    let _ = writeln!(s, "## {}\n", t.name);
    let _ = writeln!(s, "{}\n", t.description);
    match &t.model {
        Some(url) => {
            let _ = writeln!(s, "Smart Data Model: <{url}>. Type IRI `{}`.\n", t.iri());
        }
        None => {
            let _ = writeln!(
                s,
                "dosi shape (no Smart Data Model exists). Type IRI `{}`.\n",
                t.iri()
            );
        }
    }
    s.push_str("| attribute | kind | type / unit | required | IRI | description |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    for a in &t.attributes {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | `{}` | {} |",
            a.name,
            a.kind.as_str(),
            type_cell(a),
            if a.required { "yes" } else { "" },
            t.attribute_iri(a),
            a.description.replace('|', "\\|")
        );
    }
    s.push_str("\nExample (normalized NGSI-LD, short terms):\n\n```json\n");
    s.push_str(&serde_json::to_string_pretty(&t.example).expect("a JSON value always serializes"));
    s.push_str("\n```\n\n");
}

fn type_cell(a: &AttributeSpec) -> String {
    let cell = match a.kind {
        AttributeKind::GeoProperty => {
            if a.geometry.is_empty() {
                "any geometry".to_owned()
            } else {
                let g: Vec<&str> = a.geometry.iter().map(|g| g.as_str()).collect();
                g.join(" or ")
            }
        }
        AttributeKind::Relationship => {
            let targets = if a.targets.is_empty() {
                "any entity".to_owned()
            } else {
                format!("→ {}", a.targets.join(" or "))
            };
            if a.multiple {
                format!("{targets} (one or more)")
            } else {
                targets
            }
        }
        _ => a
            .value
            .as_ref()
            .map_or_else(|| "any".to_owned(), |v| v.describe()),
    };
    cell.replace('|', "\\|")
}
