//! TLS from PEM files with rustls (ring): a server acceptor for `tls.crt_file` and
//! `tls.key_file`, and a client config that trusts the system roots plus `tls.ca_file`.
//! Every error names the file, so a wrong path is fixed from the message alone.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `tls` of a listening component.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The certificate chain (PEM), leaf first.
    pub crt_file: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `tls` of a connecting component.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// Extra CA certificates (PEM) to trust besides the system's, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
}

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

impl ServerTlsConfig {
    /// Loads the files into an acceptor; called when the component is built.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        let certs = read_certs(&self.crt_file)?;
        let data = std::fs::read(&self.key_file)
            .map_err(|e| format!("{}: {e}", self.key_file.display()))?;
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut data.as_slice())
            .map_err(|e| format!("{}: not a PEM key file: {e}", self.key_file.display()))?
            .ok_or_else(|| format!("{}: holds no PEM private key", self.key_file.display()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "{} and {}: {e}",
                    self.crt_file.display(),
                    self.key_file.display()
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ClientTlsConfig {
    /// A client config trusting the system roots and `ca_file`.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped: `ca_file` may be all that is needed.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(ca) = &self.ca_file {
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
        }
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}
