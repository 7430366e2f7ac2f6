//! The bundled [`HttpTransport`]: reqwest's blocking client on rustls
//! (feature `sync`), for the server's tools, tests, benches and apps that
//! do not supply their own.

use reqwest::blocking::Client;

use super::transport::{HttpRequest, HttpResponse, HttpTransport, TransportError};
use super::{SyncConfig, SyncError};

/// reqwest with the config's timeouts and connection reuse.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    http: Client,
}

impl ReqwestTransport {
    /// A transport with its own connection pool.
    pub fn new(config: &SyncConfig) -> Result<ReqwestTransport, SyncError> {
        let mut builder = Client::builder();
        if !config.keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| SyncError::HttpClient(Box::new(e)))?;
        Ok(ReqwestTransport { http })
    }
}

impl HttpTransport for ReqwestTransport {
    fn post(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = self.http.post(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let response = builder.body(request.body).send().map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response.bytes().map_err(|e| describe(&e))?.to_vec();
        Ok(HttpResponse { status, headers, body })
    }
}

/// A network error without the URL's query or any header (never a token).
fn describe(error: &reqwest::Error) -> TransportError {
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let reason = if detail.is_empty() {
        "the request failed".to_owned()
    } else {
        detail
    };
    if error.is_timeout() {
        TransportError::Timeout { reason }
    } else if error.is_connect() {
        TransportError::Connect { reason }
    } else {
        TransportError::Dropped { reason }
    }
}
