//! A strict, allocation-light parser for well-formed RFC 5424 messages, the common case
//! on a busy syslog port. It yields exactly what `syslog_loose` yields for the same input
//! (a differential test over the corpus and generated messages holds it to that) and
//! returns `None` for anything unusual, which `syslog_loose` then parses as before.

use chrono::DateTime;
use syslog_loose::{decompose_pri, Message, ProcId, Protocol, StructuredElement};

/// Splits off the token up to the next space: header fields are printable ASCII.
fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().position(|b| b == b' ')?;
    let tok = &s[..end];
    if tok.is_empty() || !tok.bytes().all(|b| (33..=126).contains(&b)) {
        return None;
    }
    Some((tok, &s[end + 1..]))
}

/// `-` is NILVALUE. A field of only `:` is something `syslog_loose` treats specially.
fn nil_or(tok: &str) -> Option<Option<&str>> {
    match tok {
        "-" => Some(None),
        ":" => None,
        t => Some(Some(t)),
    }
}

/// Parses `input` (already trimmed) if it is plainly well-formed RFC 5424.
pub fn parse_strict(input: &str) -> Option<Message<&str>> {
    let rest = input.strip_prefix('<')?;
    let close = rest.bytes().take(4).position(|b| b == b'>')?;
    let pri: u8 = rest[..close].parse().ok().filter(|p| *p <= 191)?;
    if close == 0 || !rest[..close].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &rest[close + 1..];
    let vend = rest.bytes().position(|b| b == b' ')?;
    if vend == 0 || vend > 3 || !rest[..vend].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version: u32 = rest[..vend].parse().ok()?;
    let rest = &rest[vend + 1..];
    let (ts, rest) = token(rest)?;
    let timestamp = match ts {
        "-" => None,
        t => Some(DateTime::parse_from_rfc3339(t).ok()?),
    };
    let (host, rest) = token(rest)?;
    if host.ends_with(':') {
        return None;
    }
    let hostname = nil_or(host)?;
    let (app, rest) = token(rest)?;
    let appname = nil_or(app)?;
    let (pid, rest) = token(rest)?;
    let procid = nil_or(pid)?.map(ProcId::from);
    let (mid, rest) = token(rest)?;
    let msgid = nil_or(mid)?;
    let (structured_data, rest) = structured_data(rest)?;
    let msg = rest.trim_start_matches([' ', '\t']);
    let (facility, severity) = decompose_pri(pri);
    Some(Message {
        protocol: Protocol::RFC5424(version),
        facility,
        severity,
        timestamp,
        hostname,
        appname,
        procid,
        msgid,
        structured_data,
        msg,
    })
}

/// `-`, or SD elements back to back, each `[ID name="value" ...]`.
#[allow(clippy::type_complexity)]
fn structured_data(s: &str) -> Option<(Vec<StructuredElement<&str>>, &str)> {
    if let Some(rest) = s.strip_prefix('-') {
        return match rest.bytes().next() {
            None | Some(b' ') => Some((Vec::new(), rest)),
            _ => None,
        };
    }
    if !s.starts_with('[') {
        return None;
    }
    let mut elements = Vec::new();
    let mut rest = s;
    while let Some(body) = rest.strip_prefix('[') {
        let id_end = body
            .bytes()
            .position(|b| b == b' ' || b == b']' || b == b'=')?;
        let id = &body[..id_end];
        if id.is_empty() || !id.bytes().all(|b| (33..=126).contains(&b) && b != b'"') {
            return None;
        }
        let mut cur = &body[id_end..];
        let mut params = Vec::new();
        loop {
            if let Some(after) = cur.strip_prefix(']') {
                cur = after;
                break;
            }
            let p = cur.strip_prefix(' ')?;
            let eq = p
                .bytes()
                .position(|b| b == b'=' || b == b']' || b == b' ' || b == b'"')?;
            if eq == 0 || p.as_bytes()[eq] != b'=' {
                return None;
            }
            let name = &p[..eq];
            let v = p[eq + 1..].strip_prefix('"')?;
            // The value runs to the first quote not escaped by a backslash.
            let bytes = v.as_bytes();
            let mut i = 0;
            let end = loop {
                match bytes.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break i,
                    _ => i += 1,
                }
            };
            let value = v.get(..end)?;
            params.push((name, value));
            cur = &v[end + 1..];
        }
        elements.push(StructuredElement { id, params });
        rest = cur;
    }
    match rest.bytes().next() {
        // Elements are adjacent; anything else right after one is for syslog_loose.
        None => Some((elements, rest)),
        Some(b' ') if !rest.trim_start().starts_with('[') => Some((elements, rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_strict;

    #[test]
    fn takes_ordinary_well_formed_messages() {
        for line in [
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event",
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time",
            "<13>1 - - - - - -",
            "<134>1 2026-11-22T14:20:00Z web-01 nginx 12345 ACCESS [req@32473 id=\"a\\\"b\\]c\"][x@1 k=\"\"] GET /",
        ] {
            assert!(parse_strict(line).is_some(), "{line}");
        }
    }

    #[test]
    fn leaves_unusual_input_to_syslog_loose() {
        for line in [
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
            "<999>1 - - - - - - too big a PRI",
            "<13>1 2003-10-11 22:14:15 host app - - - space in timestamp",
            "<13>1 - host: app - - - trailing colon on the host",
            "<13>1 - host app - - [a x=\"1\"] [b y=\"2\"] spaced elements",
            "<13>1 - host app - -  - two spaces",
            "<13>1 - host app - - [broken",
        ] {
            assert!(parse_strict(line).is_none(), "{line}");
        }
    }
}
