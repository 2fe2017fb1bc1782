//! Turns one TOML table into a typed config struct and, when that fails, into a message
//! that names the key and suggests the nearest valid one. Going through `serde_value`
//! keeps serde's errors structured (unknown field plus the expected list) instead of text.

use super::error::did_you_mean;
use serde::de::DeserializeOwned;
use serde_value::DeserializerError;

/// Why a table did not fit its struct: the dotted key (if known) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Dotted path of the offending key.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl FieldIssue {
    /// An issue at a key.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// The `(key, problem)` pairs of a nested table (`batch`, `request`), each under
    /// `prefix`, so every component reports a shared table's problems the same way.
    pub fn under(prefix: &str, problems: Vec<(&'static str, &'static str)>) -> Vec<FieldIssue> {
        problems
            .into_iter()
            .map(|(k, p)| FieldIssue::new(format!("{prefix}.{k}"), p))
            .collect()
    }
}

/// Deserializes `T`, reporting every bad key rather than only the first: after each
/// error, the offending key (however deeply nested, so its siblings are still checked)
/// is set aside and the table tried again.
pub fn from_toml_all<T: DeserializeOwned>(value: toml::Value) -> Result<T, Vec<FieldIssue>> {
    from_toml_checked(value, |_: &T| Vec::new())
}

/// [`from_toml_all`], and when the table parses once its bad keys are set aside, the
/// component's own `check` on what is left too, so one run reports a misspelt key and a
/// required key the component checks itself. Issues `check` raises about a key set
/// aside are echoes and left out.
pub fn from_toml_checked<T: DeserializeOwned>(
    value: toml::Value,
    check: impl Fn(&T) -> Vec<FieldIssue>,
) -> Result<T, Vec<FieldIssue>> {
    let toml::Value::Table(mut table) = value else {
        return from_toml(value).map_err(|e| vec![e]);
    };
    let mut issues: Vec<FieldIssue> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..64 {
        match from_toml::<T>(toml::Value::Table(table.clone())) {
            Ok(v) if issues.is_empty() => return Ok(v),
            Ok(v) => {
                let echo = |key: &str| {
                    removed
                        .iter()
                        .any(|r| key == r || key.starts_with(&format!("{r}.")))
                };
                issues.extend(
                    check(&v)
                        .into_iter()
                        .filter(|i| !i.key.as_deref().is_some_and(echo)),
                );
                return Err(issues);
            }
            Err(issue) => {
                let key = issue.key.clone().unwrap_or_default();
                // A required key we set aside ourselves is not a new problem.
                let is_echo = issue.message == "missing required key"
                    && removed
                        .iter()
                        .any(|r| key == *r || key.starts_with(&format!("{r}.")));
                if !is_echo {
                    issues.push(issue);
                }
                match remove_path(&mut table, &key) {
                    Some(path) => removed.push(path),
                    None => return Err(issues),
                }
            }
        }
    }
    Err(issues)
}

/// Removes the deepest existing key along the dotted `path`; returns the path removed.
/// A missing required key has nothing to remove, so its parent goes instead.
fn remove_path(table: &mut toml::Table, path: &str) -> Option<String> {
    fn remove_at(t: &mut toml::Table, parts: &[&str]) -> bool {
        match parts {
            [] => false,
            [last] => t.remove(*last).is_some(),
            [first, rest @ ..] => match t.get_mut(*first) {
                Some(toml::Value::Table(inner)) => remove_at(inner, rest),
                _ => false,
            },
        }
    }
    let parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .find(|&depth| remove_at(table, &parts[..depth]))
        .map(|depth| parts[..depth].join("."))
}

/// Serde's names for what it expected, in the words of someone writing TOML.
fn expected_in_words(expected: &str) -> String {
    let plain = expected.trim();
    let words = match plain {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a non-negative integer",
        "isize" | "i64" | "i32" | "i16" | "i8" => "an integer",
        "f64" | "f32" => "a number",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list",
        "a map" => "a table",
        "option" => "a value",
        "a string" | "string" => "a string",
        _ if plain.starts_with("struct ") => "a table",
        _ if plain.starts_with("enum ") => "one of the listed values",
        _ if plain.starts_with("a tuple") => "a list",
        _ => return plain.to_string(),
    };
    words.to_string()
}

/// Deserializes `T` from a TOML value with a structured error.
pub fn from_toml<T: DeserializeOwned>(value: toml::Value) -> Result<T, FieldIssue> {
    let v = serde_value::to_value(value).map_err(|e| FieldIssue {
        key: None,
        message: e.to_string(),
    })?;
    let de = serde_value::ValueDeserializer::<DeserializerError>::new(v);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let parent = (path != "." && !path.is_empty()).then_some(path);
        let join = |name: &str| match &parent {
            Some(p) if !p.ends_with(name) => format!("{p}.{name}"),
            Some(p) => p.clone(),
            None => name.to_string(),
        };
        match e.into_inner() {
            DeserializerError::UnknownField(name, expected) => FieldIssue {
                key: Some(join(&name)),
                message: format!(
                    "unknown key{}",
                    if expected.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "{} (valid keys: {})",
                            did_you_mean(&name, expected.iter().copied()),
                            expected.join(", ")
                        )
                    }
                ),
            },
            DeserializerError::MissingField(name) => FieldIssue {
                key: Some(join(name)),
                message: "missing required key".to_string(),
            },
            DeserializerError::UnknownVariant(name, expected) => FieldIssue {
                key: parent,
                message: format!(
                    "unknown value `{name}`{} (expected one of: {})",
                    did_you_mean(&name, expected.iter().copied()),
                    expected.join(", ")
                ),
            },
            DeserializerError::InvalidType(unexp, exp) => FieldIssue {
                key: parent,
                message: format!(
                    "wrong type: found {}, expected {}",
                    unexp.to_unexpected(),
                    expected_in_words(&exp)
                ),
            },
            DeserializerError::InvalidValue(unexp, exp) => FieldIssue {
                key: parent,
                message: format!(
                    "invalid value: found {}, expected {}",
                    unexp.to_unexpected(),
                    expected_in_words(&exp)
                ),
            },
            other => FieldIssue {
                key: parent,
                message: other.to_string(),
            },
        }
    })
}
