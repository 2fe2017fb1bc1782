//! What the HTTP source and the HTTP-speaking sinks share: authentication (checked in
//! constant time on the server, sent as a sensitive header by clients) and TLS set-up
//! from PEM files.

pub mod auth;
pub mod tls;

pub use auth::{Auth, AuthVerifier};
pub use tls::{ClientTlsConfig, ServerTlsConfig};
