//! DT-backed stablecoins through the HTTP API (tower `oneshot`, no sockets):
//! the licensed issuer mints against DT and burns releasing it, holders pay
//! each other in the stablecoin, the oracle-attested proof of reserves, NBK's
//! list; and the refusals: a bank minting, a DA that is not the issuer, a
//! mint without DT, a burn of more than held, the reserve paid out, unknown
//! and malformed codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use dtenge_api::auth::signed_headers;
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
    dir: tempfile::TempDir,
    platform: Arc<Platform>,
    clock: Arc<ManualClock>,
    router: Router,
    nonces: AtomicU64,
}

struct Answer {
    status: StatusCode,
    json: Value,
}

impl Answer {
    #[track_caller]
    fn ok(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "answer: {}", self.json);
        &self.json
    }

    #[track_caller]
    fn error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "answer: {}", self.json);
        self.json["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.json))
    }

    fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
}

/// A DA as the API shows it.
struct Da {
    id: String,
    address: String,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp(START));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let platform =
            Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: false }).await.unwrap());
        let router = dtenge_api::router(Arc::clone(&platform));
        Api { dir, platform, clock, router, nonces: AtomicU64::new(0) }
    }

    fn now(&self) -> u64 {
        self.clock.now().millis()
    }

    async fn call(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let key = Keys::at(self.dir.path()).load(who).unwrap();
        let nonce = format!("prog-nonce-{:06}", self.nonces.fetch_add(1, Ordering::Relaxed));
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        for (name, value) in signed_headers(&key, who, method, path, &bytes, None, self.now() / 1_000, &nonce) {
            request = request.header(name, value);
        }
        let response = self.router.clone().oneshot(request.body(Body::from(bytes)).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let json =
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        Answer { status, json }
    }

    async fn get(&self, who: &str, path: &str) -> Answer {
        self.call(who, "GET", path, None).await
    }

    async fn post(&self, who: &str, path: &str, body: Value) -> Answer {
        self.call(who, "POST", path, Some(body)).await
    }

    /// Opens a verified DA at `bank`.
    async fn open(&self, bank: &str, kind: &str, serial: u8) -> Da {
        let holder_kind = match kind {
            "individual" => HolderKind::Individual,
            "government_agency" => HolderKind::GovernmentAgency,
            _ => HolderKind::LegalEntity,
        };
        let body = json!({
            "iin_bin": demo_iin_bin(holder_kind, serial).to_string(),
            "name": format!("Holder {serial}"),
            "kind": kind,
            "kyc": "verified",
        });
        let a = self.post(bank, "/api/v1/accounts", body).await;
        let v = a.ok(StatusCode::CREATED);
        Da { id: v["id"].as_str().unwrap().into(), address: v["address"].as_str().unwrap().into() }
    }

    /// Funds `da` at `bank` the way a bank does: a conversion through the
    /// CBS, approved by NBK, then a transfer from the bank's own DA.
    async fn fund(&self, bank: &str, da: &Da, tiyn: u64) {
        let request = self.post(bank, "/api/v1/conversions", json!({"kind": "issue", "amount_tiyn": tiyn})).await;
        let id = request.ok(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
        self.platform.tick().await;
        self.post("NBK", &format!("/api/v1/conversions/{id}/approve"), json!({"operator": "operator-1"}))
            .await
            .ok(StatusCode::OK);
        let own = self.platform.node(bank).unwrap().own_account().unwrap();
        let paid = self
            .post(
                bank,
                "/api/v1/transfers",
                json!({"from": own.to_string(), "to": [{"address": da.address, "amount_tiyn": tiyn}]}),
            )
            .await;
        assert_eq!(paid.ok(StatusCode::OK)["status"]["status"], "success");
    }

    async fn balance(&self, bank: &str, da: &Da) -> Value {
        self.get(bank, &format!("/api/v1/accounts/{}/balance", da.id)).await.ok(StatusCode::OK).clone()
    }
}

fn coin_balance(b: &Value) -> u64 {
    b["other_currencies"]["KZTC"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn the_issuer_mints_against_dt_holders_pay_and_the_proof_of_reserves_is_signed_by_the_oracle() {
    let api = Api::new().await;
    let alice = api.open("STB1", "individual", 1).await;
    let bob = api.open("STB2", "individual", 2).await;
    api.fund("STB1", &alice, 1_000_000).await;
    let spec_issuer = api.platform.spec.institutions.iter().find(|i| i.key == "COINCO-DA").unwrap().clone();
    let coinco = api.platform.node("COINCO").unwrap();
    let issuer_id = coinco.read(|s| s.account_of(&spec_issuer.address).unwrap().id.to_string());
    let issuer = Da { id: issuer_id.clone(), address: spec_issuer.address.to_string() };
    let paid = api
        .post(
            "STB1",
            "/api/v1/transfers",
            json!({"from": alice.id, "to": [{"address": issuer.address, "amount_tiyn": 600_000}]}),
        )
        .await;
    assert_eq!(paid.ok(StatusCode::OK)["status"]["status"], "success");

    // Only the licensed issuer mints, and only from its issuer DA.
    let mint = |amount: u64| json!({"account": issuer_id, "amount_tiyn": amount});
    let bank =
        api.post("STB1", "/api/v1/stablecoins/KZTC/mint", json!({"account": alice.id, "amount_tiyn": 100})).await;
    assert_eq!(bank.error(StatusCode::FORBIDDEN), "operation_forbidden");
    let other = api.open("COINCO", "legal_entity", 3).await;
    let not_issuer =
        api.post("COINCO", "/api/v1/stablecoins/KZTC/mint", json!({"account": other.id, "amount_tiyn": 100})).await;
    assert_eq!(not_issuer.error(StatusCode::FORBIDDEN), "not_stablecoin_issuer", "{}", not_issuer.message());
    assert_eq!(
        api.post("COINCO", "/api/v1/stablecoins/USDX/mint", mint(100)).await.error(StatusCode::NOT_FOUND),
        "not_found"
    );
    assert_eq!(
        api.post("COINCO", "/api/v1/stablecoins/k!/mint", mint(100)).await.error(StatusCode::BAD_REQUEST),
        "bad_currency"
    );
    assert_eq!(
        api.post("COINCO", "/api/v1/stablecoins/KZTC/mint", mint(0)).await.error(StatusCode::BAD_REQUEST),
        "bad_amount"
    );

    // Mint 500 000: the same DT go into the reserve.
    let minted = api.post("COINCO", "/api/v1/stablecoins/KZTC/mint", mint(500_000)).await;
    assert_eq!(minted.ok(StatusCode::OK)["status"]["status"], "success");
    let b = api.balance("COINCO", &issuer).await;
    assert_eq!(
        (b["reserve_tiyn"].as_u64(), b["standard_tiyn"].as_u64(), coin_balance(&b)),
        (Some(500_000), Some(100_000), 500_000)
    );
    // No DT left to back more: refused, nothing changes.
    let short = api.post("COINCO", "/api/v1/stablecoins/KZTC/mint", mint(200_000)).await;
    assert_eq!(short.error(StatusCode::UNPROCESSABLE_ENTITY), "insufficient_funds", "{}", short.message());
    assert_eq!(api.balance("COINCO", &issuer).await, b);
    // The reserve cannot be paid out: a DT payment finds only the free 100 000.
    let out = api
        .post(
            "COINCO",
            "/api/v1/transfers",
            json!({"from": issuer_id, "to": [{"address": bob.address, "amount_tiyn": 150_000}]}),
        )
        .await;
    assert_eq!(out.error(StatusCode::UNPROCESSABLE_ENTITY), "insufficient_funds", "{}", out.message());
    assert_eq!(api.balance("COINCO", &issuer).await, b);

    // Holders pay each other in the stablecoin.
    let pay = |from: &str, to: &str, amount: u64| json!({"from": from, "to": [{"address": to, "amount_tiyn": amount}]});
    let r = api.post("COINCO", "/api/v1/stablecoins/KZTC/transfers", pay(&issuer_id, &alice.address, 300_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    let r = api.post("STB1", "/api/v1/stablecoins/KZTC/transfers", pay(&alice.id, &bob.address, 100_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(coin_balance(&api.balance("STB1", &alice).await), 200_000);
    assert_eq!(coin_balance(&api.balance("STB2", &bob).await), 100_000);
    let too_much = api.post("STB2", "/api/v1/stablecoins/KZTC/transfers", pay(&bob.id, &alice.address, 100_001)).await;
    assert_eq!(too_much.error(StatusCode::UNPROCESSABLE_ENTITY), "insufficient_funds");
    let not_coin = api.post("STB2", "/api/v1/stablecoins/FCY/transfers", pay(&bob.id, &alice.address, 1)).await;
    assert_eq!(not_coin.error(StatusCode::NOT_FOUND), "not_found");

    // Proof of reserves, for a bank and for a provider alike.
    for who in ["STB2", "SRC"] {
        let proof = api.get(who, "/api/v1/stablecoins/KZTC/reserves").await;
        let p = proof.ok(StatusCode::OK);
        assert_eq!(p["stablecoin"]["supply_tiyn"], 500_000);
        assert_eq!(p["stablecoin"]["reserve_tiyn"], 500_000);
        assert_eq!(p["stablecoin"]["covered"], true);
        assert_eq!(p["verified"], true);
        // Checked independently with the oracle's key from the registry.
        let oracle = api.platform.spec.participant("ORACLE").unwrap().public_key;
        assert_eq!(p["oracle"], oracle.to_string());
        let message = hex::decode(p["signing_message"].as_str().unwrap()).unwrap();
        let signature: [u8; 64] = hex::decode(p["signature"].as_str().unwrap()).unwrap().try_into().unwrap();
        use dtenge_crypto::Verifier;
        dtenge_crypto::Ed25519.verify(&oracle, &message, &dtenge_crypto::Signature(signature)).unwrap();
        let report = dtenge_oracle::reserves::ReservesReport {
            stablecoin: dtenge_types::Currency::new("KZTC").unwrap(),
            supply: dtenge_types::Amount::from_tiyn(500_000),
            reserve: dtenge_types::Amount::from_tiyn(500_000),
        };
        let at = Timestamp(p["at_ms"].as_u64().unwrap());
        assert_eq!(message, dtenge_oracle::reserves::ReservesAttestation::signing_message(&report, at));
    }
    assert_eq!(api.get("STB1", "/api/v1/stablecoins/NONE/reserves").await.error(StatusCode::NOT_FOUND), "not_found");

    // Bob redeems 100 000: pays it back, the issuer burns it and the reserve releases the DT.
    let r = api.post("STB2", "/api/v1/stablecoins/KZTC/transfers", pay(&bob.id, &issuer.address, 100_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    let burned = api.post("COINCO", "/api/v1/stablecoins/KZTC/burn", mint(100_000)).await;
    assert_eq!(burned.ok(StatusCode::OK)["status"]["status"], "success");
    let b = api.balance("COINCO", &issuer).await;
    assert_eq!(
        (b["reserve_tiyn"].as_u64(), b["standard_tiyn"].as_u64(), coin_balance(&b)),
        (Some(400_000), Some(200_000), 200_000)
    );
    let over = api.post("COINCO", "/api/v1/stablecoins/KZTC/burn", mint(200_001)).await;
    assert_eq!(over.error(StatusCode::UNPROCESSABLE_ENTITY), "insufficient_funds", "{}", over.message());
    let bank_burn =
        api.post("STB1", "/api/v1/stablecoins/KZTC/burn", json!({"account": alice.id, "amount_tiyn": 1})).await;
    assert_eq!(bank_burn.error(StatusCode::FORBIDDEN), "operation_forbidden");

    // NBK's list; a bank may not read it.
    let list = api.get("NBK", "/api/v1/stablecoins").await;
    let coins = list.ok(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(coins.len(), 1);
    assert_eq!(
        (coins[0]["code"].as_str(), coins[0]["supply_tiyn"].as_u64(), coins[0]["reserve_tiyn"].as_u64()),
        (Some("KZTC"), Some(400_000), Some(400_000))
    );
    assert_eq!(coins[0]["issuer"], issuer.address.as_str());
    assert_eq!(api.get("STB1", "/api/v1/stablecoins").await.error(StatusCode::FORBIDDEN), "operation_forbidden");
}

/// What every vault really holds of KZTC and of DT in its reserve, read
/// here node by node, independently of the API and the oracle.
fn vault_sum(platform: &Platform) -> (u64, u64) {
    let coin = dtenge_types::Currency::new("KZTC").unwrap();
    let reserve = Some(dtenge_types::Encumbrance::Reserve(dtenge_types::ReserveTerms { stablecoin: coin }));
    let (mut s, mut r) = (0, 0);
    for node in platform.nodes.values() {
        node.read(|st| {
            for (_, stored) in st.vault.iter() {
                if stored.token.currency == coin {
                    s += stored.token.amount.tiyn();
                } else if stored.token.currency == dtenge_types::Currency::DT && stored.token.encumbrance == reserve {
                    r += stored.token.amount.tiyn();
                }
            }
        });
    }
    (s, r)
}

impl Api {
    /// A request with no signature at all.
    async fn unsigned(&self, path: &str) -> Answer {
        let request = Request::builder().method("GET").uri(path).body(Body::empty()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let json =
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        Answer { status, json }
    }

    /// The public proof of reserves, checked against the vaults and the
    /// oracle's key; returns (supply, reserve).
    async fn proof_matches_the_vaults(&self) -> (u64, u64) {
        let proof = self.unsigned("/api/v1/stablecoins/KZTC/reserves").await;
        let p = proof.ok(StatusCode::OK).clone();
        let counted =
            (p["stablecoin"]["supply_tiyn"].as_u64().unwrap(), p["stablecoin"]["reserve_tiyn"].as_u64().unwrap());
        assert_eq!(counted, vault_sum(&self.platform), "the oracle's count is the vaults' real sum");
        assert_eq!(p["verified"], true);
        let oracle = self.platform.spec.participant("ORACLE").unwrap().public_key;
        let report = dtenge_oracle::reserves::ReservesReport {
            stablecoin: dtenge_types::Currency::new("KZTC").unwrap(),
            supply: dtenge_types::Amount::from_tiyn(counted.0),
            reserve: dtenge_types::Amount::from_tiyn(counted.1),
        };
        let at = Timestamp(p["at_ms"].as_u64().unwrap());
        let message = dtenge_oracle::reserves::ReservesAttestation::signing_message(&report, at);
        assert_eq!(hex::encode(message), p["signing_message"].as_str().unwrap());
        let signature: [u8; 64] = hex::decode(p["signature"].as_str().unwrap()).unwrap().try_into().unwrap();
        use dtenge_crypto::Verifier;
        dtenge_crypto::Ed25519.verify(&oracle, &message, &dtenge_crypto::Signature(signature)).unwrap();
        counted
    }
}

/// The proof of reserves is public (no signature; in the OpenAPI document
/// with no security requirement; bounded in rate) and the oracle counts it
/// itself: after a mint, payments across nodes and a burn, what it signs is
/// what the vaults really hold. Nobody can hand it figures: its request
/// names only the stablecoin, and only the oracle may ask a node for its
/// counts.
#[tokio::test]
async fn the_proof_of_reserves_is_public_and_the_oracle_signs_its_own_count_of_the_vaults() {
    let api = Api::new().await;
    let doc = serde_json::to_value(dtenge_api::openapi()).unwrap();
    let op = &doc["paths"]["/api/v1/stablecoins/{code}/reserves"]["get"];
    assert_eq!(op["security"], json!([]), "public: no security requirement");
    assert!(op["responses"].get("401").is_none() && op["responses"].get("429").is_some(), "{op}");
    let signed_op = &doc["paths"]["/api/v1/stablecoins/{code}/mint"]["post"];
    assert_eq!(signed_op["security"].as_array().map(Vec::len), Some(1), "{signed_op}");

    assert_eq!(api.proof_matches_the_vaults().await, (0, 0));
    let alice = api.open("STB1", "individual", 1).await;
    let bob = api.open("STB2", "individual", 2).await;
    api.fund("STB1", &alice, 1_000_000).await;
    let spec_issuer = api.platform.spec.institutions.iter().find(|i| i.key == "COINCO-DA").unwrap().clone();
    let coinco = api.platform.node("COINCO").unwrap();
    let issuer_id = coinco.read(|s| s.account_of(&spec_issuer.address).unwrap().id.to_string());
    let pay = |from: &str, to: &str, amount: u64| json!({"from": from, "to": [{"address": to, "amount_tiyn": amount}]});
    let r = api.post("STB1", "/api/v1/transfers", pay(&alice.id, &spec_issuer.address.to_string(), 600_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    let supply = |amount: u64| json!({"account": issuer_id, "amount_tiyn": amount});
    let r = api.post("COINCO", "/api/v1/stablecoins/KZTC/mint", supply(500_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.proof_matches_the_vaults().await, (500_000, 500_000));
    // Payments spread the supply over three nodes; the count follows it.
    let r = api.post("COINCO", "/api/v1/stablecoins/KZTC/transfers", pay(&issuer_id, &alice.address, 300_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    let r = api.post("STB1", "/api/v1/stablecoins/KZTC/transfers", pay(&alice.id, &bob.address, 120_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.proof_matches_the_vaults().await, (500_000, 500_000));
    let r = api
        .post("STB2", "/api/v1/stablecoins/KZTC/transfers", pay(&bob.id, &spec_issuer.address.to_string(), 70_000))
        .await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    let r = api.post("COINCO", "/api/v1/stablecoins/KZTC/burn", supply(150_000)).await;
    assert_eq!(r.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.proof_matches_the_vaults().await, (350_000, 350_000));
    assert_eq!(api.unsigned("/api/v1/stablecoins/NONE/reserves").await.error(StatusCode::NOT_FOUND), "not_found");
    // A signed request to a signed route still needs its signature.
    assert_eq!(api.unsigned("/api/v1/stablecoins").await.error(StatusCode::UNAUTHORIZED), "missing_signature");

    // Only the oracle may ask a node for its count: a bank asking is refused by the table.
    use dtenge_net::BusExt;
    let coin = dtenge_types::Currency::new("KZTC").unwrap();
    let ask = dtenge_node::service::NodeRequest::StablecoinCount { stablecoin: coin };
    let coinco_id = dtenge_types::ParticipantId::new("COINCO").unwrap();
    let bank = api.platform.bus("STB1").unwrap().request(&coinco_id, &ask).await;
    assert!(
        matches!(bank, Err(dtenge_net::NetError::Refused(dtenge_net::HandlerError::Forbidden(_)))),
        "a bank may not read a node's count: {bank:?}"
    );
    let oracle = api.platform.bus("ORACLE").unwrap().request(&coinco_id, &ask).await.unwrap();
    assert!(matches!(oracle, dtenge_node::service::NodeAnswer::StablecoinCount(h) if h.reserve.tiyn() == 350_000));

    // The shared auditor (crash test, chaos, simulation) checks the stablecoin too.
    let notary = api.platform.notary.state_copy();
    let mut facts = dtenge_platform::ledger_audit::Facts::from_notary(&notary);
    facts.stablecoins = api.platform.spec.params.stablecoins.keys().copied().collect();
    for (id, node) in &api.platform.nodes {
        node.read(|s| facts.add_node(&notary, id, s));
    }
    let report = dtenge_platform::ledger_audit::check(&facts, &[]);
    assert!(report.passed(), "{:#?}", report.violations());
    assert_eq!((report.stablecoins[0].supply, report.stablecoins[0].reserve), (350_000, 350_000));
    // A reserve token left out of the count fails it: DT not conserved, reserve ≠ supply.
    let at = facts.vault.iter().position(|h| h.reserve_of.is_some()).unwrap();
    facts.vault.remove(at);
    let report = dtenge_platform::ledger_audit::check(&facts, &[]);
    assert!(!report.supply_conserved && report.reserve_mismatches.len() == 1, "{:#?}", report.violations());

    // Bounded in rate: unsigned requests beyond the second's budget get 429.
    let mut limited = false;
    for _ in 0..(4 * dtenge_api::access::PUBLIC_PER_SECOND) {
        let a = api.unsigned("/api/v1/stablecoins/KZTC/reserves").await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.error(StatusCode::TOO_MANY_REQUESTS), "rate_limited");
            limited = true;
            break;
        }
        a.ok(StatusCode::OK);
    }
    assert!(limited, "unsigned requests are rate-bounded");
}
