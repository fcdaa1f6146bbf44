//! The API across a crash (issue 17, points 4 and 9): a keyed POST admitted
//! but never answered when the process died, and requests captured before a
//! restart replayed after it. The API is reopened over the same data
//! directory (`dtenge_api::Api::open`), as `dtenge serve` does after `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dtenge_api::access::ROUTES;
use dtenge_api::admission::{AfterServerError, REPLAYED, Resume, after_server_error, resume};
use dtenge_api::auth::signed_headers;
use dtenge_api::idempotency::{Begin, Binding, Idempotency, Slot, fingerprint};
use dtenge_api_types::signing::{MAX_FUTURE_S, SIGNED_BEFORE_RESTART};
use dtenge_net::authz::{self, Operation};
use dtenge_net::{Clock, ManualClock, Role};
use dtenge_node::accounts::{AccountId, HolderKind};
use dtenge_node::service::PayTo;
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, ParticipantId, Timestamp};
use serde_json::{Value, json};
use tower::ServiceExt;

const START: u64 = 1_767_225_600_000;

struct Answer {
    status: StatusCode,
    json: Value,
    replayed: bool,
    retry_after: Option<u64>,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let replayed = response.headers().get(REPLAYED).is_some();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer { status, json, replayed, retry_after }
}

/// A request signed by `who` at `created_s` (seconds), as a captured copy can be sent again.
fn signed(
    platform: &Platform,
    who: &str,
    path: &str,
    body: &[u8],
    key: Option<&str>,
    created_s: u64,
    nonce: &str,
) -> Request<Body> {
    let secret = Keys::at(&platform.data).load(who).unwrap();
    let mut builder = Request::builder().method("POST").uri(path).header("content-type", "application/json");
    for (name, value) in signed_headers(&secret, who, "POST", path, body, key, created_s, nonce) {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body.to_vec())).unwrap()
}

async fn platform(dir: &std::path::Path) -> (Arc<Platform>, Arc<ManualClock>) {
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let platform = Arc::new(Platform::open(dir, dyn_clock, PlatformOptions { durable: false }).await.unwrap());
    dtenge_platform::demo_set::ensure(&platform).await.unwrap();
    (platform, clock)
}

fn open_api(platform: &Arc<Platform>) -> dtenge_api::Api {
    dtenge_api::Api::open(Arc::clone(platform), dtenge_api::ApiOptions::default(), false).unwrap()
}

fn demo(platform: &Platform, node: &str, kind: HolderKind, serial: u8) -> (AccountId, String) {
    let account = platform.node(node).unwrap().accounts_of(&demo_iin_bin(kind, serial)).into_iter().next().unwrap();
    (account.id.clone(), account.address.to_string())
}

fn standard(platform: &Platform, node: &str, account: &AccountId) -> u64 {
    platform.node(node).unwrap().balances(account).unwrap().standard.tiyn()
}

/// A participant whose kind the table lets call `op` (a node kind when one may).
fn caller_for(op: Operation) -> &'static str {
    [
        (Role::Stb, "STB1"),
        (Role::Treasury, ids::TREASURY),
        (Role::Nbk, ids::NBK),
        (Role::Provider, "SRC"),
        (Role::StablecoinIssuer, ids::COIN_ISSUER),
    ]
    .into_iter()
    .find(|(kind, _)| authz::permits(*kind, op))
    .map(|(_, who)| who)
    .unwrap_or_else(|| panic!("no test caller may {}", op.name()))
}

/// Every POST of the API, admitted (its key `Started`, durably) and then cut
/// off by a crash before anything else was recorded; and one transfer cut
/// off after the node committed it. After the restart a retry with the same
/// key is answered as `resume` decides for its operation: a committed
/// transfer with its outcome (paid once), an operation whose effect the key
/// cannot tell with 409 `interrupted` naming the key and where to look —
/// for good, never run again — and the rest run again.
#[tokio::test]
async fn every_post_cut_off_by_a_crash_is_answered_by_its_operation_and_never_paid_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, clock) = platform(dir.path()).await;
    let records = platform.data.join("api").join("idempotency");
    let (farmer1, _) = demo(&platform, "STB1", HolderKind::Individual, 5);
    let (farmer2, farmer2_address) = demo(&platform, "STB2", HolderKind::Individual, 7);
    let stb1 = platform.node("STB1").unwrap().clone();
    let start1 = standard(&platform, "STB1", &farmer1);
    let start2 = standard(&platform, "STB2", &farmer2);
    let conversions = |p: &Platform| p.nodes.values().map(|n| n.read(|s| s.conversions.len())).sum::<usize>();
    let conversions_before = conversions(platform.as_ref());

    // The requests, one per POST route; bodies that would succeed where it matters
    // (a transfer, a conversion request), `{}` elsewhere (the decision comes first).
    let mut requests = Vec::new();
    for (method, template, op) in ROUTES.iter().filter(|(m, _, _)| *m == "POST") {
        let path = template.replace(['{', '}'], "");
        let body = match op {
            Operation::Transfer => {
                json!({"from": farmer1.0, "to": [{"address": farmer2_address, "amount_tiyn": 1_700}]})
            }
            Operation::RequestConversion => json!({"kind": "issue", "amount_tiyn": 1_000}),
            _ => json!({}),
        };
        let who = if *op == Operation::RequestConversion { "STB3" } else { caller_for(*op) };
        requests.push((*method, path, *op, who, serde_json::to_vec(&body).unwrap()));
    }
    assert!(requests.len() >= 30, "every POST route: {}", requests.len());

    // Before the crash: each admitted, and one transfer committed by the node but never answered.
    let paid_body =
        serde_json::to_vec(&json!({"from": farmer1.0, "to": [{"address": farmer2_address, "amount_tiyn": 2_300}]}))
            .unwrap();
    let paid_tx = {
        let store = Arc::new(Idempotency::open(&records, false, clock.now().millis()).unwrap());
        for (method, path, op, who, body) in &requests {
            let slot = Slot { participant: who.to_string(), key: format!("crash-{}", op.name()) };
            let begun = store.begin(&slot, fingerprint(method, path, body), clock.now().millis()).await.unwrap();
            assert_eq!(begun, Begin::Run);
        }
        let slot = Slot { participant: "STB1".into(), key: "crash-paid".into() };
        let print = fingerprint("POST", "/api/v1/transfers", &paid_body);
        assert_eq!(store.begin(&slot, print, clock.now().millis()).await.unwrap(), Begin::Run);
        let witness = Arc::new(Binding { store: Arc::clone(&store), slot, node: ParticipantId::new("STB1").unwrap() });
        let to = [PayTo { address: farmer2_address.parse().unwrap(), amount: Amount::from_tiyn(2_300) }];
        let pay = stb1.pay(&farmer1, &to, None);
        let done = dtenge_node::witness::witnessed(witness, pay).await.unwrap();
        done.tx
        // The process dies here: nothing is finished, nothing closed.
    };
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 2_300);

    clock.advance(5_000);
    let api = open_api(&platform);
    let router = api.router();
    let mut nonce = 0u64;
    let mut next_nonce = || {
        nonce += 1;
        format!("restart-{nonce:08}")
    };

    // The committed transfer: its outcome, paid once, however often it is asked.
    for _ in 0..2 {
        let now_s = clock.now().millis() / 1_000;
        let answer = send(
            &router,
            signed(&platform, "STB1", "/api/v1/transfers", &paid_body, Some("crash-paid"), now_s, &next_nonce()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(answer.json["tx"], paid_tx.to_string());
        assert_eq!(answer.json["status"]["status"], "success");
        assert!(answer.replayed, "answered from the record, not run again");
    }

    for (_, path, op, who, body) in &requests {
        let key = format!("crash-{}", op.name());
        let now_s = clock.now().millis() / 1_000;
        let first = send(&router, signed(&platform, who, path, body, Some(&key), now_s, &next_nonce())).await;
        let again = send(&router, signed(&platform, who, path, body, Some(&key), now_s, &next_nonce())).await;
        match resume(*op) {
            Resume::Interrupted { check } => {
                assert_eq!(first.status, StatusCode::CONFLICT, "{}: {}", op.name(), first.json);
                assert_eq!(first.code(), "interrupted", "{}", op.name());
                let message = first.json["error"]["message"].as_str().unwrap();
                assert!(message.contains(&key) && message.contains(check), "{}: {message}", op.name());
                assert_eq!((again.status, &again.json), (first.status, &first.json), "{}: for good", op.name());
                assert!(again.replayed);
            }
            Resume::Transaction | Resume::Account | Resume::Repeat | Resume::Replayed => {
                assert_ne!(first.code(), "interrupted", "{}: runs again: {}", op.name(), first.json);
                assert_ne!(first.status, StatusCode::SERVICE_UNAVAILABLE, "{}: {}", op.name(), first.json);
            }
            Resume::Unkeyed => panic!("{} is a POST of the API: its retries need a decision", op.name()),
        }
    }

    // The transfer admitted before the crash ran once after it; the conversion request never ran.
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 2_300 - 1_700);
    assert_eq!(standard(&platform, "STB2", &farmer2), start2 + 2_300 + 1_700);
    assert_eq!(conversions(platform.as_ref()), conversions_before);

    // Once more after a second restart: every answer stays as it was.
    api.close().unwrap();
    drop(router);
    drop(api);
    clock.advance(5_000);
    let router = open_api(&platform).router();
    let now_s = clock.now().millis() / 1_000;
    let answer = send(
        &router,
        signed(&platform, "STB1", "/api/v1/transfers", &paid_body, Some("crash-paid"), now_s, &next_nonce()),
    )
    .await;
    assert_eq!(answer.json["tx"], paid_tx.to_string());
    let conversion = requests.iter().find(|r| r.2 == Operation::RequestConversion).unwrap();
    let answer = send(
        &router,
        signed(&platform, "STB3", &conversion.1, &conversion.4, Some("crash-request_conversion"), now_s, &next_nonce()),
    )
    .await;
    assert_eq!(answer.code(), "interrupted");
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 2_300 - 1_700);
    assert_eq!(conversions(platform.as_ref()), conversions_before);
}

/// Requests captured before a restart cannot be replayed after it — not
/// even one signed in the crash's own second, nor one dated ahead of the
/// server's clock — while a request signed afresh is accepted.
#[tokio::test]
async fn nothing_accepted_before_a_restart_is_accepted_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, clock) = platform(dir.path()).await;
    let (farmer1, _) = demo(&platform, "STB1", HolderKind::Individual, 5);
    let (_, farmer2_address) = demo(&platform, "STB2", HolderKind::Individual, 7);
    let start1 = standard(&platform, "STB1", &farmer1);
    let body =
        serde_json::to_vec(&json!({"from": farmer1.0, "to": [{"address": farmer2_address, "amount_tiyn": 500}]}))
            .unwrap();
    let now_s = || clock.now().millis() / 1_000;

    // Accepted before the crash: one signed now, one dated as far ahead as the server allows.
    let api = open_api(&platform);
    let router = api.router();
    let captured_now = ("captured-now-01", now_s());
    let captured_ahead = ("captured-ahead-01", now_s() + MAX_FUTURE_S);
    for (nonce, created) in [captured_now, captured_ahead] {
        let answer = send(&router, signed(&platform, "STB1", "/api/v1/transfers", &body, None, created, nonce)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 1_000);
    drop(router);
    drop(api); // kill -9: nothing closed

    // Restarted in the same second, and again a few seconds later: the copies are refused.
    for advance_ms in [0, 3_000] {
        clock.advance(advance_ms);
        let router = open_api(&platform).router();
        for (nonce, created) in [captured_now, captured_ahead] {
            let answer =
                send(&router, signed(&platform, "STB1", "/api/v1/transfers", &body, None, created, nonce)).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{nonce} after {advance_ms} ms: {}", answer.json);
            assert_eq!(answer.code(), SIGNED_BEFORE_RESTART);
            assert!(answer.retry_after.is_some_and(|s| s >= 1), "tells when to sign again");
        }
    }
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 1_000, "nothing paid twice");

    // Signed again once the horizon has passed: accepted.
    clock.advance((MAX_FUTURE_S + 5) * 1_000);
    let router = open_api(&platform).router();
    let answer =
        send(&router, signed(&platform, "STB1", "/api/v1/transfers", &body, None, now_s(), "fresh-0001")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 1_500);
}

/// The typed client signs again by itself when a restarted server refuses
/// a signature as made before the restart.
#[tokio::test]
async fn the_client_signs_again_after_a_restart_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, clock) = platform(dir.path()).await;
    let api = open_api(&platform);
    let key: Arc<dyn dtenge_crypto::Signer> = Arc::new(Keys::at(&platform.data).load("STB1").unwrap());
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let stb1 = ParticipantId::new("STB1").unwrap();
    let client = dtenge_client::Client::in_process(api.router(), stb1.clone(), Arc::clone(&key), dyn_clock.clone());
    client.list_accounts(&dtenge_client::ListQuery::default()).await.unwrap();
    drop(client);
    drop(api);
    // Restarted within the same second: the first signature is refused, the client waits and signs again
    // (the manual clock moves on meanwhile, as time does).
    let restarted = open_api(&platform);
    let client = dtenge_client::Client::in_process(restarted.router(), stb1, key, dyn_clock);
    let ticking = {
        let clock = Arc::clone(&clock);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                clock.advance(1_000);
            }
        })
    };
    let listed = client.list_accounts(&dtenge_client::ListQuery::default()).await;
    ticking.abort();
    assert!(listed.is_ok(), "{listed:?}");
}

/// A keyed request answered with a server error (5xx) is governed by the
/// same per-operation decision as one cut off by a crash: an operation whose
/// effect the key cannot tell is never run again with that key (409
/// `interrupted`, for good); a payment is answered with the outcome of the
/// transaction bound to its key, paid once; a request that produced nothing
/// before the error runs again, once.
#[tokio::test]
async fn a_keyed_request_answered_5xx_is_answered_by_its_operation_and_never_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, clock) = platform(dir.path()).await;
    let api = open_api(&platform);
    let router = api.router();
    let (farmer1, _) = demo(&platform, "STB1", HolderKind::Individual, 5);
    let (farmer2, farmer2_address) = demo(&platform, "STB3", HolderKind::Individual, 9);
    let start1 = standard(&platform, "STB1", &farmer1);
    let start2 = standard(&platform, "STB3", &farmer2);
    let conversions = |p: &Platform| p.nodes.values().map(|n| n.read(|s| s.conversions.len())).sum::<usize>();
    let conversions_before = conversions(platform.as_ref());
    let mut nonce = 0u64;
    let mut post = |who: &'static str, path: &'static str, body: Value, key: &'static str| {
        nonce += 1;
        let now_s = clock.now().millis() / 1_000;
        let body = serde_json::to_vec(&body).unwrap();
        signed(&platform, who, path, &body, Some(key), now_s, &format!("fivexx-{nonce:08}"))
    };
    let pid = |s: &str| ParticipantId::new(s).unwrap();

    // A conversion request while NBK cannot be reached: 5xx. Whether NBK recorded it cannot
    // be told from the key (an answer lost after NBK journaled it looks the same).
    let conversion = json!({"kind": "issue", "amount_tiyn": 1_000});
    platform.network.partition(&pid(ids::NBK));
    let failed = send(&router, post("STB3", "/api/v1/conversions", conversion.clone(), "conv-1")).await;
    platform.network.heal(&pid(ids::NBK));
    assert!(failed.status.is_server_error(), "{} {}", failed.status, failed.json);
    assert_eq!(after_server_error(Operation::RequestConversion), AfterServerError::Interrupted);
    for _ in 0..2 {
        let again = send(&router, post("STB3", "/api/v1/conversions", conversion.clone(), "conv-1")).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "interrupted"), "{}", again.json);
        let message = again.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("conv-1") && message.contains("GET /api/v1/conversions"), "{message}");
        assert!(again.replayed, "the key's answer, for good");
    }
    assert_eq!(conversions(platform.as_ref()), conversions_before, "never run again with that key");
    // Asked with a new key once the outcome was checked, it runs (once).
    let fresh = send(&router, post("STB3", "/api/v1/conversions", conversion.clone(), "conv-2")).await;
    assert!(fresh.status.is_success(), "{} {}", fresh.status, fresh.json);
    assert_eq!(conversions(platform.as_ref()), conversions_before + 1);

    // A transfer while the directory cannot be reached (the payee's host is unknown to the
    // payer's node): refused before anything was bound (no transaction was built), so the retry
    // runs it, and it is paid once.
    let transfer = json!({"from": farmer1.0, "to": [{"address": farmer2_address, "amount_tiyn": 1_200}]});
    platform.network.partition(&pid(ids::DIRECTORY));
    let failed = send(&router, post("STB1", "/api/v1/transfers", transfer.clone(), "pay-1")).await;
    platform.network.heal(&pid(ids::DIRECTORY));
    assert!(failed.status.is_server_error(), "{} {}", failed.status, failed.json);
    assert_eq!(after_server_error(Operation::Transfer), AfterServerError::FromBound);
    assert_eq!(standard(&platform, "STB1", &farmer1), start1, "nothing moved");
    let paid = send(&router, post("STB1", "/api/v1/transfers", transfer.clone(), "pay-1")).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json);
    assert_eq!(paid.json["status"]["status"], "success", "{}", paid.json);
    let again = send(&router, post("STB1", "/api/v1/transfers", transfer.clone(), "pay-1")).await;
    assert_eq!((again.status, &again.json["tx"]), (StatusCode::OK, &paid.json["tx"]));
    assert!(again.replayed);
    assert_eq!(standard(&platform, "STB1", &farmer1), start1 - 1_200, "paid once");
    assert_eq!(standard(&platform, "STB3", &farmer2), start2 + 1_200);
}
