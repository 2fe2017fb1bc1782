//! Which components two configs share unchanged, which changed, which are new and which
//! are gone: what a reload needs to rebuild only what changed. Components are compared
//! by their tables as written (after `${VAR}` interpolation, so a changed secret in the
//! environment counts as a change), `buffer` included, and by what the top level gives
//! them (a sink's `proxy` and `healthcheck`, whether a source's sinks acknowledge).
//! `inputs` is left out: a component whose inputs alone changed keeps running and is
//! only rewired, so a transform inserted before a sink does not cost it its buffer.

use super::Config;
use std::collections::{BTreeMap, BTreeSet};

/// The difference for one kind of component, by ID.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Difference {
    /// Only in the new config: to start.
    pub added: BTreeSet<String>,
    /// Only in the old config: to stop, draining what they hold.
    pub removed: BTreeSet<String>,
    /// In both, with a different table (or type): to rebuild.
    pub changed: BTreeSet<String>,
    /// In both, identical: to keep running untouched.
    pub unchanged: BTreeSet<String>,
}

impl Difference {
    fn of(old: BTreeMap<&str, toml::Value>, new: BTreeMap<&str, toml::Value>) -> Self {
        let mut d = Difference::default();
        for (id, raw) in &new {
            match old.get(id) {
                None => d.added.insert(id.to_string()),
                Some(before) if before == raw => d.unchanged.insert(id.to_string()),
                Some(_) => d.changed.insert(id.to_string()),
            };
        }
        for id in old.keys() {
            if !new.contains_key(id) {
                d.removed.insert(id.to_string());
            }
        }
        d
    }

    /// Whether nothing is added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The difference between a running config and a new one.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigDiff {
    /// `[sources.ID]`
    pub sources: Difference,
    /// `[transforms.ID]`
    pub transforms: Difference,
    /// `[sinks.ID]`
    pub sinks: Difference,
}

impl ConfigDiff {
    /// Compares `old` (running) with `new`.
    pub fn new(old: &Config, new: &Config) -> Self {
        /// A component's table without `inputs`, plus `extra` (what the top level gives it).
        fn table(raw: &toml::Value, extra: Option<(&str, toml::Value)>) -> toml::Value {
            let mut t = raw.clone();
            if let toml::Value::Table(m) = &mut t {
                m.remove("inputs");
                if let Some((k, v)) = extra {
                    m.insert(format!("@{k}"), v);
                }
            }
            t
        }
        let sources = |c: &'_ Config| -> BTreeMap<String, toml::Value> {
            c.sources
                .iter()
                .map(|(id, s)| {
                    let acks = toml::Value::Boolean(c.source_acknowledges(id));
                    (id.clone(), table(&s.raw, Some(("acknowledged", acks))))
                })
                .collect()
        };
        let sinks = |c: &'_ Config| -> BTreeMap<String, toml::Value> {
            c.sinks
                .iter()
                .map(|(id, s)| {
                    let given = toml::Value::String(format!("{:?} {:?}", s.proxy, s.healthcheck));
                    (id.clone(), table(&s.raw, Some(("given", given))))
                })
                .collect()
        };
        let transforms = |c: &'_ Config| -> BTreeMap<String, toml::Value> {
            c.transforms
                .iter()
                .map(|(id, t)| (id.clone(), table(&t.raw, None)))
                .collect()
        };
        fn by_ref(m: &BTreeMap<String, toml::Value>) -> BTreeMap<&str, toml::Value> {
            m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
        }
        Self {
            sources: Difference::of(by_ref(&sources(old)), by_ref(&sources(new))),
            transforms: Difference::of(by_ref(&transforms(old)), by_ref(&transforms(new))),
            sinks: Difference::of(by_ref(&sinks(old)), by_ref(&sinks(new))),
        }
    }

    /// Whether the two configs run the same pipeline.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.transforms.is_empty() && self.sinks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn load(text: &str) -> Config {
        Config::from_texts(vec![(PathBuf::from("t.toml"), text.to_string())]).unwrap()
    }

    const BASE: &str = r#"
[api]
enabled = false
[sources.a]
type = "demo"
[sources.b]
type = "demo"
interval = 2.0
[transforms.s]
type = "sample"
rate = 2
inputs = ["a"]
[sinks.out]
type = "blackhole"
inputs = ["s", "b"]
"#;

    #[test]
    fn components_are_compared_by_their_tables() {
        let old = load(BASE);
        assert!(ConfigDiff::new(&old, &load(BASE)).is_empty());
        // Reordered keys and comments are no change.
        let reordered = BASE.replace(
            "type = \"sample\"\nrate = 2",
            "rate = 2 # halve\ntype = \"sample\"",
        );
        assert!(ConfigDiff::new(&old, &load(&reordered)).is_empty());

        let new = BASE
            .replace("interval = 2.0", "interval = 3.0")
            .replace("inputs = [\"s\", \"b\"]", "inputs = [\"s\", \"b\", \"c\"]")
            .replace("[sources.a]\ntype = \"demo\"\n", "[sources.c]\ntype = \"demo\"\n[transforms.s2]\ntype = \"sample\"\nrate = 3\ninputs = [\"c\"]\n")
            .replace("inputs = [\"a\"]", "inputs = [\"c\"]");
        let d = ConfigDiff::new(&old, &load(&new));
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(d.sources.added, set(&["c"]));
        assert_eq!(d.sources.removed, set(&["a"]));
        assert_eq!(d.sources.changed, set(&["b"]));
        assert_eq!(d.transforms.added, set(&["s2"]));
        assert!(d.transforms.changed.is_empty(), "only its inputs changed");
        assert_eq!(d.transforms.unchanged, set(&["s"]));
        assert_eq!(
            d.sinks.unchanged,
            set(&["out"]),
            "only its inputs changed: it is rewired, not rebuilt"
        );
    }
}
