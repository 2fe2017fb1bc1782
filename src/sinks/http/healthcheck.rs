//! The `http` sink's healthcheck: a GET on `healthcheck.uri` with the sink's headers;
//! any 2xx passes. A webhook has no harmless request, so without that key there is none.

use crate::sinks::util::http_client::HttpClient;
use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::Uri;

/// GETs `uri`; `Err` says what came back instead of a 2xx.
pub async fn healthcheck(client: HttpClient, uri: Uri, headers: HeaderMap) -> Result<(), String> {
    let mut req = hyper::Request::new(http_body_util::Full::new(Bytes::new()));
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    match client.send(req).await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}
