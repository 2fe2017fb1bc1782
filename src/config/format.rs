//! Config files in TOML, YAML or JSON, chosen by extension (`.toml`, `.yaml`/`.yml`,
//! `.json`) or forced with `--config-toml`/`--config-yaml`/`--config-json` as in Vector.
//! YAML and JSON are turned into the same TOML tables the loader validates, so every
//! format gets the same checks and messages; a syntax error names the line.
//!
//! YAML is read with `serde_norway`, the maintained continuation of `serde_yaml` (whose
//! author archived it in 2024): the same API and YAML 1.1 reading Vector users' files
//! were written against, with line and column in its errors.

use std::path::Path;

/// The language of one config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.toml`, and anything without a known extension.
    Toml,
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.json`.
    Json,
}

impl Format {
    /// The format a file's extension names, `None` for an unknown one.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Parses `text` into the table the loader reads; `Err` is the message to report.
    pub fn parse(self, text: &str) -> Result<toml::Table, String> {
        match self {
            Format::Toml => text
                .parse::<toml::Table>()
                .map_err(|e| format!("invalid TOML: {}", e.to_string().replace('\n', " ").trim())),
            Format::Yaml => {
                if text.trim().is_empty() {
                    return Ok(toml::Table::new());
                }
                let v: serde_json::Value =
                    serde_norway::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
                into_table(v, "YAML")
            }
            Format::Json => {
                let v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
                into_table(v, "JSON")
            }
        }
    }
}

fn into_table(v: serde_json::Value, format: &str) -> Result<toml::Table, String> {
    match to_toml(v) {
        Some(toml::Value::Table(t)) => Ok(t),
        None => Ok(toml::Table::new()),
        Some(_) => Err(format!(
            "invalid {format}: the top level must be a mapping of options and component tables"
        )),
    }
}

/// A JSON value as TOML. `null` has no TOML form: a key set to null is left out, as if
/// it were not written (what Vector does with an empty YAML value).
fn to_toml(v: serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(a) => toml::Value::Array(a.into_iter().filter_map(to_toml).collect()),
        J::Object(m) => toml::Value::Table(
            m.into_iter()
                .filter_map(|(k, v)| Some((k, to_toml(v)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_formats_give_the_same_tables() {
        let toml = "[sources.in]\ntype = \"demo\"\ncount = 5\ninterval = 0.5\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"in\"]\n";
        let yaml = "sources:\n  in:\n    type: demo\n    count: 5\n    interval: 0.5\nsinks:\n  out:\n    type: blackhole\n    inputs: [in]\n";
        let json = r#"{"sources":{"in":{"type":"demo","count":5,"interval":0.5}},"sinks":{"out":{"type":"blackhole","inputs":["in"]}}}"#;
        let t = Format::Toml.parse(toml).unwrap();
        assert_eq!(Format::Yaml.parse(yaml).unwrap(), t);
        assert_eq!(Format::Json.parse(json).unwrap(), t);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = Format::Yaml
            .parse("sources:\n  in:\n    type: demo\n   bad: [\n")
            .unwrap_err();
        assert!(e.starts_with("invalid YAML") && e.contains("line"), "{e}");
        let e = Format::Json.parse("{\n\"a\": }").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
