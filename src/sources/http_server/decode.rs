//! Request bodies to events: `Content-Encoding: gzip` with the decompressed size capped,
//! then the codec. A body is decoded whole before anything is sent, so a bad line makes
//! the request fail with nothing of it ingested.

use crate::event::{ObjectMap, Value};
use bytes::Bytes;
use serde::Deserialize;
use std::io::Read;

/// `decoding.codec`: how a body splits into events.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// One event per line, the line as `message` (Vector's `bytes` with newline framing).
    #[default]
    Text,
    /// One JSON object, or an array of objects: each object is an event.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// `decoding`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecodingConfig {
    /// `text` (default), `json` or `ndjson`.
    #[serde(default)]
    pub codec: Codec,
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

/// Lines of a body without their `\n` or `\r\n`, numbered from 1, blank ones skipped.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
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
pub fn decode(codec: Codec, body: &Bytes, out: &mut Vec<ObjectMap>) -> Result<(), BodyError> {
    match codec {
        Codec::Text => {
            for (_, line) in lines(body) {
                let mut fields = ObjectMap::new();
                fields.insert("message".into(), Value::Bytes(body.slice_ref(line)));
                out.push(fields);
            }
        }
        Codec::Ndjson => {
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
        Codec::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => out.push(fields),
            Ok(Value::Array(items)) => {
                out.reserve(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::Object(fields) => out.push(fields),
                        other => {
                            return Err(BodyError::Invalid(format!(
                                "element {i} of the array: expected a JSON object, found {}",
                                kind(&other)
                            )))
                        }
                    }
                }
            }
            Ok(other) => {
                return Err(BodyError::Invalid(format!(
                    "expected a JSON object or an array of objects, found {}",
                    kind(&other)
                )))
            }
            Err(e) => {
                return Err(BodyError::Invalid(format!(
                    "line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    json_message(&e)
                )))
            }
        },
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
        let mut out = Vec::new();
        decode(codec, &Bytes::from(body.to_string()), &mut out).map(|()| out)
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
