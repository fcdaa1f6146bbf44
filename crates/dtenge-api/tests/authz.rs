//! The authorisation table (`dtenge_net::authz`) through the real HTTP API:
//! every route of the OpenAPI document is in the table, and every cell —
//! each participant kind × each endpoint — answers as the table says: a
//! refused kind gets 403 `operation_forbidden` and nothing changes; an
//! allowed kind gets past the table to the endpoint's own checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dtenge_api::access::{HEALTH, ROUTES, kind_name};
use dtenge_net::authz::{self, KINDS, Operation};
use dtenge_net::{Clock, ManualClock, Role};
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::Timestamp;
use serde_json::Value;
use tower::ServiceExt;

const START: u64 = 1_767_225_600_000;

/// One participant of each kind on the demo platform.
fn participant_of(kind: Role) -> &'static str {
    match kind {
        Role::Nbk => ids::NBK,
        Role::Stb => "STB1",
        Role::Treasury => ids::TREASURY,
        Role::CounterpartyCentralBank => ids::FCB,
        Role::Provider => "SRC",
        Role::Notary => ids::NOTARY,
        Role::Oracle => ids::ORACLE,
        Role::Directory => ids::DIRECTORY,
        Role::StablecoinIssuer => ids::COIN_ISSUER,
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    platform: Arc<Platform>,
    router: axum::Router,
    clock: Arc<ManualClock>,
    counter: std::sync::atomic::AtomicU64,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp(START));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let platform =
            Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: false }).await.unwrap());
        dtenge_platform::demo_set::ensure(&platform).await.unwrap();
        let router = dtenge_api::router(Arc::clone(&platform));
        Harness { _dir: dir, platform, router, clock, counter: Default::default() }
    }

    async fn call(&self, who: &str, method: &str, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let key = Keys::at(&self.platform.data).load(who).unwrap();
        let nonce = format!("authz-{:012}", self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut builder = Request::builder().method(method).uri(path).header("content-type", "application/json");
        for (name, value) in dtenge_api::auth::signed_headers(
            &key,
            who,
            method,
            path,
            body,
            None,
            self.clock.now().millis() / 1_000,
            &nonce,
        ) {
            builder = builder.header(name, value);
        }
        let response = self.router.clone().oneshot(builder.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn document_operations() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(dtenge_api::openapi()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() && path != HEALTH {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn every_documented_route_is_in_the_authorisation_table_and_nothing_else_is() {
    let documented = document_operations();
    let listed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = documented.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&documented).collect();
    assert!(missing.is_empty(), "routes of the OpenAPI document missing from access::ROUTES: {missing:?}");
    assert!(stale.is_empty(), "access::ROUTES lists routes the API does not serve: {stale:?}");
    assert_eq!(listed.len(), ROUTES.len(), "a route is listed twice");
    // Every API operation of the table is some route's.
    let routed: BTreeSet<Operation> = ROUTES.iter().map(|(_, _, op)| *op).collect();
    assert_eq!(routed.len(), ROUTES.len(), "two routes share an operation");
}

/// A request path with the template's parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "X-000001")
        .replace("{iin_bin}", "000000000000")
        .replace("{tx}", &"0".repeat(64))
        .replace("{token}", "x")
        .replace("{event}", "EV-1")
        .replace("{mandate}", "M-1")
        .replace("{parameter}", "P-1")
        .replace("{number}", "C-1")
        .replace("{base}", "DT")
        .replace("{quote}", "FCY")
        .replace("{rrn}", "000000000001")
}

#[tokio::test]
async fn every_participant_kind_gets_the_answer_the_table_gives_on_every_endpoint() {
    let h = Harness::new().await;
    let mut report = String::from("operation");
    for kind in KINDS {
        report.push_str(&format!(" | {}", kind_name(kind)));
    }
    report.push('\n');
    let mut wrong = Vec::new();
    for (method, path, op) in ROUTES {
        report.push_str(op.name());
        for kind in KINDS {
            let who = participant_of(kind);
            let body: &[u8] = if *method == "POST" { b"{}" } else { b"" };
            let (status, json) = h.call(who, method, &concrete(path), body).await;
            let code = json["error"]["code"].as_str().unwrap_or("").to_string();
            report.push_str(&format!(" | {}", status.as_u16()));
            let allowed = authz::permits(kind, *op);
            let refused_by_table = status == StatusCode::FORBIDDEN && code == "operation_forbidden";
            if allowed == refused_by_table || status == StatusCode::UNAUTHORIZED || code == "operation_unlisted" {
                wrong.push(format!(
                    "{method} {path} as {who} ({kind:?}): table says {}, got {status} {code}",
                    if allowed { "allowed" } else { "refused" }
                ));
            }
        }
        report.push('\n');
    }
    println!("{report}");
    assert!(wrong.is_empty(), "cells that disagree with the table:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn the_counterparty_central_bank_is_refused_nbks_regulator_powers_and_nothing_changes() {
    let h = Harness::new().await;
    let before = h.platform.node(ids::NBK).unwrap().read(|s| s.policy.clone());
    let limits = br#"{"simplified":{"max_balance_tiyn":1,"per_payment_tiyn":1,"daily_outgoing_tiyn":1},"standard":{"max_balance_tiyn":1,"per_payment_tiyn":1,"daily_outgoing_tiyn":1},"full":{"max_balance_tiyn":1,"per_payment_tiyn":1,"daily_outgoing_tiyn":1}}"#;
    for (method, path, body) in [
        ("POST", "/api/v1/nbk/limits", &limits[..]),
        ("POST", "/api/v1/oracle/providers", br#"{"id":"CROWD","name":"x","registries":["fx"]}"#),
        ("GET", "/api/v1/conversions", b""),
        ("GET", "/api/v1/stats/supply", b""),
        ("GET", "/api/v1/regulator/aggregates", b""),
        ("GET", "/api/v1/regulator/large-payments", b""),
        ("GET", "/api/v1/regulator/marked-funds", b""),
    ] {
        let (status, json) = h.call(ids::FCB, method, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], "operation_forbidden", "{method} {path}: {json}");
    }
    assert_eq!(h.platform.node(ids::NBK).unwrap().read(|s| s.policy.clone()), before, "no policy was published");
    // What it does do: read its own DAs.
    let (status, json) = h.call(ids::FCB, "GET", "/api/v1/accounts", b"").await;
    assert_eq!(status, StatusCode::OK, "{json}");
}

const BEGIN: &str = "<!-- authorisation table: generated from dtenge_net::authz; refresh with DTENGE_WRITE_DOCS=1 cargo test -p dtenge-api --test authz -->";
const END: &str = "<!-- end of the generated authorisation table -->";

const RETRY_BEGIN: &str = "<!-- retry table: generated from dtenge_api::admission::resume; refresh with DTENGE_WRITE_DOCS=1 cargo test -p dtenge-api --test authz -->";
const RETRY_END: &str = "<!-- end of the generated retry table -->";

/// `doc` with the text between `begin` and `end` replaced by `table`.
fn refreshed(doc: &str, begin: &str, end: &str, table: &str) -> String {
    let (before, rest) = doc.split_once(begin).unwrap_or_else(|| panic!("docs/security.md has the marker {begin}"));
    let (_, after) = rest.split_once(end).unwrap_or_else(|| panic!("docs/security.md has the marker {end}"));
    format!("{before}{begin}\n\n{table}\n{end}{after}")
}

/// docs/security.md shows the authorisation table and the retry table as
/// the code has them: an endpoint missing from either, or a row that
/// differs, fails here.
#[test]
fn docs_security_md_shows_the_authorisation_table_in_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let fresh = refreshed(&doc, BEGIN, END, &dtenge_api::access::security_tables());
    let fresh = refreshed(&fresh, RETRY_BEGIN, RETRY_END, &dtenge_api::admission::retry_table());
    if std::env::var_os("DTENGE_WRITE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    assert!(
        doc == fresh,
        "docs/security.md does not show the tables in code; refresh it with DTENGE_WRITE_DOCS=1 cargo test -p dtenge-api --test authz"
    );
    for (method, path, _) in ROUTES {
        assert!(doc.contains(&format!("`{method} {path}`")), "docs/security.md leaves out {method} {path}");
    }
}
