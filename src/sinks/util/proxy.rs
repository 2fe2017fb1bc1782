//! Vector's `proxy` for HTTP sinks: `proxy.http` and `proxy.https` (or the usual
//! `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` environment variables when unset),
//! `proxy.no_proxy`, `proxy.enabled`. HTTPS destinations go through a `CONNECT`
//! tunnel, so TLS stays end to end; plain HTTP requests are sent to the proxy in
//! absolute form. Credentials in a proxy URL become `Proxy-Authorization`.

use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// `proxy` of a sink, or the top-level one every HTTP sink inherits.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// `false` ignores every proxy setting, the environment's too. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Proxy for `http://` destinations (`http://user:pass@proxy:3128`).
    pub http: Option<String>,
    /// Proxy for `https://` destinations.
    pub https: Option<String>,
    /// Hosts, domains (`.example.com`), IPs and CIDRs reached directly; `*` for all.
    #[serde(default)]
    pub no_proxy: Vec<String>,
}

fn default_true() -> bool {
    true
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            http: None,
            https: None,
            no_proxy: Vec::new(),
        }
    }
}

impl ProxyConfig {
    /// This sink's settings over `global`'s, key by key (as Vector merges them).
    pub fn over(&self, global: &ProxyConfig) -> ProxyConfig {
        ProxyConfig {
            enabled: self.enabled && global.enabled,
            http: self.http.clone().or_else(|| global.http.clone()),
            https: self.https.clone().or_else(|| global.https.clone()),
            no_proxy: if self.no_proxy.is_empty() {
                global.no_proxy.clone()
            } else {
                self.no_proxy.clone()
            },
        }
    }

    /// Proxy URLs that do not parse, as `(key, problem)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (key, url) in [("http", &self.http), ("https", &self.https)] {
            if let Some(u) = url {
                match u.parse::<Uri>() {
                    Ok(uri) if uri.host().is_some() => {}
                    _ => p.push((key, format!("`{u}` is not a proxy URL (http://host:port)"))),
                }
            }
        }
        p
    }

    /// Who to ask for each destination: `None` when nothing is proxied. The
    /// environment fills in what the config leaves unset.
    pub fn matcher(&self) -> Option<Arc<Matcher>> {
        if !self.enabled {
            return None;
        }
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let http = self
            .http
            .clone()
            .or_else(|| env(&["HTTP_PROXY", "http_proxy"]));
        let https = self
            .https
            .clone()
            .or_else(|| env(&["HTTPS_PROXY", "https_proxy"]));
        if http.is_none() && https.is_none() {
            return None;
        }
        let no = if self.no_proxy.is_empty() {
            env(&["NO_PROXY", "no_proxy"]).unwrap_or_default()
        } else {
            self.no_proxy.join(",")
        };
        Some(Arc::new(
            Matcher::builder()
                .http(http.unwrap_or_default())
                .https(https.unwrap_or_default())
                .no(no)
                .build(),
        ))
    }
}

/// Connects straight to the destination, through a `CONNECT` tunnel, or to the proxy
/// itself, as the matcher says. Sits under the TLS connector, which then speaks TLS
/// to the destination over whichever of the three it got.
#[derive(Clone, Debug)]
pub struct ProxyConnector {
    http: HttpConnector,
    matcher: Option<Arc<Matcher>>,
}

impl ProxyConnector {
    /// A connector over `http` that proxies what `matcher` intercepts.
    pub fn new(http: HttpConnector, matcher: Option<Arc<Matcher>>) -> Self {
        Self { http, matcher }
    }
}

/// A connection, marked when it goes to a proxy that wants absolute-form requests.
#[derive(Debug)]
pub struct MaybeProxied {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for MaybeProxied {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl hyper::rt::Read for MaybeProxied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for MaybeProxied {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = MaybeProxied;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<MaybeProxied, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.matcher.as_ref().and_then(|m| m.intercept(&dst));
        let mut http = self.http.clone();
        Box::pin(async move {
            match intercept {
                None => Ok(MaybeProxied {
                    io: http.call(dst).await?,
                    absolute_form: false,
                }),
                Some(i) if dst.scheme_str() == Some("https") => {
                    let mut tunnel = Tunnel::new(i.uri().clone(), http);
                    if let Some(auth) = i.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    let io = tunnel
                        .call(dst)
                        .await
                        .map_err(|e| format!("proxy {}: {e}", shown(i.uri())))?;
                    Ok(MaybeProxied {
                        io,
                        absolute_form: false,
                    })
                }
                Some(i) => Ok(MaybeProxied {
                    io: http
                        .call(i.uri().clone())
                        .await
                        .map_err(|e| format!("proxy {}: {e}", shown(i.uri())))?,
                    absolute_form: true,
                }),
            }
        })
    }
}

/// The `Proxy-Authorization` a plain-HTTP request to `uri` needs, if it is proxied
/// through a proxy with credentials (a tunnel carries them in its `CONNECT`).
pub fn proxy_authorization(
    matcher: &Option<Arc<Matcher>>,
    uri: &Uri,
) -> Option<hyper::header::HeaderValue> {
    if uri.scheme_str() == Some("https") {
        return None;
    }
    let i = matcher.as_ref()?.intercept(uri)?;
    i.basic_auth().cloned()
}

fn shown(uri: &Uri) -> String {
    super::http_client::redact_uri(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_settings_override_the_global_ones_key_by_key() {
        let global = ProxyConfig {
            http: Some("http://g:3128".into()),
            https: Some("http://g:3128".into()),
            no_proxy: vec!["localhost".into()],
            ..Default::default()
        };
        let sink = ProxyConfig {
            https: Some("http://s:8080".into()),
            ..Default::default()
        };
        let m = sink.over(&global);
        assert_eq!(m.http.as_deref(), Some("http://g:3128"));
        assert_eq!(m.https.as_deref(), Some("http://s:8080"));
        assert_eq!(m.no_proxy, ["localhost"]);
        let off = ProxyConfig {
            enabled: false,
            ..Default::default()
        };
        assert!(off.over(&global).matcher().is_none());
    }

    #[test]
    fn no_proxy_hosts_go_direct() {
        let cfg = ProxyConfig {
            http: Some("http://user:pw@proxy:3128".into()),
            no_proxy: vec!["internal.example".into(), "10.0.0.0/8".into()],
            ..Default::default()
        };
        let m = cfg.matcher();
        let via = |u: &str| {
            m.as_ref()
                .and_then(|m| m.intercept(&u.parse().unwrap()))
                .is_some()
        };
        assert!(via("http://api.example.com/"));
        assert!(!via("http://internal.example/x"));
        assert!(!via("http://10.1.2.3:8080/"));
        assert!(proxy_authorization(&m, &"http://api.example.com/".parse().unwrap()).is_some());
        assert!(
            ProxyConfig {
                http: Some("not a url".into()),
                ..Default::default()
            }
            .problems()
            .len()
                == 1
        );
    }
}
