//! UltraLight 2.0: the user manual's examples and the error cases.

use dosi_iot::payload::ul;
use dosi_iot::{Measure, MeasureGroup, MeasureValue, PayloadError};
use serde_json::json;

fn group(ts: Option<&str>, pairs: &[(&str, &str)]) -> MeasureGroup {
    MeasureGroup {
        timestamp: ts.map(str::to_owned),
        measures: pairs
            .iter()
            .map(|(n, v)| Measure {
                name: (*n).into(),
                value: MeasureValue::Text((*v).into()),
            })
            .collect(),
    }
}

#[track_caller]
fn check(input: &str, expected: &[MeasureGroup]) {
    assert_eq!(
        ul::decode(input.as_bytes()).as_deref(),
        Ok(expected),
        "{input:?}"
    );
}

#[track_caller]
fn check_err(input: &[u8], expected: &str) {
    match ul::decode(input) {
        Err(e) => assert!(e.to_string().contains(expected), "{input:?}: {e}"),
        Ok(g) => panic!("{input:?} decoded to {g:?}"),
    }
}

#[test]
fn manual_examples() {
    // "two attributes, one named "t" with value "15" and another named "k" with value "abc""
    check("t|15|k|abc", &[group(None, &[("t", "15"), ("k", "abc")])]);
    // Two groups: one NGSI update each.
    check(
        "gps|1.2/3.4#t|10",
        &[
            group(None, &[("gps", "1.2/3.4")]),
            group(None, &[("t", "10")]),
        ],
    );
    // A timestamped group.
    check(
        "2016-06-13T00:35:30Z|lle|100",
        &[group(Some("2016-06-13T00:35:30Z"), &[("lle", "100")])],
    );
}

#[test]
fn measures() {
    check("t|23", &[group(None, &[("t", "23")])]);
    check("t|23|h|45\n", &[group(None, &[("t", "23"), ("h", "45")])]);
    check(
        " t | 23 | h | 45 \r\n",
        &[group(None, &[("t", "23"), ("h", "45")])],
    );
    check("t|", &[group(None, &[("t", "")])]);
    check("msg|hello world", &[group(None, &[("msg", "hello world")])]);
    check("c|a=b", &[group(None, &[("c", "a=b")])]);
    check(
        "t|15#\n2016-06-13T00:35:30+02:00|t|16",
        &[
            group(None, &[("t", "15")]),
            group(Some("2016-06-13T00:35:30+02:00"), &[("t", "16")]),
        ],
    );
    check(
        "2016-06-13T00:35:30|t|1",
        &[group(Some("2016-06-13T00:35:30"), &[("t", "1")])],
    );
    check(
        "2016-06-13T00:35:30.5Z|t|1|h|2",
        &[group(
            Some("2016-06-13T00:35:30.5Z"),
            &[("t", "1"), ("h", "2")],
        )],
    );
    // Even field count: a date-time as first field is a measure name.
    check(
        "2016-06-13T00:35:30Z|1",
        &[group(None, &[("2016-06-13T00:35:30Z", "1")])],
    );
    check("é|ü", &[group(None, &[("é", "ü")])]);
}

#[test]
fn errors() {
    assert_eq!(ul::decode(b""), Err(PayloadError::Empty));
    assert_eq!(ul::decode(b" \n\t"), Err(PayloadError::Empty));
    assert_eq!(ul::decode(b"t|\xff"), Err(PayloadError::NotUtf8));
    let big = vec![b'a'; 64 * 1024 + 1];
    assert_eq!(ul::decode(&big), Err(PayloadError::TooLarge(65537, 65536)));
    check_err(
        b"t",
        "measure group 1 has an odd number of fields (1) and its first, `t`, is not a timestamp",
    );
    check_err(
        b"t|1|h",
        "measure group 1 has an odd number of fields (3) and its first, `t`",
    );
    check_err(b"t|1#h", "measure group 2 has an odd number of fields (1)");
    check_err(b"t|1#", "measure group 2 is empty");
    check_err(b"#t|1", "measure group 1 is empty");
    check_err(b"t|1##h|2", "measure group 2 is empty");
    check_err(b"|1", "measure group 1 measure 1 has an empty name");
    check_err(b"t|1| |2", "measure group 1 measure 2 has an empty name");
    check_err(
        b"2016-06-13T00:35:30Z",
        "measure group 1 has a timestamp but no measures",
    );
    check_err(b"2016-13-13T00:35:30Z|t|1", "is not a timestamp");
    // All or nothing: a bad second group fails the first too.
    assert!(ul::decode(b"t|1#x").is_err());
}

#[test]
fn encode_round_trip() {
    let groups = vec![
        group(Some("2016-06-13T00:35:30Z"), &[("lle", "100")]),
        group(None, &[("t", "15"), ("k", "abc")]),
    ];
    let text = ul::encode(&groups);
    assert_eq!(text, "2016-06-13T00:35:30Z|lle|100#t|15|k|abc");
    assert_eq!(ul::decode(text.as_bytes()), Ok(groups));
}

#[test]
fn commands() {
    // The manual's example.
    assert_eq!(
        ul::encode_command(
            "weatherStation167",
            "ping",
            &json!({"param1": 1, "param2": 2})
        ),
        "weatherStation167@ping|param1=1|param2=2"
    );
    assert_eq!(
        ul::encode_command("dev", "reset", &json!(null)),
        "dev@reset"
    );
    assert_eq!(ul::encode_command("dev", "reset", &json!({})), "dev@reset");
    assert_eq!(
        ul::encode_command("dev", "set", &json!({"mode": "eco"})),
        "dev@set|mode=eco"
    );
    assert_eq!(ul::encode_command("dev", "set", &json!(22)), "dev@set|22");
    assert_eq!(ul::encode_command("dev", "set", &json!("on")), "dev@set|on");

    // The manual's result example.
    assert_eq!(
        ul::decode_command_result(b"weatherStation167@ping|Ping ok"),
        Ok(("weatherStation167".into(), "ping".into(), "Ping ok".into()))
    );
    assert_eq!(
        ul::decode_command_result(b"dev@get|a|b\n"),
        Ok(("dev".into(), "get".into(), "a|b".into()))
    );
    assert_eq!(
        ul::decode_command_result(b"dev@get|"),
        Ok(("dev".into(), "get".into(), String::new()))
    );
    for (bad, msg) in [
        (&b"devping|ok"[..], "no `@`"),
        (b"dev@ping", "no `|`"),
        (b"@ping|ok", "device name is empty"),
        (b"dev@|ok", "command name is empty"),
    ] {
        let e = ul::decode_command_result(bad).unwrap_err();
        assert!(e.to_string().contains(msg), "{bad:?}: {e}");
    }
    assert_eq!(ul::decode_command_result(b""), Err(PayloadError::Empty));
    assert_eq!(
        ul::decode_command_result(b"\xc3"),
        Err(PayloadError::NotUtf8)
    );
}

#[test]
fn command_round_trip() {
    // What the device answers is `device@command|result`; the device and
    // command of an encoded command come back unchanged.
    let cmd = ul::encode_command("weatherStation167", "ping", &json!({"param1": 1}));
    let (head, _) = cmd.split_once('|').unwrap();
    let reply = format!("{head}|Ping ok");
    assert_eq!(
        ul::decode_command_result(reply.as_bytes()),
        Ok(("weatherStation167".into(), "ping".into(), "Ping ok".into()))
    );
}
