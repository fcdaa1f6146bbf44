//! TLS between services: rustls on the `ring` provider, TLS 1.3 only,
//! mutually authenticated, with keys pinned by the signed participant
//! registry instead of a certificate authority.
//!
//! ```text
//!  caller (its TlsIdentity)                                callee (its TlsIdentity)
//!  ─────────────────────────                               ────────────────────────
//!  Connector: endpoint ─► registry entry ─► pinned key K   serve_router: first byte 0x16?
//!                                                            no  ─► "HTTP/1.1 400 … speaks only TLS", close
//!    ClientHello ───────────────────────────────────────►   yes ─► handshake
//!    server cert: its SPKI must be K (PinnedServer)     ◄──   client cert: its SPKI must be a registered,
//!    client cert + CertificateVerify ───────────────────►     current TLS key (RegisteredClients)
//!                                                           request extensions ◄─ PeerTlsKey(client's key)
//!                                                           /rpc: envelope.from's TLS key == PeerTlsKey
//! ```
//!
//! Why pinned keys and not a platform CA: the signed participant registry is
//! already the one trust anchor every service checks (NBK signs it); putting
//! each service's TLS public key in it makes revocation, rotation and a moved
//! endpoint one registry update that reaches running services at once —
//! no CA key to guard, no certificate renewal, no CRL or OCSP to distribute,
//! no host names baked into certificates. Certificates are self-signed
//! wrappers (made with rcgen at start) around the registered key; only the
//! key inside counts. See docs/deploy.md, "TLS".
//!
//! Invariants:
//! * Only the `ring` provider is used (never aws-lc), TLS 1.3 only.
//! * A server configured with TLS never speaks plain HTTP: a connection whose
//!   first byte is not a TLS handshake gets a plain-text 400 naming the
//!   problem and is closed.
//! * A client certificate is accepted only if its key is the current TLS key
//!   of a participant in the directory at the time of the handshake; a server
//!   certificate only if its key is the current TLS key of the participant
//!   whose endpoint was dialled.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use dtenge_crypto::PublicKey;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::Participants;

/// How long a connection may take to show its first byte and finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The TLS record type of a handshake: the first byte of every TLS connection.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// The name in (and asked of) every service certificate; only the key counts.
const CERT_NAME: &str = "participant.dtenge";

/// Why a TLS key or configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The key file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// What.
        source: io::Error,
    },
    /// The key or certificate is not usable.
    #[error("{0}")]
    Invalid(String),
}

/// The provider every TLS configuration here uses: ring (STACK.md: never aws-lc).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A participant's TLS key with its self-signed certificate.
pub struct TlsIdentity {
    public_key: PublicKey,
    certificate: CertificateDer<'static>,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("public_key", &self.public_key).finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A new Ed25519 TLS key; returns the identity and the key as PKCS#8 PEM
    /// (for a file of mode 0600).
    pub fn generate() -> Result<(TlsIdentity, String), TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| TlsError::Invalid(e.to_string()))?;
        let pem = key.serialize_pem();
        Ok((Self::from_key_pair(&key)?, pem))
    }

    /// Reads a PKCS#8 PEM Ed25519 key (as written by [`TlsIdentity::generate`]).
    pub fn load(path: &Path) -> Result<TlsIdentity, TlsError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|source| TlsError::Io { path: path.display().to_string(), source })?;
        Self::from_pem(&pem).map_err(|e| TlsError::Invalid(format!("{}: {e}", path.display())))
    }

    /// Parses a PKCS#8 PEM Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<TlsIdentity, TlsError> {
        let key = rcgen::KeyPair::from_pem(pem).map_err(|e| TlsError::Invalid(format!("not a PKCS#8 PEM key: {e}")))?;
        Self::from_key_pair(&key)
    }

    fn from_key_pair(key: &rcgen::KeyPair) -> Result<TlsIdentity, TlsError> {
        if !key.is_compatible(&rcgen::PKCS_ED25519) {
            return Err(TlsError::Invalid("a participant's TLS key must be Ed25519".into()));
        }
        let raw: [u8; 32] = key
            .public_key_raw()
            .try_into()
            .map_err(|_| TlsError::Invalid("an Ed25519 public key is 32 bytes".into()))?;
        let params =
            rcgen::CertificateParams::new(vec![CERT_NAME.to_string()]).map_err(|e| TlsError::Invalid(e.to_string()))?;
        let certificate = params.self_signed(key).map_err(|e| TlsError::Invalid(e.to_string()))?;
        Ok(TlsIdentity {
            public_key: PublicKey(raw),
            certificate: certificate.der().clone(),
            pkcs8: key.serialize_der(),
        })
    }

    /// The public key the registry must list for this participant.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }

    /// The server side between services: mutual TLS, clients checked against `participants`.
    pub fn server_config(&self, participants: Arc<Participants>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let verifier = Arc::new(RegisteredClients { participants, provider: provider() });
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.certificate.clone()], self.private_key())
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        Ok(Arc::new(config))
    }

    /// The client side towards the service whose registered TLS key is `expected`.
    fn client_config(&self, expected: PublicKey) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let verifier = Arc::new(PinnedServer { expected, provider: provider() });
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.certificate.clone()], self.private_key())
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        Ok(Arc::new(config))
    }
}

/// A server side for people and banks' systems (the API): server-only TLS
/// from a PEM certificate chain and key issued by whatever CA the operator
/// uses (clients authenticate by signing requests, not by certificates).
pub fn api_server_config(cert_chain_pem: &Path, key_pem: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let io_error = |path: &Path, e: rustls::pki_types::pem::Error| {
        TlsError::Invalid(format!("{}: not a PEM file of the expected kind: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert_chain_pem)
        .map_err(|e| io_error(cert_chain_pem, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error(cert_chain_pem, e))?;
    if chain.is_empty() {
        return Err(TlsError::Invalid(format!("{}: no certificate in the file", cert_chain_pem.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|e| io_error(key_pem, e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid(format!("{} and {}: {e}", cert_chain_pem.display(), key_pem.display())))?;
    Ok(Arc::new(config))
}

/// The Ed25519 key inside a certificate, if that is what it certifies.
pub fn certificate_key(certificate: &CertificateDer<'_>) -> Option<PublicKey> {
    let parsed = rustls::server::ParsedCertificate::try_from(certificate).ok()?;
    let spki = parsed.subject_public_key_info();
    let bytes: &[u8] = spki.as_ref();
    let key = bytes.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    Some(PublicKey(key.try_into().ok()?))
}

/// The TLS key that authenticated the connection a request came on (a
/// request extension set by [`serve_router`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTlsKey(pub PublicKey);

fn bad_certificate(reason: &str) -> rustls::Error {
    rustls::Error::General(reason.to_string())
}

/// Accepts a client certificate whose key is a participant's current TLS key.
#[derive(Debug)]
struct RegisteredClients {
    participants: Arc<Participants>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for RegisteredClients {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let key = certificate_key(end_entity).ok_or_else(|| bad_certificate("client certificate is not Ed25519"))?;
        if self.participants.with_tls_key(&key).is_none() {
            let revoked = self.participants.revoked().into_iter().find(|r| r.key == key);
            match revoked {
                Some(r) => tracing::warn!(participant = %r.participant, serial = r.serial, reason = %r.reason,
                    "TLS connection with a revoked key refused"),
                None => tracing::warn!(%key, "TLS connection with a key not in the participant registry refused"),
            }
            return Err(bad_certificate("client TLS key is not a registered participant's current key"));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Accepts the server certificate only if it carries the pinned key.
#[derive(Debug)]
struct PinnedServer {
    expected: PublicKey,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match certificate_key(end_entity) {
            Some(key) if key == self.expected => Ok(ServerCertVerified::assertion()),
            _ => Err(bad_certificate("server TLS key is not the one the participant registry lists for this endpoint")),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// What a plain-HTTP client gets from a TLS-only endpoint.
const PLAINTEXT_REFUSAL: &str = "this endpoint speaks only TLS; plain HTTP is refused (use https://)\n";

/// Serves `router` on `listener`: plain HTTP without `tls`, otherwise TLS
/// only (see the module docs), until the future is dropped.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, tls = tls.is_some(), "serving");
    }
    let Some(config) = tls else {
        return axum::serve(listener, router).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            if let Err(reason) = serve_tls_connection(tcp, acceptor, router).await {
                tracing::debug!(%remote, %reason, "TLS connection ended");
            }
        });
    }
}

async fn serve_tls_connection(
    mut tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
) -> Result<(), String> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {}
        Ok(Ok(0)) => return Ok(()),
        Ok(Ok(_)) => {
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{PLAINTEXT_REFUSAL}",
                PLAINTEXT_REFUSAL.len()
            );
            let _ = tcp.write_all(response.as_bytes()).await;
            let _ = tcp.shutdown().await;
            return Err("plain HTTP on a TLS endpoint refused".into());
        }
        Ok(Err(error)) => return Err(error.to_string()),
        Err(_) => return Err("no data in time".into()),
    }
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let peer = stream.get_ref().1.peer_certificates().and_then(|certs| certs.first()).and_then(certificate_key);
    let router = match peer {
        Some(key) => router.layer(axum::Extension(PeerTlsKey(key))),
        None => router,
    };
    let service = hyper_util::service::TowerToHyperService::new(router);
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
        .map_err(|e| e.to_string())
}

/// The HTTP client's connector: plain TCP, or TLS pinned to the registered
/// key of the participant whose endpoint is dialled.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    participants: Arc<Participants>,
    identity: Option<Arc<TlsIdentity>>,
}

impl Connector {
    pub(crate) fn new(participants: Arc<Participants>, identity: Option<Arc<TlsIdentity>>) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        Connector { tcp, participants, identity }
    }

    /// The registered TLS key of the participant listening at `uri`'s authority.
    fn pinned_key(&self, uri: &Uri) -> Option<PublicKey> {
        let authority = uri.authority()?.as_str();
        self.participants.all().find_map(|info| {
            let endpoint = info.endpoint.as_deref()?;
            let bare = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest).trim_end_matches('/');
            (bare == authority).then_some(info.tls_key).flatten()
        })
    }
}

/// A connection of the [`Connector`].
pub(crate) enum Stream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = uri.scheme_str() == Some("https");
        let pinned = if tls { self.pinned_key(&uri) } else { None };
        let identity = self.identity.clone();
        let connecting = self.tcp.call(uri.clone());
        Box::pin(async move {
            let tcp = connecting.await?;
            if !tls {
                return Ok(Stream::Plain(tcp));
            }
            let identity = identity.ok_or("this service has no TLS key configured")?;
            let expected = pinned.ok_or_else(|| format!("no participant with a TLS key is registered at {uri}"))?;
            let config = identity.client_config(expected)?;
            let name = ServerName::try_from(CERT_NAME).map_err(|e| e.to_string())?;
            let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp.into_inner()).await?;
            Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}
