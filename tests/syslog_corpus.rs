//! Every message of the shared syslog corpus (412 real-world cases from RFCs and other
//! parsers' test suites) through sluice's syslog parser: none may panic or lose its text,
//! and the cases the corpus marks `strict_valid` must give exactly the fields it expects.

use bytes::Bytes;
use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use serde_json::Value as Json;
use sluice::event::{ObjectMap, Value};
use sluice::sources::syslog::{parse_into, Parsed};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/corpus/syslog/cases.jsonl"
);

fn b64(s: &str) -> Vec<u8> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let Some(v) = T.iter().position(|t| *t == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

pub fn cases() -> Vec<Json> {
    let text = std::fs::read_to_string(CORPUS).expect("the shared corpus is beside the checkout");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus lines are JSON"))
        .collect()
}

fn bytes_of(case: &Json) -> Vec<u8> {
    match case.get("msg_b64").and_then(Json::as_str) {
        Some(b) => b64(b),
        None => case["msg"].as_str().unwrap_or_default().as_bytes().to_vec(),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Integer(i) => Some(i.to_string()),
        other => Some(other.to_string_lossy().into_owned()),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
}

fn parse(raw: &[u8]) -> (Parsed, ObjectMap) {
    let mut fields = ObjectMap::new();
    let p = parse_into(&Bytes::copy_from_slice(raw), None, now(), &mut fields);
    (p, fields)
}

#[test]
fn every_case_parses_without_panic_and_keeps_its_text() {
    let cases = cases();
    assert_eq!(cases.len(), 412, "corpus size changed");
    for case in &cases {
        let raw = bytes_of(case);
        let id = case["id"].as_str().unwrap_or("?");
        let (parsed, fields) = parse(&raw);
        let lossy = String::from_utf8_lossy(&raw);
        if parsed == Parsed::Empty {
            assert!(
                lossy.trim().is_empty(),
                "{id}: non-blank input gave no event"
            );
            continue;
        }
        let message = text(fields.get("message")).unwrap_or_default();
        // The message text is part of what was sent (after the header, BOM and
        // surrounding whitespace are removed); nothing else is dropped.
        assert!(
            lossy.contains(message.trim()),
            "{id}: message {message:?} is not part of the input {lossy:?}"
        );
        if parsed == Parsed::Raw {
            assert_eq!(
                message,
                lossy.trim(),
                "{id}: raw fallback must keep the whole line"
            );
        }
        assert!(
            matches!(fields.get("timestamp"), Some(Value::Timestamp(_))),
            "{id}: no timestamp"
        );
    }
}

#[test]
fn strict_valid_cases_give_exactly_the_expected_fields() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases() {
        if case.get("strict_valid") != Some(&Json::Bool(true)) {
            continue;
        }
        let id = case["id"].as_str().unwrap_or("?").to_string();
        let expect = &case["expect"];
        let (parsed, f) = parse(&bytes_of(&case));
        if parsed != Parsed::Syslog {
            failures.push(format!("{id}: not parsed as syslog"));
            continue;
        }
        checked += 1;
        let mut check = |key: &str, got: Option<String>, want: Option<String>| {
            if got != want {
                failures.push(format!("{id}: {key}: got {got:?}, want {want:?}"));
            }
        };
        for key in [
            "facility", "severity", "hostname", "appname", "procid", "msgid",
        ] {
            if let Some(want) = expect.get(key) {
                check(key, text(f.get(key)), want.as_str().map(str::to_string));
            }
        }
        if let Some(want) = expect.get("version") {
            check(
                "version",
                text(f.get("version")),
                want.as_i64().map(|v| v.to_string()),
            );
        }
        if let Some(want) = expect.get("message") {
            let want = match expect.get("message_b64").and_then(Json::as_str) {
                Some(b) => Some(String::from_utf8_lossy(&b64(b)).into_owned()),
                None => want.as_str().map(str::to_string),
            };
            // Chosen behaviour where parsers disagree: a leading UTF-8 BOM marks the
            // message as UTF-8 and is not part of its text (RFC 5424 §6.4, as syslog-ng
            // and syslog_loose); go-syslog keeps it.
            let want = want.map(|w| w.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(w));
            check("message", text(f.get("message")), want);
        }
        if let Some(want) = expect.get("timestamp").and_then(Json::as_str) {
            let want = DateTime::parse_from_rfc3339(want)
                .map(|t| t.with_timezone(&Utc))
                .ok();
            let got = match f.get("timestamp") {
                Some(Value::Timestamp(t)) => Some(*t),
                _ => None,
            };
            check(
                "timestamp",
                got.map(|t| t.to_rfc3339()),
                want.map(|t| t.to_rfc3339()),
            );
        }
        if let Some(want) = expect.get("timestamp_text").and_then(Json::as_str) {
            // Year-less RFC 3164 time, read in local time: compare what the text states.
            let got = match f.get("timestamp") {
                Some(Value::Timestamp(t)) => {
                    let l = Local.from_utc_datetime(&t.naive_utc());
                    Some(format!(
                        "{} {} {:02}:{:02}:{:02}",
                        l.format("%b"),
                        l.day(),
                        l.hour(),
                        l.minute(),
                        l.second()
                    ))
                }
                _ => None,
            };
            let norm: Vec<&str> = want.split_whitespace().collect();
            let want = format!(
                "{} {} {}",
                norm[0],
                norm[1].trim_start_matches('0'),
                norm[2]
            );
            check("timestamp_text", got, Some(want));
        }
        if let Some(Json::Object(want_sd)) = expect.get("structured_data") {
            let got: Vec<(String, String)> = f
                .iter()
                .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
                .flat_map(|(k, o)| {
                    o.iter()
                        .map(move |(p, v)| (format!("{k}.{p}"), text(Some(v)).unwrap_or_default()))
                })
                .collect();
            let mut want: Vec<(String, String)> = want_sd
                .iter()
                .filter_map(|(k, o)| o.as_object().map(|o| (k, o)))
                .flat_map(|(k, o)| {
                    o.iter().map(move |(p, v)| {
                        (
                            format!("{k}.{p}"),
                            v.as_str().unwrap_or_default().to_string(),
                        )
                    })
                })
                .collect();
            want.sort();
            check(
                "structured_data",
                Some(format!("{got:?}")),
                Some(format!("{want:?}")),
            );
        }
    }
    assert!(checked >= 89, "only {checked} strict cases checked");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn loose(t: &str) -> Option<syslog_loose::Message<&str>> {
    syslog_loose::parse_message_with_year_exact(t, |_| 2026, syslog_loose::Variant::Either).ok()
}

#[test]
fn fast_rfc5424_path_agrees_with_syslog_loose_on_the_corpus() {
    let mut taken = 0;
    for case in cases() {
        let raw = bytes_of(&case);
        let Ok(text) = std::str::from_utf8(&raw) else {
            continue;
        };
        let t = text.trim();
        if let Some(fast) = sluice::sources::syslog::parse_strict(t) {
            taken += 1;
            let slow = loose(t);
            assert_eq!(
                Some(format!("{fast:?}")),
                slow.map(|m| format!("{m:?}")),
                "{}: {t:?}",
                case["id"]
            );
        }
    }
    assert!(
        taken >= 100,
        "the fast path took only {taken} corpus messages"
    );
}

mod generated {
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![Just("-".to_string()), "[A-Za-z0-9._@:-]{1,12}"]
    }

    fn sd_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9 =.:/-]{0,12}",
            r#"[a-z]{0,3}(\\"|\\\\|\\\]|\\n)[a-z ]{0,3}"#
        ]
    }

    fn sd() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("-".to_string()),
            proptest::collection::vec(
                (
                    "[a-zA-Z]{1,8}(@[0-9]{1,5})?",
                    proptest::collection::vec(("[a-zA-Z]{1,6}", sd_value()), 0..3)
                ),
                1..3
            )
            .prop_map(|els| els
                .into_iter()
                .map(|(id, ps)| format!(
                    "[{id}{}]",
                    ps.iter()
                        .map(|(k, v)| format!(" {k}=\"{v}\""))
                        .collect::<String>()
                ))
                .collect::<String>()),
        ]
    }

    fn timestamp() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("-".to_string()),
            (
                2000u32..2030,
                1u32..13,
                1u32..29,
                0u32..24,
                0u32..60,
                0u32..60,
                prop_oneof![Just(String::new()), "\\.[0-9]{1,9}"],
                prop_oneof![Just("Z".to_string()), "[+-](0[0-9]|1[0-2]):[0-5][0-9]"]
            )
                .prop_map(|(y, mo, d, h, mi, s, f, z)| format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{z}"
                )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn fast_path_takes_well_formed_messages_and_agrees(
            pri in 0u8..192, version in 1u32..4, ts in timestamp(), host in field(), app in field(),
            procid in prop_oneof![Just("-".to_string()), "[0-9]{1,6}", "[a-z]{1,6}"], msgid in field(),
            sd in sd(), msg in prop_oneof![Just(String::new()), "[ -~]{0,40}"],
        ) {
            let line = format!("<{pri}>{version} {ts} {host} {app} {procid} {msgid} {sd} {msg}");
            let t = line.trim();
            let fast = sluice::sources::syslog::parse_strict(t);
            let slow = super::loose(t);
            if let Some(f) = &fast {
                prop_assert_eq!(Some(format!("{f:?}")), slow.map(|m| format!("{m:?}")), "{}", t);
            }
        }
    }
}
