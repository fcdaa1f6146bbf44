//! The reference wallet at `/wallet/` (issue 21.1): what a bank embeds in
//! its mobile app. A person's key is made in the browser (WebCrypto
//! Ed25519, non-extractable, kept in IndexedDB); the bank never holds it.
//!
//! ```text
//! browser (key in IndexedDB) ──RFC 9421, keyid = the DA's key──► /wallet/api/<call> (this module)
//!   signs every request and every transaction                   │ the wallet's bank (a participant)
//!                                                               ▼
//!                                dtenge-client in process ──► /api/v1/… (prepare → the browser signs → submit)
//! ```
//!
//! Every wallet call is a POST whose body is JSON, signed by the holder the
//! way the API's callers sign (`dtenge_api_types::signing`, the same
//! verifier), with `keyid` = the holder's public key (hex): opening a DA
//! proves possession of the key it registers; every other call names the DA
//! and is accepted only if the DA's address is that key. A payment is
//! prepared by the bank, its id signed in the browser, and submitted with
//! that signature — the client-signed path of the API. QR codes: made here
//! as SVG (`qrcode`); read in the page (the vendored `jsQR`, from the camera
//! or an image the person picks), so no image ever reaches this server —
//! only the QR's text, which the bank checks. A dynamic QR for a merchant is
//! signed with the bank's key (`dtenge_api_types::qr`).
//!
//! Invariants: nonces are remembered for the signature freshness window and
//! a replayed one is refused; at most [`NONCES_MAX`] are held (full: 503);
//! a call's body is at most [`BODY_BYTES_MAX`] bytes.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dtenge_api_types::qr::{self, QrPayment};
use dtenge_api_types::signing::{self, Message};
use dtenge_client::{
    AccountView, CertifyDevice, Client, DepositChain, FundPurse, HolderKindDto, KycDto, ListQuery, OpenAccount,
    QrPayRequest, Recipient, TransferRequest,
};
use dtenge_crypto::{Ed25519, PublicKey, Signature, Signer, Verifier};
use dtenge_net::Clock;
use dtenge_types::{Transaction, TxSignature};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::UiError;

/// The bank a `dtenge serve` wallet opens DAs at.
pub const WALLET_BANK: &str = "STB1";
/// Most nonces remembered (within the freshness window).
pub const NONCES_MAX: usize = 100_000;
/// Largest body of a wallet call (JSON; QR images are read in the page and
/// never sent).
pub const BODY_BYTES_MAX: usize = 1 << 20;
/// Longest a merchant's dynamic QR may stay valid.
pub const QR_TTL_S_MAX: u64 = 3_600;
/// History lines and notifications shown.
pub const LINES_SHOWN: usize = 20;

/// The wallet's side of the bank.
pub struct Wallet {
    bank: String,
    client: Client,
    bank_key: Arc<dyn Signer>,
    clock: Arc<dyn Clock>,
    nonces: Mutex<Nonces>,
}

#[derive(Default)]
struct Nonces {
    seen: HashSet<String>,
    order: VecDeque<(u64, String)>,
}

type Shared = Arc<Wallet>;

impl Wallet {
    /// The wallet of `bank`, calling the API as that bank with its key.
    pub fn new(bank: &str, client: Client, bank_key: Arc<dyn Signer>, clock: Arc<dyn Clock>) -> Wallet {
        Wallet { bank: bank.to_string(), client, bank_key, clock, nonces: Mutex::default() }
    }

    fn now_s(&self) -> u64 {
        self.clock.now().millis() / 1_000
    }

    /// Checks a holder's signed request; its key and JSON body.
    fn admit(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(PublicKey, Value), UiError> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| UiError::BadInput("the Host header is missing; the signature covers @target-uri".into()))?;
        let target = format!("http://{host}{}", uri.path_and_query().map_or(uri.path(), |p| p.as_str()));
        let mut fields = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let value =
                value.to_str().map_err(|_| UiError::BadInput(format!("header {name} is not visible ASCII text")))?;
            fields.push((name.as_str(), value));
        }
        let message = Message { method: method.as_str(), target_uri: &target, headers: &fields, body };
        let now_s = self.now_s();
        let key_of = |id: &str| id.parse::<PublicKey>().ok();
        let verified = signing::verify(&message, now_s, key_of, &Ed25519)
            .map_err(|e| UiError::Forbidden(format!("request signature: {e} ({})", e.code())))?;
        self.remember(now_s, verified.nonce)?;
        let key: PublicKey = verified.keyid.parse().map_err(|_| UiError::BadInput("keyid: not a key".into()))?;
        let value = serde_json::from_slice(body).map_err(|e| UiError::BadInput(format!("request body: {e}")))?;
        Ok((key, value))
    }

    fn remember(&self, now_s: u64, nonce: String) -> Result<(), UiError> {
        let mut n = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let horizon = now_s.saturating_sub(signing::MAX_AGE_S + signing::MAX_FUTURE_S);
        while n.order.front().is_some_and(|(at, _)| *at < horizon) {
            if let Some((_, old)) = n.order.pop_front() {
                n.seen.remove(&old);
            }
        }
        if n.seen.contains(&nonce) {
            return Err(UiError::Forbidden("request signature: this nonce was already used (replay)".into()));
        }
        if n.order.len() >= NONCES_MAX {
            return Err(UiError::Conflict("too many requests at once; retry in a minute".into()));
        }
        n.seen.insert(nonce.clone());
        n.order.push_back((now_s, nonce));
        Ok(())
    }

    /// The holder's DA named in the body, if its address is the signing key.
    async fn own(&self, key: &PublicKey, body: &Value) -> Result<AccountView, UiError> {
        let id =
            body.get("account").and_then(Value::as_str).ok_or_else(|| UiError::BadInput("account: required".into()))?;
        let account = self.client.account(id).await.map_err(|e| match e.status() {
            Some(400) | Some(403) | Some(404) => UiError::Forbidden(format!("{id} is not a DA of this key")),
            _ => UiError::Api(e),
        })?;
        if account.address != key.to_string() || account.custody != "client" {
            return Err(UiError::Forbidden(format!("{id} is not a DA of this key")));
        }
        Ok(account)
    }
}

/// A holder's request, its signature checked ([`Wallet::admit`]): the
/// signing key and the JSON body.
struct Signed {
    key: PublicKey,
    body: Value,
}

impl FromRequest<Shared> for Signed {
    type Rejection = Response;

    async fn from_request(req: Request, w: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        // The body limit travels in the extensions.
        let mut body = Request::new(body);
        *body.extensions_mut() = std::mem::take(&mut parts.extensions);
        let bytes = Bytes::from_request(body, w).await.map_err(IntoResponse::into_response)?;
        let (key, body) =
            w.admit(&parts.method, &parts.uri, &parts.headers, &bytes).map_err(IntoResponse::into_response)?;
        Ok(Signed { key, body })
    }
}

/// A holder's signed request about its own DA, the one the body names
/// ([`Wallet::own`]).
struct OwnDa {
    key: PublicKey,
    account: AccountView,
    body: Value,
}

impl FromRequest<Shared> for OwnDa {
    type Rejection = Response;

    async fn from_request(req: Request, w: &Shared) -> Result<Self, Response> {
        let Signed { key, body } = Signed::from_request(req, w).await?;
        let account = w.own(&key, &body).await.map_err(IntoResponse::into_response)?;
        Ok(OwnDa { key, account, body })
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, UiError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UiError::BadInput(format!("{name}: required")))
}

fn optional<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// The QR code of `text` as an SVG document.
pub fn qr_svg(text: &str) -> Result<String, UiError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| UiError::BadInput(format!("QR: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build())
}

fn money(tiyn: u64) -> String {
    format!("{}.{:02}", tiyn / 100, tiyn % 100)
}

async fn open(State(w): State<Shared>, Signed { key, body }: Signed) -> Result<Json<Value>, UiError> {
    let kind = match optional(&body, "kind").unwrap_or("individual") {
        "individual" => HolderKindDto::Individual,
        "legal_entity" => HolderKindDto::LegalEntity,
        other => return Err(UiError::BadInput(format!("kind: {other:?} is neither individual nor legal_entity"))),
    };
    let request = OpenAccount {
        iin_bin: field(&body, "iin_bin")?.to_string(),
        name: field(&body, "name")?.to_string(),
        kind,
        // The bank's identification happens before this page opens a DA (SPEC's KYC); the reference
        // wallet stands for a bank that identified the person in its app.
        kyc: Some(KycDto::Verified),
        client_public_key: Some(key.to_string()),
    };
    let account = w.client.open_account(&request, None).await?;
    Ok(Json(serde_json::to_value(account).unwrap_or_default()))
}

async fn home(State(w): State<Shared>, OwnDa { account, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let q = ListQuery { per_page: Some(LINES_SHOWN), ..ListQuery::default() };
    let balance = w.client.balance(&account.id).await?;
    let history = w.client.history(&account.id, &q).await?;
    let notifications = w.client.notifications(&account.id, &q).await?;
    Ok(Json(
        json!({"account": account, "balance": balance, "history": history.items, "notifications": notifications.items, "bank": w.bank}),
    ))
}

/// What a QR asks to pay, as the bank checked it; a dynamic QR already paid is refused here.
async fn checked_qr(w: &Wallet, payload: String) -> Result<Json<Value>, UiError> {
    let view = w.client.check_qr(&payload).await?;
    if let Some(tx) = &view.paid_by {
        return Err(UiError::QrAlreadyPaid(tx.to_string()));
    }
    Ok(Json(json!({"payload": payload, "qr": view})))
}

async fn check_qr(State(w): State<Shared>, OwnDa { body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    checked_qr(&w, field(&body, "payload")?.to_string()).await
}

async fn prepare(State(w): State<Shared>, OwnDa { account, body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let amount = optional(&body, "amount").map(|a| crate::execute::amount_tiyn(a, "amount")).transpose()?;
    let prepared = if let Some(payload) = optional(&body, "qr_payload") {
        let request = QrPayRequest { from: account.id.clone(), payload: payload.to_string(), amount_tiyn: amount };
        w.client.prepare_qr(&request).await?
    } else {
        let amount = amount.ok_or_else(|| UiError::BadInput("amount: required".into()))?;
        let to = match (optional(&body, "to_address"), optional(&body, "to_iin_bin"), optional(&body, "to_bank")) {
            (Some(address), None, _) => Recipient::address(address, amount),
            (None, Some(iin), Some(bank)) => Recipient::holder(iin, bank, amount),
            _ => return Err(UiError::BadInput("to: give an address, or an IIN/BIN and a bank".into())),
        };
        let memo = optional(&body, "memo").map(str::to_string);
        w.client.prepare_transfer(&TransferRequest { from: account.id.clone(), to: vec![to], memo }).await?
    };
    Ok(Json(serde_json::to_value(prepared).unwrap_or_default()))
}

async fn submit(State(w): State<Shared>, OwnDa { key, body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let bytes =
        hex::decode(field(&body, "transaction")?).map_err(|_| UiError::BadInput("transaction: not hex".into()))?;
    let mut tx: Transaction =
        dtenge_types::decode_transaction(&bytes).map_err(|e| UiError::BadInput(format!("transaction: {e}")))?;
    let signature: [u8; 64] = hex::decode(field(&body, "signature")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| UiError::BadInput("signature: not 64 bytes of hex".into()))?;
    let signature = Signature(signature);
    // Checked here so a wrong signature is named plainly, before the node sees it.
    Ed25519
        .verify(&key, &tx.id().signing_message(), &signature)
        .map_err(|_| UiError::BadInput("signature: does not verify for this transaction and key".into()))?;
    tx.signatures
        .try_push(TxSignature { signer: key, signature })
        .map_err(|e| UiError::BadInput(format!("transaction: {e}")))?;
    let signed = hex::encode(dtenge_types::encoding::encode(&tx));
    let outcome = if body.get("qr").and_then(Value::as_bool).unwrap_or(false) {
        w.client.submit_qr(&signed).await?
    } else {
        w.client.submit_transfer(&signed).await?
    };
    Ok(Json(serde_json::to_value(outcome).unwrap_or_default()))
}

async fn receive(State(w): State<Shared>, OwnDa { account, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let payee = payee_of(&w, &account);
    let payload = qr::encode_static(&payee).map_err(|e| UiError::BadInput(e.to_string()))?;
    Ok(Json(json!({"payload": payload, "svg": qr_svg(&payload)?, "address": account.address})))
}

fn payee_of(w: &Wallet, account: &AccountView) -> QrPayment {
    QrPayment {
        address: account.address.clone(),
        bank: w.bank.clone(),
        name: account.name.chars().take(qr::NAME_CHARS_MAX).collect(),
        city: "Astana".into(),
        amount_tiyn: None,
        reference: None,
        expires_at_s: None,
    }
}

#[derive(Deserialize)]
struct MerchantQr {
    amount: String,
    reference: String,
    #[serde(default)]
    ttl_s: Option<u64>,
}

async fn merchant_qr(State(w): State<Shared>, OwnDa { account, body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let ask: MerchantQr = serde_json::from_value(body).map_err(|e| UiError::BadInput(format!("request body: {e}")))?;
    let ttl_s = ask.ttl_s.unwrap_or(300);
    if ttl_s == 0 || ttl_s > QR_TTL_S_MAX {
        return Err(UiError::BadInput(format!("ttl_s: 1–{QR_TTL_S_MAX} seconds")));
    }
    let amount = crate::execute::amount_tiyn(&ask.amount, "amount")?;
    let expires_at_s = w.now_s().saturating_add(ttl_s);
    let order = QrPayment {
        amount_tiyn: Some(amount),
        reference: Some(ask.reference.trim().to_string()),
        expires_at_s: Some(expires_at_s),
        ..payee_of(&w, &account)
    };
    let payload = qr::encode_dynamic(&order, w.bank_key.as_ref()).map_err(|e| UiError::BadInput(e.to_string()))?;
    Ok(Json(
        json!({"payload": payload, "svg": qr_svg(&payload)?, "expires_at_s": expires_at_s, "amount": money(amount)}),
    ))
}

async fn merchant_status(State(w): State<Shared>, OwnDa { account, body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let memo = format!("QR {}", field(&body, "reference")?);
    let q = ListQuery { per_page: Some(LINES_SHOWN), ..ListQuery::default() };
    let history = w.client.history(&account.id, &q).await?;
    let paid = history.items.iter().find(|h| h.memo.as_deref() == Some(memo.as_str()) && h.incoming_tiyn > 0);
    Ok(Json(
        json!({"paid": paid.is_some(), "tx": paid.map(|h| h.tx.clone()), "amount_tiyn": paid.map(|h| h.incoming_tiyn)}),
    ))
}

// The offline purse (issue 21.5, docs/offline.md "The wallet's purse"): the
// device key, its counter, the holdings and the verification of a received
// payment live in the page (offline.js) and work with no network; these calls
// are the online ends — certify, load, trust, deposit — each for the signer's
// own DA.

async fn offline_certify(State(w): State<Shared>, OwnDa { body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let next_counter = body
        .get("next_counter")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| UiError::BadInput("next_counter: a counter value (0 to 4294967295) is required".into()))?;
    let request = CertifyDevice { device_key: field(&body, "device_key")?.to_string(), next_counter };
    let certificate = w.client.offline_certify(&request).await?;
    let trust = w.client.offline_trust().await?;
    Ok(Json(json!({"certificate": certificate, "trust": trust})))
}

async fn offline_load(State(w): State<Shared>, OwnDa { account, body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let amount_tiyn = crate::execute::amount_tiyn(field(&body, "amount")?, "amount")?;
    let request = FundPurse {
        from: account.id.clone(),
        device_key: field(&body, "device_key")?.to_string(),
        amount_tiyn,
        paid_tx: Some(field(&body, "tx")?.to_string()),
    };
    let load = w.client.offline_fund(&request, None).await?;
    Ok(Json(serde_json::to_value(load).unwrap_or_default()))
}

async fn offline_trust(State(w): State<Shared>, OwnDa { .. }: OwnDa) -> Result<Json<Value>, UiError> {
    Ok(Json(serde_json::to_value(w.client.offline_trust().await?).unwrap_or_default()))
}

async fn offline_deposit(State(w): State<Shared>, OwnDa { key, body, .. }: OwnDa) -> Result<Json<Value>, UiError> {
    let text = field(&body, "chain")?;
    let bytes = hex::decode(text).map_err(|_| UiError::BadInput("chain: not hex".into()))?;
    let chain = dtenge_offline::decode_chain(&bytes).map_err(|e| UiError::BadInput(format!("chain: {e}")))?;
    // A holder deposits into its own DA only: the deposit hop names the signer's address.
    if chain.hops.as_slice().last().map(|h| h.payee) != Some(key) {
        return Err(UiError::Forbidden("chain: its last hop does not pay this DA".into()));
    }
    let view = w.client.offline_deposit(&DepositChain { chain: text.to_string() }, None).await?;
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `(path under /wallet/assets/, content type, body)`.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("wallet.css", "text/css; charset=utf-8", include_str!("../assets/wallet/wallet.css")),
    ("wallet.js", "text/javascript; charset=utf-8", include_str!("../assets/wallet/wallet.js")),
    ("signing.js", "text/javascript; charset=utf-8", include_str!("../assets/wallet/signing.js")),
    ("i18n.js", "text/javascript; charset=utf-8", include_str!("../assets/wallet/i18n.js")),
    // One file for both pages each: the names of refusals, the words of notifications.
    ("refusals.js", "text/javascript; charset=utf-8", include_str!("../assets/refusals.js")),
    ("notices.js", "text/javascript; charset=utf-8", include_str!("../assets/notices.js")),
    ("offline.js", "text/javascript; charset=utf-8", include_str!("../assets/wallet/offline.js")),
    ("purse.js", "text/javascript; charset=utf-8", include_str!("../assets/wallet/purse.js")),
    // QR codes of offline payments, drawn and read in the page (vendor/README.md).
    ("vendor/qrcode.mjs", "text/javascript; charset=utf-8", include_str!("../assets/wallet/vendor/qrcode.mjs")),
    ("vendor/jsQR.js", "text/javascript; charset=utf-8", include_str!("../assets/wallet/vendor/jsQR.js")),
];

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/wallet/index.html");

fn respond(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}

async fn asset(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => respond(content_type, body),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// The routes under `/wallet`.
pub fn router(wallet: Arc<Wallet>) -> Router {
    Router::new()
        .route("/wallet", get(|| async { Redirect::permanent("/wallet/") }))
        .route("/wallet/", get(|| async { respond("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/wallet/assets/{*path}", get(asset))
        .route("/wallet/api/open", post(open))
        .route("/wallet/api/home", post(home))
        .route("/wallet/api/qr/check", post(check_qr))
        .route("/wallet/api/pay/prepare", post(prepare))
        .route("/wallet/api/pay/submit", post(submit))
        .route("/wallet/api/receive", post(receive))
        .route("/wallet/api/merchant/qr", post(merchant_qr))
        .route("/wallet/api/merchant/status", post(merchant_status))
        .route("/wallet/api/offline/certify", post(offline_certify))
        .route("/wallet/api/offline/load", post(offline_load))
        .route("/wallet/api/offline/trust", post(offline_trust))
        .route("/wallet/api/offline/deposit", post(offline_deposit))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(wallet)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_qr_is_drawn_as_svg() {
        assert!(qr_svg("00020101021126580005KZ.DT").unwrap().starts_with("<?xml"));
        assert!(qr_svg(&"9".repeat(8_000)).is_err(), "too long for a QR code: named, not drawn");
    }

    #[test]
    fn nothing_is_loaded_from_another_origin() {
        for (path, _, body) in ASSETS {
            if path.starts_with("vendor/") {
                // Copied unchanged: comments name web pages (and an SVG its
                // namespace), but nothing is fetched.
                for call in ["fetch(", "XMLHttpRequest", "import(", "importScripts", "WebSocket", "sendBeacon"] {
                    assert!(!body.contains(call), "{path} calls {call}");
                }
                continue;
            }
            assert!(!body.contains("http://") && !body.contains("https://"), "{path}");
        }
        assert!(!INDEX_HTML.contains("https://") && !INDEX_HTML.contains("http://"));
        for (path, _, _) in ASSETS {
            assert!(
                INDEX_HTML.contains(path) || ASSETS.iter().any(|(_, _, b)| b.contains(&format!("./{path}"))),
                "{path} is never loaded"
            );
        }
    }
}
