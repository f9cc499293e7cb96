//! The HTTP side of the client commands: a small transport seam, the ARM client on top of it,
//! and the mapping of non-2xx answers to [`CliError`].
//!
//! The transport is a trait so that the long-running-operation logic and every command can be
//! unit-tested against scripted responses, without sockets or sleeps; the real implementation is
//! a blocking `reqwest` client (the CLI does one thing at a time, so async buys nothing here).

use super::error::CliError;
use super::lro::{self, Operation};
use reqwest::Url;
use serde_json::Value;
use std::time::Duration;

/// The HTTP methods ARM uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One request, with an absolute URL, extra headers, and a JSON body or a form (the token
/// endpoint takes `application/x-www-form-urlencoded`).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub form: Option<Vec<(String, String)>>,
}

/// One response. Header names are kept as received; look them up with [`HttpResponse::header`].
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; `None` for an empty body.
    pub fn json(&self) -> Result<Option<Value>, CliError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body).map(Some).map_err(|e| {
            CliError::bad_response(format!(
                "the server sent a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            ))
        })
    }
}

/// Why a request got no HTTP answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Nothing listens there, the name does not resolve, or the connection timed out.
    Unreachable(String),
    /// The TLS handshake failed, typically because the server's certificate is not trusted.
    Tls(String),
    /// The connection broke or the request could not be built.
    Failed(String),
}

/// Sends one request and returns the raw answer; status codes are the caller's business.
pub trait Transport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// The real transport: blocking reqwest with rustls.
pub struct ReqwestTransport {
    client: reqwest::blocking::Client,
}

impl ReqwestTransport {
    /// A transport that also trusts the CA certificates in `ca` (PEM), besides the web roots.
    pub fn new(ca: Option<&[u8]>) -> Result<Self, CliError> {
        let mut builder = reqwest::blocking::Client::builder()
            .user_agent(concat!("vnet-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300));
        if let Some(pem) = ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                CliError::validation(format!("the CA file holds no usable PEM certificate: {e}"))
            })?;
            if certs.is_empty() {
                return Err(CliError::validation("the CA file holds no PEM certificate"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| {
            CliError::new("ClientError", format!("cannot build the HTTP client: {e}"))
        })?;
        Ok(ReqwestTransport { client })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .client
            .request(method, &request.url)
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        } else if let Some(form) = &request.form {
            builder = builder.form(form);
        } else if request.method == Method::Post || request.method == Method::Put {
            // A body-less POST still says how long its (empty) body is; some servers insist.
            builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let response = builder.send().map_err(|e| {
            let cause = root_cause(&e);
            if cause.contains("certificate") || cause.contains("tls") || cause.contains("TLS") {
                TransportError::Tls(cause)
            } else if e.is_connect() || e.is_timeout() {
                TransportError::Unreachable(cause)
            } else {
                TransportError::Failed(cause)
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .map_err(|e| TransportError::Failed(root_cause(&e)))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The innermost cause of an error chain ("Connection refused (os error 111)"), which is what
/// a user can act on; reqwest's outer layers only repeat the URL.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether to follow a long-running operation to its end (`az`'s default) or return at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Yes,
    No,
}

impl Wait {
    pub fn from_no_wait(no_wait: bool) -> Self {
        if no_wait {
            Wait::No
        } else {
            Wait::Yes
        }
    }
}

/// Sleeps between polls; injected so tests neither wait nor guess timings.
pub type Sleeper = Box<dyn Fn(Duration)>;

/// An ARM client bound to one server.
///
/// Paths given to it are server-relative (`/subscriptions/...?api-version=...`); URLs the server
/// hands back for polling are re-based onto the same server (see [`ArmClient::resolve`]).
pub struct ArmClient {
    base: Url,
    transport: Box<dyn Transport>,
    sleep: Sleeper,
    /// The access token sent with every request, once signed in.
    bearer: Option<String>,
    /// The wait between polls when the server sends no `Retry-After`.
    pub default_poll_interval: Duration,
}

impl ArmClient {
    /// A client for `server` (an `http://` or `https://` URL) over the real transport,
    /// trusting the PEM certificates in `ca` besides the system roots.
    pub fn connect(server: &str, ca: Option<&[u8]>) -> Result<Self, CliError> {
        let base = parse_server_url(server)?;
        Ok(ArmClient::with_transport(
            base,
            Box::new(ReqwestTransport::new(ca)?),
            Box::new(std::thread::sleep),
        ))
    }

    pub fn with_transport(base: Url, transport: Box<dyn Transport>, sleep: Sleeper) -> Self {
        ArmClient {
            base,
            transport,
            sleep,
            bearer: None,
            default_poll_interval: Duration::from_secs(1),
        }
    }

    /// Sends `Authorization: Bearer {token}` from now on.
    pub fn set_bearer(&mut self, token: String) {
        self.bearer = Some(token);
    }

    /// Whether the server is reached over TLS (tokens are sent only then).
    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// The server URL as the user gave it (for messages).
    pub fn server(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Turns a server-relative path or a URL from a polling header into the URL to request.
    ///
    /// Absolute URLs keep their path and query but take the scheme, host and port of `--server`:
    /// a self-hosted server may advertise its bind address (0.0.0.0, a container name) rather
    /// than the address this client reached it by, and every vnet API server can answer for
    /// every operation, so the address the user chose is the one that is known to work.
    pub fn resolve(&self, path_or_url: &str) -> Result<String, CliError> {
        let mut url = match Url::parse(path_or_url) {
            Ok(url) => url,
            Err(_) => {
                let prefix = self.base.as_str().trim_end_matches('/');
                let path = if path_or_url.starts_with('/') {
                    path_or_url.to_owned()
                } else {
                    format!("/{path_or_url}")
                };
                return Url::parse(&format!("{prefix}{path}"))
                    .map(String::from)
                    .map_err(|e| CliError::validation(format!("invalid URL {path_or_url}: {e}")));
            }
        };
        let rebased = url.set_scheme(self.base.scheme()).is_ok()
            && url.set_host(self.base.host_str()).is_ok()
            && url.set_port(self.base.port()).is_ok();
        if !rebased {
            return Err(CliError::bad_response(format!(
                "the server sent a polling URL that cannot be used: {path_or_url}"
            )));
        }
        Ok(url.into())
    }

    /// Sends one request and returns the answer whatever its status.
    pub fn send_raw(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, CliError> {
        self.transmit(method, path_or_url, body.cloned(), None)
    }

    /// Sends a form (the OAuth2 token request) and returns the answer whatever its status.
    pub fn send_form(
        &self,
        method: Method,
        path_or_url: &str,
        form: Vec<(String, String)>,
    ) -> Result<HttpResponse, CliError> {
        self.transmit(method, path_or_url, None, Some(form))
    }

    fn transmit(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Value>,
        form: Option<Vec<(String, String)>>,
    ) -> Result<HttpResponse, CliError> {
        let url = self.resolve(path_or_url)?;
        tracing::debug!(method = method.as_str(), %url, "request");
        let headers = match (&self.bearer, &form) {
            (Some(token), None) => vec![("Authorization".to_owned(), format!("Bearer {token}"))],
            _ => Vec::new(),
        };
        let request = HttpRequest {
            method,
            url,
            headers,
            body,
            form,
        };
        self.transport.send(&request).map_err(|e| match e {
            TransportError::Unreachable(detail) => CliError::new(
                "ServerUnreachable",
                format!(
                    "the vnet server is not reachable at {} ({detail})",
                    self.server()
                ),
            ),
            TransportError::Tls(detail) => CliError::new(
                "TlsError",
                format!(
                    "cannot make a secure connection to {} ({detail}); trust the server's CA with --ca-cert FILE, VNET_CA_CERT, or VNET_DATA_DIR pointing at the server's data directory",
                    self.server()
                ),
            ),
            TransportError::Failed(detail) => CliError::new(
                "RequestFailed",
                format!("{} {} failed: {detail}", method.as_str(), request.url),
            ),
        })
    }

    /// Sends one request; any non-2xx answer becomes the error it carries.
    pub fn send(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, CliError> {
        let response = self.send_raw(method, path_or_url, body)?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(CliError::from_response(response.status, &response.body))
        }
    }

    /// GETs a resource; an empty body is an error (a resource always has one).
    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::Get, path, None)?
            .json()?
            .ok_or_else(|| CliError::bad_response(format!("GET {path} returned an empty body")))
    }

    /// GETs a collection and follows `nextLink` until the last page.
    pub fn list(&self, path: &str) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(url) = next.take() {
            let page = self.get(&url)?;
            match page.get("value") {
                Some(Value::Array(values)) => items.extend(values.iter().cloned()),
                Some(Value::Null) | None => {}
                Some(_) => {
                    return Err(CliError::bad_response(format!(
                        "GET {url} returned a list whose value is not an array"
                    )))
                }
            }
            next = page
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
        }
        Ok(items)
    }

    /// PUT (create or replace) and, unless told not to wait, follow the operation to its end.
    /// Returns the final resource, or `None` with [`Wait::No`].
    pub fn put(&self, path: &str, body: &Value, wait: Wait) -> Result<Option<Value>, CliError> {
        self.put_at(path, path, body, wait)
    }

    /// PUT to `request_path` (the resource URL plus operation flags such as
    /// `syncRemoteAddressSpace=true`) and read the result from the plain `resource_path`.
    pub fn put_at(
        &self,
        request_path: &str,
        resource_path: &str,
        body: &Value,
        wait: Wait,
    ) -> Result<Option<Value>, CliError> {
        let response = self.send(Method::Put, request_path, Some(body))?;
        self.finish(Operation::Put, resource_path, response, wait)
    }

    /// DELETE and, unless told not to wait, follow the operation to its end.
    pub fn delete(&self, path: &str, wait: Wait) -> Result<(), CliError> {
        let response = self.send(Method::Delete, path, None)?;
        self.finish(Operation::Delete, path, response, wait)
            .map(|_| ())
    }

    /// POST an action and, unless told not to wait, return its final result.
    pub fn post(
        &self,
        path: &str,
        body: Option<&Value>,
        wait: Wait,
    ) -> Result<Option<Value>, CliError> {
        let response = self.send(Method::Post, path, body)?;
        self.finish(Operation::Post, path, response, wait)
    }

    fn finish(
        &self,
        op: Operation,
        path: &str,
        response: HttpResponse,
        wait: Wait,
    ) -> Result<Option<Value>, CliError> {
        match wait {
            Wait::No => Ok(None),
            Wait::Yes => lro::complete(self, op, path, response),
        }
    }

    pub(crate) fn sleep(&self, duration: Duration) {
        (self.sleep)(duration)
    }
}

/// Checks `--server` early, so that a typo is reported as such and not as an unreachable host.
pub fn parse_server_url(server: &str) -> Result<Url, CliError> {
    let url = Url::parse(server)
        .map_err(|e| CliError::validation(format!("--server {server} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::validation(format!(
            "--server {server} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{reply, unreachable, FakeServer};
    use serde_json::json;

    #[test]
    fn relative_paths_join_the_server_url() {
        let (client, _fake) = FakeServer::client(vec![]);
        assert_eq!(
            client.resolve("/subscriptions/s?api-version=1").unwrap(),
            "http://vnet.test:7380/subscriptions/s?api-version=1"
        );
    }

    #[test]
    fn absolute_polling_urls_are_rebased_onto_the_server() {
        let (client, _fake) = FakeServer::client(vec![]);
        assert_eq!(
            client
                .resolve("https://0.0.0.0:9999/subscriptions/s/providers/Microsoft.Network/locations/l/operations/1?api-version=x")
                .unwrap(),
            "http://vnet.test:7380/subscriptions/s/providers/Microsoft.Network/locations/l/operations/1?api-version=x"
        );
    }

    #[test]
    fn non_2xx_becomes_the_envelope_error() {
        let (client, _fake) = FakeServer::client(vec![reply(
            404,
            json!({"error": {"code": "ResourceNotFound", "message": "no such vnet"}}),
        )]);
        let err = client.get("/x").unwrap_err();
        assert_eq!(err.to_string(), "ResourceNotFound: no such vnet");
    }

    #[test]
    fn list_follows_next_link() {
        let (client, fake) = FakeServer::client(vec![
            reply(
                200,
                json!({"value": [{"name": "a"}], "nextLink": "http://elsewhere/page2?x=1"}),
            ),
            reply(200, json!({"value": [{"name": "b"}]})),
        ]);
        let items = client.list("/things?api-version=1").unwrap();
        assert_eq!(items, vec![json!({"name": "a"}), json!({"name": "b"})]);
        assert_eq!(fake.requests()[1].url, "http://vnet.test:7380/page2?x=1");
    }

    #[test]
    fn unreachable_server_is_named() {
        let (client, _fake) = FakeServer::client(vec![unreachable()]);
        let err = client.get("/x").unwrap_err();
        assert_eq!(err.code, "ServerUnreachable");
        assert!(err
            .message
            .starts_with("the vnet server is not reachable at http://vnet.test:7380"));
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert!(ReqwestTransport::new(Some(b"not a certificate")).is_err());
    }

    #[test]
    fn server_url_must_be_http() {
        assert!(parse_server_url("ftp://x").is_err());
        assert!(parse_server_url("localhost:7380").is_err());
        assert!(parse_server_url("http://127.0.0.1:7380").is_ok());
    }

    /// The real transport against a real (tiny) socket: a refused connection is reported as an
    /// unreachable server, with the URL the user gave.
    #[test]
    fn real_transport_reports_connection_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let server = format!("http://127.0.0.1:{port}");
        let client = ArmClient::connect(&server, None).unwrap();
        let err = client.get("/subscriptions/s/resourcegroups").unwrap_err();
        assert_eq!(err.code, "ServerUnreachable");
        assert!(
            err.message
                .contains(&format!("not reachable at http://127.0.0.1:{port}")),
            "{err}"
        );
    }

    /// The real transport against a one-shot HTTP server on 127.0.0.1: headers and JSON bodies
    /// make the round trip.
    #[test]
    fn real_transport_round_trip() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as many body bytes as Content-Length says.
            loop {
                let n = stream.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = find(&buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = stream.read(&mut chunk).unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break;
                }
            }
            let body = br#"{"name":"rg1"}"#;
            write!(
                stream,
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nAzure-AsyncOperation: /op/1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(body).unwrap();
            String::from_utf8(buf).unwrap()
        });
        let transport = ReqwestTransport::new(None).unwrap();
        let response = transport
            .send(&HttpRequest {
                method: Method::Put,
                url: format!("http://127.0.0.1:{port}/subscriptions/s/resourcegroups/rg1?api-version=2021-04-01"),
                headers: vec![("Authorization".into(), "Bearer tok".into())],
                body: Some(json!({"location": "westus"})),
                form: None,
            })
            .unwrap();
        let seen = server.join().unwrap();
        assert!(seen.starts_with(
            "PUT /subscriptions/s/resourcegroups/rg1?api-version=2021-04-01 HTTP/1.1"
        ));
        assert!(seen.ends_with(r#"{"location":"westus"}"#), "{seen}");
        assert_eq!(response.status, 201);
        assert_eq!(response.header("azure-asyncoperation"), Some("/op/1"));
        assert_eq!(response.json().unwrap(), Some(json!({"name": "rg1"})));
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}
