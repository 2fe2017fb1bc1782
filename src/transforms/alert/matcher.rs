//! Alertmanager's label matchers: `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"` (the regex anchored at both ends, as Alertmanager anchors it). A label
//! an alert does not have matches as the empty string.

use regex::Regex;
use std::collections::BTreeMap;

/// One matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    name: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

impl Matcher {
    /// Parses `name<op>"value"` (quotes optional); `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let t = text.trim();
        let pos = t
            .find(['=', '!'])
            .ok_or_else(|| format!("`{t}` is not a matcher: write name=\"value\", !=, =~ or !~"))?;
        let name = t[..pos].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{t}`: `{name}` is not a label name"));
        }
        let rest = &t[pos..];
        let (op, value) = ["!~", "=~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
            .ok_or_else(|| format!("`{t}` has no operator: =, !=, =~ or !~"))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .replace("\\\"", "\"");
        let re = |v: &str| Regex::new(&format!("^(?:{v})$")).map_err(|e| format!("`{t}`: {e}"));
        let kind = match op {
            "=" => Kind::Eq(value),
            "!=" => Kind::Ne(value),
            "=~" => Kind::Re(re(&value)?),
            _ => Kind::NotRe(re(&value)?),
        };
        Ok(Matcher {
            name: name.to_string(),
            kind,
        })
    }

    /// Whether `labels` match.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match &self.kind {
            Kind::Eq(x) => v == x,
            Kind::Ne(x) => v != x,
            Kind::Re(r) => r.is_match(v),
            Kind::NotRe(r) => !r.is_match(v),
        }
    }
}

/// Whether every matcher matches.
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_operators_and_absent_labels() {
        let labels: BTreeMap<String, String> = [("severity", "page"), ("host", "web-1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let m = |t: &str| Matcher::parse(t).unwrap().matches(&labels);
        assert!(m(r#"severity="page""#));
        assert!(m("severity=page"));
        assert!(!m(r#"severity!="page""#));
        assert!(m(r#"host=~"web-.*""#));
        assert!(!m(r#"host=~"web""#), "anchored");
        assert!(m(r#"host!~"db-.*""#));
        assert!(m(r#"team="""#), "an absent label is empty");
        assert!(Matcher::parse("no operator").is_err());
        assert!(Matcher::parse(r#"a=~"(""#).is_err());
    }
}
