//! `encoding.only_fields` and `encoding.except_fields`: Vector's field paths (`a.b`,
//! `"key with.dot".c`) parsed once into a tree that the JSON writer consults while it
//! writes, so a filtered event is never copied.

/// Paths as a tree of keys; a leaf stands for the whole value under its path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldTree {
    children: Vec<(String, FieldTree)>,
    leaf: bool,
}

impl FieldTree {
    /// Parses every path; the error names the first one that is not a field path.
    pub fn parse(paths: &[String]) -> Result<Self, String> {
        let mut root = FieldTree::default();
        for p in paths {
            let mut node = &mut root;
            for segment in parse_path(p)? {
                let i = match node.children.iter().position(|(k, _)| *k == segment) {
                    Some(i) => i,
                    None => {
                        node.children.push((segment, FieldTree::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[i].1;
            }
            node.leaf = true;
        }
        Ok(root)
    }

    /// The subtree under `key`, if any path goes through it.
    #[inline]
    pub fn child(&self, key: &str) -> Option<&FieldTree> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }

    /// Whether a path ends here (everything below is meant).
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// Every path, dotted, for comparing two lists.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect("", &mut out);
        out
    }

    fn collect(&self, prefix: &str, out: &mut Vec<String>) {
        if self.leaf {
            out.push(prefix.to_string());
        }
        for (k, t) in &self.children {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            t.collect(&p, out);
        }
    }
}

/// What `only_fields` / `except_fields` say about one key.
pub enum Keep<'a> {
    /// Left out.
    Skip,
    /// Written whole.
    All,
    /// Written, with these paths (only, except) applying below it.
    Below(Option<&'a FieldTree>, Option<&'a FieldTree>),
}

/// Whether `key` is written, whole or in part, under the `only` and `except` trees of
/// its level.
pub fn keep<'a>(key: &str, only: Option<&'a FieldTree>, except: Option<&'a FieldTree>) -> Keep<'a> {
    let only = match only {
        None => None,
        Some(t) => match t.child(key) {
            None => return Keep::Skip,
            Some(c) if c.is_leaf() => None,
            Some(c) => Some(c),
        },
    };
    let except = match except {
        None => None,
        Some(t) => match t.child(key) {
            None => None,
            Some(c) if c.is_leaf() => return Keep::Skip,
            Some(c) => Some(c),
        },
    };
    match (only, except) {
        (None, None) => Keep::All,
        (o, e) => Keep::Below(o, e),
    }
}

/// `a.b`, `.a.b` or `a."b.c"` into its keys.
fn parse_path(path: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| Err(format!("`{path}` is not a field path: {why}"));
    let mut segments = Vec::new();
    let mut chars = path.trim().strip_prefix('.').unwrap_or(path.trim()).chars();
    let mut current = String::new();
    let mut quoted_segment = false;
    loop {
        match chars.next() {
            None | Some('.') => {
                if current.is_empty() && !quoted_segment {
                    return bad("it has an empty segment");
                }
                segments.push(std::mem::take(&mut current));
                quoted_segment = false;
                if path.trim().ends_with('.') && chars.as_str().is_empty() {
                    return bad("it ends with `.`");
                }
                if chars.as_str().is_empty() {
                    break;
                }
            }
            Some('"') if current.is_empty() && !quoted_segment => {
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(c) => current.push(c),
                            None => return bad("an escape at the end"),
                        },
                        Some('"') => break,
                        Some(c) => current.push(c),
                        None => return bad("a quote is not closed"),
                    }
                }
                quoted_segment = true;
                if !matches!(chars.clone().next(), None | Some('.')) {
                    return bad("a quoted key must be followed by `.` or end the path");
                }
            }
            Some('[') => {
                return bad("array indexes are not supported by sluice here; name the whole array");
            }
            Some(c) => current.push(c),
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_dots_and_quotes() {
        assert_eq!(parse_path("a").unwrap(), vec!["a"]);
        assert_eq!(parse_path(".a.b").unwrap(), vec!["a", "b"]);
        assert_eq!(parse_path(r#"a."b.c".d"#).unwrap(), vec!["a", "b.c", "d"]);
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a.").is_err());
        assert!(parse_path("a[0]").unwrap_err().contains("array indexes"));
        assert!(parse_path(r#"a."b"#).is_err());
    }

    #[test]
    fn tree_merges_shared_prefixes() {
        let t = FieldTree::parse(&["a.b".into(), "a.c".into(), "d".into()]).unwrap();
        let a = t.child("a").unwrap();
        assert!(!a.is_leaf());
        assert!(a.child("b").unwrap().is_leaf());
        assert!(t.child("d").unwrap().is_leaf());
        assert!(t.child("x").is_none());
        assert_eq!(t.paths(), vec!["a.b", "a.c", "d"]);
    }
}
