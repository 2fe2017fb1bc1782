//! `${VAR}` and `${VAR:-default}` in config text, replaced from the environment before
//! the TOML is parsed, as in Vector. `$$` stands for a literal `$`. Comment lines are left
//! alone so a commented-out example cannot fail the load.

/// Replaces variables in `text`; every missing variable without a default is returned as
/// `(line number, variable name)`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<(usize, String)>> {
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
                        let (name, default) = match inner.split_once(":-") {
                            Some((n, d)) => (n, Some(d)),
                            None => (inner, None),
                        };
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => match default {
                                Some(d) => out.push_str(d),
                                None => missing.push((lineno + 1, name.to_string())),
                            },
                        }
                        rest = &body[end + 1..];
                    }
                    None => {
                        out.push('$');
                        rest = after;
                    }
                }
            } else {
                out.push('$');
                rest = after;
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
    use super::interpolate;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "web1".to_string())
    }

    #[test]
    fn replaces_variables_defaults_and_escapes() {
        let out = interpolate("a = \"${HOST}-${PORT:-514}-$$x-$y\"\n", env).ok();
        assert_eq!(out.as_deref(), Some("a = \"web1-514-$x-$y\"\n"));
    }

    #[test]
    fn names_every_missing_variable_with_its_line() {
        let err = interpolate("a = 1\nb = \"${NOPE}\"\nc = \"${ALSO}\"\n", env).err();
        assert_eq!(
            err,
            Some(vec![(2, "NOPE".to_string()), (3, "ALSO".to_string())])
        );
    }

    #[test]
    fn comment_lines_are_not_interpolated() {
        let out = interpolate("# uses ${NOPE}\na = 1\n", env).ok();
        assert_eq!(out.as_deref(), Some("# uses ${NOPE}\na = 1\n"));
    }
}
