//! # dtenge-api — the HTTP interface of `dtenge serve`
//!
//! JSON under `/api/v1` for banks, the Treasury, oracle providers and NBK
//! operators; the OpenAPI 3 document at `/api/openapi.json`, generated from
//! the handlers, and a readable reference at `/api/docs`. Every request but
//! health, the public proof of reserves and the description is signed by the calling participant
//! ([`auth`]); every error is JSON naming the problem ([`error`]).
//!
//! The only crate that speaks HTTP/JSON to people and participants' systems
//! (the node-to-node transport in `dtenge-net` is the other HTTP edge, for
//! signed binary envelopes only).

pub mod access;
pub mod admission;
pub mod auth;
pub mod dto;
pub mod error;
pub mod idempotency;
pub mod qr_book;
pub mod routes;
pub mod state;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use dtenge_platform::Platform;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use dtenge_api_types as types;
use dtenge_api_types::{Health, NodeHealth};
pub use state::{ApiOptions, AppState, Shared};

#[derive(OpenApi)]
#[openapi(
    info(title = "dtenge API", version = "1", description = "Digital Tenge platform API. Every request except /api/v1/health and the public proof of reserves (GET /api/v1/stablecoins/{code}/reserves) is signed by the calling participant the standard way: RFC 9421 HTTP Message Signatures with Ed25519 (Signature-Input, Signature: covering @method, @target-uri, content-digest and idempotency-key when present; created, keyid = participant id, nonce, tag=\"fapi-2-request\") over an RFC 9530 Content-Digest (sha-256); see docs/api.md. POSTs take an Idempotency-Key. Money is integer tiyn (1 DT = 100 tiyn); times are ms since the epoch with Astana-time (UTC+5) strings beside them."),
    modifiers(&SignedRequests),
    tags(
        (name = "accounts", description = "Digital accounts on the caller's node"),
        (name = "payments", description = "Transfers, transaction status, lineage, receipts"),
        (name = "conversion", description = "STB–NBK conversion through the CBS"),
        (name = "programmable", description = "Programmable money on the caller's node: holds, marking, contract and e-invoice payments, debit mandates"),
        (name = "oracle", description = "Oracle registries for event providers: events, parameters and contracts, e-invoices, FX rates; providers (NBK)"),
        (name = "nbk", description = "Platform statistics for NBK"),
        (name = "enforcement", description = "Orders of authorised bodies against DAs: freeze, arrest, collection, lift (the authority posts; banks and the authority list)"),
        (name = "regulator", description = "NBK's regulator view: aggregates by bank and day, large payments, marked-funds traceability; no names or IINs"),
        (name = "offline", description = "Offline device-to-device payments (banks): device certificates, purse funding into the bank's offline reserve, deposits of chains received offline, bank keys and revocation lists for wallets"),
        (name = "cards", description = "Bank cards linked to a DA on the caller's node (issuing bank): linking, the card network's ISO 8583 messages as JSON, card payments"),
        (name = "stablecoins", description = "DT-backed stablecoins: the licensed issuer mints and burns against its reserve, holders pay in the stablecoin, the oracle-counted proof of reserves (public, unsigned), every stablecoin's supply and reserve (NBK)"),
        (name = "qr", description = "QR payments: EMVCo merchant-presented QR codes with a DT template, static or dynamic (signed by the merchant's bank, paid once)"),
        (name = "platform", description = "Health")
    )
)]
struct ApiDoc;

struct SignedRequests;

impl Modify for SignedRequests {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, header) in [
            ("signature", dtenge_api_types::signing::SIGNATURE),
            ("signature-input", dtenge_api_types::signing::SIGNATURE_INPUT),
            ("content-digest", dtenge_api_types::signing::CONTENT_DIGEST),
        ] {
            components.add_security_scheme(name, SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(header))));
        }
    }
}

/// Every signed operation may answer with the API's JSON error for these
/// statuses (bad input, bad signature, not allowed, not found, conflict,
/// refused by a rule, service unavailable): documented once here instead of
/// on every handler, so the document lists every status the API can give.
/// Each operation also states its security: the three signature headers
/// together, or none for the unsigned routes (`access::unsigned`), which
/// never answer 401 or 403.
fn document_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let signed = SecurityRequirement::new("signature", Vec::<String>::new())
        .add("signature-input", Vec::<String>::new())
        .add("content-digest", Vec::<String>::new());
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [(axum::http::Method::GET, &mut item.get), (axum::http::Method::POST, &mut item.post)] {
            if let Some(op) = op {
                op.security = Some(if access::unsigned(&method, path) { Vec::new() } else { vec![signed.clone()] });
            }
        }
    }
    let statuses = [
        ("400", "Bad input: the message names the field"),
        ("401", "Missing, bad, stale or replayed request signature"),
        ("403", "The caller may not do this"),
        ("404", "No such resource"),
        ("409", "Conflict: funds in flight, token spent, request in progress"),
        ("422", "Refused by a rule: the code names it"),
        ("503", "A service the request needs is unavailable"),
    ];
    for (path, item) in doc.paths.paths.iter_mut() {
        if path == "/api/v1/health" {
            continue;
        }
        for (method, op) in [(axum::http::Method::GET, &mut item.get), (axum::http::Method::POST, &mut item.post)] {
            let Some(op) = op else { continue };
            let public = access::unsigned(&method, path);
            for (status, description) in statuses {
                if public && (status == "401" || status == "403") {
                    continue;
                }
                op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                            )
                            .build(),
                    )
                });
            }
        }
    }
}

/// The API of a running platform with durable idempotency records
/// (`DATA/api/idempotency`): what `dtenge serve` runs.
pub struct Api {
    state: Shared,
}

/// Why the API's records cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The idempotency journal.
    #[error("the API's idempotency journal: {0}")]
    Idempotency(#[from] idempotency::IdempotencyError),
    /// The replay horizon.
    #[error(transparent)]
    Horizon(#[from] auth::HorizonError),
    /// The record of dynamic QRs paid.
    #[error("the API's QR journal: {0}")]
    Qr(#[from] qr_book::QrBookError),
}

impl Api {
    /// Opens the API over `platform`: its idempotency journal (fsynced when
    /// `durable`) and its replay horizon, both under `DATA/api`.
    pub fn open(platform: Arc<Platform>, options: ApiOptions, durable: bool) -> Result<Api, OpenError> {
        let dir = platform.data.join("api");
        let now = platform.clock.now();
        let records = idempotency::Idempotency::open(&dir.join("idempotency"), durable, now.millis())?;
        let replay = auth::ReplayGuard::durable(options.replay_capacity, now, &dir)?;
        let qr = qr_book::QrBook::open(&dir.join("qr"), durable)?;
        Ok(Api { state: AppState::with_replay(platform, Arc::new(records), Arc::new(qr), replay, options) })
    }

    /// Its router.
    pub fn router(&self) -> axum::Router {
        router_over(Arc::clone(&self.state))
    }

    /// Makes the idempotency records durable and closes their journal.
    pub fn close(&self) -> Result<(), dtenge_store::StoreError> {
        self.state.qr.close()?;
        self.state.idempotency.close()
    }
}

/// The API router over a running platform, with idempotency records kept in
/// memory only (tests, and the demo's and the UI's in-process use); see [`Api`].
pub fn router(platform: Arc<Platform>) -> axum::Router {
    router_with(platform, ApiOptions::default())
}

/// [`router`] with options.
pub fn router_with(platform: Arc<Platform>, options: ApiOptions) -> axum::Router {
    router_over(AppState::new(platform, Arc::new(idempotency::Idempotency::memory()), options))
}

fn router_over(state: Shared) -> axum::Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .merge(routes::accounts::routes())
        .merge(routes::payments::routes())
        .merge(routes::conversions::routes())
        .merge(routes::programmable::routes())
        .merge(routes::oracle::routes())
        .merge(routes::regime::routes())
        .merge(routes::offline::routes())
        .merge(routes::cards::routes())
        .merge(routes::stablecoins::routes())
        .merge(routes::qr::routes())
        .with_state(Arc::clone(&state))
        .split_for_parts();
    // Every route (not the description pages below) passes the admission layer.
    let api = api.route_layer(axum::middleware::from_fn_with_state(state, admission::admit));
    let mut doc = doc;
    document_errors(&mut doc);
    let doc = Arc::new(doc);
    let json_doc = Arc::clone(&doc);
    api.route("/api/openapi.json", axum::routing::get(move || async move { Json(json_doc.as_ref().clone()) }))
        .route("/api/docs", axum::routing::get(move || async move { Html(docs_page(&doc)) }))
        .fallback(|| async { error::ApiError::not_found("no such endpoint; see /api/docs").into_response() })
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = OpenApiRouter::<Shared>::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .merge(routes::accounts::routes())
        .merge(routes::payments::routes())
        .merge(routes::conversions::routes())
        .merge(routes::programmable::routes())
        .merge(routes::oracle::routes())
        .merge(routes::regime::routes())
        .merge(routes::offline::routes())
        .merge(routes::cards::routes())
        .merge(routes::stablecoins::routes())
        .merge(routes::qr::routes())
        .split_for_parts();
    let mut doc = doc;
    document_errors(&mut doc);
    doc
}

#[utoipa::path(get, path = "/api/v1/health", tag = "platform", responses((status = 200, body = Health)))]
async fn health(State(state): State<Shared>) -> impl IntoResponse {
    let platform = &state.platform;
    let (committed, _, _) = platform.notary.stats();
    let nodes = platform
        .nodes
        .iter()
        .map(|(id, node)| {
            node.read(|s| NodeHealth {
                id: id.to_string(),
                accounts: s.accounts.len(),
                tokens: s.vault.len(),
                in_flight: s.in_flight().len(),
            })
        })
        .collect();
    (
        StatusCode::OK,
        Json(Health { status: "ok".into(), notary_committed: committed, nodes, now_ms: platform.clock.now().millis() }),
    )
}

/// A readable API reference rendered from the OpenAPI document (no external assets).
fn docs_page(doc: &utoipa::openapi::OpenApi) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dtenge API reference</title><style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1b2430}code,pre{background:#f3f5f8;padding:.1em .3em;border-radius:3px}h2{border-bottom:1px solid #dde;padding-bottom:.2em;margin-top:2em}.m{display:inline-block;min-width:4em;font-weight:bold}.get{color:#176}.post{color:#714}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>",
        esc(&doc.info.title),
        esc(doc.info.description.as_deref().unwrap_or(""))
    ));
    for (path, item) in doc.paths.paths.iter() {
        for (method, op) in [("get", &item.get), ("post", &item.post)] {
            let Some(op) = op else { continue };
            html.push_str(&format!(
                "<h2><span class=\"m {method}\">{}</span> <code>{}</code></h2>",
                method.to_uppercase(),
                esc(path)
            ));
            if let Some(d) = op.description.as_deref().or(op.summary.as_deref()) {
                html.push_str(&format!("<p>{}</p>", esc(d)));
            }
            let statuses: Vec<String> = op.responses.responses.keys().cloned().collect();
            html.push_str(&format!("<p>Responses: {}</p>", esc(&statuses.join(", "))));
        }
    }
    html.push_str("</body></html>");
    html
}
