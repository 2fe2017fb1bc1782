//! What an AWS sink needs before its first request: Vector's `auth` options turned into
//! an SDK config (static keys, a profile, an assumed role, or the default chain of
//! environment, shared files, web identity, ECS and IMDS), the region, an `endpoint`
//! override, and an HTTP client on rustls with ring (the crypto sluice already links)
//! that goes through the sink's `proxy`. The SDK's own retries are off: the shared sink
//! runner retries, with one policy and one set of metrics for every sink.

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::sinks::util::proxy::ProxyConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `auth` of an AWS sink, with Vector's keys. Unset, credentials come from the default
/// chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, the shared config and credentials
/// files (`AWS_PROFILE`), web identity (EKS service accounts), the ECS task role, then
/// the EC2 instance profile (IMDSv2).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsAuth {
    /// A static access key; needs `secret_access_key`.
    pub access_key_id: Option<Secret>,
    /// The secret of `access_key_id`; may use `${ENV}` and is never logged.
    pub secret_access_key: Option<Secret>,
    /// A session token for temporary static keys.
    pub session_token: Option<Secret>,
    /// A role ARN to assume (through STS) with the credentials found otherwise.
    pub assume_role: Option<String>,
    /// The external ID the role's trust policy asks for.
    pub external_id: Option<String>,
    /// The session name of the assumed role. Default: the SDK's.
    pub session_name: Option<String>,
    /// The STS region for `assume_role`. Default: the sink's region.
    pub region: Option<String>,
    /// A profile of the shared config and credentials files.
    pub profile: Option<String>,
    /// A credentials file to read instead of `~/.aws/credentials`.
    pub credentials_file: Option<PathBuf>,
    /// Longest wait for credentials to load (IMDS, STS, files), in seconds. Default 5.
    pub load_timeout_secs: Option<u64>,
}

impl AwsAuth {
    /// Problems with the combination of keys, under `auth`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => issues.push(FieldIssue::new(
                "auth.secret_access_key",
                "is required with auth.access_key_id",
            )),
            (None, Some(_)) => issues.push(FieldIssue::new(
                "auth.access_key_id",
                "is required with auth.secret_access_key",
            )),
            _ => {}
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            issues.push(FieldIssue::new(
                "auth.session_token",
                "only goes with auth.access_key_id and auth.secret_access_key",
            ));
        }
        if self.access_key_id.is_some()
            && (self.profile.is_some() || self.credentials_file.is_some())
        {
            issues.push(FieldIssue::new(
                "auth.profile",
                "and auth.credentials_file cannot be combined with static keys: choose one source of credentials",
            ));
        }
        if self.load_timeout_secs == Some(0) {
            issues.push(FieldIssue::new(
                "auth.load_timeout_secs",
                "must be at least 1",
            ));
        }
        for (key, v) in [
            ("auth.assume_role", &self.assume_role),
            ("auth.region", &self.region),
            ("auth.profile", &self.profile),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                issues.push(FieldIssue::new(key, "must not be empty"));
            }
        }
        issues
    }
}

/// Where and how an AWS client connects: kept by a sink, which may load its config
/// again (credentials that were not there at start).
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// `auth`.
    pub auth: AwsAuth,
    /// The sink's `region`; without it, the chain's (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// The sink's `endpoint` override.
    pub endpoint: Option<String>,
    /// The sink's `proxy`, merged over the global one.
    pub proxy: ProxyConfig,
    /// Longest wait for one attempt (`request.timeout_secs`).
    pub timeout: Duration,
    /// A CA (PEM) to trust besides the system's (`tls.ca_file`), for a VPC endpoint or
    /// a proxy behind a private CA.
    pub ca_file: Option<PathBuf>,
}

/// Used to sign requests to an `endpoint` when no region is configured anywhere (a
/// local emulator does not care which).
const FALLBACK_REGION: &str = "us-east-1";

/// The SDK config for `options`; `Err` says what is missing (never a credential).
pub async fn sdk_config(options: &ClientOptions) -> Result<SdkConfig, String> {
    let auth = &options.auth;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(
            proxy_config(&options.proxy, options.endpoint.as_deref())?,
            tls_context(options.ca_file.as_deref())?,
        ))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(options.timeout.min(Duration::from_secs(10)))
                .operation_attempt_timeout(options.timeout)
                .build(),
        );
    // With an `endpoint` and no region, the region only signs requests: take the
    // environment's, or a fixed one, never wait on IMDS for it.
    let env_region = || {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    };
    let region = match (&options.region, &options.endpoint) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(_)) => Some(env_region().unwrap_or_else(|| FALLBACK_REGION.to_string())),
        (None, None) => None,
    };
    if let Some(r) = region {
        loader = loader.region(Region::new(r));
    }
    if let Some(e) = &options.endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some(p) = &auth.profile {
        loader = loader.profile_name(p);
    }
    if let Some(f) = &auth.credentials_file {
        // aws-config's names for aws-runtime's `EnvConfigFiles`, which is not a
        // dependency of sluice; the same type.
        #[allow(deprecated)]
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        #[allow(deprecated)]
        let files = ProfileFiles::builder()
            .include_default_config_file(true)
            .with_file(ProfileFileKind::Credentials, f)
            .build();
        loader = loader.profile_files(files);
    }
    if let (Some(id), Some(secret)) = (&auth.access_key_id, &auth.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            id.expose(),
            secret.expose(),
            auth.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "sluice-config",
        ));
    }
    if let Some(t) = auth.load_timeout_secs {
        loader = loader.identity_cache(
            aws_config::identity::IdentityCache::lazy()
                .load_timeout(Duration::from_secs(t))
                .build(),
        );
    }
    let mut config = loader.load().await;
    if config.region().is_none() {
        return Err(
            "no AWS region: set `region`, or AWS_REGION in the environment, or run on EC2".into(),
        );
    }
    if let Some(role) = &auth.assume_role {
        let Some(source) = config.credentials_provider() else {
            return Err("auth.assume_role: no credentials to assume the role with".into());
        };
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role).configure(&config);
        if let Some(id) = &auth.external_id {
            builder = builder.external_id(id);
        }
        if let Some(name) = &auth.session_name {
            builder = builder.session_name(name);
        }
        if let Some(r) = auth.region.as_ref().or(options.region.as_ref()) {
            builder = builder.region(Region::new(r.clone()));
        }
        let provider = builder.build_from_provider(source).await;
        config = config
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    Ok(config)
}

/// The sink's `proxy` as the SDK's: the HTTPS proxy for `https://` endpoints and AWS
/// itself, the HTTP one for an `http://` endpoint.
fn proxy_config(
    proxy: &ProxyConfig,
    endpoint: Option<&str>,
) -> Result<aws_smithy_http_client::proxy::ProxyConfig, String> {
    use aws_smithy_http_client::proxy::ProxyConfig as AwsProxy;
    let plain = endpoint.is_some_and(|e| e.starts_with("http://"));
    let url = if plain { &proxy.http } else { &proxy.https };
    Ok(match url.as_deref().filter(|_| proxy.enabled) {
        Some(u) => {
            let mut p = AwsProxy::all(u).map_err(|e| format!("proxy: {e}"))?;
            if !proxy.no_proxy.is_empty() {
                p = p.no_proxy(proxy.no_proxy.join(","));
            }
            p
        }
        None => AwsProxy::disabled(),
    })
}

/// The system's roots, plus `ca_file`.
fn tls_context(
    ca_file: Option<&std::path::Path>,
) -> Result<aws_smithy_http_client::tls::TlsContext, String> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    let mut roots = TrustStore::default();
    if let Some(f) = ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("tls.ca_file {}: {e}", f.display()))?;
        roots = roots.with_pem_certificate(pem);
    }
    TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .map_err(|e| format!("tls.ca_file: {e}"))
}

/// An HTTPS client on rustls with ring, through `proxy`.
fn https_client(
    proxy: aws_smithy_http_client::proxy::ProxyConfig,
    tls: aws_smithy_http_client::tls::TlsContext,
) -> aws_sdk_cloudwatchlogs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut b = aws_smithy_http_client::Connector::builder().proxy_config(proxy.clone());
        if let Some(s) = settings {
            b = b.connector_settings(s.clone());
        }
        if let Some(sleep) = components.and_then(|c| c.sleep_impl()) {
            b = b.sleep_impl(sleep);
        }
        b.tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls.clone())
            .build()
    })
}
