//! The HTTP API end to end, in process (tower `oneshot`, no sockets): each
//! endpoint's success and its user errors, the negative security suite
//! (TESTING.md: each refusal with its status, a JSON error naming the problem
//! and no state change), idempotency, pagination and filters, the OpenAPI
//! document and the reference page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dtenge_api::auth::signed_headers;
use dtenge_api_types::signing::{MAX_AGE_S, MAX_FUTURE_S};
use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::HolderKind;
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::Keys;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

const START: u64 = 1_767_225_600_000;

struct Api {
    _dir: tempfile::TempDir,
    platform: Arc<Platform>,
    clock: Arc<ManualClock>,
    router: Router,
    counter: std::sync::atomic::AtomicU64,
}

/// An answer: status, JSON body (or the text as a JSON string), content type.
struct Answer {
    status: StatusCode,
    json: Value,
    content_type: String,
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.text))
    }
    fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or_else(|| panic!("no error message in {}", self.text))
    }
    #[track_caller]
    fn expect(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "answer: {}", self.text);
        &self.json
    }
    /// Asserts an error with `status` and `code` whose message mentions `needle`.
    #[track_caller]
    fn expect_error(&self, status: StatusCode, code: &str, needle: &str) {
        assert_eq!(self.status, status, "answer: {}", self.text);
        assert!(self.content_type.starts_with("application/json"), "errors are JSON: {}", self.content_type);
        assert_eq!(self.code(), code, "answer: {}", self.text);
        assert!(
            self.message().to_lowercase().contains(&needle.to_lowercase()),
            "message should mention {needle:?}: {}",
            self.message()
        );
    }
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp(START));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let platform =
            Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: false }).await.unwrap());
        let router = dtenge_api::router(Arc::clone(&platform));
        Api { _dir: dir, platform, clock, router, counter: Default::default() }
    }

    /// With the demo DAs, each funded through the CBS conversion flow.
    async fn funded() -> Api {
        let api = Api::new().await;
        dtenge_platform::demo_set::ensure(&api.platform).await.unwrap();
        api
    }

    fn key(&self, who: &str) -> SecretKey {
        Keys::at(&self.platform.data).load(who).unwrap()
    }

    fn nonce(&self) -> String {
        format!("nonce-{:012}", self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    fn now(&self) -> u64 {
        self.clock.now().millis()
    }

    /// A request signed by `who` with `key` at `timestamp` (ms) with `nonce`, covering an `Idempotency-Key` if given.
    #[allow(clippy::too_many_arguments)]
    fn request_keyed(
        &self,
        who: &str,
        key: &dyn Signer,
        method: &str,
        path: &str,
        signed_body: &[u8],
        timestamp: u64,
        nonce: &str,
        idempotency_key: Option<&str>,
    ) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(path).header("content-type", "application/json");
        for (name, value) in
            signed_headers(key, who, method, path, signed_body, idempotency_key, timestamp / 1_000, nonce)
        {
            builder = builder.header(name, value);
        }
        builder
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::String(text.clone()));
        Answer { status, json, content_type, text }
    }

    /// A correctly signed request as `who`, with optional extra headers.
    async fn call_with(
        &self,
        who: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let key = self.key(who);
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        let idempotency_key = extra.iter().find(|(n, _)| n.eq_ignore_ascii_case("idempotency-key")).map(|(_, v)| *v);
        let mut builder =
            self.request_keyed(who, &key, method, path, &bytes, self.now(), &self.nonce(), idempotency_key);
        for (name, value) in extra.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("idempotency-key")) {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Body::from(bytes)).unwrap()).await
    }

    async fn get(&self, who: &str, path: &str) -> Answer {
        self.call_with(who, "GET", path, None, &[]).await
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> Answer {
        self.call_with(who, "POST", path, Some(&body), &[]).await
    }

    async fn unsigned(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        let request = Request::builder().method(method).uri(path).body(Body::from(body.to_vec())).unwrap();
        self.send(request).await
    }

    /// The id of `who`'s DA at `node` (by the demo serial).
    fn demo_account(&self, node: &str, kind: HolderKind, serial: u8) -> (String, String, String) {
        let iin = demo_iin_bin(kind, serial);
        let account = self.platform.node(node).unwrap().accounts_of(&iin).into_iter().next().unwrap();
        (account.id.to_string(), account.address.to_string(), iin.to_string())
    }

    /// Everything a request could change: accounts and KYC, vault contents, transactions, conversions, the notary.
    fn snapshot(&self) -> String {
        let mut out = format!("notary {:?}\n", self.platform.notary.stats());
        for (id, node) in &self.platform.nodes {
            let line = node.read(|s| {
                let mut accounts: Vec<String> =
                    s.accounts.values().map(|a| format!("{}:{:?}", a.id, dtenge_api::dto::kyc_view(a.kyc))).collect();
                accounts.sort();
                let value: u64 = s.vault.iter().map(|(_, t)| t.token.amount.tiyn()).sum();
                format!(
                    "{id}: accounts {accounts:?} tokens {} value {value} outgoing {:?} archive {:?}",
                    s.vault.len(),
                    s.counts(),
                    s.archive().counts()
                )
            });
            out.push_str(&line);
            out.push('\n');
        }
        let conversions: Vec<String> = self
            .platform
            .node("NBK")
            .unwrap()
            .conversions()
            .iter()
            .map(|c| format!("{}:{:?}", c.id, c.status))
            .collect();
        out.push_str(&format!("conversions {conversions:?}\n"));
        out
    }

    fn standard(&self, node: &str, account: &str) -> u64 {
        let node = self.platform.node(node).unwrap();
        node.balances(&dtenge_node::accounts::AccountId(account.to_string())).unwrap().standard.tiyn()
    }
}

/// A valid IIN not used by the demo set.
fn fresh_iin(serial: u8) -> String {
    demo_iin_bin(HolderKind::Individual, serial).to_string()
}

/// The same IIN with a wrong check digit.
fn bad_check_digit(iin: &str) -> String {
    let mut digits: Vec<u8> = iin.bytes().collect();
    digits[11] = b'0' + (digits[11] - b'0' + 1) % 10;
    String::from_utf8(digits).unwrap()
}

// ---- description, health --------------------------------------------------------------

#[tokio::test]
async fn health_openapi_and_docs_need_no_signature() {
    let api = Api::new().await;
    let health = api.unsigned("GET", "/api/v1/health", b"").await;
    let json = health.expect(StatusCode::OK);
    assert_eq!(json["status"], "ok");
    assert_eq!(json["now_ms"], START);
    assert!(json["nodes"].as_array().unwrap().iter().any(|n| n["id"] == "STB1"));

    let doc = api.unsigned("GET", "/api/openapi.json", b"").await;
    let doc = doc.expect(StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "OpenAPI 3: {}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/transfers",
        "/api/v1/accounts",
        "/api/v1/accounts/{id}/history",
        "/api/v1/conversions/{id}/approve",
        "/api/v1/stats/supply",
    ] {
        assert!(paths.contains_key(path), "{path} documented");
    }
    assert!(paths["/api/v1/transfers"]["post"]["requestBody"].is_object());
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("signature"));

    let docs = api.unsigned("GET", "/api/docs", b"").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.content_type.starts_with("text/html"), "{}", docs.content_type);
    assert!(docs.text.contains("<html") && docs.text.contains("/api/v1/transfers"));

    api.unsigned("GET", "/api/v1/nothing-here", b"").await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    );
}

// ---- accounts ------------------------------------------------------------------------------

#[tokio::test]
async fn accounts_open_read_kyc_balance_directory_and_their_user_errors() {
    let api = Api::new().await;
    let iin = fresh_iin(60);
    let opened =
        api.post("STB1", "/api/v1/accounts", json!({"iin_bin": iin, "name": " Dana ", "kind": "individual"})).await;
    let account = opened.expect(StatusCode::CREATED).clone();
    let id = account["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("STB1-"), "{id}");
    assert_eq!(account["name"], "Dana");
    assert_eq!(account["kyc"], "pending");
    assert_eq!(account["custody"], "custodial");
    assert_eq!(account["opened_at_ms"], START);
    assert!(account["opened_at"].as_str().unwrap().contains("+05:00"), "Astana time: {}", account["opened_at"]);

    let read = api.get("STB1", &format!("/api/v1/accounts/{id}")).await;
    assert_eq!(read.expect(StatusCode::OK), &account);

    let kyc = api.post("STB1", &format!("/api/v1/accounts/{id}/kyc"), json!({"kyc": "verified"})).await;
    assert_eq!(kyc.expect(StatusCode::OK)["kyc"], "verified");

    let balance = api.get("STB1", &format!("/api/v1/accounts/{id}/balance")).await;
    let balance = balance.expect(StatusCode::OK);
    assert_eq!(balance["total_tiyn"], 0);
    assert_eq!(balance["account"], id.as_str());

    let history = api.get("STB1", &format!("/api/v1/accounts/{id}/history")).await;
    assert_eq!(history.expect(StatusCode::OK)["total"], 0);
    let notes = api.get("STB1", &format!("/api/v1/accounts/{id}/notifications")).await;
    assert_eq!(notes.expect(StatusCode::OK)["items"], json!([]));

    let found = api.get("STB2", &format!("/api/v1/directory/{iin}")).await;
    let found = found.expect(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["bank"], "STB1");
    assert_eq!(found[0]["account"], id.as_str());
    assert_eq!(found[0]["address"], account["address"]);

    // User errors, none of which changes anything.
    let before = api.snapshot();
    let bad = bad_check_digit(&fresh_iin(61));
    api.post("STB1", "/api/v1/accounts", json!({"iin_bin": bad, "name": "X", "kind": "individual"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_iin_bin", "check digit");
    api.post("STB1", "/api/v1/accounts", json!({"iin_bin": "12345", "name": "X", "kind": "individual"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_iin_bin", "");
    api.post("STB1", "/api/v1/accounts", json!({"iin_bin": fresh_iin(62), "name": "X", "kind": "institution"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_kind", "institutional");
    api.post("STB1", "/api/v1/accounts", json!({"iin_bin": fresh_iin(62), "name": "X", "kind": "government_agency"}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden", "treasury");
    api.post(
        "STB1",
        "/api/v1/accounts",
        json!({"iin_bin": fresh_iin(62), "name": "X", "kind": "individual", "client_public_key": "zz"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "bad_key", "client_public_key");
    api.post("STB1", "/api/v1/accounts", json!({"iin_bin": fresh_iin(62), "kind": "individual"})).await.expect_error(
        StatusCode::BAD_REQUEST,
        "bad_json",
        "name",
    );
    let garbage = api.call_with("STB1", "POST", "/api/v1/accounts", Some(&json!("not an object")), &[]).await;
    garbage.expect_error(StatusCode::BAD_REQUEST, "bad_json", "");
    api.get("STB1", "/api/v1/accounts/STB1-999999").await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "STB1-999999",
    );
    api.get("STB1", "/api/v1/accounts/STB1-999999/balance").await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "STB1-999999",
    );
    api.get("STB1", "/api/v1/accounts/STB1-999999/history").await.expect_error(StatusCode::NOT_FOUND, "not_found", "");
    api.get("STB1", "/api/v1/accounts/nonsense").await.expect_error(StatusCode::NOT_FOUND, "not_found", "nonsense");
    api.post("STB1", "/api/v1/accounts/STB1-999999/kyc", json!({"kyc": "verified"})).await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "",
    );
    api.get("STB1", &format!("/api/v1/directory/{bad}")).await.expect_error(
        StatusCode::BAD_REQUEST,
        "bad_iin_bin",
        "check digit",
    );
    // A participant that is not a node holds no DAs.
    api.get("SSIS", "/api/v1/accounts").await.expect_error(
        StatusCode::FORBIDDEN,
        "operation_forbidden",
        "SSIS (provider) may not GET /api/v1/accounts",
    );
    assert_eq!(api.snapshot(), before);
}

// ---- payments ------------------------------------------------------------------------------

/// RFC 8032 at the boundary (issue 17): a client key in a non-canonical
/// encoding (y = p + k) is refused at DA opening, naming the reason, and
/// nothing is opened — though signature verification itself (ZIP-215) would
/// accept the point.
#[tokio::test]
async fn a_non_canonical_client_key_is_refused_at_opening_and_nothing_changes() {
    let api = Api::new().await;
    let before = api.snapshot();
    let mut named = 0;
    for k in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut bytes = [0xffu8; 32];
            bytes[0] = 0xed + k;
            bytes[31] = 0x7f | sign;
            let body = json!({"iin_bin": fresh_iin(63), "name": "Device", "kind": "individual",
                "client_public_key": hex::encode(bytes)});
            let answer = api.post("STB1", "/api/v1/accounts", body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "y = p + {k}: {}", answer.text);
            if answer.message().contains("canonical") {
                named += 1;
            }
        }
    }
    assert!(named > 0, "some y = p + k are valid points refused only for their encoding");
    assert_eq!(api.snapshot(), before);
}

#[tokio::test]
async fn a_transfer_across_banks_with_status_receipt_lineage_history_and_notifications() {
    let api = Api::funded().await;
    let (farmer1, _, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (farmer2, farmer2_address, farmer2_iin) = api.demo_account("STB2", HolderKind::Individual, 7);
    let (road, road_address, _) = api.demo_account("STB2", HolderKind::LegalEntity, 6);
    let farmer1_before = api.standard("STB1", &farmer1);
    let farmer2_before = api.standard("STB2", &farmer2);
    let road_before = api.standard("STB2", &road);

    api.clock.advance(1_000);
    let paid = api
        .post(
            "STB1",
            "/api/v1/transfers",
            json!({"from": farmer1, "to": [
                {"iin_bin": farmer2_iin, "bank": "STB2", "amount_tiyn": 12_345},
                {"address": road_address, "amount_tiyn": 100}
            ], "memo": "seeds"}),
        )
        .await;
    let paid = paid.expect(StatusCode::OK).clone();
    assert_eq!(paid["status"]["status"], "success", "{paid}");
    assert!(paid["notary_seq"].is_u64());
    let tx = paid["tx"].as_str().unwrap().to_string();
    assert_eq!(api.standard("STB1", &farmer1), farmer1_before - 12_445);
    assert_eq!(api.standard("STB2", &farmer2), farmer2_before + 12_345);
    assert_eq!(api.standard("STB2", &road), road_before + 100);

    let balance = api.get("STB2", &format!("/api/v1/accounts/{farmer2}/balance")).await;
    assert_eq!(balance.expect(StatusCode::OK)["standard_tiyn"], farmer2_before + 12_345);

    let out = api.get("STB1", &format!("/api/v1/transactions/{tx}")).await;
    let out = out.expect(StatusCode::OK);
    assert_eq!(out["direction"], "outgoing");
    assert_eq!(out["type"], "transfer");
    assert_eq!(out["status"]["status"], "success");
    assert!(out["transaction"].is_object());
    let incoming = api.get("STB2", &format!("/api/v1/transactions/{tx}")).await;
    assert_eq!(incoming.expect(StatusCode::OK)["direction"], "incoming");

    let receipt = api.get("STB2", &format!("/api/v1/notary/receipts/{tx}")).await;
    let receipt = receipt.expect(StatusCode::OK);
    assert_eq!(receipt["tx"], tx.as_str());
    assert_eq!(receipt["seq"], paid["notary_seq"]);
    assert_eq!(receipt["signature"].as_str().unwrap().len(), 128);

    let lineage = api.get("STB2", &format!("/api/v1/tokens/{tx}:0/lineage")).await;
    let lineage = lineage.expect(StatusCode::OK);
    assert_eq!(lineage["token"], format!("{tx}:0"));
    assert!(!lineage["parents"].as_array().unwrap().is_empty());

    let history = api.get("STB1", &format!("/api/v1/accounts/{farmer1}/history")).await;
    let first = history.expect(StatusCode::OK)["items"][0].clone();
    assert_eq!(first["tx"], tx.as_str());
    assert_eq!(first["outgoing_tiyn"], 12_445);
    assert_eq!(first["memo"], "seeds");
    assert_eq!(first["type"], "transfer");
    let history = api.get("STB2", &format!("/api/v1/accounts/{farmer2}/history")).await;
    let first = history.expect(StatusCode::OK)["items"][0].clone();
    assert_eq!(first["incoming_tiyn"], 12_345);
    let notes = api.get("STB2", &format!("/api/v1/accounts/{farmer2}/notifications")).await;
    let notes = notes.expect(StatusCode::OK);
    assert!(notes["items"].as_array().unwrap().iter().any(|n| n["tx"] == tx.as_str()), "{notes}");

    // Unknown things are 404, malformed ids 400.
    let missing = "ab".repeat(32);
    api.get("STB1", &format!("/api/v1/transactions/{missing}")).await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "",
    );
    api.get("STB1", &format!("/api/v1/notary/receipts/{missing}")).await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "",
    );
    api.get("STB1", &format!("/api/v1/tokens/{missing}:0/lineage")).await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "",
    );
    api.get("STB1", "/api/v1/transactions/xyz").await.expect_error(StatusCode::BAD_REQUEST, "bad_tx_id", "");
    api.get("STB1", "/api/v1/tokens/xyz/lineage").await.expect_error(StatusCode::BAD_REQUEST, "bad_token_id", "");
    let _ = farmer2_address;
}

#[tokio::test]
async fn transfer_user_errors_are_refused_and_change_nothing() {
    let api = Api::funded().await;
    let (farmer1, _, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (_, farmer2_address, farmer2_iin) = api.demo_account("STB2", HolderKind::Individual, 7);
    let before = api.snapshot();
    let have = api.standard("STB1", &farmer1);
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 0}]}),
            StatusCode::BAD_REQUEST,
            "bad_amount",
            "amount_tiyn",
        ),
        (
            json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": have + 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
            "",
        ),
        (
            json!({"from": "STB1-999999", "to": [{"address": farmer2_address, "amount_tiyn": 1}]}),
            StatusCode::NOT_FOUND,
            "not_found",
            "STB1-999999",
        ),
        (json!({"from": farmer1, "to": []}), StatusCode::BAD_REQUEST, "no_recipients", "recipient"),
        (
            json!({"from": farmer1, "to": [{"address": "nothex", "amount_tiyn": 1}]}),
            StatusCode::BAD_REQUEST,
            "bad_address",
            "to[0].address",
        ),
        (json!({"from": farmer1, "to": [{"amount_tiyn": 1}]}), StatusCode::BAD_REQUEST, "bad_recipient", "to[0]"),
        (
            json!({"from": farmer1, "to": [{"iin_bin": bad_check_digit(&farmer2_iin), "bank": "STB2", "amount_tiyn": 1}]}),
            StatusCode::BAD_REQUEST,
            "bad_iin_bin",
            "check digit",
        ),
        (
            json!({"from": farmer1, "to": [{"iin_bin": farmer2_iin, "bank": "STB3", "amount_tiyn": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_recipient",
            "STB3",
        ),
        (
            json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 1}], "memo": "x".repeat(500)}),
            StatusCode::BAD_REQUEST,
            "bad_memo",
            "",
        ),
        (
            json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": -5}]}),
            StatusCode::BAD_REQUEST,
            "bad_json",
            "expected u64",
        ),
    ];
    for (body, status, code, needle) in cases {
        for path in ["/api/v1/transfers", "/api/v1/transfers/prepare"] {
            let answer = api.post("STB1", path, body.clone()).await;
            if path.ends_with("prepare") && code == "insufficient_funds" {
                // A custodial DA cannot be prepared for client signing at all.
                answer.expect_error(StatusCode::BAD_REQUEST, "invalid", "custodial");
                continue;
            }
            answer.expect_error(status, code, needle);
        }
    }
    // A pending-KYC DA may not pay.
    let opened = api
        .post("STB1", "/api/v1/accounts", json!({"iin_bin": fresh_iin(70), "name": "New", "kind": "individual"}))
        .await;
    let new_id = opened.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
    let before_new = api.snapshot();
    api.post(
        "STB1",
        "/api/v1/transfers",
        json!({"from": new_id, "to": [{"address": farmer2_address, "amount_tiyn": 1}]}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "kyc_not_verified", "");
    assert_eq!(api.snapshot(), before_new);
    assert_eq!(
        before_new.lines().filter(|l| !l.starts_with("STB1")).collect::<Vec<_>>(),
        before.lines().filter(|l| !l.starts_with("STB1")).collect::<Vec<_>>()
    );
    api.post("STB1", "/api/v1/transfers/submit", json!({"transaction": "zz"})).await.expect_error(
        StatusCode::BAD_REQUEST,
        "bad_hex",
        "hex",
    );
    api.post("STB1", "/api/v1/transfers/submit", json!({"transaction": "00"})).await.expect_error(
        StatusCode::BAD_REQUEST,
        "bad_transaction",
        "",
    );
    assert_eq!(api.snapshot(), before_new);
}

#[tokio::test]
async fn a_client_signing_holder_prepares_signs_and_submits() {
    let api = Api::funded().await;
    let (farmer1, _, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (farmer2, farmer2_address, _) = api.demo_account("STB2", HolderKind::Individual, 7);
    let device = SecretKey::from_seed([9; 32]);
    let opened = api
        .post(
            "STB1",
            "/api/v1/accounts",
            json!({"iin_bin": fresh_iin(71), "name": "Self signer", "kind": "individual", "kyc": "verified",
                   "client_public_key": device.public_key().to_string()}),
        )
        .await;
    let opened = opened.expect(StatusCode::CREATED).clone();
    assert_eq!(opened["custody"], "client");
    let me = opened["id"].as_str().unwrap().to_string();
    let fund = api
        .post(
            "STB1",
            "/api/v1/transfers",
            json!({"from": farmer1, "to": [{"address": opened["address"], "amount_tiyn": 5_000}]}),
        )
        .await;
    fund.expect(StatusCode::OK);
    // The node cannot sign for it.
    api.post(
        "STB1",
        "/api/v1/transfers",
        json!({"from": me, "to": [{"address": farmer2_address, "amount_tiyn": 1_000}]}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "client_signs", "");
    let prepared = api
        .post(
            "STB1",
            "/api/v1/transfers/prepare",
            json!({"from": me, "to": [{"address": farmer2_address, "amount_tiyn": 1_000}]}),
        )
        .await;
    let prepared = prepared.expect(StatusCode::OK).clone();
    let mut tx =
        dtenge_types::decode_transaction(&hex::decode(prepared["transaction"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(tx.id().to_string(), prepared["tx_id"].as_str().unwrap());
    assert_eq!(hex::encode(tx.id().signing_message()), prepared["signing_message"].as_str().unwrap());
    tx.sign(&device).unwrap();
    let before = api.standard("STB2", &farmer2);
    let done = api
        .post(
            "STB1",
            "/api/v1/transfers/submit",
            json!({"transaction": hex::encode(dtenge_types::encoding::encode(&tx))}),
        )
        .await;
    assert_eq!(done.expect(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.standard("STB2", &farmer2), before + 1_000);
    assert_eq!(api.standard("STB1", &me), 4_000);
    // Submitting it again: nothing awaits it.
    api.post(
        "STB1",
        "/api/v1/transfers/submit",
        json!({"transaction": hex::encode(dtenge_types::encoding::encode(&tx))}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid", "no prepared transaction");
    assert_eq!(api.standard("STB1", &me), 4_000);
}

// ---- conversion and statistics ------------------------------------------------------------

#[tokio::test]
async fn conversion_through_the_api_with_statuses_and_nbk_only_decisions() {
    let api = Api::new().await;
    let requested = api.post("STB1", "/api/v1/conversions", json!({"kind": "issue", "amount_tiyn": 1_000_000})).await;
    let requested = requested.expect(StatusCode::CREATED).clone();
    let id = requested["id"].as_str().unwrap().to_string();
    assert_eq!(requested["status"]["status"], "under_review");
    assert_eq!(requested["bank"], "STB1");
    assert_eq!(requested["kind"], "issue");

    // NBK before the CBS confirmed: refused with the reason.
    let early = api.post("NBK", &format!("/api/v1/conversions/{id}/approve"), json!({"operator": "op-1"})).await;
    assert!(early.status.is_client_error(), "{}", early.text);
    assert!(early.message().contains("CBS"), "{}", early.text);

    api.platform.tick().await; // the CBS simulator confirms; NBK imports
    let confirmed = api.get("STB1", &format!("/api/v1/conversions/{id}")).await;
    assert!(confirmed.expect(StatusCode::OK)["cbs_reference"].is_string());

    // Banks may not decide, nor see another bank's request; nothing changes.
    let before = api.snapshot();
    api.post("STB1", &format!("/api/v1/conversions/{id}/approve"), json!({"operator": "me"})).await.expect_error(
        StatusCode::FORBIDDEN,
        "operation_forbidden",
        "approve_conversion",
    );
    api.post("STB2", &format!("/api/v1/conversions/{id}/reject"), json!({"operator": "me", "reason": "no"}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "operation_forbidden", "reject_conversion");
    api.get("STB2", &format!("/api/v1/conversions/{id}")).await.expect_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "STB1",
    );
    api.get("STB1", "/api/v1/stats/supply").await.expect_error(
        StatusCode::FORBIDDEN,
        "operation_forbidden",
        "read_supply",
    );
    api.get("STB1", "/api/v1/stats/volumes").await.expect_error(
        StatusCode::FORBIDDEN,
        "operation_forbidden",
        "read_volumes",
    );
    api.post("NBK", "/api/v1/conversions", json!({"kind": "issue", "amount_tiyn": 5})).await.expect_error(
        StatusCode::FORBIDDEN,
        "operation_forbidden",
        "request_conversion",
    );
    api.post("STB1", "/api/v1/conversions", json!({"kind": "issue", "amount_tiyn": 0})).await.expect_error(
        StatusCode::BAD_REQUEST,
        "bad_amount",
        "amount_tiyn",
    );
    api.post("STB1", "/api/v1/conversions", json!({"kind": "redeem", "amount_tiyn": 1})).await.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
        "",
    );
    api.post("NBK", &format!("/api/v1/conversions/{id}/approve"), json!({"operator": "  "})).await.expect_error(
        StatusCode::BAD_REQUEST,
        "no_operator",
        "operator",
    );
    api.get("NBK", "/api/v1/conversions/NBK-REQ-999999").await.expect_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "NBK-REQ-999999",
    );
    assert_eq!(api.snapshot(), before);
    assert_eq!(api.get("STB2", "/api/v1/conversions").await.expect(StatusCode::OK)["total"], 0);

    let approved = api.post("NBK", &format!("/api/v1/conversions/{id}/approve"), json!({"operator": "op-1"})).await;
    let approved = approved.expect(StatusCode::OK).clone();
    assert_eq!(approved["status"]["status"], "success");
    assert_eq!(approved["decided_by"], "op-1");
    assert!(approved["settled_tx"].is_string());
    let own = api.platform.node("STB1").unwrap().own_account().unwrap().to_string();
    assert_eq!(api.standard("STB1", &own), 1_000_000);
    // Approving twice does not issue twice.
    let again = api.post("NBK", &format!("/api/v1/conversions/{id}/approve"), json!({"operator": "op-1"})).await;
    assert!(again.status.is_client_error(), "{}", again.text);
    assert_eq!(api.standard("STB1", &own), 1_000_000);

    // Redeem, then reject it: the DT come back; the reason is shown.
    let redeem = api.post("STB1", "/api/v1/conversions", json!({"kind": "redeem", "amount_tiyn": 400})).await;
    let rid = redeem.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
    let rejected = api
        .post(
            "NBK",
            &format!("/api/v1/conversions/{rid}/reject"),
            json!({"operator": "op-2", "reason": "limit reached"}),
        )
        .await;
    let rejected = rejected.expect(StatusCode::OK);
    assert_eq!(
        rejected["status"],
        json!({"status": "rejected", "reason": "limit reached", "reason_code": "operator_rejected"})
    );
    assert_eq!(api.standard("STB1", &own), 1_000_000);

    let mine = api.get("STB1", "/api/v1/conversions").await;
    assert_eq!(mine.expect(StatusCode::OK)["total"], 2);
    let rejected_only = api.get("STB1", "/api/v1/conversions?status=rejected").await;
    let rejected_only = rejected_only.expect(StatusCode::OK);
    assert_eq!(rejected_only["total"], 1);
    assert_eq!(rejected_only["items"][0]["id"], rid.as_str());
    assert_eq!(api.get("NBK", "/api/v1/conversions?status=success").await.expect(StatusCode::OK)["total"], 1);

    let supply = api.get("NBK", "/api/v1/stats/supply").await;
    let supply = supply.expect(StatusCode::OK);
    assert_eq!(supply["by_node_tiyn"]["STB1"], 1_000_000);
    assert!(supply["notary_committed"].as_u64().unwrap() >= 1);
    let volumes = api.get("NBK", "/api/v1/stats/volumes").await;
    let volumes = volumes.expect(StatusCode::OK).as_array().unwrap().clone();
    assert!(!volumes.is_empty());
    assert!(volumes.iter().all(|d| d["day"].as_str().unwrap().len() == 10));
    let none = api.get("NBK", &format!("/api/v1/stats/volumes?from_ms={}", START + 86_400_000)).await;
    assert_eq!(none.expect(StatusCode::OK), &json!([]));
}

// ---- negative security suite ----------------------------------------------------------------

#[tokio::test]
async fn refused_signatures_are_401_name_the_problem_and_change_nothing() {
    let api = Api::funded().await;
    let (farmer1, _, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (_, farmer2_address, _) = api.demo_account("STB2", HolderKind::Individual, 7);
    let path = "/api/v1/transfers";
    let body = serde_json::to_vec(&json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 777}]}))
        .unwrap();
    let key = api.key("STB1");
    let before = api.snapshot();
    let now = api.now() / 1_000;
    let build = |method: &str, uri: &str, headers: Vec<(&'static str, String)>| {
        let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder
    };
    let signed = |who: &str, key: &dyn Signer, method: &str, uri: &str, body: &[u8], created: u64, nonce: &str| {
        signed_headers(key, who, method, uri, body, None, created, nonce)
    };

    // Each signature header missing in turn; none at all, on a GET too.
    for missing in ["signature-input", "signature"] {
        let headers = signed("STB1", &key, "POST", path, &body, now, &api.nonce());
        let headers = headers.into_iter().filter(|(n, _)| *n != missing).collect();
        let answer = api.send(build("POST", path, headers).body(Body::from(body.clone())).unwrap()).await;
        answer.expect_error(StatusCode::UNAUTHORIZED, "missing_signature", missing);
    }
    let headers = signed("STB1", &key, "POST", path, &body, now, &api.nonce());
    let headers = headers.into_iter().filter(|(n, _)| *n != "content-digest").collect();
    let answer = api.send(build("POST", path, headers).body(Body::from(body.clone())).unwrap()).await;
    answer.expect_error(StatusCode::UNAUTHORIZED, "component_not_covered", "content-digest");
    api.unsigned("POST", path, &body).await.expect_error(StatusCode::UNAUTHORIZED, "missing_signature", "signed");
    api.unsigned("GET", "/api/v1/accounts", b"").await.expect_error(
        StatusCode::UNAUTHORIZED,
        "missing_signature",
        "RFC 9421",
    );

    // Signed by another key (STB2's) while claiming STB1; a signature that is not one.
    let other = api.key("STB2");
    let answer = api
        .send(
            build("POST", path, signed("STB1", &other, "POST", path, &body, now, &api.nonce()))
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    answer.expect_error(StatusCode::UNAUTHORIZED, "bad_signature", "STB1");
    let mut headers = signed("STB1", &key, "POST", path, &body, now, &api.nonce());
    for (name, value) in headers.iter_mut() {
        if *name == "signature" {
            *value = "sig=:bm90IGEgc2lnbmF0dXJl:".into();
        }
    }
    api.send(build("POST", path, headers).body(Body::from(body.clone())).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "malformed_signature",
        "64-byte",
    );

    // The body does not match its digest: a bigger amount sent under the signature of 777.
    let tampered =
        serde_json::to_vec(&json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 777_000}]}))
            .unwrap();
    let headers = signed("STB1", &key, "POST", path, &body, now, &api.nonce());
    let answer = api.send(build("POST", path, headers).body(Body::from(tampered.clone())).unwrap()).await;
    answer.expect_error(StatusCode::UNAUTHORIZED, "content_digest_mismatch", "content-digest");
    // … nor with its digest replaced too: the digest is covered.
    let mut headers = signed("STB1", &key, "POST", path, &body, now, &api.nonce());
    for (name, value) in headers.iter_mut() {
        if *name == "content-digest" {
            *value = dtenge_api_types::signing::content_digest(&tampered);
        }
    }
    let answer = api.send(build("POST", path, headers).body(Body::from(tampered.clone())).unwrap()).await;
    answer.expect_error(StatusCode::UNAUTHORIZED, "bad_signature", "does not verify");
    // Nor the path or query, nor the host.
    let headers = signed("STB1", &key, "GET", "/api/v1/accounts?page=1", b"", now, &api.nonce());
    api.send(build("GET", "/api/v1/accounts?page=2", headers).body(Body::empty()).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        "",
    );
    let mut headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", now, &api.nonce());
    for (name, value) in headers.iter_mut() {
        if *name == "host" {
            *value = "attacker.example".into();
        }
    }
    api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        "",
    );
    // An Idempotency-Key the signature does not cover.
    let mut headers = signed("STB1", &key, "POST", path, &body, now, &api.nonce());
    headers.push(("idempotency-key", "added-later".into()));
    api.send(build("POST", path, headers).body(Body::from(body.clone())).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "component_not_covered",
        "idempotency-key",
    );
    // A signature without FAPI's request tag.
    let mut headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", now, &api.nonce());
    for (name, value) in headers.iter_mut() {
        if *name == "signature-input" {
            *value = value.replace(";tag=\"fapi-2-request\"", "");
        }
    }
    api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "signature_tag",
        "fapi-2-request",
    );
    assert_eq!(api.snapshot(), before);

    // Signed before the server started: the empty replay cache of a restarted server opens no window.
    let headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", START / 1_000 - 1, &api.nonce());
    api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "signed_before_restart",
        "after its restart",
    );
    // Too old, too far ahead; just inside both bounds passes (a minute after the start, so
    // that the oldest fresh signature is not older than the server).
    api.clock.advance(61_000);
    let now = api.now() / 1_000;
    for (created, ok) in [
        (now - MAX_AGE_S - 1, false),
        (now + MAX_FUTURE_S + 1, false),
        (now - MAX_AGE_S, true),
        (now + MAX_FUTURE_S, true),
    ] {
        let headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", created, &api.nonce());
        let answer = api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await;
        if ok {
            answer.expect(StatusCode::OK);
        } else {
            answer.expect_error(StatusCode::UNAUTHORIZED, "stale_signature", "60 s before or 10 s after");
        }
        let headers = signed("STB1", &key, "POST", path, &body, created, &api.nonce());
        let answer = api.send(build("POST", path, headers).body(Body::from(body.clone())).unwrap()).await;
        if ok {
            answer.expect(StatusCode::OK);
        } else {
            answer.expect_error(StatusCode::UNAUTHORIZED, "stale_signature", &created.to_string());
        }
    }
    let after_accepted = api.snapshot();
    assert_ne!(after_accepted, before, "the two in-window transfers went through");

    // A nonce too short, with bad characters, too long.
    for nonce in ["short", "has space in it", &"n".repeat(65)] {
        let headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", now, nonce);
        let answer = api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await;
        answer.expect_error(StatusCode::UNAUTHORIZED, "signature_parameter", "nonce");
    }

    // A reused nonce: the exact request replayed is refused, and the payment happens once.
    let nonce = api.nonce();
    let replayable = signed("STB1", &key, "POST", path, &body, now, &nonce);
    api.send(build("POST", path, replayable.clone()).body(Body::from(body.clone())).unwrap())
        .await
        .expect(StatusCode::OK);
    let once = api.snapshot();
    let replay = api.send(build("POST", path, replayable).body(Body::from(body.clone())).unwrap()).await;
    replay.expect_error(StatusCode::UNAUTHORIZED, "replayed_nonce", &nonce);
    // Same nonce on another request (a GET) is refused too.
    let headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", now, &nonce);
    api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "replayed_nonce",
        "already used",
    );
    assert_eq!(api.snapshot(), once);
    // A nonce refused for a bad signature was not consumed: the right request with it still works.
    let fresh = api.nonce();
    let headers = signed("STB1", &other, "GET", "/api/v1/accounts", b"", now, &fresh);
    api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        "",
    );
    let headers = signed("STB1", &key, "GET", "/api/v1/accounts", b"", now, &fresh);
    api.send(build("GET", "/api/v1/accounts", headers).body(Body::empty()).unwrap()).await.expect(StatusCode::OK);

    // Unknown participant (and a malformed id).
    let stranger = SecretKey::from_seed([5; 32]);
    for who in ["STB9", "not an id!"] {
        let headers = signed(who, &stranger, "POST", path, &body, now, &api.nonce());
        let answer = api.send(build("POST", path, headers).body(Body::from(body.clone())).unwrap()).await;
        answer.expect_error(StatusCode::UNAUTHORIZED, "unknown_participant", "");
    }
    assert_eq!(api.snapshot(), once);
}

#[tokio::test]
async fn a_full_replay_window_refuses_with_503_and_retry_after_instead_of_forgetting() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let platform = Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: false }).await.unwrap());
    let options = dtenge_api::ApiOptions { replay_capacity: 3, ..Default::default() };
    let router = dtenge_api::router_with(Arc::clone(&platform), options);
    let key = Keys::at(&platform.data).load("STB1").unwrap();
    let send = |nonce: &str| {
        let mut builder = Request::builder().method("GET").uri("/api/v1/accounts");
        for (name, value) in
            signed_headers(&key, "STB1", "GET", "/api/v1/accounts", b"", None, clock.now().millis() / 1_000, nonce)
        {
            builder = builder.header(name, value);
        }
        router.clone().oneshot(builder.body(Body::empty()).unwrap())
    };
    let mut used = Vec::new();
    for i in 0..3 {
        let nonce = format!("window-{i:08}");
        assert_eq!(send(&nonce).await.unwrap().status(), StatusCode::OK);
        used.push(nonce);
        clock.advance(1_000);
    }
    let full = send("window-00000003").await.unwrap();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = full.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=72).contains(&retry_after), "{retry_after}");
    // Every nonce of the window is still refused while it is full: nothing was forgotten.
    for nonce in &used {
        assert_eq!(send(nonce).await.unwrap().status(), StatusCode::UNAUTHORIZED, "{nonce}");
    }
    // Once the first nonce has outlived its signature's freshness, there is room again.
    clock.advance(retry_after * 1_000);
    assert_eq!(send("window-00000003").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bank_cannot_touch_another_banks_clients_and_nothing_changes() {
    let api = Api::funded().await;
    let (farmer1, farmer1_address, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (farmer2, _, _) = api.demo_account("STB2", HolderKind::Individual, 7);
    let before = api.snapshot();
    for path in [
        format!("/api/v1/accounts/{farmer1}"),
        format!("/api/v1/accounts/{farmer1}/balance"),
        format!("/api/v1/accounts/{farmer1}/history"),
        format!("/api/v1/accounts/{farmer1}/notifications"),
    ] {
        api.get("STB2", &path).await.expect_error(StatusCode::FORBIDDEN, "forbidden", "held at STB1");
    }
    api.post("STB2", &format!("/api/v1/accounts/{farmer1}/kyc"), json!({"kyc": "rejected"})).await.expect_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "held at STB1",
    );
    // Paying out of STB1's client's DA, to a DA of its own.
    let (_, road_address, _) = api.demo_account("STB2", HolderKind::LegalEntity, 6);
    for path in ["/api/v1/transfers", "/api/v1/transfers/prepare"] {
        api.post("STB2", path, json!({"from": farmer1, "to": [{"address": road_address, "amount_tiyn": 1}]}))
            .await
            .expect_error(StatusCode::FORBIDDEN, "forbidden", "held at STB1");
    }
    // The Treasury and NBK are no different.
    api.get("TREASURY", &format!("/api/v1/accounts/{farmer2}/balance")).await.expect_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "STB2",
    );
    api.post(
        "NBK",
        "/api/v1/transfers",
        json!({"from": farmer2, "to": [{"address": farmer1_address, "amount_tiyn": 1}]}),
    )
    .await
    .expect_error(StatusCode::FORBIDDEN, "forbidden", "STB2");
    // A provider is no participant node.
    api.post(
        "SSIS",
        "/api/v1/transfers",
        json!({"from": farmer2, "to": [{"address": farmer1_address, "amount_tiyn": 1}]}),
    )
    .await
    .expect_error(StatusCode::FORBIDDEN, "operation_forbidden", "SSIS (provider) may not POST /api/v1/transfers");
    assert_eq!(api.snapshot(), before);
    // Its own client's reads still work.
    api.get("STB2", &format!("/api/v1/accounts/{farmer2}/balance")).await.expect(StatusCode::OK);
}

// ---- idempotency ----------------------------------------------------------------------------

#[tokio::test]
async fn an_idempotency_key_gives_one_effect_and_refuses_another_body() {
    let api = Api::funded().await;
    let (farmer1, _, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (farmer2, farmer2_address, _) = api.demo_account("STB2", HolderKind::Individual, 7);
    let start1 = api.standard("STB1", &farmer1);
    let start2 = api.standard("STB2", &farmer2);
    let body = json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 1_500}]});
    let key = [("idempotency-key", "pay-2026-0001")];
    let first = api.call_with("STB1", "POST", "/api/v1/transfers", Some(&body), &key).await;
    let first = first.expect(StatusCode::OK).clone();
    let after = api.snapshot();
    let second = api.call_with("STB1", "POST", "/api/v1/transfers", Some(&body), &key).await;
    assert_eq!(second.expect(StatusCode::OK), &first, "the same answer");
    assert_eq!(api.snapshot(), after, "one effect");
    assert_eq!(api.standard("STB1", &farmer1), start1 - 1_500);
    assert_eq!(api.standard("STB2", &farmer2), start2 + 1_500);

    let other = json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 2_500}]});
    api.call_with("STB1", "POST", "/api/v1/transfers", Some(&other), &key).await.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "pay-2026-0001",
    );
    assert_eq!(api.snapshot(), after);
    // Keys are per participant: STB2 may use the same key for its own request.
    let (road, _, _) = api.demo_account("STB2", HolderKind::LegalEntity, 6);
    let (_, farmer1_address, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let theirs = json!({"from": road, "to": [{"address": farmer1_address, "amount_tiyn": 10}]});
    api.call_with("STB2", "POST", "/api/v1/transfers", Some(&theirs), &key).await.expect(StatusCode::OK);
    // A refused request is remembered with its answer too: a retry gets the same refusal, not a second try.
    let too_much = json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": 10_000_000_000u64}]});
    let k2 = [("idempotency-key", "pay-2026-0002")];
    let refused = api.call_with("STB1", "POST", "/api/v1/transfers", Some(&too_much), &k2).await;
    refused.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds", "");
    let again = api.call_with("STB1", "POST", "/api/v1/transfers", Some(&too_much), &k2).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.json, refused.json);
    // Bad keys.
    let long = "k".repeat(129);
    api.call_with("STB1", "POST", "/api/v1/transfers", Some(&body), &[("idempotency-key", long.as_str())])
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_idempotency_key", "1-128");
    // Opening an account and requesting a conversion are idempotent the same way.
    let open = json!({"iin_bin": fresh_iin(80), "name": "Idem", "kind": "individual"});
    let k3 = [("idempotency-key", "open-1")];
    let a = api.call_with("STB1", "POST", "/api/v1/accounts", Some(&open), &k3).await;
    let a = a.expect(StatusCode::CREATED).clone();
    let b = api.call_with("STB1", "POST", "/api/v1/accounts", Some(&open), &k3).await;
    assert_eq!(b.expect(StatusCode::CREATED), &a);
    let listed = api.get("STB1", "/api/v1/accounts?type=individual&per_page=200").await;
    let listed = listed.expect(StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().iter().filter(|x| x["name"] == "Idem").count(), 1);
    let conv = json!({"kind": "issue", "amount_tiyn": 1000});
    let k4 = [("idempotency-key", "conv-1")];
    let c1 = api.call_with("STB3", "POST", "/api/v1/conversions", Some(&conv), &k4).await;
    let c1 = c1.expect(StatusCode::CREATED).clone();
    let c2 = api.call_with("STB3", "POST", "/api/v1/conversions", Some(&conv), &k4).await;
    assert_eq!(c2.expect(StatusCode::CREATED), &c1);
    let bad = json!({"kind": "issue", "amount_tiyn": 1001});
    api.call_with("STB3", "POST", "/api/v1/conversions", Some(&bad), &k4).await.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "conv-1",
    );
}

// ---- pagination and filters ----------------------------------------------------------------

#[tokio::test]
async fn accounts_list_pages_and_filters() {
    let api = Api::new().await;
    let base = api.get("STB1", "/api/v1/accounts").await.expect(StatusCode::OK)["total"].as_u64().unwrap();
    let mut opened = Vec::new();
    for i in 0..5u8 {
        api.clock.advance(1_000);
        let kind = if i % 2 == 0 { "individual" } else { "legal_entity" };
        let iin = if kind == "individual" {
            fresh_iin(90 + i)
        } else {
            demo_iin_bin(HolderKind::LegalEntity, 90 + i).to_string()
        };
        let a = api
            .post("STB1", "/api/v1/accounts", json!({"iin_bin": iin, "name": format!("Holder {i}"), "kind": kind}))
            .await;
        opened.push(a.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string());
    }
    let total = base + 5;
    let all = api.get("STB1", "/api/v1/accounts?per_page=200").await;
    let all = all.expect(StatusCode::OK).clone();
    assert_eq!(all["total"], total);
    assert_eq!(all["items"][0]["id"], opened[4].as_str(), "newest first");

    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = api.get("STB1", &format!("/api/v1/accounts?page={page}&per_page=2")).await;
        let p = p.expect(StatusCode::OK).clone();
        assert_eq!(p["page"], page);
        assert_eq!(p["per_page"], 2);
        assert_eq!(p["total"], total);
        for item in p["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(&seen[..5], &opened.iter().rev().cloned().collect::<Vec<_>>()[..], "pages in order, no overlap");
    let beyond = api.get("STB1", "/api/v1/accounts?page=999&per_page=2").await;
    assert_eq!(beyond.expect(StatusCode::OK)["items"], json!([]));

    let individuals = api.get("STB1", "/api/v1/accounts?type=individual&per_page=200").await;
    let individuals = individuals.expect(StatusCode::OK).clone();
    assert_eq!(individuals["total"], 3);
    assert!(individuals["items"].as_array().unwrap().iter().all(|a| a["kind"] == "individual"));
    let companies = api.get("STB1", "/api/v1/accounts?type=legal_entity").await;
    assert_eq!(companies.expect(StatusCode::OK)["total"], 2);

    // Opened at START+1000 … START+5000: [START+2000, START+4000) holds two.
    let period = api.get("STB1", &format!("/api/v1/accounts?from_ms={}&to_ms={}", START + 2_000, START + 4_000)).await;
    let period = period.expect(StatusCode::OK).clone();
    assert_eq!(period["total"], 2);
    assert_eq!(period["items"][0]["id"], opened[2].as_str());
    assert_eq!(period["items"][1]["id"], opened[1].as_str());

    for bad in ["per_page=0", "per_page=201", "page=0"] {
        api.get("STB1", &format!("/api/v1/accounts?{bad}")).await.expect_error(StatusCode::BAD_REQUEST, "bad_page", "");
    }
    let malformed = api.get("STB1", "/api/v1/accounts?page=abc").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{}", malformed.text);
}

#[tokio::test]
async fn history_pages_and_filters_by_type_status_and_period() {
    let api = Api::funded().await;
    let (farmer1, _, _) = api.demo_account("STB1", HolderKind::Individual, 5);
    let (_, farmer2_address, _) = api.demo_account("STB2", HolderKind::Individual, 7);
    let path = format!("/api/v1/accounts/{farmer1}/history");
    let base = api.get("STB1", &path).await.expect(StatusCode::OK)["total"].as_u64().unwrap();
    let t0 = api.now();
    let mut txs = Vec::new();
    for i in 1..=4u64 {
        api.clock.advance(10_000);
        let paid = api
            .post(
                "STB1",
                "/api/v1/transfers",
                json!({"from": farmer1, "to": [{"address": farmer2_address, "amount_tiyn": i * 100}]}),
            )
            .await;
        txs.push(paid.expect(StatusCode::OK)["tx"].as_str().unwrap().to_string());
    }
    let all = api.get("STB1", &format!("{path}?per_page=200")).await;
    let all = all.expect(StatusCode::OK).clone();
    assert_eq!(all["total"], base + 4);
    assert_eq!(all["items"][0]["tx"], txs[3].as_str(), "newest first");

    let p2 = api.get("STB1", &format!("{path}?page=2&per_page=1")).await;
    let p2 = p2.expect(StatusCode::OK).clone();
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["items"][0]["tx"], txs[2].as_str());
    assert_eq!(p2["page"], 2);

    let transfers = api.get("STB1", &format!("{path}?type=transfer&per_page=200")).await;
    let transfers = transfers.expect(StatusCode::OK).clone();
    assert!(transfers["items"].as_array().unwrap().iter().all(|h| h["type"] == "transfer"));
    assert!(transfers["total"].as_u64().unwrap() >= 4);
    let holds = api.get("STB1", &format!("{path}?type=hold")).await;
    assert_eq!(holds.expect(StatusCode::OK)["total"], 0);
    let success = api.get("STB1", &format!("{path}?status=success&per_page=200")).await;
    assert_eq!(success.expect(StatusCode::OK)["total"], base + 4);
    let rejected = api.get("STB1", &format!("{path}?status=rejected")).await;
    assert_eq!(rejected.expect(StatusCode::OK)["total"], 0);

    // Transfers at t0+10s … t0+40s: [t0+15s, t0+35s) holds the 2nd and 3rd.
    let period = api.get("STB1", &format!("{path}?from_ms={}&to_ms={}", t0 + 15_000, t0 + 35_000)).await;
    let period = period.expect(StatusCode::OK).clone();
    assert_eq!(period["total"], 2, "{period}");
    assert_eq!(period["items"][0]["tx"], txs[2].as_str());
    assert_eq!(period["items"][1]["tx"], txs[1].as_str());
    let combined =
        api.get("STB1", &format!("{path}?from_ms={}&type=transfer&status=success&page=1&per_page=3", t0 + 1)).await;
    let combined = combined.expect(StatusCode::OK).clone();
    assert_eq!(combined["total"], 4);
    assert_eq!(combined["items"].as_array().unwrap().len(), 3);

    api.get("STB1", &format!("{path}?per_page=1000")).await.expect_error(
        StatusCode::BAD_REQUEST,
        "bad_page",
        "per_page",
    );
    // The receiving side's notifications page the same way.
    let (farmer2, _, _) = api.demo_account("STB2", HolderKind::Individual, 7);
    let notes =
        api.get("STB2", &format!("/api/v1/accounts/{farmer2}/notifications?from_ms={}&per_page=2", t0 + 1)).await;
    let notes = notes.expect(StatusCode::OK).clone();
    assert_eq!(notes["total"], 4, "{notes}");
    assert_eq!(notes["items"].as_array().unwrap().len(), 2);
}
