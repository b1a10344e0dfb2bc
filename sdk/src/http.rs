//! Outgoing HTTP over `wasi:http/outgoing-handler`.
//!
//! The host checks every request's scheme, host and port against the
//! policy's `allowed_network_hosts` (and `block_private_ips` on the address
//! it dials); a refused request fails with [`HttpError::Denied`].
//!
//! ```ignore
//! use wasmward_sdk::http;
//! let resp = http::get("https://example.com/")?;
//! let resp = http::Request::new("POST", "https://example.com/api")
//!     .header("content-type", "application/json")
//!     .body(br#"{"q":1}"#.to_vec())
//!     .max_body_bytes(64 * 1024)
//!     .send()?;
//! println!("{} {}", resp.status, resp.text());
//! ```

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use std::fmt;

/// Response bodies are cut at this many bytes unless
/// [`Request::max_body_bytes`] says otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A received response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Header names and values, in the order received; values that are not
    /// UTF-8 are replaced lossily.
    pub headers: Vec<(String, String)>,
    /// The body, at most the request's `max_body_bytes` long.
    pub body: Vec<u8>,
    /// True when the body was longer than `max_body_bytes` and was cut.
    pub truncated: bool,
}

impl Response {
    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` followed by a host.
    InvalidUrl(String),
    /// The method or a header was refused as malformed or forbidden.
    InvalidRequest(String),
    /// The host's policy refused the request.
    Denied,
    /// The request failed in transport or protocol; `wasi:http`'s error code.
    Failed(ErrorCode),
    /// Reading or writing a body stream failed.
    Stream(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(why) => write!(f, "invalid url: {why}"),
            HttpError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            HttpError::Denied => f.write_str("denied: the policy refused this request"),
            HttpError::Failed(code) => write!(f, "request failed: {code:?}"),
            HttpError::Stream(why) => write!(f, "body stream failed: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<ErrorCode> for HttpError {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied,
            code => HttpError::Failed(code),
        }
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new("GET", url).send()
}

/// Send `method url` with `headers` and `body`.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, HttpError> {
    let mut req = Request::new(method, url).body(body.to_vec());
    for (name, value) in headers {
        req = req.header(name, value);
    }
    req.send()
}

/// A request under construction; [`Request::send`] sends it.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    max_body_bytes: usize,
}

impl Request {
    /// A request with no headers and an empty body. `method` is any HTTP
    /// method name (`GET`, `POST`, ...).
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    /// Set the request body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Cut the response body after `max` bytes (and set
    /// [`Response::truncated`]).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Send the request and read the whole response, up to the body cap.
    pub fn send(self) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&self.url)?;
        let headers = Fields::from_list(&self.headers)
            .map_err(|e| HttpError::InvalidRequest(format!("headers: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let method = method(&self.method);
        request
            .set_method(&method)
            .map_err(|()| HttpError::InvalidRequest(format!("method {:?}", self.method)))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| HttpError::InvalidUrl(self.url.clone()))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| HttpError::InvalidUrl(format!("authority {authority:?}")))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| HttpError::InvalidUrl(format!("path {path:?}")))?;
        let outgoing = request
            .body()
            .map_err(|()| HttpError::Stream("request body already taken".into()))?;

        let future = outgoing_handler::handle(request, None)?;

        {
            let stream = outgoing
                .write()
                .map_err(|()| HttpError::Stream("request body stream already taken".into()))?;
            for chunk in self.body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(stream_error)?;
            }
        }
        OutgoingBody::finish(outgoing, None)?;

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(result)) => result?,
            Some(Err(())) => return Err(HttpError::Stream("response already taken".into())),
            None => return Err(HttpError::Stream("response not ready after waiting".into())),
        };

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v[..]).into_owned()))
            .collect();

        let incoming = response
            .consume()
            .map_err(|()| HttpError::Stream("response body already taken".into()))?;
        let (body, truncated) = read_body(&incoming, self.max_body_bytes)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body,
            truncated,
        })
    }
}

/// Read `incoming` to its end or until `max` bytes, whichever comes first.
fn read_body(incoming: &IncomingBody, max: usize) -> Result<(Vec<u8>, bool), HttpError> {
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Stream("response body stream already taken".into()))?;
    let mut body = Vec::new();
    loop {
        // Ask for one byte past the cap so that a body of exactly `max`
        // bytes is not reported as truncated.
        let want = (max - body.len()).saturating_add(1).min(64 * 1024);
        match stream.blocking_read(want as u64) {
            Ok(chunk) => {
                let room = max - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return Ok((body, true));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok((body, false)),
            Err(e) => return Err(stream_error(e)),
        }
    }
}

fn stream_error(e: StreamError) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Stream("stream closed".into()),
        StreamError::LastOperationFailed(err) => HttpError::Stream(err.to_debug_string()),
    }
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(name.to_string()),
    }
}

/// Split `scheme://authority/path?query` into its parts; the path defaults
/// to `/` and a fragment is dropped.
fn split_url(url: &str) -> Result<(Scheme, &str, String), HttpError> {
    let invalid = || HttpError::InvalidUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid()),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid());
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok((scheme, authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let parts = |u| {
            let (s, a, p) = split_url(u).unwrap();
            (matches!(s, Scheme::Https), a.to_string(), p)
        };
        let want = |s, a: &str, p: &str| (s, a.to_string(), p.to_string());
        assert_eq!(
            parts("https://a.example/x?y=1#f"),
            want(true, "a.example", "/x?y=1")
        );
        assert_eq!(
            parts("http://a.example:8080"),
            want(false, "a.example:8080", "/")
        );
        assert_eq!(parts("HTTPS://a.example?q"), want(true, "a.example", "/?q"));
        assert!(split_url("ftp://a.example/").is_err());
        assert!(split_url("https:///x").is_err());
        assert!(split_url("https://user@a.example/").is_err());
        assert!(split_url("a.example/x").is_err());
    }
}
