//! The `influxdb` sink's healthcheck: `GET /ping`, which InfluxDB 1.x and 2.x (and
//! VictoriaMetrics) answer with 204 when they are up.

use crate::sinks::util::http_client::{get_ok, HttpClient};
use hyper::Uri;

/// GETs `/ping` on `endpoint`; `Err` says what came back instead of a 2xx.
pub async fn ping(client: HttpClient, endpoint: Uri) -> Result<(), String> {
    let uri: Uri = format!("{}/ping", endpoint.to_string().trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("{e}"))?;
    get_ok(&client, uri, Default::default())
        .await
        .map_err(|e| format!("/ping {e}"))
}
