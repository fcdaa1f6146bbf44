//! # dtenge-api — the HTTP interface of `dtenge serve`
//!
//! The only crate that speaks HTTP to people and participants' systems (the
//! node-to-node transport in `dtenge-net` is the other HTTP edge, for signed
//! binary envelopes only). Everything it returns is JSON; every error is JSON
//! naming the problem.
//!
//! Today: `GET /api/v1/health`. The full API (accounts, transfers, holds,
//! marking, e-invoices, conversion, oracle registries, statistics, OpenAPI) is
//! built on this router.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use dtenge_platform::Platform;
use serde::Serialize;

/// Health of the platform as a whole and of each service.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every service answers.
    pub status: &'static str,
    /// Transactions the notary has committed.
    pub notary_committed: u64,
    /// Per participant node: its id, role and number of DAs.
    pub nodes: Vec<NodeHealth>,
    /// The platform clock (ms since the epoch, UTC).
    pub now_ms: u64,
}

/// One node's health.
#[derive(Debug, Serialize)]
pub struct NodeHealth {
    /// The node.
    pub id: String,
    /// Its DAs.
    pub accounts: usize,
    /// Tokens in its vault.
    pub tokens: usize,
    /// Its transactions not yet settled.
    pub in_flight: usize,
}

/// The API router over a running platform.
pub fn router(platform: Arc<Platform>) -> Router {
    Router::new().route("/api/v1/health", get(health)).with_state(platform)
}

async fn health(State(platform): State<Arc<Platform>>) -> impl IntoResponse {
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
    Json(Health { status: "ok", notary_committed: committed, nodes, now_ms: platform.clock.now().millis() })
}
