//! Vector options sluice refuses on purpose. A Vector user who writes one gets one line
//! that says so, why, and what to write instead, never a bare "unknown key": the
//! loader checks each component's table against this list before parsing it, reports
//! what matches and sets the key aside so the rest of the table is still checked.

use crate::internal_events::ComponentKind;

/// One refused option.
struct Refusal {
    kind: ComponentKind,
    /// Component types it applies to; empty for every type of the kind.
    types: &'static [&'static str],
    /// Dotted key.
    key: &'static str,
    /// Whether the value written is the refused one (some values of a key are fine).
    refuses: fn(&toml::Value) -> bool,
    /// Why, and what to use instead.
    reason: &'static str,
    /// Whether other values of the key mean what sluice does anyway and are taken out
    /// silently (`log_namespace = false`).
    ignore_others: bool,
}

fn any(_: &toml::Value) -> bool {
    true
}

fn is_true(v: &toml::Value) -> bool {
    v.as_bool() == Some(true)
}

fn includes_file_tag(v: &toml::Value) -> bool {
    v.get("include_file_tag").is_some_and(is_true)
}

fn is_adaptive(v: &toml::Value) -> bool {
    v.as_str() == Some("adaptive")
}

fn unsupported_codec(v: &toml::Value) -> bool {
    matches!(
        v.as_str(),
        Some("avro" | "protobuf" | "native" | "native_json" | "gelf" | "csv" | "cef" | "otlp")
    )
}

fn unsupported_decoding(v: &toml::Value) -> bool {
    matches!(
        v.as_str(),
        Some("avro" | "protobuf" | "native" | "native_json" | "gelf" | "influxdb" | "otlp" | "vrl")
    )
}

const NETWORK_SINKS: &[&str] = &["http", "influxdb", "aws_cloudwatch_logs"];

const REFUSALS: &[Refusal] = &[
    Refusal {
        kind: ComponentKind::Sink,
        types: NETWORK_SINKS,
        key: "request.concurrency",
        refuses: is_adaptive,
        reason: "sluice runs a fixed number of requests at once and backs off on 429, 503 and timeouts; write an integer (default 4)",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: NETWORK_SINKS,
        key: "request.adaptive_concurrency",
        refuses: any,
        reason: "sluice runs a fixed number of requests at once (`request.concurrency`, default 4) and backs off on 429, 503 and timeouts",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: NETWORK_SINKS,
        key: "request.rate_limit_num",
        refuses: any,
        reason: "sluice does not cap requests per second; it honours the destination's 429 and Retry-After, and `request.concurrency` bounds what is in flight",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: NETWORK_SINKS,
        key: "request.rate_limit_duration_secs",
        refuses: any,
        reason: "sluice does not cap requests per second; it honours the destination's 429 and Retry-After, and `request.concurrency` bounds what is in flight",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["http"],
        key: "retry_strategy",
        refuses: any,
        reason: "which answers are retried is fixed: 408, 429, 5xx but 501, timeouts and connection failures; everything else is rejected and counted",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["http", "file"],
        key: "dangerously_allow_unconfined_template_resolution",
        refuses: is_true,
        reason: "sluice's templates confine every field value (percent-encoded in URIs, `/` replaced in paths), and there is no switch to turn that off",
        ignore_others: true,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["kafka", "aws_cloudwatch_logs"],
        key: "dangerously_allow_unconfined_template_resolution",
        refuses: |_| false,
        reason: "",
        // A Kafka topic or CloudWatch group rendered from a field can name any topic or
        // group, as in Vector with the flag set; ACLs and IAM are what confine a sender.
        ignore_others: true,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["kafka"],
        key: "rate_limit_num",
        refuses: |_| false,
        reason: "",
        // Deprecated in Vector's kafka sink and without effect there.
        ignore_others: true,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["kafka"],
        key: "rate_limit_duration_secs",
        refuses: |_| false,
        reason: "",
        ignore_others: true,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["aws_cloudwatch_logs"],
        key: "auth.imds",
        refuses: any,
        reason: "sluice keeps the AWS SDK's IMDS settings (1 s connect and read timeouts, 4 attempts); `auth.load_timeout_secs` bounds the whole credential lookup",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["file"],
        key: "truncate",
        refuses: any,
        reason: "sluice never empties files it wrote; name them by date (`%Y-%m-%d` in `path`) or let logrotate rotate them",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &[],
        key: "encoding.codec",
        refuses: unsupported_codec,
        reason: "sluice writes `json`, `text` and `raw_message` (and `ndjson` over HTTP); binary and schema codecs are not built in",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &[],
        key: "encoding.codec",
        refuses: |v| v.as_str() == Some("logfmt"),
        reason: "logfmt output comes with VRL (`remap` with `encode_logfmt`); until then use `json` or `text`",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Source,
        types: &[],
        key: "decoding.codec",
        refuses: unsupported_decoding,
        reason: "sluice decodes `bytes`/`text`, `json`, `ndjson` and `syslog`; send structured events as JSON",
        ignore_others: false,
    },
    Refusal {
        kind: ComponentKind::Source,
        types: &[],
        key: "log_namespace",
        refuses: is_true,
        reason: "sluice keeps Vector's legacy layout (fields such as `host` and `timestamp` in the event itself); Vector's log namespacing is not built",
        ignore_others: true,
    },
    Refusal {
        kind: ComponentKind::Source,
        types: &["file"],
        key: "internal_metrics",
        refuses: includes_file_tag,
        reason: "a metric tag per file would grow without bound as logs rotate; the file source's metrics are per source",
        ignore_others: true,
    },
    Refusal {
        kind: ComponentKind::Sink,
        types: &["file"],
        key: "internal_metrics",
        refuses: includes_file_tag,
        reason: "a metric tag per file would grow without bound as files roll over; the file sink's metrics are per sink",
        ignore_others: true,
    },
];

/// The refused options in `table` of a component of `kind` and `type_name`: each
/// `(key, message)`; the keys are removed from `table`.
pub fn refuse(
    kind: ComponentKind,
    type_name: &str,
    table: &mut toml::Table,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in REFUSALS {
        if r.kind != kind || !(r.types.is_empty() || r.types.contains(&type_name)) {
            continue;
        }
        let (parent, last) = match r.key.rsplit_once('.') {
            Some((p, l)) => (Some(p), l),
            None => (None, r.key),
        };
        let holder = match parent {
            None => Some(&mut *table),
            Some(p) => p.split('.').try_fold(&mut *table, |t, k| {
                t.get_mut(k).and_then(|v| v.as_table_mut())
            }),
        };
        let Some(holder) = holder else { continue };
        match holder.get(last) {
            Some(v) if (r.refuses)(v) => {
                // A scalar is named with its value: `encoding.codec = "avro"`.
                let written = match v {
                    toml::Value::Table(_) | toml::Value::Array(_) => r.key.to_string(),
                    scalar => format!("{} = {scalar}", r.key),
                };
                holder.remove(last);
                out.push((
                    r.key.to_string(),
                    format!(
                        "Vector's `{written}` is not supported by sluice: {}",
                        r.reason
                    ),
                ));
            }
            Some(_) if r.ignore_others => {
                holder.remove(last);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_values_are_named_and_removed_and_others_left_alone() {
        let mut t: toml::Table = toml::from_str(
            r#"
request.concurrency = "adaptive"
request.timeout_secs = 5
encoding.codec = "avro"
dangerously_allow_unconfined_template_resolution = false
"#,
        )
        .unwrap();
        let got = refuse(ComponentKind::Sink, "http", &mut t);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "request.concurrency");
        assert!(got[0].1.starts_with(
            "Vector's `request.concurrency = \"adaptive\"` is not supported by sluice: "
        ));
        assert_eq!(got[1].0, "encoding.codec");
        assert!(t["request"].get("concurrency").is_none());
        assert_eq!(t["request"]["timeout_secs"].as_integer(), Some(5));
        // `false` is what sluice does anyway: taken out without a word.
        assert!(!t.contains_key("dangerously_allow_unconfined_template_resolution"));
        let mut c: toml::Table = toml::from_str("request.concurrency = 8").unwrap();
        assert!(refuse(ComponentKind::Sink, "http", &mut c).is_empty());
    }
}
