//! # dtenge-client — a typed client for the dtenge HTTP API
//!
//! Every request is signed the standard way the API requires
//! ([`dtenge_api_types::signing`]: RFC 9421 HTTP Message Signatures, Ed25519,
//! an RFC 9530 Content-Digest, FAPI 2.0's request tag): `keyid` the caller's
//! participant id, `created` from the given [`Clock`], a fresh random nonce,
//! covering the method, the target URI, the body's digest and the
//! Idempotency-Key. Bodies are JSON in and out; an error
//! answer becomes [`ClientError::Http`] with the API's stable code.
//!
//! Two transports: plain HTTP/1.1 through hyper (`Client::new`, no TLS: run
//! behind a terminating proxy), or an [`axum::Router`] driven in the same
//! process (`Client::in_process`), for tests that need no sockets. Both sign
//! and decode identically.
//!
//! ```no_run
//! # async fn demo(key: std::sync::Arc<dyn dtenge_crypto::Signer>) -> Result<(), dtenge_client::ClientError> {
//! use dtenge_client::{Client, ListQuery};
//! let stb1 = dtenge_types::ParticipantId::new("STB1").expect("valid id");
//! let client = Client::new("http://127.0.0.1:8080", stb1, key, std::sync::Arc::new(dtenge_net::SystemClock))?;
//! let accounts = client.list_accounts(&ListQuery::default()).await?;
//! println!("{} accounts", accounts.total);
//! # Ok(()) }
//! ```
//!
//! Every request and answer body is the one definition in
//! `dtenge-api-types`, re-exported here: the server and this client cannot
//! drift apart. Every operation of the OpenAPI document has a typed method
//! (`tests/coverage.rs` calls each one and compares with the document).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dtenge_crypto::Signer;
use dtenge_net::Clock;
use dtenge_types::ParticipantId;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

pub use dtenge_api_types::*;
pub use hyper::Method;

/// Largest answer body read (the API never sends near this).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Default time allowed for one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Times a request refused as signed before the server's restart is signed again.
pub const RESIGN_ATTEMPTS: u32 = 3;
/// Longest wait before signing again.
pub const RESIGN_WAIT_MAX: Duration = Duration::from_secs(15);

/// What went wrong with a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error status and its JSON error.
    #[error("HTTP {status} {code}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The API's stable machine code (`insufficient_funds`, `bad_signature`, …);
        /// `http_<status>` if the answer was not the API's JSON error.
        code: String,
        /// What was wrong.
        message: String,
        /// The refusing service's own code when another service refused
        /// (`oracle_refused`: the oracle's code).
        reason: Option<String>,
    },
    /// The request did not get an answer (connection refused, timeout, bad URL).
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not the JSON expected.
    #[error("decode: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status, for [`ClientError::Http`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API's error code, for [`ClientError::Http`].
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Http { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The refusing service's own code, for [`ClientError::Http`] answers
    /// that carry one (`oracle_refused`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            ClientError::Http { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }
}

/// A raw answer: status, headers and body bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl RawResponse {
    /// The body as JSON of type `T` if the status is 2xx, else the API error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        if !(200..300).contains(&self.status) {
            return Err(self.error());
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::Decode(format!(
                "{e} in answer {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            ))
        })
    }

    /// The answer as a [`ClientError::Http`].
    pub fn error(&self) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(b) => ClientError::Http {
                status: self.status,
                code: b.error.code,
                message: b.error.message,
                reason: b.error.reason,
            },
            Err(_) => ClientError::Http {
                status: self.status,
                code: format!("http_{}", self.status),
                message: String::from_utf8_lossy(&self.body[..self.body.len().min(500)]).into_owned(),
                reason: None,
            },
        }
    }
}

#[derive(Clone)]
enum Transport {
    Http { base: String, client: HyperClient<HttpConnector, Full<Bytes>> },
    InProcess(axum::Router),
}

/// A signed-request client for one participant.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    participant: ParticipantId,
    key: Arc<dyn Signer>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    counter: Arc<AtomicU64>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.transport {
            Transport::Http { base, .. } => base.as_str(),
            Transport::InProcess(_) => "in-process router",
        };
        f.debug_struct("Client").field("participant", &self.participant).field("target", &target).finish()
    }
}

impl Client {
    /// A client calling `base_url` (`http://host:port`, no path) as `participant`, signing with `key`,
    /// timestamps from `clock` (the platform refuses times more than 60 s old or 10 s ahead of its own).
    pub fn new(
        base_url: &str,
        participant: ParticipantId,
        key: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Client, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        let uri: hyper::Uri =
            base.parse().map_err(|e| ClientError::Transport(format!("base URL {base_url:?}: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(ClientError::Transport(format!(
                "base URL {base_url:?}: give http://host:port (plain HTTP; put TLS in a proxy)"
            )));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(ClientError::Transport(format!(
                "base URL {base_url:?}: no path; requests go to /api/v1/… and the path is signed"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Self::with_transport(Transport::Http { base, client }, participant, key, clock))
    }

    /// A client that drives `router` (the API's, `dtenge_api::router`) in this process: no sockets.
    pub fn in_process(
        router: axum::Router,
        participant: ParticipantId,
        key: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
    ) -> Client {
        Self::with_transport(Transport::InProcess(router), participant, key, clock)
    }

    fn with_transport(
        transport: Transport,
        participant: ParticipantId,
        key: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
    ) -> Client {
        Client { transport, participant, key, clock, timeout: DEFAULT_TIMEOUT, counter: Arc::new(AtomicU64::new(0)) }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The same transport and clock, calling as another participant.
    pub fn as_participant(&self, participant: ParticipantId, key: Arc<dyn Signer>) -> Client {
        Client { participant, key, counter: Arc::new(AtomicU64::new(0)), ..self.clone() }
    }

    /// Who this client calls as.
    pub fn participant(&self) -> &ParticipantId {
        &self.participant
    }

    fn nonce(&self) -> String {
        let mut random = [0u8; 16];
        if getrandom::fill(&mut random).is_err() {
            // No OS randomness: time and a counter are still unique within this client.
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            random[..8].copy_from_slice(&self.clock.now().millis().to_le_bytes());
            random[8..].copy_from_slice(&n.to_le_bytes());
        }
        hex::encode(random)
    }

    /// Sends a signed request and returns the raw answer, whatever its status.
    /// `path_and_query` starts with `/`; `headers` are added as given (e.g. `Idempotency-Key`).
    ///
    /// A server that restarted refuses signatures created before it may
    /// accept them again (401 `signed_before_restart`, with `Retry-After`):
    /// the request is then signed afresh and sent again, at most
    /// [`RESIGN_ATTEMPTS`] times, waiting as told (at most [`RESIGN_WAIT_MAX`]).
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, ClientError> {
        let mut attempt = 0;
        loop {
            let response = self.send_once(method.clone(), path_and_query, body.clone(), headers).await?;
            let signed_too_early = response.status == 401
                && response.error().code() == Some(dtenge_api_types::signing::SIGNED_BEFORE_RESTART);
            if !signed_too_early || attempt >= RESIGN_ATTEMPTS {
                return Ok(response);
            }
            attempt += 1;
            let wait_s = response
                .headers
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait_s.max(1)).min(RESIGN_WAIT_MAX)).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, ClientError> {
        if !path_and_query.starts_with('/') {
            return Err(ClientError::Transport(format!("path {path_and_query:?} must start with /")));
        }
        let body = body.unwrap_or_default();
        let (uri, target_uri) = match &self.transport {
            Transport::Http { base, .. } => (format!("{base}{path_and_query}"), format!("{base}{path_and_query}")),
            Transport::InProcess(_) => (
                path_and_query.to_string(),
                format!("http://{}{path_and_query}", dtenge_api_types::signing::IN_PROCESS_HOST),
            ),
        };
        let idempotency_key = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(dtenge_api_types::signing::IDEMPOTENCY_KEY))
            .map(|(_, v)| *v);
        let params = dtenge_api_types::signing::SignatureParams {
            created: self.clock.now().millis() / 1_000,
            keyid: self.participant.to_string(),
            nonce: self.nonce(),
        };
        let signed = dtenge_api_types::signing::sign(
            self.key.as_ref(),
            method.as_str(),
            &target_uri,
            &body,
            idempotency_key,
            &params,
        )
        .map_err(|e| ClientError::Transport(format!("signing the request: {e}")))?;
        let mut builder = Request::builder().method(method).uri(uri);
        if matches!(self.transport, Transport::InProcess(_)) {
            builder = builder.header(hyper::header::HOST, dtenge_api_types::signing::IN_PROCESS_HOST);
        }
        for (name, value) in signed.headers() {
            builder = builder.header(name, value);
        }
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(format!("building the request: {e}")))?;
        let exchange = async {
            match &self.transport {
                Transport::Http { client, .. } => {
                    let response = client.request(request).await.map_err(|e| ClientError::Transport(chain(&e)))?;
                    let (parts, body) = response.into_parts();
                    let bytes = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
                        .collect()
                        .await
                        .map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?
                        .to_bytes();
                    Ok(RawResponse { status: parts.status.as_u16(), headers: parts.headers, body: bytes })
                }
                Transport::InProcess(router) => {
                    let response = router
                        .clone()
                        .oneshot(request)
                        .await
                        .map_err(|e| ClientError::Transport(format!("router: {e}")))?;
                    let (parts, body) = response.into_parts();
                    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
                        .await
                        .map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?;
                    Ok(RawResponse { status: parts.status.as_u16(), headers: parts.headers, body: bytes })
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Transport(format!("no answer within {:?}", self.timeout)))?
    }

    /// A signed GET decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path_and_query, None, &[]).await?.json()
    }

    /// A signed POST of `body` as JSON, decoded as `T`; with an `Idempotency-Key` if given.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode(format!("encoding the request: {e}")))?;
        let headers: Vec<(&str, &str)> = idempotency_key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.send(Method::POST, path_and_query, Some(bytes), &headers).await?.json()
    }

    // ---- platform -------------------------------------------------------

    /// `GET /api/v1/health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get_json("/api/v1/health").await
    }

    /// `GET /api/openapi.json`, the API description.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/api/openapi.json").await
    }

    // ---- accounts -------------------------------------------------------

    /// `POST /api/v1/accounts`: opens a DA on the caller's node.
    pub async fn open_account(
        &self,
        request: &OpenAccount,
        idempotency_key: Option<&str>,
    ) -> Result<AccountView, ClientError> {
        self.post_json("/api/v1/accounts", request, idempotency_key).await
    }

    /// `GET /api/v1/accounts`: the caller's DAs, newest first (filters `from_ms`, `to_ms`, `type` = holder kind).
    pub async fn list_accounts(&self, query: &ListQuery) -> Result<Page<AccountView>, ClientError> {
        self.get_json(&format!("/api/v1/accounts{}", query_string(query))).await
    }

    /// `GET /api/v1/accounts/{id}`.
    pub async fn account(&self, id: &str) -> Result<AccountView, ClientError> {
        self.get_json(&format!("/api/v1/accounts/{}", segment(id))).await
    }

    /// `POST /api/v1/accounts/{id}/kyc`.
    pub async fn set_kyc(&self, id: &str, kyc: KycDto) -> Result<AccountView, ClientError> {
        self.post_json(&format!("/api/v1/accounts/{}/kyc", segment(id)), &SetKyc { kyc }, None).await
    }

    /// `GET /api/v1/accounts/{id}/balance`.
    pub async fn balance(&self, id: &str) -> Result<BalanceView, ClientError> {
        self.get_json(&format!("/api/v1/accounts/{}/balance", segment(id))).await
    }

    /// `GET /api/v1/accounts/{id}/history`, newest first.
    pub async fn history(&self, id: &str, query: &ListQuery) -> Result<Page<HistoryView>, ClientError> {
        self.get_json(&format!("/api/v1/accounts/{}/history{}", segment(id), query_string(query))).await
    }

    /// `GET /api/v1/accounts/{id}/notifications`, newest first.
    pub async fn notifications(&self, id: &str, query: &ListQuery) -> Result<Page<NotificationView>, ClientError> {
        self.get_json(&format!("/api/v1/accounts/{}/notifications{}", segment(id), query_string(query))).await
    }

    /// `GET /api/v1/directory/{iin_bin}`: a holder's DAs at every bank.
    pub async fn directory(&self, iin_bin: &str) -> Result<Vec<DirectoryEntryView>, ClientError> {
        self.get_json(&format!("/api/v1/directory/{}", segment(iin_bin))).await
    }

    // ---- payments -------------------------------------------------------

    /// `POST /api/v1/transfers`; a repeat with the same `idempotency_key` and body gets the same answer, once.
    pub async fn transfer(
        &self,
        request: &TransferRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/transfers", request, idempotency_key).await
    }

    /// `POST /api/v1/offline/certificates`: the bank certifies a device key.
    pub async fn offline_certify(&self, request: &CertifyDevice) -> Result<CertificateView, ClientError> {
        self.post_json("/api/v1/offline/certificates", request, None).await
    }

    /// `POST /api/v1/offline/loads`: funds a device's purse from a DA into the bank's offline reserve.
    pub async fn offline_fund(
        &self,
        request: &FundPurse,
        idempotency_key: Option<&str>,
    ) -> Result<LoadView, ClientError> {
        self.post_json("/api/v1/offline/loads", request, idempotency_key).await
    }

    /// `POST /api/v1/offline/deposits`: deposits a chain received offline into a DA.
    pub async fn offline_deposit(
        &self,
        request: &DepositChain,
        idempotency_key: Option<&str>,
    ) -> Result<DepositView, ClientError> {
        self.post_json("/api/v1/offline/deposits", request, idempotency_key).await
    }

    /// `GET /api/v1/offline/trust`: bank keys and revocation lists for wallets.
    pub async fn offline_trust(&self) -> Result<OfflineTrustView, ClientError> {
        self.get_json("/api/v1/offline/trust").await
    }

    /// `POST /api/v1/transfers/prepare`: a transaction for a client-signing holder to sign.
    pub async fn prepare_transfer(&self, request: &TransferRequest) -> Result<PreparedView, ClientError> {
        self.post_json("/api/v1/transfers/prepare", request, None).await
    }

    /// `POST /api/v1/transfers/submit`: the signed transaction (canonical encoding, hex).
    pub async fn submit_transfer(&self, transaction_hex: &str) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/transfers/submit", &SubmitSigned { transaction: transaction_hex.to_string() }, None)
            .await
    }

    /// `GET /api/v1/transactions/{tx}`.
    pub async fn transaction(&self, tx: &str) -> Result<TransactionView, ClientError> {
        self.get_json(&format!("/api/v1/transactions/{}", segment(tx))).await
    }

    /// `GET /api/v1/tokens/{token}/lineage` (`token` = `<tx id>:<index>`).
    pub async fn lineage(&self, token: &str) -> Result<LineageView, ClientError> {
        self.get_json(&format!("/api/v1/tokens/{}/lineage", segment(token))).await
    }

    /// `GET /api/v1/notary/receipts/{tx}`.
    pub async fn receipt(&self, tx: &str) -> Result<ReceiptView, ClientError> {
        self.get_json(&format!("/api/v1/notary/receipts/{}", segment(tx))).await
    }

    // ---- QR payments ----------------------------------------------------

    /// `POST /api/v1/qr/check`: what a QR asks to pay, checked by the caller's bank.
    pub async fn check_qr(&self, payload: &str) -> Result<QrView, ClientError> {
        self.post_json("/api/v1/qr/check", &QrCheck { payload: payload.to_string() }, None).await
    }

    /// `POST /api/v1/qr/pay`: a custodial DA pays a QR (a dynamic one at most once).
    pub async fn pay_qr(
        &self,
        request: &QrPayRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/qr/pay", request, idempotency_key).await
    }

    /// `POST /api/v1/qr/prepare`: a QR payment for a client-signing holder to sign.
    pub async fn prepare_qr(&self, request: &QrPayRequest) -> Result<PreparedView, ClientError> {
        self.post_json("/api/v1/qr/prepare", request, None).await
    }

    /// `POST /api/v1/qr/submit`: the signed QR payment (canonical encoding, hex).
    pub async fn submit_qr(&self, transaction_hex: &str) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/qr/submit", &QrSubmit { transaction: transaction_hex.to_string() }, None).await
    }

    // ---- conversion and statistics --------------------------------------

    /// `POST /api/v1/conversions` (banks and the Treasury).
    pub async fn request_conversion(
        &self,
        kind: ConversionKindDto,
        amount_tiyn: u64,
        idempotency_key: Option<&str>,
    ) -> Result<ConversionView, ClientError> {
        self.post_json("/api/v1/conversions", &ConversionRequestBody { kind, amount_tiyn }, idempotency_key).await
    }

    /// `GET /api/v1/conversions`: the caller's requests (NBK: all), newest first.
    pub async fn conversions(&self, query: &ListQuery) -> Result<Page<ConversionView>, ClientError> {
        self.get_json(&format!("/api/v1/conversions{}", query_string(query))).await
    }

    /// `GET /api/v1/conversions/{id}`.
    pub async fn conversion(&self, id: &str) -> Result<ConversionView, ClientError> {
        self.get_json(&format!("/api/v1/conversions/{}", segment(id))).await
    }

    /// `POST /api/v1/conversions/{id}/approve` (NBK).
    pub async fn approve_conversion(&self, id: &str, operator: &str) -> Result<ConversionView, ClientError> {
        let body = Decision { operator: operator.to_string(), reason: None };
        self.post_json(&format!("/api/v1/conversions/{}/approve", segment(id)), &body, None).await
    }

    /// `POST /api/v1/conversions/{id}/reject` (NBK).
    pub async fn reject_conversion(
        &self,
        id: &str,
        operator: &str,
        reason: &str,
    ) -> Result<ConversionView, ClientError> {
        let body = Decision { operator: operator.to_string(), reason: Some(reason.to_string()) };
        self.post_json(&format!("/api/v1/conversions/{}/reject", segment(id)), &body, None).await
    }

    /// `GET /api/v1/stats/supply` (NBK).
    pub async fn supply(&self) -> Result<SupplyView, ClientError> {
        self.get_json("/api/v1/stats/supply").await
    }

    /// `GET /api/v1/stats/volumes` (NBK; `from_ms`/`to_ms` filter).
    pub async fn volumes(&self, query: &ListQuery) -> Result<Vec<DayVolume>, ClientError> {
        self.get_json(&format!("/api/v1/stats/volumes{}", query_string(query))).await
    }

    // ---- programmable money: holds, marking, contracts, VAT, mandates, PvP ----

    /// `POST /api/v1/holds`: holds a DA's funds for an oracle event.
    pub async fn hold(
        &self,
        request: &HoldRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/holds", request, idempotency_key).await
    }

    /// `POST /api/v1/holds/{event}/release`: releases what the oracle says is releasable.
    pub async fn release_hold(
        &self,
        event: &str,
        account: &str,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        let body = AccountRef { account: account.to_string() };
        self.post_json(&format!("/api/v1/holds/{}/release", segment(event)), &body, idempotency_key).await
    }

    /// `POST /api/v1/holds/{event}/cancel`: returns funds held for a cancelled event.
    pub async fn cancel_hold(
        &self,
        event: &str,
        account: &str,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        let body = AccountRef { account: account.to_string() };
        self.post_json(&format!("/api/v1/holds/{}/cancel", segment(event)), &body, idempotency_key).await
    }

    /// `POST /api/v1/holds/{event}/expire`: returns held funds after valid-until.
    pub async fn expire_hold(
        &self,
        event: &str,
        account: &str,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        let body = AccountRef { account: account.to_string() };
        self.post_json(&format!("/api/v1/holds/{}/expire", segment(event)), &body, idempotency_key).await
    }

    /// `GET /api/v1/accounts/{id}/holds`: the DA's held funds by event.
    pub async fn holds(&self, id: &str) -> Result<Vec<HeldView>, ClientError> {
        self.get_json(&format!("/api/v1/accounts/{}/holds", segment(id))).await
    }

    /// `POST /api/v1/markings/address` (Treasury): pays funds marked by address.
    pub async fn mark_address(
        &self,
        request: &MarkAddressRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/markings/address", request, idempotency_key).await
    }

    /// `POST /api/v1/markings/parameter`: pays funds marked with an oracle parameter.
    pub async fn mark_parameter(
        &self,
        request: &MarkParameterRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/markings/parameter", request, idempotency_key).await
    }

    /// `POST /api/v1/transfers/marked`: pays address-marked funds to the next level.
    pub async fn pay_marked(
        &self,
        request: &MarkedTransferRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/transfers/marked", request, idempotency_key).await
    }

    /// `POST /api/v1/contract-payments`: pays parameter-marked funds under a contract.
    pub async fn contract_payment(
        &self,
        request: &ContractPaymentRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/contract-payments", request, idempotency_key).await
    }

    /// `POST /api/v1/invoices/{id}/pay`: pays an e-invoice from `account`.
    pub async fn pay_invoice(
        &self,
        invoice: &str,
        account: &str,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        let body = AccountRef { account: account.to_string() };
        self.post_json(&format!("/api/v1/invoices/{}/pay", segment(invoice)), &body, idempotency_key).await
    }

    /// `POST /api/v1/vat-payments`: pays VAT tokens to the tax authority.
    pub async fn pay_vat(
        &self,
        request: &VatPaymentRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/vat-payments", request, idempotency_key).await
    }

    /// `POST /api/v1/mandates`: reserves funds a grantee may debit.
    pub async fn grant_mandate(
        &self,
        request: &GrantMandateRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/mandates", request, idempotency_key).await
    }

    /// `POST /api/v1/mandates/{mandate}/debit`: the grantee debits the owner's reserved funds.
    pub async fn debit(
        &self,
        mandate: &str,
        request: &DebitRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json(&format!("/api/v1/mandates/{}/debit", segment(mandate)), request, idempotency_key).await
    }

    /// `POST /api/v1/mandates/{mandate}/revoke`: the owner takes the reserved funds back.
    pub async fn revoke_mandate(
        &self,
        mandate: &str,
        account: &str,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        let body = AccountRef { account: account.to_string() };
        self.post_json(&format!("/api/v1/mandates/{}/revoke", segment(mandate)), &body, idempotency_key).await
    }

    /// `POST /api/v1/pvp`: both legs of a two-currency exchange in one transaction.
    pub async fn pvp(&self, request: &PvpRequest, idempotency_key: Option<&str>) -> Result<TxOutcomeView, ClientError> {
        self.post_json("/api/v1/pvp", request, idempotency_key).await
    }

    // ---- stablecoins ------------------------------------------------------

    /// `GET /api/v1/stablecoins` (NBK): every stablecoin's supply and reserve.
    pub async fn stablecoins(&self) -> Result<Vec<StablecoinView>, ClientError> {
        self.get_json("/api/v1/stablecoins").await
    }

    /// `GET /api/v1/stablecoins/{code}/reserves` (any participant): the
    /// oracle-attested proof of reserves.
    pub async fn reserves(&self, code: &str) -> Result<ReservesView, ClientError> {
        self.get_json(&format!("/api/v1/stablecoins/{}/reserves", segment(code))).await
    }

    /// `POST /api/v1/stablecoins/{code}/mint` (the licensed issuer): mints
    /// against the same DT moved into the reserve.
    pub async fn mint(
        &self,
        code: &str,
        request: &SupplyChangeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json(&format!("/api/v1/stablecoins/{}/mint", segment(code)), request, idempotency_key).await
    }

    /// `POST /api/v1/stablecoins/{code}/burn` (the licensed issuer): burns
    /// stablecoin it holds, releasing the same DT from the reserve.
    pub async fn burn(
        &self,
        code: &str,
        request: &SupplyChangeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json(&format!("/api/v1/stablecoins/{}/burn", segment(code)), request, idempotency_key).await
    }

    /// `POST /api/v1/stablecoins/{code}/transfers`: a payment in the stablecoin.
    pub async fn stablecoin_transfer(
        &self,
        code: &str,
        request: &StablecoinTransferRequest,
        idempotency_key: Option<&str>,
    ) -> Result<TxOutcomeView, ClientError> {
        self.post_json(&format!("/api/v1/stablecoins/{}/transfers", segment(code)), request, idempotency_key).await
    }

    // ---- the oracle's registries ------------------------------------------

    /// `POST /api/v1/oracle/providers` (NBK): registers an event provider or replaces its registries.
    pub async fn register_provider(
        &self,
        request: &ProviderRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ProviderRequest, ClientError> {
        self.post_json("/api/v1/oracle/providers", request, idempotency_key).await
    }

    /// `POST /api/v1/oracle/events` (provider).
    pub async fn register_event(
        &self,
        request: &EventRequest,
        idempotency_key: Option<&str>,
    ) -> Result<EventView, ClientError> {
        self.post_json("/api/v1/oracle/events", request, idempotency_key).await
    }

    /// `GET /api/v1/oracle/events`: the events the caller may see.
    pub async fn events(&self, query: &ListQuery) -> Result<Page<EventView>, ClientError> {
        self.get_json(&format!("/api/v1/oracle/events{}", query_string(query))).await
    }

    /// `GET /api/v1/oracle/events/{id}`.
    pub async fn event(&self, id: &str) -> Result<EventView, ClientError> {
        self.get_json(&format!("/api/v1/oracle/events/{}", segment(id))).await
    }

    /// `POST /api/v1/oracle/events/{id}/occurrences` (the event's provider).
    pub async fn report_occurrence(
        &self,
        id: &str,
        request: &OccurrenceRequest,
        idempotency_key: Option<&str>,
    ) -> Result<EventView, ClientError> {
        self.post_json(&format!("/api/v1/oracle/events/{}/occurrences", segment(id)), request, idempotency_key).await
    }

    /// `POST /api/v1/oracle/events/{id}/cancel` (the event's provider).
    pub async fn cancel_event(&self, id: &str, idempotency_key: Option<&str>) -> Result<EventView, ClientError> {
        self.post_json(&format!("/api/v1/oracle/events/{}/cancel", segment(id)), &Empty {}, idempotency_key).await
    }

    /// `POST /api/v1/oracle/parameters` (the Smart Contract Portal).
    pub async fn register_parameter(
        &self,
        request: &ParameterRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ParameterRequest, ClientError> {
        self.post_json("/api/v1/oracle/parameters", request, idempotency_key).await
    }

    /// `POST /api/v1/oracle/contracts` (the Smart Contract Portal).
    pub async fn register_contract(
        &self,
        request: &ContractRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ContractView, ClientError> {
        self.post_json("/api/v1/oracle/contracts", request, idempotency_key).await
    }

    /// `GET /api/v1/oracle/contracts/{parameter}/{number}`.
    pub async fn contract(&self, parameter: &str, number: &str) -> Result<ContractView, ClientError> {
        self.get_json(&format!("/api/v1/oracle/contracts/{}/{}", segment(parameter), segment(number))).await
    }

    /// `POST /api/v1/oracle/contracts/{parameter}/{number}/amend` (the contract's provider).
    pub async fn amend_contract(
        &self,
        parameter: &str,
        number: &str,
        request: &AmendRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ContractView, ClientError> {
        let path = format!("/api/v1/oracle/contracts/{}/{}/amend", segment(parameter), segment(number));
        self.post_json(&path, request, idempotency_key).await
    }

    /// `POST /api/v1/oracle/invoices` (the tax service).
    pub async fn register_invoice(
        &self,
        request: &InvoiceRequest,
        idempotency_key: Option<&str>,
    ) -> Result<InvoiceView, ClientError> {
        self.post_json("/api/v1/oracle/invoices", request, idempotency_key).await
    }

    /// `GET /api/v1/oracle/invoices/{id}`.
    pub async fn invoice(&self, id: &str) -> Result<InvoiceView, ClientError> {
        self.get_json(&format!("/api/v1/oracle/invoices/{}", segment(id))).await
    }

    /// `POST /api/v1/oracle/fx-rates` (the FX provider).
    pub async fn set_rate(
        &self,
        request: &RateRequest,
        idempotency_key: Option<&str>,
    ) -> Result<RateView, ClientError> {
        self.post_json("/api/v1/oracle/fx-rates", request, idempotency_key).await
    }

    /// `GET /api/v1/oracle/fx-rates/{base}/{quote}`.
    pub async fn rate(&self, base: &str, quote: &str) -> Result<RateView, ClientError> {
        self.get_json(&format!("/api/v1/oracle/fx-rates/{}/{}", segment(base), segment(quote))).await
    }

    // ---- account regime: tiers, limits, rotation, closing ----------------

    /// `GET /api/v1/accounts/{id}/profile`: tier, limits, linked account, orders in force.
    pub async fn profile(&self, id: &str) -> Result<ProfileView, ClientError> {
        self.get_json(&format!("/api/v1/accounts/{}/profile", segment(id))).await
    }

    /// `POST /api/v1/accounts/{id}/profile`: sets the tier and/or the linked bank account.
    pub async fn set_profile(&self, id: &str, body: &ProfileBody) -> Result<ProfileView, ClientError> {
        self.post_json(&format!("/api/v1/accounts/{}/profile", segment(id)), body, None).await
    }

    /// `POST /api/v1/accounts/{id}/rekey`: a new key after re-identification; the old one is revoked.
    pub async fn rekey(&self, id: &str, body: &RekeyBody) -> Result<RekeyView, ClientError> {
        self.post_json(&format!("/api/v1/accounts/{}/rekey", segment(id)), body, None).await
    }

    /// `POST /api/v1/accounts/{id}/close`: at zero balance, or converting it out first.
    pub async fn close_account(&self, id: &str, convert_out: bool) -> Result<ProfileView, ClientError> {
        self.post_json(&format!("/api/v1/accounts/{}/close", segment(id)), &CloseBody { convert_out }, None).await
    }

    /// `GET /api/v1/limits`: the limit policy in force on the caller's node.
    pub async fn limits(&self) -> Result<PolicyView, ClientError> {
        self.get_json("/api/v1/limits").await
    }

    /// `POST /api/v1/nbk/limits` (NBK): publishes tier limits to every node.
    pub async fn publish_limits(&self, body: &LimitsBody) -> Result<PolicyView, ClientError> {
        self.post_json("/api/v1/nbk/limits", body, None).await
    }

    // ---- cards ----------------------------------------------------------

    /// `POST /api/v1/cards`: links a card (token, last four, expiry) to a DA of the caller's node.
    pub async fn link_card(
        &self,
        request: &LinkCardRequest,
        idempotency_key: Option<&str>,
    ) -> Result<CardView, ClientError> {
        self.post_json("/api/v1/cards", request, idempotency_key).await
    }

    /// `GET /api/v1/cards/{token}`: a card linked at the caller's node.
    pub async fn card(&self, token: &str) -> Result<CardView, ClientError> {
        self.get_json(&format!("/api/v1/cards/{}", segment(token))).await
    }

    /// `POST /api/v1/cards/messages`: relays a card network message to the
    /// caller as issuing bank; the answer carries the scheme's response code.
    pub async fn card_message(
        &self,
        request: &CardMessageRequest,
        idempotency_key: Option<&str>,
    ) -> Result<CardMessageResponse, ClientError> {
        self.post_json("/api/v1/cards/messages", request, idempotency_key).await
    }

    /// `POST /api/v1/cards/{token}/unlink`: unlinks a card; new authorisations
    /// under its token are declined 14, open ones keep their course.
    pub async fn unlink_card(&self, token: &str, idempotency_key: Option<&str>) -> Result<CardView, ClientError> {
        self.post_json(&format!("/api/v1/cards/{}/unlink", segment(token)), &UnlinkCardRequest {}, idempotency_key)
            .await
    }

    /// `GET /api/v1/cards/payments/{rrn}`: a card payment at the caller's node.
    pub async fn card_payment(&self, rrn: &str) -> Result<CardPaymentView, ClientError> {
        self.get_json(&format!("/api/v1/cards/payments/{}", segment(rrn))).await
    }

    // ---- enforcement ----------------------------------------------------

    /// `POST /api/v1/enforcement/orders` (an authority): signs `order` with
    /// this client's key and delivers it to the DA's bank.
    pub async fn place_order(
        &self,
        bank: &str,
        order: &dtenge_types::EnforcementOrder,
    ) -> Result<OrderView, ClientError> {
        let signature = self.key.sign(&order.signing_message());
        let act = match &order.act {
            dtenge_types::OrderAct::Freeze => OrderActDto::Freeze,
            dtenge_types::OrderAct::Arrest { amount } => OrderActDto::Arrest { amount_tiyn: amount.tiyn() },
            dtenge_types::OrderAct::Collect { amount, beneficiary } => {
                OrderActDto::Collect { amount_tiyn: amount.tiyn(), beneficiary: beneficiary.to_string() }
            }
            dtenge_types::OrderAct::Lift { order } => OrderActDto::Lift { order: order.to_string() },
        };
        let body = OrderBody {
            bank: bank.to_string(),
            reference: order.reference.to_string(),
            debtor: order.debtor.to_string(),
            act,
            reason: order.reason.to_string(),
            issued_at_ms: order.issued_at.millis(),
            signature: signature.to_string(),
        };
        self.post_json("/api/v1/enforcement/orders", &body, None).await
    }

    /// `GET /api/v1/enforcement/orders`: a bank sees every order on its DAs, an authority its own orders.
    pub async fn orders(&self) -> Result<Vec<OrderView>, ClientError> {
        self.get_json("/api/v1/enforcement/orders").await
    }

    // ---- regulator view (NBK) -------------------------------------------

    /// `GET /api/v1/regulator/aggregates`.
    pub async fn regulator_aggregates(&self, q: &ReportQuery) -> Result<Vec<BankAggregatesView>, ClientError> {
        self.get_json(&format!("/api/v1/regulator/aggregates{}", report_query(q))).await
    }

    /// `GET /api/v1/regulator/large-payments`.
    pub async fn regulator_large_payments(&self, q: &ReportQuery) -> Result<Vec<LargePaymentView>, ClientError> {
        self.get_json(&format!("/api/v1/regulator/large-payments{}", report_query(q))).await
    }

    /// `GET /api/v1/regulator/marked-funds`.
    pub async fn regulator_marked_funds(&self, q: &ReportQuery) -> Result<Vec<MarkedReportView>, ClientError> {
        self.get_json(&format!("/api/v1/regulator/marked-funds{}", report_query(q))).await
    }
}

/// The query string of a regulator report.
pub fn report_query(q: &ReportQuery) -> String {
    let parts: Vec<String> = [("from_ms", q.from_ms), ("to_ms", q.to_ms), ("threshold_tiyn", q.threshold_tiyn)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?page=…&per_page=…&from_ms=…&to_ms=…&status=…&type=…` for the fields set, or "".
pub fn query_string(q: &ListQuery) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(v) = q.page {
        parts.push(format!("page={v}"));
    }
    if let Some(v) = q.per_page {
        parts.push(format!("per_page={v}"));
    }
    if let Some(v) = q.from_ms {
        parts.push(format!("from_ms={v}"));
    }
    if let Some(v) = q.to_ms {
        parts.push(format!("to_ms={v}"));
    }
    if let Some(v) = &q.status {
        parts.push(format!("status={}", segment(v)));
    }
    if let Some(v) = &q.kind {
        parts.push(format!("type={}", segment(v)));
    }
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_encode_only_what_is_set() {
        assert_eq!(query_string(&ListQuery::default()), "");
        let q = ListQuery {
            page: Some(2),
            per_page: Some(5),
            status: Some("success".into()),
            kind: Some("a b&c".into()),
            ..ListQuery::default()
        };
        assert_eq!(query_string(&q), "?page=2&per_page=5&status=success&type=a%20b%26c");
        assert_eq!(segment("STB1-000001"), "STB1-000001");
        assert_eq!(segment("ab/c?"), "ab%2Fc%3F");
    }
}
