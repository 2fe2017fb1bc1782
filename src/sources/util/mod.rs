//! Parts every source shares: splitting a byte stream into messages ([`framing`]),
//! Vector's `decoding` and body `framing` ([`decoding`]), and
//! the TCP listener ([`tcp`]) that binds, accepts with backoff, runs one task per
//! connection (optionally after a TLS handshake), counts connections and, on shutdown,
//! drains the listen backlog and every open connection.

pub mod acks;
pub mod bound;
pub mod decoding;
pub mod framing;
pub mod tcp;
