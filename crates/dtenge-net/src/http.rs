//! The network transport's server side: HTTP/1.1 with borsh envelopes, over
//! plain TCP or mutually authenticated TLS ([`crate::tls`]).
//!
//! ```text
//!  HttpBus(A).call(B, body)                         serve(listener, …, [(B, key, handler)])
//!    │ B's endpoint from Participants                 │
//!    │ seal request (newest version B speaks)         │
//!    │ POST <endpoint>/rpc  ─────── borsh Envelope ──►  size ≤ MAX_ENVELOPE_BYTES? (413)
//!    │                                                 │  decode (400), version spoken here? (400 + dtenge-protocol)
//!    │                                                 │  B hosted here? (404)
//!    │                                                 │  TLS: A's registered TLS key = the connection's? (403)
//!    │                                                 │  B's Gate::admit ── refused ──► 403 + signed Rejected answer
//!    │                                                 │  evidence.keep(request)
//!    │                                                 │  handler.handle(&A, body)   (in A's trace)
//!    │                                                 │  seal Answer in the request's version, evidence.keep(answer)
//!    │  ◄──────────────────── 200 + borsh Envelope ────┘
//!    │ A's Gate::admit(answer), binding, evidence.keep(answer)
//!    ▼
//!  Ok(body) | Err(Refused) | Err(<the server's rejection>)
//! ```
//!
//! `GET /health` answers `200 ok` for liveness probes. Every response carries
//! `dtenge-protocol: <min>-<max>`, the protocol versions the server speaks, so
//! a caller can step down to the previous version during a rolling upgrade
//! or name both sides' versions when they share none.
//!
//! Invariants:
//! * Neither side reads more than [`MAX_ENVELOPE_BYTES`] of a message: an
//!   announced larger length is refused before reading, a longer stream is
//!   cut off.
//! * An answer is written in the request's protocol version; a request in a
//!   version the server does not speak reaches no gate and no handler.
//! * Over TLS, a request is handled only if its sender's registered TLS key is
//!   the one that authenticated the connection: a participant cannot speak
//!   for another even with a stolen envelope stream.
//! * The server's evidence holds each request it accepted and its answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::envelope::Header;
use crate::exchange::{Responder, outcome_of};
use crate::gate::NonceSource;
use crate::tls::PeerTlsKey;
use crate::{
    Clock, Direction, Envelope, Evidence, Gate, Handler, MAX_ENVELOPE_BYTES, NetError, Outcome, Participants,
    ProtocolRange, ReplayHorizon, telemetry,
};

pub(crate) const OCTET_STREAM: &str = "application/octet-stream";
/// The response header naming the protocol versions a server speaks.
pub const PROTOCOL_HEADER: &str = "dtenge-protocol";

/// A participant served by [`serve`]: its id, its signing key (for answers)
/// and its handler.
pub type LocalService = (ParticipantId, Arc<dyn Signer>, Arc<dyn Handler>);

/// Settings of the server side.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The protocol versions accepted (and answered in).
    pub protocol: ProtocolRange,
    /// The durable replay horizon of each served identity ([`crate::horizon`]).
    /// A process that serves over the network gives every identity one, or a
    /// restart lets a captured envelope be accepted again.
    pub replay_horizons: HashMap<ParticipantId, Arc<ReplayHorizon>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { protocol: ProtocolRange::CURRENT, replay_horizons: HashMap::new() }
    }
}

/// Serves `local` participants' handlers at `POST /rpc` (plus `GET /health`)
/// on `listener`, over plain TCP, until the returned future is dropped or its
/// task aborted. [`router`] + [`crate::tls::serve_router`] add routes and TLS.
pub async fn serve(
    listener: tokio::net::TcpListener,
    participants: Arc<Participants>,
    local: Vec<LocalService>,
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
) -> std::io::Result<()> {
    let app = router(participants, local, clock, evidence, ServerConfig::default());
    crate::tls::serve_router(listener, app, None).await
}

/// The routes of [`serve`] (`POST /rpc`, `GET /health`), to merge with others
/// (metrics, the registry) and serve with [`crate::tls::serve_router`].
pub fn router(
    participants: Arc<Participants>,
    local: Vec<LocalService>,
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
    config: ServerConfig,
) -> Router {
    // Metrics recorded before the recorder exists are lost: install it now.
    telemetry::metrics_handle();
    let hosted = local
        .into_iter()
        .map(|(id, key, handler)| {
            let hosted = Hosted {
                responder: Responder { me: id.clone(), key, nonces: Arc::new(NonceSource::new(clock.now())) },
                handler,
                gate: Gate::new(id.clone(), Arc::clone(&participants), Arc::clone(&clock))
                    .with_horizon(config.replay_horizons.get(&id).cloned()),
            };
            (id, hosted)
        })
        .collect();
    let state = Arc::new(ServerState { clock, evidence, hosted, participants, protocol: config.protocol });
    Router::new().route("/rpc", post(rpc)).route("/health", get(health)).with_state(state)
}

struct ServerState {
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
    hosted: HashMap<ParticipantId, Hosted>,
    participants: Arc<Participants>,
    protocol: ProtocolRange,
}

struct Hosted {
    responder: Responder,
    handler: Arc<dyn Handler>,
    gate: Gate,
}

async fn health() -> &'static str {
    "ok"
}

async fn rpc(State(state): State<Arc<ServerState>>, request: axum::extract::Request) -> Response {
    let started = std::time::Instant::now();
    let response = rpc_inner(&state, request).await;
    telemetry::http_request("/rpc", response.status().as_u16(), started.elapsed());
    response
}

async fn rpc_inner(state: &ServerState, request: axum::extract::Request) -> Response {
    let speaks = state.protocol;
    if content_length(request.headers()).is_some_and(|length| length > MAX_ENVELOPE_BYTES as u64) {
        return text(speaks, StatusCode::PAYLOAD_TOO_LARGE, format!("envelope exceeds {MAX_ENVELOPE_BYTES} bytes"));
    }
    let peer_tls = request.extensions().get::<PeerTlsKey>().copied();
    let bytes = match Limited::new(request.into_body(), MAX_ENVELOPE_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return text(speaks, StatusCode::PAYLOAD_TOO_LARGE, format!("envelope exceeds {MAX_ENVELOPE_BYTES} bytes"));
        }
        Err(error) => return text(speaks, StatusCode::BAD_REQUEST, format!("cannot read request: {error}")),
    };
    let envelope = match Envelope::decode(&bytes) {
        Ok(envelope) => envelope,
        Err(error) => return text(speaks, StatusCode::BAD_REQUEST, error.to_string()),
    };
    if !speaks.speaks(envelope.version) {
        tracing::warn!(from = %envelope.from, version = envelope.version, %speaks, "protocol version refused");
        let message = format!(
            "{} wrote protocol version {}; {} speaks {speaks}: upgrade the older side (docs/deploy.md gives the order)",
            envelope.from, envelope.version, envelope.to
        );
        return text(speaks, StatusCode::BAD_REQUEST, message);
    }
    let Some(hosted) = state.hosted.get(&envelope.to) else {
        return text(speaks, StatusCode::NOT_FOUND, format!("participant {} is not served here", envelope.to));
    };
    let digest = envelope.digest();
    let header = Header { version: envelope.version, trace: envelope.trace };
    let admitted = check_tls_identity(state, peer_tls, &envelope.from)
        .and_then(|()| hosted.gate.admit(&envelope, Direction::Request));
    if let Err(error) = admitted {
        tracing::warn!(from = %envelope.from, to = %envelope.to, %error, "request refused");
        let answer =
            hosted.responder.answer(&envelope.from, digest, Outcome::Rejected(error), header, state.clock.as_ref());
        return binary(speaks, StatusCode::FORBIDDEN, answer.encode());
    }
    state.evidence.keep(&envelope);
    let Envelope { from, to, body, trace, .. } = envelope;
    let span = tracing::info_span!("rpc", trace = %telemetry::TraceId(trace), from = %from, to = %to);
    let handled =
        tracing::Instrument::instrument(telemetry::in_trace(trace, hosted.handler.handle(&from, body)), span).await;
    let outcome = outcome_of(handled);
    let answer = hosted.responder.answer(&from, digest, outcome, header, state.clock.as_ref());
    state.evidence.keep(&answer);
    binary(speaks, StatusCode::OK, answer.encode())
}

/// Over TLS, `from`'s registered TLS key must be the connection's.
fn check_tls_identity(state: &ServerState, peer: Option<PeerTlsKey>, from: &ParticipantId) -> Result<(), NetError> {
    let Some(PeerTlsKey(connected)) = peer else {
        return Ok(());
    };
    let registered = state.participants.get(from).and_then(|info| info.tls_key);
    if registered == Some(connected) {
        return Ok(());
    }
    Err(NetError::TlsIdentity { from: from.clone() })
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Answers a plain resource other services fetch with `HttpBus::get` (a
/// service's copy of the signed registry) under the same versioning as every
/// envelope: the answer names the versions the service `speaks`, and a caller
/// naming versions it shares none of is refused with both named.
pub fn versioned_resource(speaks: ProtocolRange, request: &HeaderMap, body: Vec<u8>) -> Response {
    let theirs = request.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()).and_then(ProtocolRange::parse);
    match theirs {
        Some(theirs) if speaks.common(&theirs).is_none() => {
            let message = format!(
                "the caller speaks protocol {theirs}, this service speaks {speaks}: no version in common; upgrade the \
                 older side (docs/deploy.md gives the order)"
            );
            text(speaks, StatusCode::BAD_REQUEST, message)
        }
        _ => binary(speaks, StatusCode::OK, body),
    }
}

fn protocol_header(speaks: ProtocolRange) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&speaks.to_string()).unwrap_or(HeaderValue::from_static("1"));
    (header::HeaderName::from_static(PROTOCOL_HEADER), value)
}

fn text(speaks: ProtocolRange, status: StatusCode, message: String) -> Response {
    (status, [protocol_header(speaks)], message).into_response()
}

fn binary(speaks: ProtocolRange, status: StatusCode, bytes: Vec<u8>) -> Response {
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
    (status, [content_type, protocol_header(speaks)], bytes).into_response()
}
