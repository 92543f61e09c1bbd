//! `dosi export` against a real `dosi serve` whose instance page is tiny
//! (7), so both entity paging and the 206/Content-Range continuation are
//! exercised: every instance in the range comes out exactly once, none
//! outside it, as CSV (parsed back here) and as NDJSON.

use std::collections::HashMap;

use dosi_ngsi::Timestamp;
use serde_json::{json, Value};

mod common;

const FROM: &str = "2026-01-01T00:03:00Z";
const TO: &str = "2026-01-01T00:10:00Z";
const DATASET: &str = "urn:ngsi-ld:Dataset:a";

/// (entity, attribute, datasetId, observedAt in µs) → value as exported in CSV.
type Key = (String, String, String, i64);

fn at(minute: i64, second: i64) -> String {
    format!("2026-01-01T00:{minute:02}:{second:02}Z")
}

/// The history of one entity: `pm25` numbers every minute, `status`
/// strings (some with commas and quotes, one a JSON object) with a
/// datasetId every other minute.
fn entity(i: i64, minutes: std::ops::Range<i64>) -> Value {
    let mut pm25 = Vec::new();
    let mut status = Vec::new();
    for m in minutes {
        pm25.push(
            json!({"type": "Property", "value": (i * 100 + m) as f64 + 0.5,
                         "unitCode": "GQ", "observedAt": at(m, i * 3)}),
        );
        if m % 2 == 0 {
            let value = match (i, m % 3) {
                (4, 0) => json!({"a": [1, "x,y"], "b": "say \"hi\""}),
                (_, 0) => json!(format!("a,b \"q{i}-{m}\"")),
                _ => json!(format!("s{i}-{m}")),
            };
            status.push(
                json!({"type": "Property", "value": value, "datasetId": DATASET,
                               "observedAt": at(m, i * 3 + 30)}),
            );
        }
    }
    if i == 3 {
        // Exactly at the (exclusive) end of the range.
        pm25.push(json!({"type": "Property", "value": 999.5, "observedAt": TO}));
    }
    json!({"id": format!("urn:ngsi-ld:Sensor:{i}"), "type": "Sensor", "pm25": pm25, "status": status})
}

fn micros(t: &str) -> i64 {
    Timestamp::parse(t).expect("a time").0
}

fn csv_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The instances of `entities` inside [FROM, TO).
fn expected(entities: &[Value]) -> HashMap<Key, String> {
    let (from, to) = (micros(FROM), micros(TO));
    let mut out = HashMap::new();
    for e in entities {
        let id = e["id"].as_str().unwrap();
        for attr in ["pm25", "status"] {
            for i in e[attr].as_array().unwrap() {
                let t = micros(i["observedAt"].as_str().unwrap());
                if (from..to).contains(&t) {
                    let ds = i["datasetId"].as_str().unwrap_or("").to_string();
                    let key = (id.to_string(), attr.to_string(), ds, t);
                    assert!(out.insert(key, csv_text(&i["value"])).is_none());
                }
            }
        }
    }
    out
}

/// A small RFC 4180 reader: quoted fields with doubled quotes, CRLF rows.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "quote inside an unquoted field");
                quoted = true;
            }
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CR without LF"),
            (false, '\n') => panic!("row ended by a bare LF"),
            (false, c) => field.push(c),
        }
        if !quoted && chars.peek() == Some(&'\r') {
            chars.next();
            assert_eq!(chars.next(), Some('\n'), "CR without LF");
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(field.is_empty() && row.is_empty(), "last row without CRLF");
    rows
}

/// Runs `dosi export` with `args`; (success, stdout, stderr).
async fn export(base: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dosi"))
        .args(["export", "--url", base, "--from", FROM, "--to", TO])
        .args(args)
        .output()
        .await
        .expect("run dosi export");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    )
}

/// Checks the exported keys against `want`: each exactly once, in time
/// order per (entity, attribute, datasetId).
fn check_rows(got: Vec<(Key, String)>, want: &HashMap<Key, String>) {
    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut last: HashMap<(String, String, String), i64> = HashMap::new();
    for (key, value) in got {
        let series = (key.0.clone(), key.1.clone(), key.2.clone());
        if let Some(prev) = last.insert(series.clone(), key.3) {
            assert!(
                prev < key.3,
                "{series:?}: {prev} then {} (not time order)",
                key.3
            );
        }
        match want.get(&key) {
            Some(v) => assert_eq!(&value, v, "{key:?}"),
            None => panic!("exported an instance outside the range or unknown: {key:?}"),
        }
        *seen.entry(key).or_default() += 1;
    }
    for key in want.keys() {
        assert_eq!(
            seen.get(key),
            Some(&1),
            "{key:?} exported {:?} times",
            seen.get(key)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_csv_and_ndjson_through_paging() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = common::start_with(dir.path(), &[("DOSI_HISTORY_PAGE_INSTANCES", "7")]);
    let client = reqwest::Client::new();
    // Sensor:0's history ends early and Sensor:5's starts late: the entity
    // page must not shift while its instances are paged.
    let entities: Vec<Value> = (0..6)
        .map(|i| match i {
            0 => entity(0, 0..5),
            5 => entity(5, 8..14),
            i => entity(i, 0..13),
        })
        .collect();
    let other = json!({"id": "urn:ngsi-ld:Other:1", "type": "Other",
        "pm25": [{"type": "Property", "value": 7.5, "observedAt": at(5, 0)}]});
    for e in entities.iter().chain([&other]) {
        let r = client
            .post(format!("{}/ngsi-ld/v1/temporal/entities", server.base))
            .json(e)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let want = expected(&entities);
    let r = client
        .get(format!("{}/ngsi-ld/v1/temporal/entities", server.base))
        .query(&[
            ("type", "Sensor"),
            ("timerel", "between"),
            ("timeAt", FROM),
            ("endTimeAt", TO),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        206,
        "the range should span several instance pages"
    );

    // CSV, into a file: format from the extension.
    let csv_path = dir.path().join("out.csv");
    let csv_arg = csv_path.to_str().unwrap();
    let (ok, _, stderr) = export(
        &server.base,
        &[
            "--type",
            "Sensor",
            "--page-entities",
            "2",
            "--output",
            csv_arg,
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("exported 6 entities, {} instances", want.len())),
        "{stderr}"
    );
    let rows = parse_csv(&std::fs::read_to_string(&csv_path).unwrap());
    assert_eq!(
        rows[0],
        [
            "entity_id",
            "entity_type",
            "attribute",
            "dataset_id",
            "observed_at",
            "created_at",
            "value",
            "unit_code",
            "instance_id"
        ]
    );
    let mut got = Vec::new();
    for r in &rows[1..] {
        assert_eq!(r.len(), 9, "{r:?}");
        assert_eq!(r[1], "Sensor");
        assert!(r[8].starts_with("urn:"), "instance id {r:?}");
        assert!(!r[5].is_empty(), "created_at {r:?}");
        assert_eq!(r[7], if r[2] == "pm25" { "GQ" } else { "" });
        let key = (r[0].clone(), r[2].clone(), r[3].clone(), micros(&r[4]));
        got.push((key, r[6].clone()));
    }
    check_rows(got, &want);

    // NDJSON on stdout (the default format), one entity per request.
    let (ok, stdout, stderr) = export(
        &server.base,
        &["--attrs", "pm25,status", "--page-entities", "1"],
    )
    .await;
    assert!(ok, "{stderr}");
    let mut got = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        if v["entity_type"] == "Other" {
            assert_eq!(v["value"], 7.5);
            continue;
        }
        let key = (
            v["entity_id"].as_str().unwrap().to_string(),
            v["attribute"].as_str().unwrap().to_string(),
            v["dataset_id"].as_str().unwrap_or("").to_string(),
            micros(v["observed_at"].as_str().unwrap()),
        );
        got.push((key, csv_text(&v["value"])));
    }
    assert_eq!(got.len(), want.len());
    check_rows(got, &want);

    // A server error is shown and fails the command.
    let (ok, _, stderr) = export(&server.base, &["--type", "Sensor", "--q", "pm25>>"]).await;
    assert!(!ok);
    assert!(stderr.contains("400"), "{stderr}");

    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
