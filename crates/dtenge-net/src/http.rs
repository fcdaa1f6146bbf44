//! The network transport: HTTP/1.1 with borsh envelopes, no TLS.
//!
//! ```text
//!  HttpBus(A).call(B, body)                         serve(listener, …, [(B, key, handler)])
//!    │ B's endpoint from Participants                 │
//!    │ seal request, evidence.keep(request)           │
//!    │ POST http://<endpoint>/rpc  ─── borsh Envelope ──►  size ≤ MAX_ENVELOPE_BYTES? (413)
//!    │                                                 │  decode (400), B hosted here? (404)
//!    │                                                 │  B's Gate::admit ── refused ──► 403 + signed Rejected answer
//!    │                                                 │  evidence.keep(request)
//!    │                                                 │  handler.handle(&A, body)
//!    │                                                 │  seal Answer, evidence.keep(answer)
//!    │  ◄──────────────────── 200 + borsh Envelope ────┘
//!    │ A's Gate::admit(answer), binding, evidence.keep(answer)
//!    ▼
//!  Ok(body) | Err(Refused) | Err(<the server's rejection>)
//! ```
//!
//! `GET /health` answers `200 ok` for liveness probes.
//!
//! No TLS: this transport is meant for loopback and private networks. Every
//! message is signed and checked, so a network attacker can drop or delay
//! messages but cannot forge, alter or replay them; it can read them, so run
//! it over a private network or behind a VPN / TLS proxy when contents must
//! stay confidential.
//!
//! Invariants:
//! * Neither side reads more than [`MAX_ENVELOPE_BYTES`] of a message: an
//!   announced larger length is refused before reading, a longer stream is
//!   cut off.
//! * Every call ends within the configured timeout ([`HttpBusConfig`]);
//!   connection failures are [`NetError::Unreachable`].
//! * The caller's evidence holds each request it sent and each answer it
//!   accepted; the server's holds each request it accepted and its answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::exchange::{Responder, accept_answer, check_body_size, outcome_of};
use crate::gate::NonceSource;
use crate::{
    Bus, Clock, DEFAULT_CALL_TIMEOUT, Direction, Envelope, Evidence, Gate, Handler, MAX_ENVELOPE_BYTES, NetError,
    Outcome, Participants,
};

const OCTET_STREAM: &str = "application/octet-stream";

/// A participant served by [`serve`]: its id, its signing key (for answers)
/// and its handler.
pub type LocalService = (ParticipantId, Arc<dyn Signer>, Arc<dyn Handler>);

/// Serves `local` participants' handlers at `POST /rpc` (plus `GET /health`)
/// on `listener` until the returned future is dropped or its task aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    participants: Arc<Participants>,
    local: Vec<LocalService>,
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
) -> std::io::Result<()> {
    let hosted = local
        .into_iter()
        .map(|(id, key, handler)| {
            let hosted = Hosted {
                responder: Responder { me: id.clone(), key, nonces: Arc::new(NonceSource::new(clock.now())) },
                handler,
                gate: Gate::new(id.clone(), Arc::clone(&participants), Arc::clone(&clock)),
            };
            (id, hosted)
        })
        .collect();
    let state = Arc::new(ServerState { clock, evidence, hosted });
    let app = Router::new().route("/rpc", post(rpc)).route("/health", get(health)).with_state(state);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving dtenge-net");
    }
    axum::serve(listener, app).await
}

struct ServerState {
    clock: Arc<dyn Clock>,
    evidence: Arc<dyn Evidence>,
    hosted: HashMap<ParticipantId, Hosted>,
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
    if content_length(request.headers()).is_some_and(|length| length > MAX_ENVELOPE_BYTES as u64) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, format!("envelope exceeds {MAX_ENVELOPE_BYTES} bytes"));
    }
    let bytes = match Limited::new(request.into_body(), MAX_ENVELOPE_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, format!("envelope exceeds {MAX_ENVELOPE_BYTES} bytes"));
        }
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("cannot read request: {error}")),
    };
    let envelope = match Envelope::decode(&bytes) {
        Ok(envelope) => envelope,
        Err(error) => return text(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let Some(hosted) = state.hosted.get(&envelope.to) else {
        return text(StatusCode::NOT_FOUND, format!("participant {} is not served here", envelope.to));
    };
    let digest = envelope.digest();
    if let Err(error) = hosted.gate.admit(&envelope, Direction::Request) {
        tracing::warn!(from = %envelope.from, to = %envelope.to, %error, "request refused");
        let answer = hosted.responder.answer(&envelope.from, digest, Outcome::Rejected(error), state.clock.as_ref());
        return binary(StatusCode::FORBIDDEN, answer.encode());
    }
    state.evidence.keep(&envelope);
    let Envelope { from, body, .. } = envelope;
    let outcome = outcome_of(hosted.handler.handle(&from, body).await);
    let answer = hosted.responder.answer(&from, digest, outcome, state.clock.as_ref());
    state.evidence.keep(&answer);
    binary(StatusCode::OK, answer.encode())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn text(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

fn binary(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, OCTET_STREAM)], bytes).into_response()
}

/// Settings of an [`HttpBus`].
#[derive(Debug, Clone)]
pub struct HttpBusConfig {
    /// How long a call waits for its answer, connecting included.
    pub timeout: Duration,
}

impl Default for HttpBusConfig {
    fn default() -> Self {
        HttpBusConfig { timeout: DEFAULT_CALL_TIMEOUT }
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
    client: Client<HttpConnector, Full<Bytes>>,
    config: HttpBusConfig,
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
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
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
        })
    }

    /// POSTs `bytes` and returns the answer envelope.
    async fn exchange(&self, to: &ParticipantId, uri: hyper::Uri, bytes: Vec<u8>) -> Result<Envelope, NetError> {
        let unreachable = |reason: String| NetError::Unreachable { to: to.clone(), reason };
        let request = hyper::Request::post(uri)
            .header(header::CONTENT_TYPE, OCTET_STREAM)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        if content_length(response.headers()).is_some_and(|length| length > MAX_ENVELOPE_BYTES as u64) {
            return Err(NetError::Decode(format!("answer from {to} exceeds {MAX_ENVELOPE_BYTES} bytes")));
        }
        let body = Limited::new(response.into_body(), MAX_ENVELOPE_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        match Envelope::decode(&body) {
            Ok(answer) => Ok(answer),
            Err(error) if status.is_success() => Err(error),
            Err(_) => Err(status_error(to, status, &body)),
        }
    }
}

#[async_trait::async_trait]
impl Bus for HttpBus {
    fn me(&self) -> &ParticipantId {
        &self.me
    }

    async fn call(&self, to: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, NetError> {
        check_body_size(&body)?;
        let info = self.participants.get(to).ok_or_else(|| NetError::UnknownParticipant(to.clone()))?;
        let endpoint = info.endpoint.as_deref().ok_or_else(|| NetError::Unreachable {
            to: to.clone(),
            reason: "no endpoint in the participants directory".into(),
        })?;
        let uri = rpc_uri(endpoint).map_err(|reason| NetError::Unreachable {
            to: to.clone(),
            reason: format!("endpoint {endpoint:?}: {reason}"),
        })?;
        let request = Envelope::seal(
            self.me.clone(),
            to.clone(),
            self.clock.now(),
            self.nonces.next(Direction::Request),
            body,
            self.key.as_ref(),
        );
        let digest = request.digest();
        let bytes = request.encode();
        self.evidence.keep(&request);
        let answer = tokio::time::timeout(self.config.timeout, self.exchange(to, uri, bytes))
            .await
            .map_err(|_| NetError::Timeout { to: to.clone() })??;
        accept_answer(&self.gate, to, digest, &answer, self.evidence.as_ref())
    }
}

/// `http://<endpoint>/rpc`; an endpoint may also be a full `http://` URL.
fn rpc_uri(endpoint: &str) -> Result<hyper::Uri, String> {
    let base = endpoint.trim_end_matches('/');
    let url = if base.starts_with("http://") { format!("{base}/rpc") } else { format!("http://{base}/rpc") };
    url.parse().map_err(|e: hyper::http::uri::InvalidUri| e.to_string())
}

/// A server answer that carried no envelope.
fn status_error(to: &ParticipantId, status: StatusCode, body: &[u8]) -> NetError {
    let message: String = String::from_utf8_lossy(body).chars().take(200).collect();
    let reason = format!("HTTP {status}: {message}");
    if status == StatusCode::NOT_FOUND || status.is_server_error() {
        NetError::Unreachable { to: to.clone(), reason }
    } else {
        NetError::Decode(reason)
    }
}

/// An error with its causes, for messages ("client error (Connect): connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
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
    fn endpoint_becomes_rpc_uri() {
        assert_eq!(rpc_uri("127.0.0.1:7101").map(|u| u.to_string()), Ok("http://127.0.0.1:7101/rpc".into()));
        assert_eq!(rpc_uri("http://node:80/").map(|u| u.to_string()), Ok("http://node:80/rpc".into()));
        assert!(rpc_uri("not a host").is_err());
    }
}
