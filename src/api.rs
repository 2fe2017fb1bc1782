//! The HTTP API on `[api] address`: `/metrics` in Prometheus text format and `/health`,
//! which answers 200 with each component's state while the pipeline runs and 503 while
//! it starts or stops, so an orchestrator routes traffic only to a working agent.

use crate::internal_events::names;
use crate::internal_events::ComponentKind;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// Pipeline state as `/health` reports it.
#[derive(Debug, Default)]
pub struct Health {
    running: AtomicBool,
    /// Each component's instance number and whether it runs.
    components: Mutex<BTreeMap<(ComponentKind, String), (u64, bool)>>,
    /// The outcome of the last reload, and when.
    last_reload: Mutex<Option<(String, chrono::DateTime<chrono::Utc>)>>,
    /// Where `POST /-/reload` asks for a reload.
    reloads: std::sync::OnceLock<tokio::sync::mpsc::Sender<ReloadRequest>>,
}

/// A reload asked for through the API, with where its outcome goes.
pub type ReloadRequest = tokio::sync::oneshot::Sender<ReloadAnswer>;

/// The outcome of a reload as the API answers it: its status and a JSON body.
pub type ReloadAnswer = (u16, String);

impl Health {
    /// Marks the whole pipeline as serving (or not).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// Records whether instance `generation` of a component runs. The end of an instance
    /// a reload replaced (an older generation) leaves its successor's state alone, and
    /// the end of a removed one does not bring it back.
    pub fn set(&self, id: &str, kind: ComponentKind, generation: u64, up: bool) {
        if let Ok(mut m) = self.components.lock() {
            let key = (kind, id.to_string());
            match m.get_mut(&key) {
                Some(e) if e.0 <= generation => *e = (generation, up),
                Some(_) => {}
                None if up => {
                    m.insert(key, (generation, up));
                }
                None => {}
            }
        }
    }

    /// Forgets a component a reload removed.
    pub fn remove(&self, id: &str, kind: ComponentKind) {
        if let Ok(mut m) = self.components.lock() {
            m.remove(&(kind, id.to_string()));
        }
    }

    /// Records the outcome of a reload (`applied`, `rejected`, `failed`).
    pub fn record_reload(&self, result: &str) {
        if let Ok(mut r) = self.last_reload.lock() {
            *r = Some((result.to_string(), chrono::Utc::now()));
        }
    }

    /// Lets `POST /-/reload` reach the process's reload loop.
    pub fn accept_reloads(&self, tx: tokio::sync::mpsc::Sender<ReloadRequest>) {
        let _ = self.reloads.set(tx);
    }

    fn render(&self) -> (StatusCode, String) {
        let running = self.running.load(Ordering::Acquire);
        let mut components = serde_json::Map::new();
        if let Ok(m) = self.components.lock() {
            for ((kind, id), (_, up)) in m.iter() {
                components.insert(
                    format!("{}s.{id}", kind.as_str()),
                    serde_json::Value::from(if *up { "running" } else { "stopped" }),
                );
            }
        }
        let mut body = serde_json::json!({
            "status": if running { "ok" } else { "unavailable" },
            "components": components,
        });
        if let Ok(Some((result, at))) = self.last_reload.lock().as_deref() {
            body["last_reload"] = serde_json::json!({
                "result": result,
                "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            });
        }
        let code = if running {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, body.to_string())
    }
}

/// The recorder's handle once installed: what `/metrics` renders and what the
/// `internal_metrics` source reads.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned()
}

static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();

/// Installs the Prometheus recorder; call once, before any component registers metrics.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    // Histograms as buckets (not summaries), so they aggregate across instances.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_duration_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ],
        )
        .map_err(|e| format!("cannot configure the metrics recorder: {e}"))?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    crate::internal_events::describe_all();
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

/// Binds the API listener; failing here stops start-up with a clear message.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another sluice on this host? The API listens on 127.0.0.1:9598 unless told \
             otherwise: give this one its own with `[api] address = \"127.0.0.1:9599\"`, \
             or turn it off with `[api] enabled = false`)"
        } else {
            ""
        };
        format!("cannot serve the API on {address}: {e}{hint}")
    })
}

/// Serves the API until the process exits.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, health: Arc<Health>) {
    let started = Instant::now();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let handle = handle.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handle = handle.clone();
                let health = health.clone();
                async move {
                    let res = if req.uri().path() == "/-/reload" {
                        reload(&req, &health).await
                    } else {
                        respond(&req, &handle, &health, started)
                    };
                    Ok::<_, std::convert::Infallible>(res)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

fn reply(code: StatusCode, ctype: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    r
}

/// `POST /-/reload` (Prometheus' and Alertmanager's path): reloads the config files as
/// SIGHUP does and answers once the reload is done: 200 applied (or nothing changed),
/// 400 rejected (the body lists the problems), 500 failed (the old pipeline runs on).
async fn reload(req: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    if req.method() != Method::POST && req.method() != Method::PUT {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use POST\n".into(),
        );
    }
    let Some(tx) = health.reloads.get() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "reloading is not available: the config was not read from files\n".into(),
        );
    };
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
    if tx.send(answer_tx).await.is_err() {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".into(),
        );
    }
    match answer_rx.await {
        Ok((code, body)) => reply(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "application/json",
            body,
        ),
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".into(),
        ),
    }
}

fn respond(
    req: &Request<Incoming>,
    handle: &PrometheusHandle,
    health: &Health,
    started: Instant,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => {
            metrics::gauge!(names::UPTIME).set(started.elapsed().as_secs_f64());
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                handle.render(),
            )
        }
        "/health" => {
            let (code, body) = health.render();
            reply(code, "application/json", body)
        }
        "/api/alerts" | "/api/v2/alerts" => reply(
            StatusCode::OK,
            "application/json",
            crate::transforms::alert::active_alerts_json(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /health, /api/alerts or POST /-/reload\n".into(),
        ),
    }
}
