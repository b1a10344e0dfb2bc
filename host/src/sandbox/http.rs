//! `wasi:http` outgoing requests, guarded.
//!
//! The scheme, host and port are checked against `allowed_network_hosts`.
//! The host then resolves the name itself (through the injectable
//! [`Resolver`]), drops private addresses under `block_private_ips`, and
//! connects to the vetted address, with TLS verified against the original
//! host name (SNI). Nothing resolves the name a second time, so DNS
//! rebinding between check and connect is impossible; wasi-http requests
//! never pass through the socket checks, so this is their only gate.
//!
//! HTTPS trusts the built-in web roots plus the operator's
//! `[runtime] ca_certificates` (a corporate proxy's or an internal API's
//! CA). A certificate that does not verify reaches the tool as a TLS error
//! that says so and names the setting.

use super::denials::{Denial, Denials};
use crate::policy::{DenialKind, EffectivePolicy, ViolationAction};
use http_body_util::BodyExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Name resolution for outgoing HTTP; tests inject one to simulate
/// rebinding and private answers.
pub trait Resolver: Send + Sync + 'static {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (getaddrinfo via tokio).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<std::io::Result<Vec<IpAddr>>> {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.map(|a| a.ip()).collect()) })
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The outgoing-request hook of one call.
pub struct HttpGate {
    policy: Arc<EffectivePolicy>,
    denials: Denials,
    resolver: Arc<dyn Resolver>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpGate {
    pub fn new(policy: Arc<EffectivePolicy>, denials: Denials, resolver: Arc<dyn Resolver>) -> Self {
        HttpGate { policy, denials, resolver, tls: None }
    }

    /// Verifies HTTPS with `tls` (see [`client_config`]) instead of the
    /// built-in web roots alone.
    pub fn with_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        self.tls = tls;
        self
    }
}

/// Reads the CA certificates of one PEM file (`[runtime] ca_certificates`
/// entry); the error says what is wrong with the file.
pub fn load_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no `-----BEGIN CERTIFICATE-----` block; give a PEM file of CA certificates".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, c) in certs.iter().enumerate() {
        roots.add(c.clone()).map_err(|e| format!("certificate #{} is not a usable CA certificate: {e}", i + 1))?;
    }
    Ok(certs)
}

/// The TLS client config for outgoing HTTPS: the built-in web roots plus
/// `extra` CA certificates (`None` without extras: the shared default).
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    if extra.is_empty() {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    for c in extra {
        roots.add(c.clone()).map_err(|e| format!("CA certificate refused: {e}"))?;
    }
    Ok(Some(build_config(roots)))
}

fn build_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Records a denial; `Ok` when `log` mode lets it through anyway.
fn refuse(denials: &Denials, policy: &EffectivePolicy, op: &str, target: String, rule: String, private: bool) -> Result<(), Error> {
    let action = if private { ViolationAction::Deny } else { policy.violation_action.for_kind(DenialKind::Http) };
    denials.record(Denial::new(DenialKind::Http, op, target, rule, action));
    match action {
        ViolationAction::Log => Ok(()),
        ViolationAction::Deny if private => Err(Error::DestinationIpProhibited),
        ViolationAction::Deny => Err(Error::HttpRequestDenied),
    }
}

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let (policy, denials, resolver, tls) = (self.policy.clone(), self.denials.clone(), self.resolver.clone(), self.tls.clone());
        Box::new(async move {
            let uri = request.uri().clone();
            let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
            let https = scheme == "https";
            let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.trim_start_matches('[').trim_end_matches(']').to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let target = format!("{scheme}://{host}:{port}");
            let method = request.method().to_string();
            if let Err(why) = policy.network.check_url(&scheme, &host, port) {
                refuse(&denials, &policy, &method, target.clone(), why.to_string(), false)?;
            }
            let addr = vetted_address(&policy, &denials, resolver.as_ref(), &method, &target, &host, port).await?;
            send_pinned(request, options, addr, &host, https.then_some(tls)).await
        })
    }
}

/// Resolves `host` once and picks the first address the policy admits.
async fn vetted_address(
    policy: &EffectivePolicy,
    denials: &Denials,
    resolver: &dyn Resolver,
    method: &str,
    target: &str,
    host: &str,
    port: u16,
) -> Result<SocketAddr, Error> {
    let ips = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => resolver
            .resolve(host, port)
            .await
            .map_err(|e| Error::DnsError { rcode: Some(e.to_string()), info_code: None })?,
    };
    let mut refused = None;
    for ip in ips {
        match policy.blocked_ip(ip) {
            None => return Ok(SocketAddr::new(ip, port)),
            Some(range) => refused = Some((ip, range)),
        }
    }
    match refused {
        Some((ip, range)) => {
            refuse(denials, policy, method, format!("{target} ({ip})"), format!("block_private_ips: {range}"), true)?;
            Err(Error::DestinationIpProhibited)
        }
        None => Err(Error::DestinationNotFound),
    }
}

pub(crate) fn default_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| build_config(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() })).clone()
}

/// A TLS failure as the tool sees it: a certificate that does not verify
/// says so, names the host and the setting to change.
fn tls_error(host: &str, e: std::io::Error) -> Error {
    let cert = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).and_then(|r| match r {
        rustls::Error::InvalidCertificate(c) => Some(c.clone()),
        _ => None,
    });
    match cert {
        Some(c) => {
            let unknown_ca = matches!(c, rustls::CertificateError::UnknownIssuer);
            let message = format!("TLS certificate for {host} not trusted: {c:?}; add the CA to [runtime] ca_certificates");
            tracing::warn!(host, error = ?c, "outgoing HTTPS: server certificate not trusted");
            // 48 = unknown_ca, 42 = bad_certificate (RFC 8446 alerts).
            Error::TlsAlertReceived { alert_id: Some(if unknown_ca { 48 } else { 42 }), alert_message: Some(message) }
        }
        None => Error::Tls(e),
    }
}

/// Sends `request` over a connection to `addr`, TLS-verified as `host`
/// when `tls` is set (with the operator's config, else the default one).
async fn send_pinned(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    addr: SocketAddr,
    host: &str,
    tls: Option<Option<Arc<rustls::ClientConfig>>>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(CONNECT_TIMEOUT);
    let tcp = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(request.uri().path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(Error::InvalidDnsNameError)?;
            let connector = tokio_rustls::TlsConnector::from(config.unwrap_or_else(default_config));
            let tls = connector.connect(name, tcp).await.map_err(|e| tls_error(host, e))?;
            handshake_and_send(request, tls).await
        }
        None => handshake_and_send(request, tcp).await,
    }
}

async fn handshake_and_send<S>(request: http::Request<WasiBody>, stream: S) -> Result<(http::Response<WasiBody>, IoFuture), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let io = wasmtime_wasi_http::io::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(Error::from)?;
    let conn_task = tokio::spawn(conn);
    let response = sender.send_request(request).await.map_err(Error::from)?;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io: IoFuture = Box::new(async move {
        match conn_task.await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::ConnectionTerminated),
        }
    });
    Ok((response, io))
}
