//! InfluxDB line protocol, written exactly: `measurement[,tag=value...] field=value[,...]
//! timestamp`. Escaping follows the spec (`../shared/corpus/influx/RULES.md`):
//!
//! - measurement: comma and space;
//! - tag keys, tag values, field keys: comma, equals sign and space;
//! - string field values: double quote and backslash, inside double quotes.
//!
//! Where the protocol cannot carry a value as it is, the writer changes it and says so
//! (the caller counts it), rather than writing a line the server misreads:
//!
//! - a name or tag value ending in backslashes would escape the separator after it
//!   (InfluxDB 1.x cannot store one in any encoding): the trailing backslashes are
//!   dropped;
//! - control characters (newlines, tabs) cannot appear in names or tag values: each
//!   becomes a space (escaped).
//!
//! Newlines inside string fields are written as they are: inside quotes InfluxDB 1.x and
//! 2.x read them back exactly (tested against influxd), and a multi-line log message stays
//! one message. Integers carry the `i` suffix (never `u`, which 1.x refuses); floats are
//! always written with a decimal point or an exponent, and NaN or infinity (which the
//! protocol cannot carry) is left out.

/// Precision of the timestamps in one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Nanoseconds (the default).
    #[default]
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

impl Precision {
    /// The `precision=` value of the v2 API (and the option's own spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// The `precision=` value of the v1 API, which spells nanoseconds and microseconds
    /// `n` and `u`: InfluxDB 1.x reads an unknown value (`us`) as nanoseconds, and the
    /// points land in 1970.
    pub fn as_v1_str(self) -> &'static str {
        match self {
            Precision::Ns => "n",
            Precision::Us => "u",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    fn divisor(self) -> i64 {
        match self {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
        }
    }
}

/// Which element is being written: each escapes a different set of characters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Element {
    Measurement,
    /// Tag keys, tag values and field keys.
    KeyOrTag,
}

/// Appends a name or tag value, escaped for `element`. Returns whether it had to be
/// changed (see the module documentation); an empty result writes nothing.
fn write_escaped(out: &mut Vec<u8>, s: &str, element: Element) -> bool {
    write_escaped_part(out, s.trim_end_matches('\\'), element) || s.ends_with('\\')
}

/// Appends `s` escaped, without dropping trailing backslashes: for the leading part of
/// a name whose end is written next.
fn write_escaped_part(out: &mut Vec<u8>, trimmed: &str, element: Element) -> bool {
    let mut altered = false;
    let bytes = trimmed.as_bytes();
    let special = |b: u8| {
        b == b','
            || b == b' '
            || b < 0x20
            || b == 0x7f
            || (b == b'=' && element == Element::KeyOrTag)
    };
    // Most names need nothing: one copy. Escapes and control characters are ASCII, so
    // a byte loop never splits a UTF-8 character.
    if !bytes.iter().any(|&b| special(b)) {
        out.extend_from_slice(bytes);
        return altered;
    }
    for &b in bytes {
        let b = if b < 0x20 || b == 0x7f {
            altered = true;
            b' '
        } else {
            b
        };
        if special(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    altered
}

/// Appends the measurement. Returns whether it had to be changed.
pub fn measurement(out: &mut Vec<u8>, s: &str) -> bool {
    write_escaped(out, s, Element::Measurement)
}

/// Appends a tag key, a field key or a tag value. Returns whether it had to be changed.
pub fn key(out: &mut Vec<u8>, s: &str) -> bool {
    write_escaped(out, s, Element::KeyOrTag)
}

/// Appends a field key written in parts (`name` then `_count`): every part escaped,
/// trailing backslashes dropped only at the very end, as for the whole key.
pub fn key_parts(out: &mut Vec<u8>, parts: &[&str]) -> bool {
    let mut altered = false;
    for (i, p) in parts.iter().enumerate() {
        altered |= if i + 1 == parts.len() {
            write_escaped(out, p, Element::KeyOrTag)
        } else {
            write_escaped_part(out, p, Element::KeyOrTag)
        };
    }
    altered
}

/// Whether a tag value would be written as nothing (empty, or only backslashes): such a
/// tag is left out, as the protocol has no empty tag value.
pub fn is_empty_tag(s: &str) -> bool {
    s.trim_end_matches('\\').is_empty()
}

/// Appends a string field value, quoted.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    // Copy the runs between quotes and backslashes whole.
    while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\\');
        out.push(rest[i]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends a float field value, always with a decimal point or an exponent. `false` (and
/// nothing written) for NaN and infinities.
pub fn float(out: &mut Vec<u8>, v: f64) -> bool {
    if !v.is_finite() {
        return false;
    }
    out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    true
}

/// Appends an integer field value with its `i` suffix.
pub fn integer(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    out.push(b'i');
}

/// Appends a boolean field value.
pub fn boolean(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends ` timestamp` (with its leading space) in `precision`.
pub fn timestamp(out: &mut Vec<u8>, nanos: i64, precision: Precision) {
    out.push(b' ');
    out.extend_from_slice(
        itoa::Buffer::new()
            .format(nanos.div_euclid(precision.divisor()))
            .as_bytes(),
    );
}

/// The type InfluxDB gives a field value as written (`float`, `integer`, `unsigned`,
/// `string`, `boolean`), in the words of its "field type conflict" errors.
fn value_type(v: &[u8]) -> &'static str {
    match v {
        [b'"', ..] => "string",
        b"t" | b"T" | b"true" | b"True" | b"TRUE" | b"f" | b"F" | b"false" | b"False"
        | b"FALSE" => "boolean",
        [.., b'i'] => "integer",
        [.., b'u'] => "unsigned",
        _ => "float",
    }
}

/// One point of a body, read back: its measurement and its fields' keys and types.
#[derive(Debug, PartialEq, Eq)]
pub struct PointFields {
    /// The measurement, unescaped.
    pub measurement: Vec<u8>,
    /// Each field's key (unescaped) and type.
    pub fields: Vec<(Vec<u8>, &'static str)>,
}

/// Reads `body` back point by point, as InfluxDB parses it: what a partial write's
/// "field type conflict" names (a measurement, a field, the type sent) then points at
/// the very points refused. Only for the answer to a failed write, not the hot path.
pub fn read_points(body: &[u8]) -> Vec<PointFields> {
    let n = body.len();
    let mut points = Vec::new();
    let mut i = 0;
    // A backslash escapes only what needs escaping where it stands.
    let escaped = |i: usize, specials: &[u8]| {
        body[i] == b'\\' && body.get(i + 1).is_some_and(|c| specials.contains(c))
    };
    while i < n {
        if body[i] == b'\n' {
            i += 1;
            continue;
        }
        // The measurement, then tags up to the first unescaped space.
        let mut measurement = Vec::new();
        let mut in_measurement = true;
        while i < n && !matches!(body[i], b' ' | b'\n') {
            if escaped(i, b", ") {
                if in_measurement {
                    measurement.push(body[i + 1]);
                }
                i += 2;
                continue;
            }
            if body[i] == b',' {
                in_measurement = false;
            } else if in_measurement {
                measurement.push(body[i]);
            }
            i += 1;
        }
        if i < n && body[i] == b' ' {
            i += 1;
        }
        // The field set: key=value pairs up to an unescaped space outside quotes.
        let mut fields = Vec::new();
        while i < n && !matches!(body[i], b' ' | b'\n') {
            let mut key = Vec::new();
            while i < n && !matches!(body[i], b'=' | b' ' | b'\n') {
                if escaped(i, b",= ") {
                    key.push(body[i + 1]);
                    i += 2;
                    continue;
                }
                key.push(body[i]);
                i += 1;
            }
            if i >= n || body[i] != b'=' {
                break;
            }
            i += 1;
            let start = i;
            if i < n && body[i] == b'"' {
                i += 1;
                while i < n && body[i] != b'"' {
                    i += if escaped(i, b"\"\\") { 2 } else { 1 };
                }
                i = (i + 1).min(n);
            } else {
                while i < n && !matches!(body[i], b',' | b' ' | b'\n') {
                    i += 1;
                }
            }
            fields.push((key, value_type(&body[start..i])));
            if i < n && body[i] == b',' {
                i += 1;
            }
        }
        while i < n && body[i] != b'\n' {
            i += 1;
        }
        points.push(PointFields {
            measurement,
            fields,
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_read_back_with_their_field_types() {
        let body = b"logs,host=a\\ b status=1i,msg=\"x, \\\"y\\\" z=1\",ok=t 1\n\
my\\ m\\,x,t=1 v=1.5,n=3u,s=\"multi\nline\"\nlogs f=false\n";
        let points = read_points(body);
        let types: Vec<(String, Vec<(String, &str)>)> = points
            .iter()
            .map(|p| {
                (
                    String::from_utf8_lossy(&p.measurement).into_owned(),
                    p.fields
                        .iter()
                        .map(|(k, t)| (String::from_utf8_lossy(k).into_owned(), *t))
                        .collect(),
                )
            })
            .collect();
        let s = |a: &str| a.to_string();
        assert_eq!(
            types,
            [
                (
                    s("logs"),
                    vec![
                        (s("status"), "integer"),
                        (s("msg"), "string"),
                        (s("ok"), "boolean")
                    ]
                ),
                (
                    s("my m,x"),
                    vec![(s("v"), "float"), (s("n"), "unsigned"), (s("s"), "string")]
                ),
                (s("logs"), vec![(s("f"), "boolean")]),
            ]
        );
    }

    /// Splits a line at unescaped separators outside quotes: what a parser sees. Quotes
    /// only quote in the field set (the second part of a line, or a field list).
    fn parts(line: &str, sep: u8) -> Vec<String> {
        let bytes = line.as_bytes();
        let (mut out, mut cur, mut quoted) = (Vec::new(), Vec::new(), false);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            // As the Go parsers read it: a backslash escapes only what needs escaping
            // there (`"` and `\` inside quotes; `,`, `=` and space outside).
            let escapes: &[u8] = if quoted { b"\"\\" } else { b", =" };
            if b == b'\\' && bytes.get(i + 1).is_some_and(|n| escapes.contains(n)) {
                cur.extend_from_slice(&bytes[i..i + 2]);
                i += 2;
                continue;
            }
            if b == b'"' && (sep == b',' || out.len() == 1) {
                quoted = !quoted;
            }
            if b == sep && !quoted {
                out.push(String::from_utf8(std::mem::take(&mut cur)).unwrap());
            } else {
                cur.push(b);
            }
            i += 1;
        }
        out.push(String::from_utf8(cur).unwrap());
        out
    }

    /// `key=value` split at the first unescaped `=`.
    fn split_key(field: &str) -> (&str, &str) {
        let bytes = field.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'=' => return (&field[..i], &field[i + 1..]),
                _ => i += 1,
            }
        }
        (field, "")
    }

    /// Two field values mean the same: floats compared as numbers (`1` and `1.0`,
    /// `1e308` and `1e+308` are one value), everything else as text.
    fn same_value(a: &str, b: &str) -> bool {
        let float = |s: &str| {
            (!s.ends_with('i') && !s.ends_with('u') && !s.starts_with('"'))
                .then(|| s.parse::<f64>().ok())
                .flatten()
        };
        match (float(a), float(b)) {
            (Some(x), Some(y)) => x == y,
            // The Go encoder writes a newline in a string as `\n`, which InfluxDB's own
            // parser stores as a backslash and an `n`; we write the newline itself,
            // which it stores as written (see the module documentation).
            _ => {
                a.replace("\\n", "\n")
                    .replace("\\r", "\r")
                    .replace("\\t", "\t")
                    == b
            }
        }
    }

    fn encode_case(point: &serde_json::Value) -> String {
        let mut out = Vec::new();
        measurement(&mut out, point["measurement"].as_str().unwrap());
        for t in point["tags"].as_array().unwrap() {
            out.push(b',');
            key(&mut out, t[0].as_str().unwrap());
            out.push(b'=');
            key(&mut out, t[1].as_str().unwrap());
        }
        for (i, f) in point["fields"].as_array().unwrap().iter().enumerate() {
            out.push(if i == 0 { b' ' } else { b',' });
            key(&mut out, f[0].as_str().unwrap());
            out.push(b'=');
            let v = &f[1]["value"];
            match f[1]["type"].as_str().unwrap() {
                "float" => assert!(float(&mut out, v.as_f64().unwrap())),
                "int" => integer(&mut out, v.as_i64().unwrap()),
                "bool" => boolean(&mut out, v.as_bool().unwrap()),
                "string" => string(&mut out, v.as_str().unwrap()),
                other => panic!("{other}"),
            }
        }
        timestamp(&mut out, point["time_ns"].as_i64().unwrap(), Precision::Ns);
        String::from_utf8(out).unwrap()
    }

    /// Every encode case of InfluxData's corpus that expects a line: the same
    /// measurement, tags, fields and timestamp, field by field.
    #[test]
    fn the_reference_encoder_corpus_round_trips() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/influx/cases.jsonl"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            panic!("the shared corpus is missing at {path}");
        };
        let mut checked = 0;
        for line in text.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            if case["direction"] != "encode" || case.get("expect_line").is_none() {
                continue;
            }
            let want = case["expect_line"].as_str().unwrap();
            let got = encode_case(&case["point"]);
            let (w, g) = (parts(want, b' '), parts(&got, b' '));
            assert_eq!(w.len(), g.len(), "{}: {got:?} vs {want:?}", case["id"]);
            assert_eq!(w[0], g[0], "{}: measurement and tags", case["id"]);
            assert_eq!(w[2], g[2], "{}: timestamp", case["id"]);
            let (wf, gf) = (parts(&w[1], b','), parts(&g[1], b','));
            assert_eq!(wf.len(), gf.len(), "{}", case["id"]);
            for (a, b) in wf.iter().zip(&gf) {
                let (ak, av) = split_key(a);
                let (bk, bv) = split_key(b);
                assert_eq!(ak, bk, "{}", case["id"]);
                assert!(same_value(av, bv), "{}: {av} vs {bv}", case["id"]);
            }
            checked += 1;
        }
        assert!(checked >= 100, "only {checked} encode cases");
    }

    #[test]
    fn what_the_protocol_cannot_carry_is_changed_and_reported() {
        let mut out = Vec::new();
        assert!(key(&mut out, "C:\\dir\\"));
        assert_eq!(out, b"C:\\dir");
        out.clear();
        assert!(key(&mut out, "two\nlines\tand tab"));
        assert_eq!(out, b"two\\ lines\\ and\\ tab");
        out.clear();
        assert!(!measurement(&mut out, "cpu=load,x y"));
        assert_eq!(out, b"cpu=load\\,x\\ y");
        assert!(is_empty_tag("\\\\") && is_empty_tag("") && !is_empty_tag("a"));
        out.clear();
        string(&mut out, "say \"hi\"\\\nnext line");
        assert_eq!(out, b"\"say \\\"hi\\\"\\\\\nnext line\"");
        out.clear();
        assert!(float(&mut out, 25.0));
        assert_eq!(out, b"25.0", "a float must not read back as an integer");
        assert!(!float(&mut out, f64::NAN));
        out.clear();
        timestamp(&mut out, -1_500, Precision::Us);
        assert_eq!(
            out, b" -2",
            "before 1970, truncation goes down, not toward zero"
        );
    }
}
