//! HTTP as the sync client needs it: one POST, its answer. The client
//! ([`super::SyncClient`]) keeps the rest (retries, backoff, status codes,
//! gzip, cancellation) and takes any [`HttpTransport`]: the bundled one on
//! reqwest and rustls (feature `sync`), or the app's own (OkHttp,
//! URLSession) through the FFI, as application-services' viaduct does, so
//! a phone library can leave reqwest, tokio, rustls and ring out and use
//! the phone's certificate store.

/// One HTTP request: always a POST of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The full URL.
    pub url: String,
    /// Header names and values (the bearer token among them: never log
    /// them).
    pub headers: Vec<(String, String)>,
    /// The body, as sent (already gzipped when a header says so).
    pub body: Vec<u8>,
}

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values, as received.
    pub headers: Vec<(String, String)>,
    /// The body as received on the wire (still gzipped if
    /// `Content-Encoding` says so: the client decompresses it, bounded).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (names compare without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no answer came. The client retries every kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made (no network, DNS, refused, TLS).
    #[error("could not connect: {reason}")]
    Connect {
        /// For a person, without the URL's query or any header.
        reason: String,
    },
    /// The request or the answer took longer than the transport allows.
    #[error("timed out: {reason}")]
    Timeout {
        /// For a person.
        reason: String,
    },
    /// The connection dropped while the request or answer was on the way.
    #[error("the connection dropped: {reason}")]
    Dropped {
        /// For a person.
        reason: String,
    },
}

/// Moves one request and its answer. Implementations time out on their
/// own (the bundled one after [`super::SyncConfig::request_timeout`]);
/// they must not decompress the body (the client does, with a bound), nor
/// send the token to another host on a redirect.
pub trait HttpTransport: Send + Sync {
    /// Sends `request`; the answer, whatever its status.
    fn post(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}
