//! The `http` sink's healthcheck: a GET on `healthcheck.uri` with the sink's headers;
//! any 2xx passes. A webhook has no harmless request, so without that key there is none.

use crate::sinks::util::http_client::{get_ok, HttpClient};
use hyper::header::HeaderMap;
use hyper::Uri;

/// GETs `uri`; `Err` says what came back instead of a 2xx.
pub async fn healthcheck(client: HttpClient, uri: Uri, headers: HeaderMap) -> Result<(), String> {
    get_ok(&client, uri, headers).await
}
