//! TLS from PEM files with rustls (ring), with Vector's `tls` options: a server
//! acceptor for `tls.crt_file` and `tls.key_file` that can require client certificates
//! signed by `tls.ca_file` (`verify_certificate`), and a client config that trusts the
//! system roots plus `tls.ca_file`, presents a client certificate, and can be told not
//! to check the server's certificate or name. Every error names the file, so a wrong
//! path is fixed from the message alone.

use crate::config::field::FieldIssue;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `tls` of a listening component.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// Vector's switch. Absent with `crt_file` set, sluice serves TLS (and warns: Vector
    /// would not); `false` serves plain text whatever else is set.
    pub enabled: Option<bool>,
    /// The certificate chain (PEM), leaf first.
    pub crt_file: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// Require every client to present a certificate signed by `ca_file` (mutual TLS).
    /// Default false.
    #[serde(default)]
    pub verify_certificate: bool,
    /// Encrypted private keys are refused by `validate` (see there).
    pub key_pass: Option<String>,
}

/// `tls` of a connecting component.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// Extra CA certificates (PEM) to trust besides the system's, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) to present, for servers that require one.
    pub crt_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Check the server's certificate chain. Default true; `false` accepts any
    /// certificate (for tests and self-signed lab servers only).
    pub verify_certificate: Option<bool>,
    /// Check that the certificate names the host connected to. Default true.
    pub verify_hostname: Option<bool>,
    /// Encrypted private keys are refused by `validate` (see there).
    pub key_pass: Option<String>,
}

const KEY_PASS: &str = "Vector's `tls.key_pass` is not supported by sluice: it reads unencrypted PEM keys only; decrypt the key once (`openssl pkey -in enc.pem -out key.pem`) and protect the file instead";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| format!("{}: not a PEM key file: {e}", path.display()))?
        .ok_or_else(|| format!("{}: holds no PEM private key", path.display()))
}

fn read_roots(path: &Path, roots: &mut rustls::RootCertStore) -> Result<(), String> {
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

impl ServerTlsConfig {
    /// Whether TLS is served: `enabled`, else whether a certificate is given.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(self.crt_file.is_some())
    }

    /// Missing or contradictory keys, under `tls`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.key_pass.is_some() {
            issues.push(FieldIssue::new("tls.key_pass", KEY_PASS));
        }
        if !self.is_enabled() {
            return issues;
        }
        for (key, v) in [
            ("tls.crt_file", &self.crt_file),
            ("tls.key_file", &self.key_file),
        ] {
            if v.is_none() {
                issues.push(FieldIssue::new(
                    key,
                    "missing required key (TLS is enabled)",
                ));
            }
        }
        if self.verify_certificate && self.ca_file.is_none() {
            issues.push(FieldIssue::new(
                "tls.ca_file",
                "missing required key: `verify_certificate = true` checks client certificates against it",
            ));
        }
        issues
    }

    /// A warning where Vector would read the table differently.
    pub fn warnings(&self) -> Vec<FieldIssue> {
        match (self.enabled, &self.crt_file) {
            (None, Some(_)) => vec![FieldIssue::new(
                "tls.enabled",
                "is not set: sluice serves TLS because `crt_file` is, where Vector would serve plain text; write `enabled = true` to say so",
            )],
            _ => Vec::new(),
        }
    }

    /// Loads the files into an acceptor (`None` when TLS is off); called when the
    /// component is built.
    pub fn acceptor(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let (Some(crt), Some(key_file)) = (&self.crt_file, &self.key_file) else {
            return Err("tls: crt_file and key_file are required".into());
        };
        let certs = read_certs(crt)?;
        let key = read_key(key_file)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match (&self.ca_file, self.verify_certificate) {
            (Some(ca), true) => {
                let mut roots = rustls::RootCertStore::empty();
                read_roots(ca, &mut roots)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("{} and {}: {e}", crt.display(), key_file.display()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

impl ClientTlsConfig {
    /// Missing or contradictory keys, under `tls`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.key_pass.is_some() {
            issues.push(FieldIssue::new("tls.key_pass", KEY_PASS));
        }
        match (&self.crt_file, &self.key_file) {
            (Some(_), None) => issues.push(FieldIssue::new(
                "tls.key_file",
                "missing required key (a client certificate needs its key)",
            )),
            (None, Some(_)) => issues.push(FieldIssue::new(
                "tls.crt_file",
                "missing required key (a client key needs its certificate)",
            )),
            _ => {}
        }
        issues
    }

    /// Said in the log at start: a client that checks nothing is worth a line.
    pub fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = Vec::new();
        if self.verify_certificate == Some(false) {
            w.push(FieldIssue::new(
                "tls.verify_certificate",
                "is false: any server certificate is accepted, so anyone on the path can read and change what is sent",
            ));
        } else if self.verify_hostname == Some(false) {
            w.push(FieldIssue::new(
                "tls.verify_hostname",
                "is false: a valid certificate for any host name is accepted",
            ));
        }
        w
    }

    /// A client config trusting the system roots and `ca_file`, with the client
    /// certificate and the relaxed checks asked for.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped: `ca_file` may be all that is needed.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(ca) = &self.ca_file {
            read_roots(ca, &mut roots)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let chain = self.verify_certificate.unwrap_or(true);
        let name = self.verify_hostname.unwrap_or(true);
        let builder = if chain && name {
            builder.with_root_certificates(roots)
        } else {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| e.to_string())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(RelaxedVerifier { inner, chain }))
        };
        match (&self.crt_file, &self.key_file) {
            (Some(crt), Some(key)) => builder
                .with_client_auth_cert(read_certs(crt)?, read_key(key)?)
                .map_err(|e| format!("{} and {}: {e}", crt.display(), key.display())),
            _ => Ok(builder.with_no_client_auth()),
        }
    }
}

/// What `verify_certificate = false` or `verify_hostname = false` leave of the
/// server check: the handshake signatures are still verified (the peer holds the key of
/// the certificate it sent); the chain, or only the name, is not.
#[derive(Debug)]
struct RelaxedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    /// Check the chain (only the name is skipped).
    chain: bool,
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
