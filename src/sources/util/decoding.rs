//! Vector's `decoding` and `framing` for sources: how a body (an HTTP request) or one
//! frame (a line of stdin, a generated line) becomes events. A body is decoded whole
//! before anything is sent, so a bad line makes the request fail with nothing of it
//! ingested; `Content-Encoding: gzip` is undone first with the decompressed size
//! capped.

use crate::event::{ObjectMap, Value};
use bytes::Bytes;
use serde::Deserialize;
use std::io::Read;

/// `decoding.codec`: what each frame of a body is.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// The frame as `message`; Vector calls it `bytes` (its default), also accepted.
    #[default]
    #[serde(alias = "bytes")]
    Text,
    /// A JSON object, or an array of objects: each object is an event. Without a
    /// `framing`, a body that is not one JSON value is read as one per line (NDJSON), as
    /// Vector's newline framing reads it.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Each frame a syslog message (RFC 5424 or 3164), parsed into the `syslog`
    /// source's fields; one that is not syslog is kept whole as `message`.
    Syslog,
}

/// `decoding`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecodingConfig {
    /// `bytes` / `text` (default), `json`, `ndjson` or `syslog`.
    #[serde(default)]
    pub codec: Codec,
}

/// `framing` of a source that receives whole bodies: how one body splits into frames
/// before decoding. Vector's names; length-prefixed methods are refused by `validate`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FramingConfig {
    /// `newline_delimited` (the default for `bytes`), `character_delimited` or
    /// `bytes` (the whole body is one frame).
    pub method: FramingMethod,
    /// `character_delimited.delimiter` (one ASCII character) and `max_length`.
    pub character_delimited: Option<Delimited>,
    /// `newline_delimited.max_length`.
    pub newline_delimited: Option<Delimited>,
    /// `octet_counting.max_length`, for stream sources.
    pub octet_counting: Option<Delimited>,
}

/// `framing.method`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FramingMethod {
    /// The body is one frame.
    Bytes,
    /// Frames end at a chosen byte.
    CharacterDelimited,
    /// Frames end at `\n` (a `\r` before it is dropped).
    NewlineDelimited,
    /// Refused for bodies: a stream framing.
    OctetCounting,
    /// Refused: frames binary codecs sluice does not decode.
    LengthDelimited,
}

/// Options of a delimited framing.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Delimited {
    /// The delimiter of `character_delimited`.
    pub delimiter: Option<String>,
    /// Frames longer than this are refused (the request answers 400).
    pub max_length: Option<usize>,
}

/// How a body splits, resolved from `framing` and the codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The whole body is one frame.
    Whole,
    /// Frames end at this byte; longer than the limit is an error.
    At(u8, usize),
    /// `json` without a framing: the whole body if it is one JSON value, else lines.
    JsonOrLines,
}

impl FramingConfig {
    /// The split this framing means, or the problem with it.
    pub fn split(&self) -> Result<Split, crate::config::field::FieldIssue> {
        use crate::config::field::FieldIssue;
        let max =
            |d: &Option<Delimited>| d.as_ref().and_then(|d| d.max_length).unwrap_or(usize::MAX);
        match self.method {
            FramingMethod::Bytes => Ok(Split::Whole),
            FramingMethod::NewlineDelimited => Ok(Split::At(b'\n', max(&self.newline_delimited))),
            FramingMethod::CharacterDelimited => {
                let d = self.character_delimited.as_ref().and_then(|c| c.delimiter.as_deref());
                match d.map(str::as_bytes) {
                    Some([b]) if b.is_ascii() => Ok(Split::At(*b, max(&self.character_delimited))),
                    Some(_) => Err(FieldIssue::new(
                        "framing.character_delimited.delimiter",
                        "must be one ASCII character",
                    )),
                    None => Err(FieldIssue::new(
                        "framing.character_delimited.delimiter",
                        "missing required key (the method `character_delimited` needs it)",
                    )),
                }
            }
            FramingMethod::OctetCounting => Err(FieldIssue::new(
                "framing.method",
                "`octet_counting` frames a byte stream (syslog over TCP); an HTTP body is one message already: use `newline_delimited`, `character_delimited` or `bytes`",
            )),
            FramingMethod::LengthDelimited => Err(FieldIssue::new(
                "framing.method",
                "Vector's `length_delimited` is not supported by sluice: it frames binary codecs (native, protobuf) that sluice does not decode",
            )),
        }
    }
}

/// The split of `framing` (already validated) for `codec`.
pub fn split_of(framing: &Option<FramingConfig>, codec: Codec) -> Split {
    match framing.as_ref().map(FramingConfig::split) {
        Some(Ok(s)) => s,
        _ if codec == Codec::Json => Split::JsonOrLines,
        _ => Split::At(b'\n', usize::MAX),
    }
}

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than allowed after decompression: 413.
    TooLarge,
    /// Not valid for the codec or the encoding: 400 with this message.
    Invalid(String),
}

/// Decompresses a gzip body, refusing to produce more than `limit` bytes, so a small
/// zip bomb costs at most `limit` of memory.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity((body.len() * 4).min(limit));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| BodyError::Invalid(format!("the gzip body is corrupt: {e}")))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// Frames of a body ending at `delimiter` (a `\r` before a `\n` dropped), numbered
/// from 1, blank ones skipped.
fn frames(body: &[u8], delimiter: u8) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(move |&b| b == delimiter)
        .enumerate()
        .map(move |(i, l)| {
            let l = match delimiter {
                b'\n' => l.strip_suffix(b"\r").unwrap_or(l),
                _ => l,
            };
            (i + 1, l)
        })
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    frames(body, b'\n')
}

/// serde_json's message without its " at line 1 column 7": the position is ours to give.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((msg, _)) => msg.to_string(),
        None => text,
    }
}

/// Decodes `body` into one field map per event, appended to `out`.
pub fn decode(
    codec: Codec,
    split: Split,
    body: &Bytes,
    out: &mut Vec<ObjectMap>,
) -> Result<(), BodyError> {
    if let Split::At(d, max) = split {
        if let Some((n, _)) = frames(body, d).find(|(_, f)| f.len() > max) {
            return Err(BodyError::Invalid(format!(
                "frame {n} is longer than max_length ({max} bytes)"
            )));
        }
    }
    match (codec, split) {
        (Codec::Text, Split::Whole) => {
            let mut fields = ObjectMap::new();
            fields.insert("message".into(), Value::Bytes(body.clone()));
            out.push(fields);
        }
        (Codec::Text, Split::At(..) | Split::JsonOrLines) => {
            let d = if let Split::At(d, _) = split {
                d
            } else {
                b'\n'
            };
            for (_, line) in frames(body, d) {
                let mut fields = ObjectMap::new();
                fields.insert("message".into(), Value::Bytes(body.slice_ref(line)));
                out.push(fields);
            }
        }
        (Codec::Json, Split::At(d, _)) => {
            for (n, frame) in frames(body, d) {
                let before = out.len();
                if let Err(e) = decode_json(frame, out) {
                    out.truncate(before);
                    return Err(BodyError::Invalid(describe_at("frame", n, e)));
                }
            }
        }
        (Codec::Json, Split::JsonOrLines) => {
            if let Err(whole) = decode_json(body, out) {
                // Not one value: NDJSON, as Vector's default newline framing reads it.
                if lines(body).nth(1).is_none() {
                    return Err(BodyError::Invalid(describe(whole)));
                }
                out.clear();
                for (n, line) in lines(body) {
                    if let Err(e) = decode_json(line, out) {
                        return Err(BodyError::Invalid(describe_at("line", n, e)));
                    }
                }
            }
        }
        (Codec::Json, Split::Whole) => {
            decode_json(body, out).map_err(|e| BodyError::Invalid(describe(e)))?
        }
        (Codec::Syslog, _) => {
            let d = if let Split::At(d, _) = split {
                d
            } else {
                b'\n'
            };
            let pieces: Vec<&[u8]> = match split {
                Split::Whole => vec![&body[..]],
                _ => frames(body, d).map(|(_, f)| f).collect(),
            };
            for piece in pieces {
                decode_syslog(body.slice_ref(piece), out);
            }
        }
        (Codec::Ndjson, _) => {
            for (n, line) in lines(body) {
                match serde_json::from_slice::<Value>(line) {
                    Ok(Value::Object(fields)) => out.push(fields),
                    Ok(other) => {
                        return Err(BodyError::Invalid(format!(
                            "line {n}: expected a JSON object, found {}",
                            kind(&other)
                        )))
                    }
                    Err(e) => {
                        return Err(BodyError::Invalid(format!(
                            "line {n}, column {}: {}",
                            e.column(),
                            json_message(&e)
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

/// Decodes one frame a stream source already split off (a line of stdin, a generated
/// line): `text` is the frame as `message`; `json` and `ndjson` the object, or each
/// object of an array. `Err` says why the frame is not what the codec wants; the
/// caller keeps it as `message` and counts the error (nothing is lost).
pub fn decode_frame(codec: Codec, frame: Bytes, out: &mut Vec<ObjectMap>) -> Result<(), String> {
    match codec {
        Codec::Syslog => match decode_syslog(frame, out) {
            crate::sources::syslog::Parsed::Raw => {
                out.pop();
                Err("not a syslog message".into())
            }
            _ => Ok(()),
        },
        Codec::Text => {
            let mut fields = ObjectMap::new();
            fields.insert("message".into(), Value::Bytes(frame));
            out.push(fields);
            Ok(())
        }
        Codec::Json | Codec::Ndjson => {
            let before = out.len();
            decode_json(&frame, out).map_err(|e| {
                out.truncate(before);
                describe(e)
            })
        }
    }
}

/// Parses one syslog message into `out` (a message that is not syslog is kept whole as
/// `message`; a blank one makes no event).
fn decode_syslog(frame: Bytes, out: &mut Vec<ObjectMap>) -> crate::sources::syslog::Parsed {
    let mut fields = ObjectMap::new();
    let parsed = crate::sources::syslog::parse_into(&frame, None, chrono::Utc::now(), &mut fields);
    if parsed != crate::sources::syslog::Parsed::Empty {
        out.push(fields);
    }
    parsed
}

/// [`decode_frame`] for a stream source: a frame the codec refuses is kept whole as
/// `message`, counted (`error_type="decode"`) and logged, so nothing is lost.
pub struct FrameDecoder {
    codec: Codec,
    errors: crate::internal_events::Reporter<crate::internal_events::failures::DecodeFailed>,
    maps: Vec<ObjectMap>,
}

impl FrameDecoder {
    /// A decoder for `codec` reporting to `metrics`.
    pub fn new(codec: Codec, metrics: &crate::internal_events::ComponentMetrics) -> Self {
        Self {
            codec,
            errors: metrics.reporter(),
            maps: Vec::new(),
        }
    }

    /// Whether frames are taken as they are (the `message`), with nothing to decode.
    pub fn is_text(&self) -> bool {
        self.codec == Codec::Text
    }

    /// The events of one frame, each passed to `each`.
    pub fn decode(&mut self, frame: Bytes, mut each: impl FnMut(ObjectMap)) {
        if let Err(why) = decode_frame(self.codec, frame.clone(), &mut self.maps) {
            self.errors.emit(|| {
                format!(
                    "A frame is not {}: {why}; kept whole as `message`: {:?}",
                    match self.codec {
                        Codec::Text => "text",
                        Codec::Json | Codec::Ndjson => "a JSON object",
                        Codec::Syslog => "syslog",
                    },
                    String::from_utf8_lossy(&frame[..frame.len().min(120)])
                )
            });
            let mut fields = ObjectMap::new();
            fields.insert("message".into(), Value::Bytes(frame));
            self.maps.push(fields);
        }
        for m in self.maps.drain(..) {
            each(m);
        }
    }
}

/// The frames of `data` under `split` (a stream source's own framing of what it
/// produced): the whole of it, or its pieces between delimiters (blank ones skipped).
pub fn frames_of(data: &Bytes, split: Split) -> Vec<Bytes> {
    match split {
        Split::Whole | Split::JsonOrLines => vec![data.clone()],
        Split::At(d, _) => frames(data, d).map(|(_, f)| data.slice_ref(f)).collect(),
    }
}

/// Why one JSON frame was refused.
enum JsonError {
    Syntax(serde_json::Error),
    Element(usize, &'static str),
    NotObject(&'static str),
}

fn describe(e: JsonError) -> String {
    match e {
        JsonError::Syntax(e) => format!(
            "line {}, column {}: {}",
            e.line(),
            e.column(),
            json_message(&e)
        ),
        JsonError::Element(i, k) => {
            format!("element {i} of the array: expected a JSON object, found {k}")
        }
        JsonError::NotObject(k) => {
            format!("expected a JSON object or an array of objects, found {k}")
        }
    }
}

/// The error of frame `n` of a body, its column within the frame.
fn describe_at(what: &str, n: usize, e: JsonError) -> String {
    match e {
        JsonError::Syntax(e) => format!("{what} {n}, column {}: {}", e.column(), json_message(&e)),
        other => format!("{what} {n}: {}", describe(other)),
    }
}

/// One JSON value: an object is one event, an array of objects one per element.
fn decode_json(frame: &[u8], out: &mut Vec<ObjectMap>) -> Result<(), JsonError> {
    match serde_json::from_slice::<Value>(frame).map_err(JsonError::Syntax)? {
        Value::Object(fields) => out.push(fields),
        Value::Array(items) => {
            out.reserve(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(fields) => out.push(fields),
                    other => return Err(JsonError::Element(i, kind(&other))),
                }
            }
        }
        other => return Err(JsonError::NotObject(kind(&other))),
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) | Value::Float(_) => "a number",
        _ => "a string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(codec: Codec, body: &str) -> Result<Vec<ObjectMap>, BodyError> {
        run_split(codec, split_of(&None, codec), body)
    }

    fn run_split(codec: Codec, split: Split, body: &str) -> Result<Vec<ObjectMap>, BodyError> {
        let mut out = Vec::new();
        decode(codec, split, &Bytes::from(body.to_string()), &mut out).map(|()| out)
    }

    #[test]
    fn json_without_framing_reads_ndjson_like_vector() {
        let ok = run(Codec::Json, "{\"a\":1}\n{\"b\":2}\n[{\"c\":3},{\"d\":4}]\n").unwrap();
        assert_eq!(ok.len(), 4);
        assert_eq!(
            run(Codec::Json, "{\"a\":1}\n{\"b\":"),
            Err(BodyError::Invalid(
                "line 2, column 5: EOF while parsing a value".into()
            ))
        );
        // A pretty-printed object is still one event.
        assert_eq!(run(Codec::Json, "{\n  \"a\": 1\n}\n").unwrap().len(), 1);
    }

    #[test]
    fn framing_methods_split_bodies() {
        let whole = run_split(Codec::Text, Split::Whole, "a\nb").unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(
            run_split(Codec::Text, Split::At(b'|', usize::MAX), "a|b|c")
                .unwrap()
                .len(),
            3
        );
        assert!(matches!(
            run_split(Codec::Text, Split::At(b'\n', 3), "abc\nabcd"),
            Err(BodyError::Invalid(m)) if m.contains("frame 2")
        ));
        let framing: FramingConfig = toml::from_str("method = \"octet_counting\"").unwrap();
        assert!(framing.split().is_err());
    }

    #[test]
    fn ndjson_names_the_bad_line_and_skips_blank_ones() {
        let ok = run(Codec::Ndjson, "{\"a\":1}\r\n\n  \n{\"b\":\"x\"}").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(
            run(Codec::Ndjson, "{\"a\":1}\n{\"a\":\n"),
            Err(BodyError::Invalid(
                "line 2, column 5: EOF while parsing a value".into()
            ))
        );
        assert_eq!(
            run(Codec::Ndjson, "{}\n[1]"),
            Err(BodyError::Invalid(
                "line 2: expected a JSON object, found an array".into()
            ))
        );
    }

    #[test]
    fn json_takes_an_object_or_an_array_of_objects() {
        assert_eq!(run(Codec::Json, "{\"a\":1}").unwrap().len(), 1);
        assert_eq!(run(Codec::Json, "[{\"a\":1},{\"b\":2}]").unwrap().len(), 2);
        assert!(
            matches!(run(Codec::Json, "[{}, 3]"), Err(BodyError::Invalid(m)) if m.contains("element 1"))
        );
        assert!(
            matches!(run(Codec::Json, "{\"a\":"), Err(BodyError::Invalid(m)) if m.starts_with("line 1, column 5"))
        );
        assert!(matches!(
            run(Codec::Json, "\"x\""),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn text_is_one_event_per_line() {
        let out = run(Codec::Text, "one\r\ntwo\n\nthree").unwrap();
        let msgs: Vec<_> = out
            .iter()
            .map(|f| {
                f.get("message")
                    .cloned()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(msgs, ["one", "two", "three"]);
    }

    #[test]
    fn gunzip_caps_the_decompressed_size() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(gunzip(&gz, (1 << 20) - 1), Err(BodyError::TooLarge));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(BodyError::Invalid(_))
        ));
    }
}
