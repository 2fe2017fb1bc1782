//! The TCP framer against the shared framing corpus (RFC 6587 octet counting and newline
//! framing, including broken senders) and rsyslog's raw test streams, fed in every split
//! a network might produce; plus property tests: arbitrary bytes never panic the framer
//! or the parser, and every byte is accounted for.

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use proptest::prelude::*;
use serde_json::Value as Json;
use sluice::event::ObjectMap;
use sluice::sources::syslog::{parse_into, Framer, Parsed};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/syslog");

/// Frames and total consumed bytes for `input` fed in `chunk`-sized reads.
fn frame(input: &[u8], chunk: usize, max_length: usize) -> (Vec<String>, usize) {
    let mut f = Framer::new(max_length);
    let mut buf = BytesMut::new();
    let (mut frames, mut consumed) = (Vec::new(), 0);
    for part in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        while let Some(d) = f.decode(&mut buf) {
            consumed += d.consumed;
            frames.extend(d.frame.map(|b| String::from_utf8_lossy(&b).into_owned()));
        }
    }
    while let Some(d) = f.decode_eof(&mut buf) {
        consumed += d.consumed;
        frames.extend(d.frame.map(|b| String::from_utf8_lossy(&b).into_owned()));
    }
    (frames, consumed)
}

/// Where sluice deliberately differs from the corpus's reference receivers, the frames it
/// gives instead. The rule behind each: text a client sent is never dropped silently.
fn chosen(id: &str) -> Option<Vec<&'static str>> {
    Some(match id {
        // Garbage after a good frame: the connection falls back to newline framing and
        // the text is kept (counted as a framing error) instead of being discarded.
        "framing-004" => vec!["<1>1 - - - - - -", "xaaa"],
        // Stream closed inside a frame: the part that arrived is kept (framing error).
        "framing-006" => vec!["<1>1"],
        // No space after the length: not octet counting, so the line is kept whole.
        "framing-007" => vec!["16<1>1"],
        "framing-008" => vec!["1"],
        // Over max_length (10 here): truncated and counted, not rejected.
        "framing-011" => vec!["<1>1 - - -"],
        // A miscounted length desynchronises the stream; what follows is kept as text.
        "framing-012" => vec!["<1>217 <11>1 - -", "- - - -"],
        // An unterminated last line is delivered whole when the connection closes.
        "framing-019" => {
            vec!["<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 tcpflood 8710 - - lastmsg"]
        }
        _ => return None,
    })
}

#[test]
fn framing_corpus_in_every_split() {
    let text = std::fs::read_to_string(format!("{DIR}/framing_cases.jsonl")).expect("corpus");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("json");
        let id = case["id"].as_str().unwrap_or("?");
        let stream = case["stream"].as_str().unwrap_or_default().as_bytes();
        let max = if id == "framing-011" { 10 } else { 102_400 };
        let want: Vec<String> = match chosen(id) {
            Some(v) => v.into_iter().map(str::to_string).collect(),
            None => case["expect_frames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        };
        for chunk in [1, 2, 3, 7, stream.len().max(1)] {
            let (got, consumed) = frame(stream, chunk, max);
            assert_eq!(
                consumed,
                stream.len(),
                "{id}: bytes unaccounted for (chunk {chunk})"
            );
            if id == "framing-023" {
                // Regex framing is not RFC 6587: newline framing splits the multi-line
                // messages, and every non-blank line's text arrives.
                let sent: Vec<&str> = std::str::from_utf8(stream)
                    .unwrap_or_default()
                    .split('\n')
                    .filter(|l| !l.is_empty())
                    .collect();
                assert_eq!(got, sent, "{id}");
                continue;
            }
            // The Cisco ASA space after LF is left to the parser, which trims it.
            let got: Vec<String> = got
                .iter()
                .map(|f| f.trim_start_matches(' ').to_string())
                .collect();
            let want_prefix = &want[..want.len().min(got.len())];
            assert_eq!(
                &got[..want_prefix.len()],
                want_prefix,
                "{id} (chunk {chunk})"
            );
            assert_eq!(got.len(), want.len(), "{id} (chunk {chunk}): {got:?}");
        }
        n += 1;
    }
    assert_eq!(n, 23);
}

#[test]
fn rsyslog_testdata_streams_keep_every_line() {
    for name in [
        "rsyslog_no_octet_counted.testdata",
        "rsyslog_spframingfix.testdata",
        "rsyslog_imptcp_framing_regex.testdata",
        "rsyslog_imptcp_framing_regex-oversize.testdata",
    ] {
        let data = std::fs::read(format!("{DIR}/framing/{name}")).expect("testdata");
        let (frames, consumed) = frame(&data, 1000, 102_400);
        assert_eq!(consumed, data.len(), "{name}");
        let lines: Vec<&str> = std::str::from_utf8(&data)
            .expect("utf8")
            .split('\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(frames, lines, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn framer_accounts_for_every_byte(data in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64, max in 1usize..200) {
        let (_, consumed) = frame(&data, chunk, max);
        prop_assert_eq!(consumed, data.len());
    }

    #[test]
    fn framer_never_emits_more_than_max_length(data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b' '), Just(b'1'), Just(b'9'), any::<u8>()], 0..600), max in 1usize..50) {
        let mut f = Framer::new(max);
        let mut buf = BytesMut::from(&data[..]);
        while let Some(d) = f.decode_eof(&mut buf) {
            if let Some(fr) = d.frame { prop_assert!(fr.len() <= max); }
        }
    }

    #[test]
    fn newline_frames_reassemble_the_input(lines in proptest::collection::vec("[^\n\0]{1,40}", 1..20), chunk in 1usize..32) {
        let text = format!("<13>{}\n", lines.join("\n<13>"));
        let (frames, consumed) = frame(text.as_bytes(), chunk, 1000);
        prop_assert_eq!(consumed, text.len());
        prop_assert_eq!(frames.join("\n") + "\n", text);
    }

    #[test]
    fn parser_never_panics_and_keeps_raw_text(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut fields = ObjectMap::new();
        let text = String::from_utf8_lossy(&data).trim().to_string();
        match parse_into(&Bytes::from(data), None, Utc::now(), &mut fields) {
            // Not syslog: the whole text, as received (invalid UTF-8 replaced), is the message.
            Parsed::Raw => prop_assert_eq!(
                fields.get("message").map(|m| m.to_string_lossy().into_owned()),
                Some(text)
            ),
            // Only whitespace: nothing to keep.
            Parsed::Empty => prop_assert!(text.is_empty()),
            // Syslog: the message is a piece of the text, never something made up.
            Parsed::Syslog => {
                let message = fields.get("message").map(|m| m.to_string_lossy().into_owned()).unwrap_or_default();
                prop_assert!(text.contains(&message), "{:?} is not in {:?}", message, text);
            }
        }
    }

    #[test]
    fn parser_survives_syslog_shaped_noise(s in "<[0-9]{1,3}>[0-9]? ?[A-Za-z0-9 :.\\-\\[\\]=\"]{0,80}") {
        let mut fields = ObjectMap::new();
        let _ = parse_into(&Bytes::from(s.clone()), None, Utc::now(), &mut fields);
        prop_assert!(fields.contains_key("message") || s.trim().is_empty());
    }
}
