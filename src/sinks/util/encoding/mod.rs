//! How sinks turn events into bytes, with Vector's options: `encoding.codec`,
//! `encoding.only_fields` / `except_fields`, `encoding.timestamp_format`,
//! `encoding.json.pretty`, and the sink-level `framing` table. Encoders write into a
//! caller's reusable buffer, so encoding a batch allocates nothing once it has grown.

pub mod fields;
pub mod json;

pub use fields::FieldTree;
pub use json::{encode_json, encode_json_value, encode_text, write_str, write_timestamp, LogShape};

use crate::config::field::FieldIssue;
use crate::event::Event;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// `encoding` of a sink.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EncodingConfig {
    /// `json` (default), `text` or `raw_message`; the `http` sink also takes `ndjson`.
    #[serde(default)]
    pub codec: Codec,
    /// Write only these fields (paths such as `a.b`); Vector's option of the same name.
    #[serde(default)]
    pub only_fields: Option<Vec<String>>,
    /// Leave these fields out.
    #[serde(default)]
    pub except_fields: Option<Vec<String>>,
    /// How timestamp values are written: `rfc3339` (default), `unix`, `unix_ms`,
    /// `unix_us`, `unix_ns` or `unix_float`.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Options of the `json` codec.
    #[serde(default)]
    pub json: JsonCodecOptions,
    /// Vector's choice between one value per metric tag and several: sluice keeps one.
    #[serde(default)]
    pub metric_tag_values: MetricTagValues,
}

/// `encoding.json`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonCodecOptions {
    /// Indent the JSON over several lines (for people, not machines).
    #[serde(default)]
    pub pretty: bool,
}

/// `encoding.metric_tag_values`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MetricTagValues {
    /// One value per tag: what sluice's metrics hold.
    #[default]
    Single,
    /// Refused by `validate`: sluice's metric tags hold one value each.
    Full,
}

/// How events become bytes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// One JSON object per event with every field.
    #[default]
    Json,
    /// The `message` field only, as it arrived.
    Text,
    /// Vector's other name for the message as it arrived.
    RawMessage,
    /// JSON objects one per line (the `http` sink's `application/x-ndjson`).
    Ndjson,
}

/// `encoding.timestamp_format`, with Vector's values.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// `"2026-12-01T05:21:40.123Z"`.
    #[default]
    Rfc3339,
    /// Whole seconds since 1970.
    Unix,
    /// Milliseconds.
    UnixMs,
    /// Microseconds.
    UnixUs,
    /// Nanoseconds.
    UnixNs,
    /// Seconds with a fraction (microsecond precision).
    UnixFloat,
}

impl Codec {
    /// Whether the codec writes JSON objects.
    pub fn is_json(self) -> bool {
        matches!(self, Codec::Json | Codec::Ndjson)
    }
}

/// Problems with `only_fields` and `except_fields` (keys under `prefix`), and their
/// trees where they parse: shared by every sink that selects fields.
pub fn field_selection(
    prefix: &str,
    only_fields: &Option<Vec<String>>,
    except_fields: &Option<Vec<String>>,
) -> (Vec<FieldIssue>, [Option<FieldTree>; 2]) {
    let mut issues = Vec::new();
    let mut trees = [None, None];
    for (i, (key, paths)) in [
        ("only_fields", only_fields),
        ("except_fields", except_fields),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(paths) = paths {
            match FieldTree::parse(paths) {
                Ok(t) => trees[i] = Some(t),
                Err(e) => issues.push(FieldIssue::new(format!("{prefix}.{key}"), e)),
            }
        }
    }
    if let [Some(only), Some(except)] = &trees {
        let only = only.paths();
        if let Some(both) = except.paths().into_iter().find(|p| only.contains(p)) {
            issues.push(FieldIssue::new(
                format!("{prefix}.except_fields"),
                format!("`{both}` is also in only_fields; the two lists must not share a path (as in Vector)"),
            ));
        }
    }
    (issues, trees)
}

impl EncodingConfig {
    /// Problems with the options, keys under `prefix` (normally `encoding`).
    pub fn issues(&self, prefix: &str) -> Vec<FieldIssue> {
        let (mut issues, _) = field_selection(prefix, &self.only_fields, &self.except_fields);
        if self.metric_tag_values == MetricTagValues::Full {
            issues.push(FieldIssue::new(
                format!("{prefix}.metric_tag_values"),
                "Vector's `full` is not supported by sluice: its metric tags hold one value each, so `single` (the default) writes them all",
            ));
        }
        issues
    }

    /// The encoder these options describe. Paths that do not parse (already reported by
    /// [`EncodingConfig::issues`]) are ignored.
    pub fn encoder(&self) -> Encoder {
        let (_, [only, except]) = field_selection("", &self.only_fields, &self.except_fields);
        Encoder {
            codec: self.codec,
            only,
            except,
            timestamps: self.timestamp_format,
            pretty: self.json.pretty && self.codec.is_json(),
            scratch: Vec::new(),
        }
    }
}

/// A sink's encoder: codec plus field and timestamp options, and a scratch buffer
/// reused for pretty printing.
#[derive(Clone, Debug, Default)]
pub struct Encoder {
    codec: Codec,
    only: Option<FieldTree>,
    except: Option<FieldTree>,
    timestamps: TimestampFormat,
    pretty: bool,
    scratch: Vec<u8>,
}

impl Encoder {
    /// The plain encoder of `codec`.
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            ..Self::default()
        }
    }

    /// Its codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Appends one event, unframed.
    pub fn encode(&mut self, event: &Event, out: &mut Vec<u8>) {
        match self.codec {
            Codec::Text | Codec::RawMessage => encode_text(event, out),
            Codec::Json | Codec::Ndjson => {
                let shape = LogShape {
                    only: self.only.as_ref(),
                    except: self.except.as_ref(),
                    timestamps: self.timestamps,
                };
                if self.pretty {
                    self.scratch.clear();
                    json::encode_json_shaped(event, shape, &mut self.scratch);
                    indent(&self.scratch, out);
                } else {
                    json::encode_json_shaped(event, shape, out);
                }
            }
        }
    }
}

/// Re-writes compact JSON indented by two spaces, `"key": value` (serde_json's
/// pretty layout), walking the bytes once.
fn indent(compact: &[u8], out: &mut Vec<u8>) {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    let mut i = 0;
    while i < compact.len() {
        let b = compact[i];
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                out.push(b);
                if compact.get(i + 1) == Some(&close) {
                    out.push(close);
                    i += 1;
                } else {
                    depth += 1;
                    newline(out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
        i += 1;
    }
}

/// The sink-level `framing` table: what separates one encoded event from the next.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FramingConfig {
    /// `newline_delimited`, `character_delimited`, `bytes`; Vector's length-prefixed
    /// methods are refused by `validate` with the reason.
    pub method: FramingMethod,
    /// The delimiter of `character_delimited`.
    pub character_delimited: Option<CharacterDelimited>,
    /// Options of `length_delimited` (accepted so the refusal names the method).
    pub length_delimited: Option<toml::Table>,
}

/// `framing.method`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FramingMethod {
    /// Nothing between events.
    Bytes,
    /// One chosen byte after each event.
    CharacterDelimited,
    /// A newline after each event.
    NewlineDelimited,
    /// Refused: a length prefix frames binary codecs sluice does not write.
    LengthDelimited,
    /// Refused, as `length_delimited`.
    VarintLengthDelimited,
}

/// `framing.character_delimited`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CharacterDelimited {
    /// One ASCII character, as in Vector (`","`, `"\t"`).
    pub delimiter: String,
}

impl FramingConfig {
    /// The bytes after each event, or why this framing cannot be used.
    pub fn delimiter(&self) -> Result<Cow<'static, [u8]>, FieldIssue> {
        match self.method {
            FramingMethod::Bytes => Ok(Cow::Borrowed(b"")),
            FramingMethod::NewlineDelimited => Ok(Cow::Borrowed(b"\n")),
            FramingMethod::CharacterDelimited => {
                let Some(c) = &self.character_delimited else {
                    return Err(FieldIssue::new(
                        "framing.character_delimited.delimiter",
                        "missing required key (the method `character_delimited` needs it)",
                    ));
                };
                match c.delimiter.as_bytes() {
                    [b] if b.is_ascii() => Ok(Cow::Owned(vec![*b])),
                    _ => Err(FieldIssue::new(
                        "framing.character_delimited.delimiter",
                        format!("`{}` is not one ASCII character", c.delimiter.escape_debug()),
                    )),
                }
            }
            FramingMethod::LengthDelimited | FramingMethod::VarintLengthDelimited => {
                Err(FieldIssue::new(
                    "framing.method",
                    "Vector's length-prefixed framings are not supported by sluice: they frame binary codecs (native, protobuf, avro) that sluice does not write; use `newline_delimited` or `character_delimited`",
                ))
            }
        }
    }
}

/// The encoder of a sink that writes a stream (file, console): each event encoded,
/// then the delimiter of its `framing` (a newline without one).
#[derive(Clone, Debug)]
pub struct StreamEncoder {
    encoder: Encoder,
    delimiter: Cow<'static, [u8]>,
}

impl StreamEncoder {
    /// The encoder of a sink's `encoding` and `framing`, or the problems with them.
    pub fn new(
        encoding: &EncodingConfig,
        framing: &Option<FramingConfig>,
    ) -> Result<Self, Vec<FieldIssue>> {
        let mut issues = encoding.issues("encoding");
        let delimiter = match framing {
            Some(f) => f.delimiter().map_err(|e| issues.push(e)).ok(),
            None => Some(Cow::Borrowed(&b"\n"[..])),
        };
        match delimiter {
            Some(delimiter) if issues.is_empty() => Ok(Self {
                encoder: encoding.encoder(),
                delimiter,
            }),
            _ => Err(issues),
        }
    }

    /// Appends one event and its delimiter.
    pub fn encode(&mut self, event: &Event, out: &mut Vec<u8>) {
        self.encoder.encode(event, out);
        out.extend_from_slice(&self.delimiter);
    }
}

/// `compression` of a sink: files written gzipped, or HTTP bodies sent with
/// `Content-Encoding: gzip`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// As is.
    #[default]
    None,
    /// gzip (flate2, fast level).
    Gzip,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, LogEvent, ObjectMap, Value};
    use chrono::{TimeZone, Utc};

    fn event() -> Event {
        let ts = Utc
            .with_ymd_and_hms(2026, 12, 1, 5, 21, 40)
            .single()
            .unwrap_or_default()
            + chrono::Duration::milliseconds(123);
        let mut inner = ObjectMap::new();
        inner.insert("b".into(), Value::from(1));
        inner.insert("c".into(), Value::from("x"));
        let mut fields = ObjectMap::new();
        fields.insert("a".into(), Value::Object(inner));
        fields.insert("message".into(), Value::from("hello"));
        fields.insert("timestamp".into(), Value::Timestamp(ts));
        fields.insert(
            "list".into(),
            Value::Array(vec![Value::from(1), Value::from(2)]),
        );
        fields.insert("empty".into(), Value::Object(ObjectMap::new()));
        LogEvent::from_parts(fields, EventMetadata::new("t", ts)).into()
    }

    fn encode(toml_text: &str) -> serde_json::Value {
        let config: EncodingConfig = toml::from_str(toml_text).unwrap();
        assert!(config.issues("encoding").is_empty());
        let mut out = Vec::new();
        config.encoder().encode(&event(), &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn only_and_except_fields_follow_paths() {
        assert_eq!(
            encode(r#"only_fields = ["message", "a.b"]"#),
            serde_json::json!({"a": {"b": 1}, "message": "hello"})
        );
        assert_eq!(
            encode(r#"except_fields = ["a.c", "list", "empty", "timestamp"]"#),
            serde_json::json!({"a": {"b": 1}, "message": "hello"})
        );
        // A path that names nothing leaves nothing behind, not an empty parent.
        assert_eq!(
            encode(r#"only_fields = ["message", "a.zzz", "message.deeper"]"#),
            serde_json::json!({"message": "hello"})
        );
        assert_eq!(
            encode(
                r#"only_fields = ["a"]
except_fields = ["a.c"]"#
            ),
            serde_json::json!({"a": {"b": 1}})
        );
    }

    #[test]
    fn timestamp_formats_match_vectors() {
        let ts = |f: &str| encode(&format!("timestamp_format = \"{f}\""))["timestamp"].clone();
        assert_eq!(ts("rfc3339"), serde_json::json!("2026-12-01T05:21:40.123Z"));
        assert_eq!(ts("unix"), serde_json::json!(1796102500));
        assert_eq!(ts("unix_ms"), serde_json::json!(1796102500123i64));
        assert_eq!(ts("unix_us"), serde_json::json!(1796102500123000i64));
        assert_eq!(ts("unix_ns"), serde_json::json!(1796102500123000000i64));
        assert_eq!(ts("unix_float"), serde_json::json!(1796102500.123));
    }

    #[test]
    fn pretty_json_is_serde_jsons_layout() {
        let config: EncodingConfig = toml::from_str("json.pretty = true").unwrap();
        let mut out = Vec::new();
        config.encoder().encode(&event(), &mut out);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            serde_json::to_string_pretty(&parsed).unwrap()
        );
        assert!(String::from_utf8_lossy(&out).contains("\"empty\": {}"));
    }

    #[test]
    fn bad_options_are_reported() {
        let config: EncodingConfig = toml::from_str(
            r#"only_fields = ["a", "b[0]"]
except_fields = ["a"]
metric_tag_values = "full""#,
        )
        .unwrap();
        let issues = config.issues("encoding");
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues[0].message.contains("array indexes"));
        assert!(issues[1].message.contains("not supported by sluice"));
        let both: EncodingConfig =
            toml::from_str("only_fields = [\"a\"]\nexcept_fields = [\"a\"]").unwrap();
        assert!(both.issues("encoding")[0]
            .message
            .contains("must not share"));
    }

    #[test]
    fn framing_delimiters() {
        let f = |t: &str| toml::from_str::<FramingConfig>(t).unwrap().delimiter();
        assert_eq!(f("method = \"newline_delimited\"").unwrap().as_ref(), b"\n");
        assert_eq!(f("method = \"bytes\"").unwrap().as_ref(), b"");
        assert_eq!(
            f("method = \"character_delimited\"\ncharacter_delimited.delimiter = \"\\t\"")
                .unwrap()
                .as_ref(),
            b"\t"
        );
        assert!(f("method = \"character_delimited\"").is_err());
        assert!(
            f("method = \"character_delimited\"\ncharacter_delimited.delimiter = \"ab\"").is_err()
        );
        assert!(f("method = \"length_delimited\"")
            .unwrap_err()
            .message
            .contains("not supported by sluice"));
    }
}
