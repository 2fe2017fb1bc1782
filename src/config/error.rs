//! Config problems, each naming the file, the component and the key, so an operator can
//! go straight to the line. Validation collects all of them before reporting.

use std::fmt;
use std::path::PathBuf;

/// One problem in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (`<embedded default>` for the built-in config).
    pub file: PathBuf,
    /// `sources.ID`, `transforms.ID` or `sinks.ID`, when the problem is in a component.
    pub component: Option<String>,
    /// The key, dotted for nested keys (`buffer.when_full`).
    pub key: Option<String>,
    /// What is wrong and, where we can tell, what to write instead.
    pub message: String,
}

impl ConfigError {
    /// A problem with the file as a whole.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            component: None,
            key: None,
            message: message.into(),
        }
    }

    /// A problem at `key` (optional) of a component or top-level table.
    pub fn at(
        file: impl Into<PathBuf>,
        component: Option<String>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            component,
            key,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(c) = &self.component {
            write!(f, ": [{c}]")?;
        }
        if let Some(k) = &self.key {
            write!(f, " key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// The report `sluice validate` prints, and `run` logs for a config it rejects on
    /// reload, so both read the same.
    pub fn report(&self) -> String {
        let n = self.0.len();
        let mut out = format!(
            "Config invalid: {n} problem{}:",
            if n == 1 { "" } else { "s" }
        );
        for e in &self.0 {
            out.push_str("\n  - ");
            out.push_str(&e.to_string());
        }
        out
    }
}

/// The valid word closest to a misspelt one, if any is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.len() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "; did you mean `x`?" or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(word, candidates) {
        Some(n) => format!("; did you mean `{n}`?"),
        None => String::new(),
    }
}
