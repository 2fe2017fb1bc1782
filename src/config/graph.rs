//! The checks that need the whole pipeline: inputs that point nowhere, globs that match
//! nothing, cycles, sinks that nothing feeds, two listeners on one address. Also the DOT
//! rendering behind `sluice graph`.

use super::error::{did_you_mean, ConfigError};
use super::{resources, Config};
use crate::topology::component::Resource;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

/// Whether `pattern` (with `*` wildcards) matches `id`.
pub fn glob_match(pattern: &str, id: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == id;
    }
    let mut rest = id;
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(r) = rest.strip_prefix(first) else {
        return false;
    };
    rest = r;
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(pos) => rest = &rest[pos + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The component an input names: `route` for `route.errors`.
pub fn component_of(input: &str) -> &str {
    input.split_once('.').map_or(input, |(id, _)| id)
}

/// An edge in DOT: from the producing component, labelled with a named output.
fn dot_edge(s: &mut String, input: &str, to: &str) {
    let _ = match input.split_once('.') {
        Some((from, output)) => writeln!(s, "  \"{from}\" -> \"{to}\" [label=\"{output}\"];"),
        None => writeln!(s, "  \"{input}\" -> \"{to}\";"),
    };
}

/// Expands inputs and checks the graph; fills `resolved_inputs`.
pub fn validate(config: &mut Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let producers: Vec<String> = config.producers().map(str::to_string).collect();
    let sink_ids: BTreeSet<String> = config.sinks.keys().cloned().collect();
    // Named outputs of every producer (sources have only their default one).
    let named: BTreeMap<String, Vec<String>> = config
        .sources
        .keys()
        .map(|id| (id.clone(), Vec::new()))
        .chain(
            config
                .transforms
                .iter()
                .map(|(id, t)| (id.clone(), t.inner.outputs())),
        )
        .collect();
    let broken = config.broken.clone();

    let resolve = |file: &Path,
                   name: &str,
                   own_id: &str,
                   inputs: &[String],
                   errors: &mut Vec<ConfigError>| {
        let mut out: Vec<String> = Vec::new();
        let err =
            |msg: String| ConfigError::at(file, Some(name.to_string()), Some("inputs".into()), msg);
        if inputs.is_empty() {
            errors.push(err(if producers.is_empty() {
                "has no inputs, and no source or transform is declared to feed it".to_string()
            } else {
                format!(
                    "has no inputs: list the sources or transforms it reads from (known: {})",
                    producers.join(", ")
                )
            }));
        }
        for input in inputs {
            if broken.contains(input.split('.').next().unwrap_or(input)) {
                // Its own errors were reported; a second message here would mislead.
                continue;
            }
            if input.contains('*') {
                let matched: Vec<&String> = producers
                    .iter()
                    .filter(|p| p.as_str() != own_id && glob_match(input, p))
                    .collect();
                if matched.is_empty() {
                    errors.push(err(format!("`{input}` matches no source or transform")));
                }
                out.extend(matched.into_iter().cloned());
            } else if producers.iter().any(|p| p == input) {
                out.push(input.clone());
            } else if sink_ids.contains(input) {
                errors.push(err(format!(
                    "`{input}` is a sink; only sources and transforms can be inputs"
                )));
            } else if let Some((base, port)) = input.split_once('.') {
                if let Some(outputs) = named.get(base) {
                    if outputs.iter().any(|o| o == port) {
                        out.push(input.clone());
                    } else if outputs.is_empty() {
                        errors.push(err(format!(
                            "`{base}` has no output `{port}`: it has only its default output, named `{base}`"
                        )));
                    } else {
                        let list: Vec<String> =
                            outputs.iter().map(|o| format!("`{base}.{o}`")).collect();
                        errors.push(err(format!(
                            "`{base}` has no output `{port}`{} (its outputs: `{base}`, {})",
                            did_you_mean(port, outputs.iter().map(String::as_str)),
                            list.join(", ")
                        )));
                    }
                } else {
                    errors.push(err(format!(
                        "`{input}` is not a source or transform{}",
                        did_you_mean(base, producers.iter().map(String::as_str))
                    )));
                }
            } else {
                errors.push(err(format!(
                    "`{input}` is not a source or transform{}",
                    did_you_mean(input, producers.iter().map(String::as_str))
                )));
            }
        }
        out.sort();
        out.dedup();
        out
    };

    for (id, t) in config.transforms.iter_mut() {
        let name = format!("transforms.{id}");
        t.resolved_inputs = resolve(&t.file, &name, id, &t.inputs, &mut errors);
    }
    for (id, s) in config.sinks.iter_mut() {
        let name = format!("sinks.{id}");
        s.resolved_inputs = resolve(&s.file, &name, id, &s.inputs, &mut errors);
    }

    // Consumers whose options did not load: their inputs are still checked.
    for u in &config.unloaded_inputs {
        resolve(&u.file, &u.name, &u.id, &u.inputs, &mut errors);
    }

    // Cycles can only run through transforms: walk each one's inputs depth-first.
    let edges: BTreeMap<&str, Vec<&str>> = config
        .transforms
        .iter()
        .map(|(id, t)| {
            (
                id.as_str(),
                t.resolved_inputs
                    .iter()
                    .map(|i| component_of(i))
                    .filter(|i| config.transforms.contains_key(*i))
                    .collect(),
            )
        })
        .collect();
    let mut reported = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(*start, vec![*start])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(node).into_iter().flatten() {
                if *next == *start {
                    let mut cycle: Vec<&str> = path.clone();
                    cycle.push(start);
                    let mut key: Vec<&str> = cycle[..cycle.len() - 1].to_vec();
                    key.sort();
                    if reported.insert(key) {
                        let t = &config.transforms[*start];
                        errors.push(ConfigError::at(
                            &t.file,
                            Some(format!("transforms.{start}")),
                            Some("inputs".into()),
                            format!("inputs form a cycle: {}", cycle.join(" -> ")),
                        ));
                    }
                } else if seen.insert(*next) {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push((next, p));
                }
            }
        }
    }

    // Two components, or a component and the API, on one address.
    let mut owned = resources(config);
    if config.api.enabled {
        owned.push((
            "api".to_string(),
            Path::new(""),
            Resource::Tcp(config.api.address),
        ));
    }
    for i in 0..owned.len() {
        for j in (i + 1)..owned.len() {
            if owned[i].2.conflicts_with(&owned[j].2) {
                let (a, b) = (&owned[i], &owned[j]);
                let (first, second) = if b.0 == "api" { (b, a) } else { (a, b) };
                errors.push(ConfigError::at(
                    second.1,
                    Some(second.0.clone()),
                    Some(second.2.key().into()),
                    format!("{} is already used by [{}]", second.2, first.0),
                ));
            }
        }
    }
    errors
}

/// The pipeline as a Graphviz digraph: sources as boxes, transforms as diamonds, sinks
/// as ovals, one edge per input, labelled with the output's name when it is a named one.
pub fn to_dot(config: &Config) -> String {
    let mut s = String::from("digraph sluice {\n  rankdir=LR;\n");
    for (id, c) in &config.sources {
        let _ = writeln!(
            s,
            "  \"{id}\" [shape=box, label=\"{id}\\n({})\"];",
            c.type_name
        );
    }
    for (id, c) in &config.transforms {
        let _ = writeln!(
            s,
            "  \"{id}\" [shape=diamond, label=\"{id}\\n({})\"];",
            c.type_name
        );
    }
    for (id, c) in &config.sinks {
        let _ = writeln!(
            s,
            "  \"{id}\" [shape=oval, label=\"{id}\\n({})\"];",
            c.type_name
        );
    }
    for (id, c) in &config.transforms {
        for i in &c.resolved_inputs {
            dot_edge(&mut s, i, id);
        }
    }
    for (id, c) in &config.sinks {
        for i in &c.resolved_inputs {
            dot_edge(&mut s, i, id);
        }
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("src_*", "src_a"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b", "ab_c"));
        assert!(!glob_match("src_*", "sink"));
        assert!(glob_match("exact", "exact"));
    }
}
