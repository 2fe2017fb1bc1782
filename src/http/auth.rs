//! `auth` tables: `strategy = "bearer"` with `token`, or `"basic"` with `username` and
//! `password`. Secrets are [`Secret`]s, so they never print.

use crate::config::secret::Secret;
use base64::Engine as _;
use hyper::header::HeaderValue;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// How requests prove who sent them.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "strategy", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token; usually `"${TOKEN}"`.
        token: Secret,
    },
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name; `user` is Vector's spelling.
        #[serde(alias = "user")]
        username: String,
        /// The password; usually `"${PASSWORD}"`.
        password: Secret,
    },
}

impl Auth {
    /// The `Authorization` value, marked sensitive so hyper never logs it.
    pub fn header_value(&self) -> Result<HeaderValue, String> {
        let text = match self {
            Auth::Bearer { token } => format!("Bearer {}", token.expose()),
            Auth::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ),
        };
        let mut v = HeaderValue::from_str(&text)
            .map_err(|_| "auth: the credentials contain characters a header cannot carry")?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// A checker for the server side.
    pub fn verifier(&self) -> Result<AuthVerifier, String> {
        Ok(AuthVerifier {
            expected: self.header_value()?.as_bytes().to_vec(),
            scheme: match self {
                Auth::Bearer { .. } => "Bearer",
                Auth::Basic { .. } => "Basic realm=\"sluice\"",
            },
        })
    }
}

/// Checks `Authorization` headers against the configured credentials.
#[derive(Clone, Debug)]
pub struct AuthVerifier {
    expected: Vec<u8>,
    scheme: &'static str,
}

impl AuthVerifier {
    /// Whether the header carries the configured credentials. The comparison takes the
    /// same time wherever the first wrong byte is, so the secret cannot be guessed byte
    /// by byte from response times.
    pub fn verify(&self, header: Option<&HeaderValue>) -> bool {
        header.is_some_and(|h| bool::from(h.as_bytes().ct_eq(&self.expected)))
    }

    /// The `WWW-Authenticate` challenge sent with a 401.
    pub fn challenge(&self) -> &'static str {
        self.scheme
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_verify_only_the_right_credentials() {
        let bearer = Auth::Bearer {
            token: Secret::from("s3cret"),
        };
        let v = bearer.verifier().unwrap();
        assert!(v.verify(Some(&HeaderValue::from_static("Bearer s3cret"))));
        assert!(!v.verify(Some(&HeaderValue::from_static("Bearer s3cre"))));
        assert!(!v.verify(Some(&HeaderValue::from_static("Bearer s3crett"))));
        assert!(!v.verify(None));
        let basic = Auth::Basic {
            username: "user".into(),
            password: Secret::from("pa:ss"),
        };
        // base64("user:pa:ss")
        let v = basic.verifier().unwrap();
        assert!(v.verify(Some(&HeaderValue::from_static("Basic dXNlcjpwYTpzcw=="))));
        assert!(!v.verify(Some(&HeaderValue::from_static("Basic dXNlcjpwYXNz"))));
        assert!(!format!("{basic:?}").contains("pa:ss"));
    }

    #[test]
    fn parses_from_toml_and_refuses_unknown_keys() {
        let a: Auth = toml::from_str("strategy = \"bearer\"\ntoken = \"t\"").unwrap();
        assert_eq!(
            a,
            Auth::Bearer {
                token: Secret::from("t")
            }
        );
        assert!(toml::from_str::<Auth>("strategy = \"bearer\"\ntokn = \"t\"").is_err());
    }
}
