//! The `influxdb` sink's healthcheck: `GET /ping`, which InfluxDB 1.x and 2.x (and
//! VictoriaMetrics) answer with 204 when they are up.

use crate::sinks::util::http_client::HttpClient;
use bytes::Bytes;
use hyper::Uri;

/// GETs `/ping` on `endpoint`; `Err` says what came back instead of a 2xx.
pub async fn ping(client: HttpClient, endpoint: Uri) -> Result<(), String> {
    let uri: Uri = format!("{}/ping", endpoint.to_string().trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut req = hyper::Request::new(http_body_util::Full::new(Bytes::new()));
    *req.uri_mut() = uri;
    match client.send(req).await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("/ping answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}
