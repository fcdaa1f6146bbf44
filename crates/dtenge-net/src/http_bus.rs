//! The network transport's calling side: [`HttpBus`] posts envelopes to the
//! participants' endpoints from the directory, over plain TCP or mutually
//! authenticated TLS ([`crate::tls`]), and checks every answer.
//!
//! Protocol versions: the bus writes the newest version the callee speaks.
//! Until it knows, it assumes its own newest; every answer names the range the
//! callee speaks (`dtenge-protocol` header) and is remembered per callee. A
//! request refused for its version is sent once more in the newest common
//! version (a server from before versioning answers without the header and
//! speaks only protocol 1); with no common version the call fails with
//! [`NetError::ProtocolMismatch`], naming both ranges.
//!
//! Invariants:
//! * Every call ends within the configured timeout ([`HttpBusConfig`]);
//!   connection failures are [`NetError::Unreachable`].
//! * A request is sent again only when the callee refused it before any
//!   handler saw it: an undecodable version, or a restarted callee's
//!   [`NetError::SignedBeforeRestart`] (then sealed anew, with a time past
//!   the callee's replay horizon and a new nonce, after waiting for this
//!   side's clock to pass it; at most [`MAX_RESEALS`] times). So nothing is
//!   handled twice.
//! * The caller's evidence holds each request it sent and each answer it
//!   accepted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use bytes::Bytes;
use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::envelope::Header;
use crate::exchange::{accept_answer, check_body_size};
use crate::gate::NonceSource;
use crate::http::{OCTET_STREAM, PROTOCOL_HEADER, content_length};
use crate::tls::{Connector, TlsIdentity};
use crate::{
    Clock, DEFAULT_CALL_TIMEOUT, Direction, Envelope, Evidence, Gate, HORIZON_AHEAD_MS, MAX_ENVELOPE_BYTES,
    MAX_FUTURE_MS, NetError, Participants, ProtocolRange, telemetry,
};

/// How often one call seals its request again for a restarted callee.
pub const MAX_RESEALS: u32 = 3;

/// Settings of an [`HttpBus`].
#[derive(Clone)]
pub struct HttpBusConfig {
    /// How long a call waits for its answer, connecting included.
    pub timeout: Duration,
    /// The protocol versions this side writes and accepts.
    pub protocol: ProtocolRange,
    /// This participant's TLS identity: with it, callees whose registry entry
    /// names a TLS key are called over mutually authenticated TLS; without it,
    /// over plain HTTP (and such callees refuse).
    pub tls: Option<Arc<TlsIdentity>>,
    /// The transport's fault layer (tests only): calls across a link this
    /// file cuts are refused unsent ([`crate::CutLinks`]).
    pub cuts: Option<Arc<crate::CutLinks>>,
}

impl Default for HttpBusConfig {
    fn default() -> Self {
        HttpBusConfig { timeout: DEFAULT_CALL_TIMEOUT, protocol: ProtocolRange::CURRENT, tls: None, cuts: None }
    }
}

impl std::fmt::Debug for HttpBusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBusConfig")
            .field("timeout", &self.timeout)
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("cuts", &self.cuts.as_ref().map(|c| c.path().to_path_buf()))
            .finish()
    }
}

/// Calls remote participants over HTTP at their directory endpoints.
///
/// Create one per identity and share it: it owns the identity's request
/// nonces and its replay cache for answers, and pools connections.
pub struct HttpBus {
    me: ParticipantId,
    key: Arc<dyn Signer>,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
    gate: Gate,
    nonces: NonceSource,
    client: Client<Connector, Full<Bytes>>,
    config: HttpBusConfig,
    /// What each callee said it speaks (bounded by the directory).
    spoken: Mutex<HashMap<ParticipantId, ProtocolRange>>,
}

/// One HTTP exchange's result: the server's answer envelope or status, and
/// the versions it said it speaks (`None`: a server from before versioning).
struct Exchanged {
    status: StatusCode,
    speaks: Option<ProtocolRange>,
    body: Bytes,
}

impl HttpBus {
    /// A bus calling as `me`, with the default configuration.
    pub fn new(
        me: ParticipantId,
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        evidence: Arc<dyn Evidence>,
    ) -> Arc<Self> {
        Self::with_config(me, key, participants, clock, evidence, HttpBusConfig::default())
    }

    /// A bus calling as `me`, with `config`.
    pub fn with_config(
        me: ParticipantId,
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        evidence: Arc<dyn Evidence>,
        config: HttpBusConfig,
    ) -> Arc<Self> {
        telemetry::metrics_handle();
        let connector = Connector::new(Arc::clone(&participants), config.tls.clone());
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(HttpBus {
            gate: Gate::new(me.clone(), Arc::clone(&participants), Arc::clone(&clock)),
            nonces: NonceSource::new(clock.now()),
            me,
            key,
            participants,
            clock,
            evidence,
            client,
            config,
            spoken: Mutex::default(),
        })
    }

    /// `GET <to's endpoint><path>` over the same connections (and TLS) as
    /// calls: for plain resources a service publishes, like its copy of the
    /// signed participant registry. The body, at most `max_bytes`.
    pub async fn get(&self, to: &ParticipantId, path: &str, max_bytes: usize) -> Result<Bytes, NetError> {
        let uri = self.uri(to, path)?;
        let unreachable = |reason: String| NetError::Unreachable { to: to.clone(), reason };
        let request = hyper::Request::get(uri)
            .header(PROTOCOL_HEADER, self.config.protocol.to_string())
            .body(Full::new(Bytes::new()))
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| unreachable(error_chain(&e)))?;
            let status = response.status();
            // A server that names no versions predates them: one release back, still read.
            let speaks = response
                .headers()
                .get(PROTOCOL_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(ProtocolRange::parse);
            if let Some(theirs) = speaks
                && self.config.protocol.common(&theirs).is_none()
            {
                return Err(NetError::ProtocolMismatch {
                    peer: to.clone(),
                    peer_speaks: theirs,
                    we_speak: self.config.protocol,
                });
            }
            let body = Limited::new(response.into_body(), max_bytes)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(status_error(to, status, &body));
            }
            Ok(body)
        };
        tokio::time::timeout(self.config.timeout, exchange).await.map_err(|_| NetError::Timeout { to: to.clone() })?
    }

    /// `<scheme>://<endpoint><path>` for `to`: https when its registry entry
    /// names a TLS key.
    fn uri(&self, to: &ParticipantId, path: &str) -> Result<hyper::Uri, NetError> {
        let info = self.participants.get(to).ok_or_else(|| NetError::UnknownParticipant(to.clone()))?;
        let endpoint = info.endpoint.as_deref().ok_or_else(|| NetError::Unreachable {
            to: to.clone(),
            reason: "no endpoint in the participants directory".into(),
        })?;
        if info.tls_key.is_some() && self.config.tls.is_none() {
            return Err(NetError::Unreachable {
                to: to.clone(),
                reason: format!("{to} accepts only TLS and this service has no TLS key configured"),
            });
        }
        endpoint_uri(endpoint, info.tls_key.is_some(), path).map_err(|reason| NetError::Unreachable {
            to: to.clone(),
            reason: format!("endpoint {endpoint:?}: {reason}"),
        })
    }

    /// POSTs `bytes` to `uri`.
    async fn exchange(&self, to: &ParticipantId, uri: hyper::Uri, bytes: Vec<u8>) -> Result<Exchanged, NetError> {
        let unreachable = |reason: String| NetError::Unreachable { to: to.clone(), reason };
        let request = hyper::Request::post(uri)
            .header(header::CONTENT_TYPE, OCTET_STREAM)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        let speaks = response
            .headers()
            .get(PROTOCOL_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(ProtocolRange::parse);
        if content_length(response.headers()).is_some_and(|length| length > MAX_ENVELOPE_BYTES as u64) {
            return Err(NetError::Decode(format!("answer from {to} exceeds {MAX_ENVELOPE_BYTES} bytes")));
        }
        let body = Limited::new(response.into_body(), MAX_ENVELOPE_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(Exchanged { status, speaks, body })
    }

    /// The version to write to `to`: the newest both sides speak, as far as known.
    fn version_for(&self, to: &ParticipantId) -> Result<u16, NetError> {
        let spoken = self.spoken.lock().unwrap_or_else(PoisonError::into_inner);
        match spoken.get(to) {
            None => Ok(self.config.protocol.max),
            Some(theirs) => self.config.protocol.common(theirs).ok_or_else(|| NetError::ProtocolMismatch {
                peer: to.clone(),
                peer_speaks: *theirs,
                we_speak: self.config.protocol,
            }),
        }
    }

    fn remember(&self, to: &ParticipantId, speaks: ProtocolRange) {
        self.spoken.lock().unwrap_or_else(PoisonError::into_inner).insert(to.clone(), speaks);
    }

    /// One attempt in `version`; `Ok(None)` when the callee refused the
    /// version before any check (the caller retries in a common one).
    async fn attempt(&self, to: &ParticipantId, version: u16, body: &[u8]) -> Result<Option<Vec<u8>>, NetError> {
        let uri = self.uri(to, "/rpc")?;
        let header = Header { version, trace: telemetry::current_trace() };
        let request = Envelope::seal_as(
            header,
            self.me.clone(),
            to.clone(),
            self.clock.now(),
            self.nonces.next(Direction::Request),
            body.to_vec(),
            self.key.as_ref(),
        );
        let digest = request.digest();
        let bytes = request.encode();
        self.evidence.keep(&request);
        let exchanged = self.exchange(to, uri, bytes).await?;
        // A server from before versioning speaks protocol 1 and sends no header.
        let speaks = exchanged.speaks.unwrap_or(ProtocolRange { min: 1, max: 1 });
        self.remember(to, speaks);
        if exchanged.status == StatusCode::BAD_REQUEST && !speaks.speaks(version) {
            return Ok(None);
        }
        match Envelope::decode(&exchanged.body) {
            Ok(answer) => accept_answer(&self.gate, to, digest, &answer, self.evidence.as_ref()).map(Some),
            Err(error) if exchanged.status.is_success() => Err(error),
            Err(_) => Err(status_error(to, exchanged.status, &exchanged.body)),
        }
    }

    /// [`HttpBus::attempt`], sealed again when a restarted callee refused
    /// the envelope as sent before its replay horizon.
    async fn attempt_resealing(
        &self,
        to: &ParticipantId,
        version: u16,
        body: &[u8],
    ) -> Result<Option<Vec<u8>>, NetError> {
        let mut reseals = 0;
        loop {
            match self.attempt(to, version, body).await {
                Err(NetError::SignedBeforeRestart { not_before, .. }) if reseals < MAX_RESEALS => {
                    reseals += 1;
                    let behind = not_before.millis().saturating_sub(self.clock.now().millis());
                    // The callee never sets its horizon further ahead than an envelope may be dated.
                    let wait = behind.saturating_add(1).min(MAX_FUTURE_MS + HORIZON_AHEAD_MS);
                    tracing::info!(%to, wait_ms = wait, "callee restarted: sealing the request again past its horizon");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_in_versions(&self, to: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let first = self.version_for(to)?;
        if let Some(answer) = self.attempt_resealing(to, first, &body).await? {
            return Ok(answer);
        }
        let second = self.version_for(to)?;
        if second == first {
            return Err(NetError::ProtocolMismatch {
                peer: to.clone(),
                peer_speaks: self.spoken_by(to).unwrap_or(ProtocolRange { min: 1, max: 1 }),
                we_speak: self.config.protocol,
            });
        }
        tracing::info!(%to, from = first, to_version = second, "callee speaks an older protocol: stepping down");
        self.attempt_resealing(to, second, &body).await?.ok_or_else(|| NetError::ProtocolMismatch {
            peer: to.clone(),
            peer_speaks: self.spoken_by(to).unwrap_or(ProtocolRange { min: 1, max: 1 }),
            we_speak: self.config.protocol,
        })
    }

    fn spoken_by(&self, to: &ParticipantId) -> Option<ProtocolRange> {
        self.spoken.lock().unwrap_or_else(PoisonError::into_inner).get(to).copied()
    }
}

#[async_trait::async_trait]
impl crate::Bus for HttpBus {
    fn me(&self) -> &ParticipantId {
        &self.me
    }

    async fn call(&self, to: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, NetError> {
        check_body_size(&body)?;
        if let Some(cuts) = &self.config.cuts
            && cuts.is_cut(&self.me, to)
        {
            return Err(NetError::Unreachable {
                to: to.clone(),
                reason: format!("the link {} ↔ {to} is cut by {}", self.me, cuts.path().display()),
            });
        }
        let started = Instant::now();
        let result = tokio::time::timeout(self.config.timeout, self.call_in_versions(to, body))
            .await
            .map_err(|_| NetError::Timeout { to: to.clone() })
            .and_then(|result| result);
        telemetry::rpc_call(to, &result, started.elapsed());
        result
    }
}

/// `<scheme>://<endpoint><path>`; an endpoint may also be a full `http://`
/// or `https://` URL (its scheme must then agree with `tls`).
pub(crate) fn endpoint_uri(endpoint: &str, tls: bool, path: &str) -> Result<hyper::Uri, String> {
    let base = endpoint.trim_end_matches('/');
    let scheme = if tls { "https" } else { "http" };
    let authority = match base.split_once("://") {
        Some((given, rest)) if given == scheme => rest,
        Some((given, _)) => return Err(format!("scheme {given} but the registry says {scheme}")),
        None => base,
    };
    format!("{scheme}://{authority}{path}").parse().map_err(|e: hyper::http::uri::InvalidUri| e.to_string())
}

/// A server answer that carried no envelope.
fn status_error(to: &ParticipantId, status: StatusCode, body: &[u8]) -> NetError {
    let message: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let reason = format!("HTTP {status}: {message}");
    if status == StatusCode::NOT_FOUND || status.is_server_error() {
        NetError::Unreachable { to: to.clone(), reason }
    } else {
        NetError::Decode(reason)
    }
}

/// An error with its causes, for messages ("client error (Connect): connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_becomes_uri_with_the_scheme_the_registry_implies() {
        let uri = |e, tls| endpoint_uri(e, tls, "/rpc").map(|u| u.to_string());
        assert_eq!(uri("127.0.0.1:7101", false), Ok("http://127.0.0.1:7101/rpc".into()));
        assert_eq!(uri("127.0.0.1:7101", true), Ok("https://127.0.0.1:7101/rpc".into()));
        assert_eq!(uri("http://node:80/", false), Ok("http://node:80/rpc".into()));
        assert!(uri("http://node:80", true).is_err(), "a TLS participant's endpoint cannot say http");
        assert!(uri("not a host", false).is_err());
    }
}
