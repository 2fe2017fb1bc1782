//! The conditions most filters and routes are, evaluated on the event without the VRL
//! runtime: a field compared with a literal (`.level == "error"`, `.status != 500`,
//! `.tls == true`, `.user == null`), alone or joined with `&&` and `||` (no
//! parentheses). The VRL runtime costs about 150 ns a condition here, which made a
//! four-way `route` a third of the speed of a `filter`; these take a few nanoseconds.
//!
//! The meaning is VRL's own `==` (its `eq_lossy`: numbers compare as floats, text as
//! bytes, anything else exactly), `&&` and `||` of one precedence applied from the left
//! (VRL's grammar: `a || b && c` is `(a || b) && c`), and a missing field being `null`. The VRL program is still compiled (for `validate` and for anything
//! this grammar does not take), and a property test holds the two to the same answers.

use crate::event::{ObjectMap, Value};

/// Comparisons joined from the left: `first`, then each `(and, next)`.
#[derive(Debug)]
pub struct Native {
    first: Comparison,
    rest: Vec<(bool, Comparison)>,
}

#[derive(Debug)]
struct Comparison {
    /// Field names from the root (`.a.b` is `["a", "b"]`).
    path: Vec<String>,
    equal: bool,
    literal: Literal,
}

#[derive(Debug)]
enum Literal {
    Text(Vec<u8>),
    Integer(i64),
    Boolean(bool),
    Null,
}

impl Native {
    /// The native form of `text`, when it is in the grammar above.
    pub fn parse(text: &str) -> Option<Native> {
        // Where the next `&&` or `||` starts.
        let next_op = |t: &str| match (t.find("&&"), t.find("||")) {
            (Some(a), Some(o)) => Some(a.min(o)),
            (a, o) => a.or(o),
        };
        let (mut rest_text, first) = match next_op(text) {
            Some(i) => (&text[i..], comparison(&text[..i])?),
            None => {
                return Some(Native {
                    first: comparison(text)?,
                    rest: Vec::new(),
                })
            }
        };
        let mut rest = Vec::new();
        while !rest_text.is_empty() {
            let and = rest_text.starts_with("&&");
            let after = &rest_text[2..];
            let end = next_op(after).unwrap_or(after.len());
            rest.push((and, comparison(&after[..end])?));
            rest_text = &after[end..];
        }
        Some(Native { first, rest })
    }

    /// Whether a log event with these fields meets the condition.
    pub fn check(&self, fields: &ObjectMap) -> bool {
        self.rest
            .iter()
            .fold(self.first.holds(fields), |acc, (and, c)| {
                if *and {
                    acc && c.holds(fields)
                } else {
                    acc || c.holds(fields)
                }
            })
    }
}

impl Comparison {
    fn holds(&self, fields: &ObjectMap) -> bool {
        let mut segments = self.path.iter();
        let mut value = segments.next().and_then(|first| fields.get(first.as_str()));
        for seg in segments {
            value = match value {
                Some(Value::Object(o)) => o.get(seg.as_str()),
                _ => None,
            };
        }
        let same = match (&self.literal, value) {
            (Literal::Null, None | Some(Value::Null)) => true,
            (Literal::Text(t), Some(Value::Bytes(b))) => b.as_ref() == t.as_slice(),
            (Literal::Text(t), Some(Value::String(s))) => s.as_bytes() == t.as_slice(),
            (Literal::Integer(i), Some(Value::Integer(v))) => *v as f64 == *i as f64,
            (Literal::Integer(i), Some(Value::Float(f))) => f.into_inner() == *i as f64,
            (Literal::Boolean(b), Some(Value::Boolean(v))) => b == v,
            _ => false,
        };
        same == self.equal
    }
}

/// `PATH (==|!=) LITERAL`, or `None`.
fn comparison(text: &str) -> Option<Comparison> {
    let (lhs, rhs, equal) = match (text.find("=="), text.find("!=")) {
        (Some(i), None) => (&text[..i], &text[i + 2..], true),
        (None, Some(i)) => (&text[..i], &text[i + 2..], false),
        _ => return None,
    };
    Some(Comparison {
        path: path(lhs.trim())?,
        equal,
        literal: literal(rhs.trim())?,
    })
}

/// `.name(.name)*` with plain identifiers, as most conditions write fields.
fn path(text: &str) -> Option<Vec<String>> {
    let rest = text.strip_prefix('.')?;
    rest.split('.')
        .map(|seg| {
            let mut chars = seg.chars();
            let first_ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '@');
            let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
            (first_ok && rest_ok).then(|| seg.to_owned())
        })
        .collect()
}

/// A string without escapes, a decimal integer, `true`, `false` or `null`.
fn literal(text: &str) -> Option<Literal> {
    match text {
        "true" => return Some(Literal::Boolean(true)),
        "false" => return Some(Literal::Boolean(false)),
        "null" => return Some(Literal::Null),
        _ => {}
    }
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        if inner.contains(['"', '\\']) {
            return None;
        }
        return Some(Literal::Text(inner.as_bytes().to_vec()));
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(Literal::Integer);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vrl::compiler::runtime::Runtime;
    use vrl::compiler::{TargetValue, TimeZone};
    use vrl::value::Secrets;

    /// What VRL itself says of `text` on `fields`.
    fn vrl_says(text: &str, fields: &ObjectMap) -> bool {
        let program = match vrl::compiler::compile(text, &vrl::stdlib::all()) {
            Ok(r) => r.program,
            Err(_) => panic!("{text} does not compile"),
        };
        let mut target = TargetValue {
            value: Value::Object(fields.clone()),
            metadata: Value::Object(ObjectMap::new()),
            secrets: Secrets::default(),
        };
        matches!(
            Runtime::default().resolve(&mut target, &program, &TimeZone::default()),
            Ok(Value::Boolean(true))
        )
    }

    #[test]
    fn what_the_grammar_takes_and_what_it_leaves_to_vrl() {
        for taken in [
            r#".level == "error""#,
            ".status != 500",
            r#".a.b == "x" && .c != null || .tls == true"#,
            "  .@timestamp == -1  ",
        ] {
            assert!(Native::parse(taken).is_some(), "{taken}");
        }
        for left in [
            r#"."quoted field" == "x""#,
            r#".a == "with \" escape""#,
            ".a == 1.5",
            ".a > 1",
            r#"(.a == "x")"#,
            r#"includes(["a"], .level)"#,
            ".a == .b",
            r#".a == "x" == true"#,
            ".a[0] == 1",
        ] {
            assert!(Native::parse(left).is_none(), "{left}");
        }
    }

    fn value() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            (-3i64..3).prop_map(|i| Some(Value::Integer(i))),
            prop_oneof![Just(-1.0f64), Just(0.0), Just(1.0), Just(1.5)]
                .prop_map(|f| Some(Value::from_f64_or_zero(f))),
            prop_oneof![Just("x"), Just("1"), Just("true"), Just("")]
                .prop_map(|s| Some(Value::from(s))),
            any::<bool>().prop_map(|b| Some(Value::Boolean(b))),
        ]
    }

    fn comparison_text() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just(".a"), Just(".b"), Just(".n.a"), Just(".missing")],
            prop_oneof![Just("=="), Just("!=")],
            prop_oneof![
                Just("\"x\""),
                Just("\"1\""),
                Just("\"\""),
                Just("1"),
                Just("0"),
                Just("-1"),
                Just("true"),
                Just("false"),
                Just("null")
            ],
        )
            .prop_map(|(p, op, l)| format!("{p} {op} {l}"))
    }

    proptest! {
        #[test]
        fn native_answers_as_vrl_does(
            a in value(), b in value(), na in value(),
            groups in proptest::collection::vec(proptest::collection::vec(comparison_text(), 1..3), 1..3),
        ) {
            let mut fields = ObjectMap::new();
            if let Some(a) = a { fields.insert("a".into(), a); }
            if let Some(b) = b { fields.insert("b".into(), b); }
            let mut n = ObjectMap::new();
            if let Some(na) = na { n.insert("a".into(), na); }
            fields.insert("n".into(), Value::Object(n));
            let text = groups.iter().map(|g| g.join(" && ")).collect::<Vec<_>>().join(" || ");
            let native = Native::parse(&text);
            prop_assert!(native.is_some(), "{}", text);
            let native = native.map(|n| n.check(&fields)).unwrap_or_default();
            prop_assert_eq!(native, vrl_says(&text, &fields), "{} on {:?}", text, fields);
        }
    }
}
