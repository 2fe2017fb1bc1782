//! Events to `http` sink requests: each event's partition is its rendered URI (one
//! partition for a static `uri`), its encoding the configured `encoding`, and a closed payload
//! becomes a request to that URI.

use super::service::HttpRequest;
use crate::event::Event;
use crate::sinks::util::encoding::Encoder;
use crate::sinks::util::http_client::{destination, parse_uri};
use crate::sinks::util::runner::{Built, RequestBuilder, Unsendable};
use crate::sinks::util::template::Template;
use bytes::Bytes;
use hyper::Uri;

/// See the module documentation.
pub struct HttpRequestBuilder {
    template: Template,
    static_uri: Option<Uri>,
    encoder: Encoder,
}

impl HttpRequestBuilder {
    /// A builder for `template`, already parsed as `static_uri` when it has no fields.
    pub fn new(template: Template, static_uri: Option<Uri>, encoder: Encoder) -> Self {
        Self {
            template,
            static_uri,
            encoder,
        }
    }
}

impl RequestBuilder for HttpRequestBuilder {
    type Request = HttpRequest;

    fn partition(&mut self, event: &Event, key: &mut String) -> Result<(), Unsendable> {
        if self.static_uri.is_some() {
            return Ok(());
        }
        let time = Template::event_time(event);
        self.template
            .render_uri(event, time, key)
            .map_err(|e| Unsendable::new("template", format!("uri: {e}")))
    }

    fn encode(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), Unsendable> {
        self.encoder.encode(event, out);
        Ok(())
    }

    fn build(
        &mut self,
        partition: &str,
        body: Bytes,
        _events: usize,
    ) -> Result<Built<HttpRequest>, Unsendable> {
        let uri = match &self.static_uri {
            Some(u) => u.clone(),
            None => parse_uri(partition).map_err(|e| Unsendable::new("invalid_uri", e))?,
        };
        Ok(Built {
            destination: destination(&uri),
            request: HttpRequest { uri, body },
        })
    }
}
