//! IoT Agent JSON: the user manual's examples and the error cases.

use dosi_iot::payload::json as iota_json;
use dosi_iot::{Measure, MeasureGroup, MeasureValue, PayloadError};
use serde_json::{json, Value};

fn group(ts: Option<&str>, measures: Value) -> MeasureGroup {
    let Value::Object(members) = measures else {
        panic!("measures must be an object")
    };
    MeasureGroup {
        timestamp: ts.map(str::to_owned),
        measures: members
            .into_iter()
            .map(|(name, v)| Measure {
                name,
                value: MeasureValue::Json(v),
            })
            .collect(),
    }
}

#[track_caller]
fn check(input: &str, expected: &[MeasureGroup]) {
    assert_eq!(
        iota_json::decode(input.as_bytes()).as_deref(),
        Ok(expected),
        "{input}"
    );
}

#[track_caller]
fn check_err(input: &str, expected: &str) {
    match iota_json::decode(input.as_bytes()) {
        Err(e) => assert!(e.to_string().contains(expected), "{input}: {e}"),
        Ok(g) => panic!("{input} decoded to {g:?}"),
    }
}

#[test]
fn manual_examples() {
    check(
        r#"{"h": "45%", "t": "23", "l": "1570"}"#,
        &[group(None, json!({"h": "45%", "t": "23", "l": "1570"}))],
    );
    // Multimeasures: one group per array item.
    check(
        r#"[{"h": "45%", "t": "23", "l": "1570"}, {"h": "47%", "t": "21", "l": "1321"}]"#,
        &[
            group(None, json!({"h": "45%", "t": "23", "l": "1570"})),
            group(None, json!({"h": "47%", "t": "21", "l": "1321"})),
        ],
    );
    // Structured values pass through.
    check(
        r#"{"h": "45%", "t": "23", "l": {"a": 2, "b": "up", "c": ["1", "3"]}}"#,
        &[group(
            None,
            json!({"h": "45%", "t": "23", "l": {"a": 2, "b": "up", "c": ["1", "3"]}}),
        )],
    );
    // The MQTT example.
    check(
        r#"{"h": 70, "t": 15}"#,
        &[group(None, json!({"h": 70, "t": 15}))],
    );
}

#[test]
fn time_instant() {
    check(
        r#"{"t": 23, "TimeInstant": "2016-06-13T00:35:30Z"}"#,
        &[group(Some("2016-06-13T00:35:30Z"), json!({"t": 23}))],
    );
    check(
        r#"[{"TimeInstant": "2016-06-13T00:35:30Z", "t": 1}, {"t": 2}]"#,
        &[
            group(Some("2016-06-13T00:35:30Z"), json!({"t": 1})),
            group(None, json!({"t": 2})),
        ],
    );
    check_err(
        r#"{"t": 1, "TimeInstant": 12}"#,
        "`TimeInstant` must be a date-time string",
    );
    check_err(
        r#"{"t": 1, "TimeInstant": "yesterday"}"#,
        "`TimeInstant` must be a date-time string",
    );
    check_err(
        r#"[{"t": 1}, {"t": 1, "TimeInstant": null}]"#,
        "array item 2: `TimeInstant` must be",
    );
    check_err(r#"{"TimeInstant": "2016-06-13T00:35:30Z"}"#, "no measures");
}

#[test]
fn errors() {
    assert_eq!(iota_json::decode(b""), Err(PayloadError::Empty));
    assert_eq!(iota_json::decode(b"\n "), Err(PayloadError::Empty));
    assert_eq!(
        iota_json::decode(b"{\"t\": \"\xff\"}"),
        Err(PayloadError::NotUtf8)
    );
    let big = format!(r#"{{"t": "{}"}}"#, "a".repeat(64 * 1024));
    assert!(matches!(
        iota_json::decode(big.as_bytes()),
        Err(PayloadError::TooLarge(_, 65536))
    ));
    check_err(r#"{"t": 1"#, "IoT Agent JSON: invalid JSON");
    check_err("t|1", "invalid JSON");
    check_err("42", "the payload is a number, not an object of measures");
    check_err(r#""t""#, "the payload is a string");
    check_err("null", "the payload is null");
    check_err("[]", "the array of measure groups is empty");
    check_err(
        r#"[{"t": 1}, 2]"#,
        "array item 2 is a number, not an object of measures",
    );
    check_err(r#"[[{"t": 1}]]"#, "array item 1 is an array");
    check_err("{}", "no measures");
    check_err(r#"{"": 1}"#, "a measure has an empty name");
}

#[test]
fn commands() {
    // The manual's example: command `ping` with `data = 22`.
    let cmd = iota_json::encode_command("ping", &json!({"data": "22"}));
    assert_eq!(cmd, json!({"ping": {"data": "22"}}));
    assert_eq!(cmd.to_string(), r#"{"ping":{"data":"22"}}"#);
    assert_eq!(
        iota_json::encode_command("turn", &json!("left")),
        json!({"turn": "left"})
    );

    assert_eq!(
        iota_json::decode_command_result(br#"{"ping": "1234567890"}"#),
        Ok(vec![("ping".into(), json!("1234567890"))])
    );
    assert_eq!(
        iota_json::decode_command_result(br#"{"turn": "turn to left was right", "move": 20}"#),
        Ok(vec![
            ("turn".into(), json!("turn to left was right")),
            ("move".into(), json!(20)),
        ])
    );
    for (bad, msg) in [
        ("{}", "empty"),
        ("[]", "not an object"),
        (r#""ok""#, "not an object"),
        (r#"{"": 1}"#, "empty command name"),
        ("{", "invalid JSON"),
    ] {
        let e = iota_json::decode_command_result(bad.as_bytes()).unwrap_err();
        assert!(e.to_string().contains(msg), "{bad}: {e}");
    }
}

#[test]
fn command_round_trip() {
    // A device echoing each command back with its result.
    let cmd = iota_json::encode_command("ping", &json!({"data": 22}));
    let reply = cmd.to_string();
    assert_eq!(
        iota_json::decode_command_result(reply.as_bytes()),
        Ok(vec![("ping".into(), json!({"data": 22}))])
    );
}
