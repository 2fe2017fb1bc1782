//! `$VAR` and `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
//! `${VAR:?message}` (an error when unset or empty) and `${VAR?message}` (when unset) in
//! config text, replaced from the environment before the TOML is parsed, as in Vector.
//! `$$` stands for a literal `$`. Comment lines are left alone so a commented-out example
//! cannot fail the load.

/// A variable the config needs and the environment does not give.
#[derive(Debug, PartialEq, Eq)]
pub struct Missing {
    /// 1-based line in the config file.
    pub line: usize,
    /// The variable.
    pub name: String,
    /// The config's own message (`${VAR:?message}`), if it gave one.
    pub message: Option<String>,
}

/// Replaces variables in `text`; every missing variable without a default is returned.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<Missing>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                match body.find('}') {
                    Some(end) => {
                        let inner = &body[..end];
                        let split = inner
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .unwrap_or(inner.len());
                        let (name, op) = inner.split_at(split);
                        let value = lookup(name);
                        let (empty_counts, op) = match op.strip_prefix(':') {
                            Some(rest) => (true, rest),
                            None => (false, op),
                        };
                        let usable = value.filter(|v| !(empty_counts && v.is_empty()));
                        let fail = |message: Option<&str>| Missing {
                            line: lineno + 1,
                            name: name.to_string(),
                            message: message.filter(|m| !m.is_empty()).map(str::to_string),
                        };
                        match (usable, op.chars().next()) {
                            (Some(v), _) => out.push_str(&v),
                            (None, Some('-')) => out.push_str(&op[1..]),
                            (None, Some('?')) => missing.push(fail(Some(&op[1..]))),
                            (None, _) => missing.push(fail(None)),
                        }
                        rest = &body[end + 1..];
                    }
                    None => {
                        out.push('$');
                        rest = after;
                    }
                }
            } else {
                // `$VAR`: the longest run of word characters, as Vector reads it.
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if end == 0 {
                    out.push('$');
                } else {
                    let name = &after[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => missing.push(Missing {
                            line: lineno + 1,
                            name: name.to_string(),
                            message: None,
                        }),
                    }
                }
                rest = &after[end..];
            }
        }
        out.push_str(rest);
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::{interpolate, Missing};

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "web1".to_string())
    }

    #[test]
    fn replaces_variables_defaults_and_escapes() {
        let out = interpolate("a = \"${HOST}-${PORT:-514}-$$x-$HOST.$ end$\"\n", env).ok();
        assert_eq!(out.as_deref(), Some("a = \"web1-514-$x-web1.$ end$\"\n"));
        // A bare `$NAME` that is not set is an error, as in Vector: write `$$` for a `$`.
        let err = interpolate("b = \"^a$y\"\n", env).err();
        assert_eq!(err.map(|m| m[0].name.clone()).as_deref(), Some("y"));
    }

    #[test]
    fn names_every_missing_variable_with_its_line() {
        let err = interpolate("a = 1\nb = \"${NOPE}\"\nc = \"${ALSO:?set ALSO}\"\n", env).err();
        let missing = |line, name: &str, message: Option<&str>| Missing {
            line,
            name: name.into(),
            message: message.map(str::to_string),
        };
        assert_eq!(
            err,
            Some(vec![
                missing(2, "NOPE", None),
                missing(3, "ALSO", Some("set ALSO"))
            ])
        );
    }

    #[test]
    fn empty_counts_as_unset_only_with_a_colon() {
        let env = |n: &str| (n == "EMPTY").then(String::new);
        let out = interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${EMPTY?x}\n", env);
        assert_eq!(out.ok().as_deref(), Some("d  d \n"));
        assert!(interpolate("${EMPTY:?need it}\n", env).is_err());
    }

    #[test]
    fn comment_lines_are_not_interpolated() {
        let out = interpolate("# uses ${NOPE}\na = 1\n", env).ok();
        assert_eq!(out.as_deref(), Some("# uses ${NOPE}\na = 1\n"));
    }
}
