//! Programmable money and the oracle through the HTTP API (tower `oneshot`, no
//! sockets): a hold registered by a provider, released by its occurrence;
//! marking by address with an unintended recipient refused; an e-invoice paid
//! with VAT; a debit mandate; and the refusals: a provider writing outside its
//! registry, a bank marking by address, a bank touching another bank's DA.
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
const DAY: u64 = Timestamp::DAY_MS;

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

#[tokio::test]
async fn a_hold_registered_by_a_provider_is_released_by_its_occurrence() {
    let api = Api::new().await;
    let ga = api.open("TREASURY", "government_agency", 1).await;
    api.fund("TREASURY", &ga, 1_000_000).await;
    let farmer = api.open("STB2", "individual", 2).await;

    // The IFA registers the event.
    let event = json!({
        "id": "IFA-2026-001",
        "kind": "single",
        "sender": ga.address,
        "sender_node": "TREASURY",
        "recipient": farmer.address,
        "recipient_node": "STB2",
        "amount_tiyn": 400_000,
        "valid_until_ms": api.now() + 30 * DAY,
    });
    let registered = api.post("IFA", "/api/v1/oracle/events", event.clone()).await;
    let v = registered.ok(StatusCode::CREATED);
    assert_eq!(v["status"], "open");
    assert_eq!(v["provider"], "IFA");
    assert_eq!(v["amount_tiyn"], 400_000);
    // Registering it again is refused by the oracle.
    assert_eq!(
        api.post("IFA", "/api/v1/oracle/events", event).await.error(StatusCode::UNPROCESSABLE_ENTITY),
        "oracle_refused"
    );
    api.platform.tick().await;

    // The Treasury holds the GA's funds for it.
    let held = api.post("TREASURY", "/api/v1/holds", json!({"account": ga.id, "event": "IFA-2026-001"})).await;
    assert_eq!(held.ok(StatusCode::OK)["status"]["status"], "success");
    let holds = api.get("TREASURY", &format!("/api/v1/accounts/{}/holds", ga.id)).await;
    let holds = holds.ok(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0]["event"], "IFA-2026-001");
    assert_eq!(holds[0]["amount_tiyn"], 400_000);
    assert_eq!(holds[0]["recipient"], farmer.address.as_str());
    assert_eq!(holds[0]["recipient_node"], "STB2");
    assert_eq!(holds[0]["kind"], "single");
    assert_eq!(holds[0]["valid_until_ms"], START + 30 * DAY);
    let b = api.balance("TREASURY", &ga).await;
    assert_eq!((b["held_tiyn"].as_u64(), b["standard_tiyn"].as_u64()), (Some(400_000), Some(600_000)));
    // Nothing is releasable before the event occurs.
    let early = api.post("TREASURY", "/api/v1/holds/IFA-2026-001/release", json!({"account": ga.id})).await;
    assert_eq!(early.error(StatusCode::UNPROCESSABLE_ENTITY), "oracle_refused");
    assert_eq!(early.json["error"]["reason"], "event_not_occurred", "{}", early.json);
    let seen = api.get("IFA", "/api/v1/oracle/events/IFA-2026-001").await;
    assert_eq!(seen.ok(StatusCode::OK)["held_tiyn"], 400_000);
    // The recipient's bank sees it too; a bank it does not concern does not.
    api.get("STB2", "/api/v1/oracle/events/IFA-2026-001").await.ok(StatusCode::OK);
    api.get("STB3", "/api/v1/oracle/events/IFA-2026-001").await.error(StatusCode::FORBIDDEN);

    // Another events provider may not report someone else's event; a bank may not report at all.
    let other = api.post("SSIS", "/api/v1/oracle/events/IFA-2026-001/occurrences", json!({})).await;
    assert_eq!(other.error(StatusCode::FORBIDDEN), "forbidden");
    let bank = api.call("STB2", "POST", "/api/v1/oracle/events/IFA-2026-001/occurrences", None).await;
    assert_eq!(bank.error(StatusCode::FORBIDDEN), "operation_forbidden");

    // The IFA reports the change of ownership (no body needed); the next round releases.
    let occurred = api.call("IFA", "POST", "/api/v1/oracle/events/IFA-2026-001/occurrences", None).await;
    let v = occurred.ok(StatusCode::OK);
    assert_eq!(v["occurred_tiyn"], 400_000);
    assert_eq!(v["releasable_tiyn"], 400_000);
    api.platform.tick().await;

    assert_eq!(api.balance("STB2", &farmer).await["standard_tiyn"], 400_000);
    let b = api.balance("TREASURY", &ga).await;
    assert_eq!((b["held_tiyn"].as_u64(), b["standard_tiyn"].as_u64()), (Some(0), Some(600_000)));
    let holds = api.get("TREASURY", &format!("/api/v1/accounts/{}/holds", ga.id)).await;
    assert!(holds.ok(StatusCode::OK).as_array().unwrap().is_empty());
    let after = api.get("IFA", "/api/v1/oracle/events/IFA-2026-001").await;
    let v = after.ok(StatusCode::OK);
    assert_eq!((v["released_tiyn"].as_u64(), v["releasable_tiyn"].as_u64()), (Some(400_000), Some(0)));
    let list = api.get("IFA", "/api/v1/oracle/events?per_page=10").await;
    assert_eq!(list.ok(StatusCode::OK)["total"], 1);
    let none = api.get("SSIS", "/api/v1/oracle/events").await;
    assert_eq!(none.ok(StatusCode::OK)["total"], 0, "a provider lists only its own events");
}

#[tokio::test]
async fn cancelled_and_expired_holds_return_to_the_owner() {
    let api = Api::new().await;
    let ga = api.open("TREASURY", "government_agency", 3).await;
    api.fund("TREASURY", &ga, 500_000).await;
    let lessor = api.open("STB1", "legal_entity", 4).await;
    for (id, days) in [("SSIS-CANCEL", 30), ("SSIS-EXPIRE", 2)] {
        let spec = json!({
            "id": id, "kind": "single", "sender": ga.address, "sender_node": "TREASURY",
            "recipient": lessor.address, "recipient_node": "STB1", "amount_tiyn": 100_000,
            "valid_until_ms": api.now() + days * DAY,
        });
        api.post("SSIS", "/api/v1/oracle/events", spec).await.ok(StatusCode::CREATED);
        api.post("TREASURY", "/api/v1/holds", json!({"account": ga.id, "event": id})).await.ok(StatusCode::OK);
    }
    assert_eq!(api.balance("TREASURY", &ga).await["held_tiyn"], 200_000);
    // Returning before the cancellation is refused by the oracle.
    let early = api.post("TREASURY", "/api/v1/holds/SSIS-CANCEL/cancel", json!({"account": ga.id})).await;
    assert_eq!(early.error(StatusCode::UNPROCESSABLE_ENTITY), "oracle_refused");
    let cancelled = api.call("SSIS", "POST", "/api/v1/oracle/events/SSIS-CANCEL/cancel", None).await;
    assert_eq!(cancelled.ok(StatusCode::OK)["status"], "cancelled");
    let back = api.post("TREASURY", "/api/v1/holds/SSIS-CANCEL/cancel", json!({"account": ga.id})).await;
    assert_eq!(back.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("TREASURY", &ga).await["held_tiyn"], 100_000);
    // Nothing is held any more under the cancelled event.
    let again = api.post("TREASURY", "/api/v1/holds/SSIS-CANCEL/cancel", json!({"account": ga.id})).await;
    assert_eq!(again.error(StatusCode::UNPROCESSABLE_ENTITY), "nothing_held");

    api.clock.advance(3 * DAY);
    let expired = api.post("TREASURY", "/api/v1/holds/SSIS-EXPIRE/expire", json!({"account": ga.id})).await;
    assert_eq!(expired.ok(StatusCode::OK)["status"]["status"], "success");
    let b = api.balance("TREASURY", &ga).await;
    assert_eq!((b["held_tiyn"].as_u64(), b["standard_tiyn"].as_u64()), (Some(0), Some(500_000)));
}

#[tokio::test]
async fn marking_by_address_refuses_an_unintended_recipient() {
    let api = Api::new().await;
    let ga = api.open("TREASURY", "government_agency", 5).await;
    api.fund("TREASURY", &ga, 1_000_000).await;
    let gc = api.open("STB1", "legal_entity", 6).await;
    let sub = api.open("STB2", "legal_entity", 7).await;
    let marking = json!({
        "account": ga.id,
        "recipient": gc.address,
        "amount_tiyn": 500_000,
        "reference": "NF-ROADS-2026",
        "levels": [{"recipients": [sub.address], "limit_tiyn": 300_000}],
    });

    // Only the Treasury marks by address.
    let mut by_bank = marking.clone();
    by_bank["account"] = json!(gc.id);
    assert_eq!(
        api.post("STB1", "/api/v1/markings/address", by_bank).await.error(StatusCode::FORBIDDEN),
        "operation_forbidden"
    );
    // Bad input names the field.
    let mut bad = marking.clone();
    bad["levels"][0]["recipients"][0] = json!("not-an-address");
    let a = api.post("TREASURY", "/api/v1/markings/address", bad).await;
    assert_eq!(a.error(StatusCode::BAD_REQUEST), "bad_address");
    assert!(a.message().contains("levels[0].recipients[0]"), "{}", a.message());
    let mut zero = marking.clone();
    zero["amount_tiyn"] = json!(0);
    let a = api.post("TREASURY", "/api/v1/markings/address", zero).await;
    assert_eq!(a.error(StatusCode::BAD_REQUEST), "bad_amount");
    assert!(a.message().contains("amount_tiyn"), "{}", a.message());

    let marked = api.post("TREASURY", "/api/v1/markings/address", marking).await;
    assert_eq!(marked.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("STB1", &gc).await["marked_tiyn"], 500_000);

    // STB2 may not move STB1's DA's funds, nor read its holds.
    let foreign = api
        .post(
            "STB2",
            "/api/v1/transfers/marked",
            json!({"from": gc.id, "to": [{"address": sub.address, "amount_tiyn": 1}]}),
        )
        .await;
    assert_eq!(foreign.error(StatusCode::FORBIDDEN), "forbidden");
    api.get("STB2", &format!("/api/v1/accounts/{}/holds", gc.id)).await.error(StatusCode::FORBIDDEN);

    // The allowed recipient of the last level receives standard tokens.
    let paid = api
        .post(
            "STB1",
            "/api/v1/transfers/marked",
            json!({"from": gc.id, "to": [{"address": sub.address, "amount_tiyn": 200_000}], "reference": "NF-ROADS-2026"}),
        )
        .await;
    assert_eq!(paid.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("STB2", &sub).await["standard_tiyn"], 200_000);

    // An unintended recipient is refused with the kernel rule's code; the funds stay.
    let refused = api
        .post(
            "STB1",
            "/api/v1/transfers/marked",
            json!({"from": gc.id, "to": [{"address": ga.address, "amount_tiyn": 10_000}]}),
        )
        .await;
    let code = refused.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(code.starts_with("rule_"), "{code}");
    assert!(refused.message().contains("not allowed at marking level 1"), "{}", refused.message());
    assert_eq!(api.balance("STB1", &gc).await["marked_tiyn"], 300_000);
}

#[tokio::test]
async fn an_e_invoice_is_paid_with_vat_once() {
    let api = Api::new().await;
    let le1 = api.open("STB1", "legal_entity", 8).await;
    api.fund("STB1", &le1, 200_000).await;
    let le2 = api.open("STB2", "legal_entity", 9).await;
    let invoice = json!({"id": "EI-2026-0001", "seller": le2.address, "buyer": le1.address, "net_tiyn": 100_000, "vat_tiyn": 12_000});

    // A provider writing outside its registries, and a bank, are refused.
    let ifa = api.post("IFA", "/api/v1/oracle/invoices", invoice.clone()).await;
    assert_eq!(ifa.error(StatusCode::FORBIDDEN), "forbidden");
    assert!(ifa.message().contains("Only registered providers may write"), "{}", ifa.message());
    assert_eq!(
        api.post("STB1", "/api/v1/oracle/invoices", invoice.clone()).await.error(StatusCode::FORBIDDEN),
        "operation_forbidden"
    );
    let mut zero = invoice.clone();
    zero["net_tiyn"] = json!(0);
    zero["vat_tiyn"] = json!(0);
    assert_eq!(api.post("SRC", "/api/v1/oracle/invoices", zero).await.error(StatusCode::BAD_REQUEST), "bad_amount");

    let registered = api.post("SRC", "/api/v1/oracle/invoices", invoice).await;
    let v = registered.ok(StatusCode::CREATED);
    assert_eq!((v["state"].as_str(), v["total_tiyn"].as_u64()), (Some("unpaid"), Some(112_000)));

    let paid = api.post("STB1", "/api/v1/invoices/EI-2026-0001/pay", json!({"account": le1.id})).await;
    assert_eq!(paid.ok(StatusCode::OK)["status"]["status"], "success");
    let b = api.balance("STB2", &le2).await;
    assert_eq!((b["standard_tiyn"].as_u64(), b["vat_tiyn"].as_u64()), (Some(100_000), Some(12_000)));
    assert_eq!(api.balance("STB1", &le1).await["standard_tiyn"], 88_000);
    api.platform.tick().await;
    let state = api.get("SRC", "/api/v1/oracle/invoices/EI-2026-0001").await;
    let v = state.ok(StatusCode::OK);
    assert_eq!((v["state"].as_str(), v["paid"].as_bool()), (Some("paid"), Some(true)));
    // An e-invoice is paid once: the oracle's record says so, and its code comes along.
    let again = api.post("STB1", "/api/v1/invoices/EI-2026-0001/pay", json!({"account": le1.id})).await;
    assert_eq!(again.error(StatusCode::UNPROCESSABLE_ENTITY), "oracle_refused");
    assert_eq!(again.json["error"]["reason"], "invoice_paid", "{}", again.json);

    // LE2 pays its VAT to the tax authority.
    let vat = api.post("STB2", "/api/v1/vat-payments", json!({"account": le2.id, "amount_tiyn": 12_000})).await;
    assert_eq!(vat.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("STB2", &le2).await["vat_tiyn"], 0);
}

#[tokio::test]
async fn nbk_registers_providers_and_a_debit_mandate_is_used() {
    let api = Api::new().await;
    // Only NBK manages providers.
    let grant = json!({"id": "CROWD", "name": "Crowdfunding platform", "registries": ["events", "fx"]});
    assert_eq!(
        api.post("STB1", "/api/v1/oracle/providers", grant.clone()).await.error(StatusCode::FORBIDDEN),
        "operation_forbidden"
    );
    api.post("NBK", "/api/v1/oracle/providers", grant).await.ok(StatusCode::CREATED);
    let rate =
        json!({"base": "DT", "quote": "CNY", "numerator": 1, "denominator": 70, "valid_until_ms": api.now() + DAY});
    api.post("CROWD", "/api/v1/oracle/fx-rates", rate).await.ok(StatusCode::CREATED);
    let got = api.get("STB1", "/api/v1/oracle/fx-rates/DT/CNY").await;
    assert_eq!(got.ok(StatusCode::OK)["denominator"], 70);

    // A card issuer's mandate over an exchange's DA.
    let exchange = api.open("STB3", "legal_entity", 10).await;
    api.fund("STB3", &exchange, 300_000).await;
    let merchant = api.open("STB1", "legal_entity", 11).await;
    let bank = api.platform.node("STB3").unwrap().own_account().unwrap().to_string();
    let bank_address = api.get("STB3", &format!("/api/v1/accounts/{bank}")).await.ok(StatusCode::OK)["address"]
        .as_str()
        .unwrap()
        .to_string();
    let mandate = json!({"account": exchange.id, "mandate": "CARD-1", "grantee": bank_address, "amount_tiyn": 100_000, "valid_until_ms": api.now() + 30 * DAY});
    api.post("STB3", "/api/v1/mandates", mandate).await.ok(StatusCode::OK);
    assert_eq!(api.balance("STB3", &exchange).await["mandated_tiyn"], 100_000);
    let debit = json!({"grantee_account": bank, "owner_account": exchange.id, "to": merchant.address, "amount_tiyn": 30_000, "memo": "card authorisation 0001"});
    let debited = api.post("STB3", "/api/v1/mandates/CARD-1/debit", debit).await;
    assert_eq!(debited.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("STB1", &merchant).await["standard_tiyn"], 30_000);
    let revoked = api.post("STB3", "/api/v1/mandates/CARD-1/revoke", json!({"account": exchange.id})).await;
    assert_eq!(revoked.ok(StatusCode::OK)["status"]["status"], "success");
    let b = api.balance("STB3", &exchange).await;
    assert_eq!((b["mandated_tiyn"].as_u64(), b["standard_tiyn"].as_u64()), (Some(0), Some(270_000)));
}

#[tokio::test]
async fn parameter_marked_funds_move_only_under_a_contract_within_its_maximum() {
    let api = Api::new().await;
    let ga = api.open("TREASURY", "government_agency", 12).await;
    api.fund("TREASURY", &ga, 1_000_000).await;
    let contractor = api.open("STB1", "legal_entity", 13).await;
    let supplier = api.open("STB2", "legal_entity", 14).await;

    let parameter = json!({"id": "GZ-2026-0042", "initiator": ga.address, "initiator_node": "TREASURY", "title": "Road repairs, district 4"});
    assert_eq!(
        api.post("IFA", "/api/v1/oracle/parameters", parameter.clone()).await.error(StatusCode::FORBIDDEN),
        "forbidden"
    );
    api.post("PORTAL", "/api/v1/oracle/parameters", parameter).await.ok(StatusCode::CREATED);
    let contract = json!({
        "number": "C-1", "parameter": "GZ-2026-0042", "sender": contractor.address, "recipient": supplier.address,
        "max_transfer_tiyn": 300_000, "max_cashout_tiyn": 0, "valid_until_ms": api.now() + 90 * DAY,
        "final_recipient": true,
    });
    let registered = api.post("PORTAL", "/api/v1/oracle/contracts", contract).await;
    assert_eq!(registered.ok(StatusCode::CREATED)["transfer_remaining_tiyn"], 300_000);

    let marked = api
        .post(
            "TREASURY",
            "/api/v1/markings/parameter",
            json!({"account": ga.id, "recipient": contractor.address, "amount_tiyn": 500_000, "parameter": "GZ-2026-0042"}),
        )
        .await;
    assert_eq!(marked.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("STB1", &contractor).await["marked_tiyn"], 500_000);

    let pay = |amount: u64| json!({"account": contractor.id, "parameter": "GZ-2026-0042", "contract": "C-1", "recipient": supplier.address, "amount_tiyn": amount});
    let paid = api.post("STB1", "/api/v1/contract-payments", pay(200_000)).await;
    assert_eq!(paid.ok(StatusCode::OK)["status"]["status"], "success");
    assert_eq!(api.balance("STB2", &supplier).await["standard_tiyn"], 200_000, "the end supplier gets standard tokens");
    // Beyond the contract's maximum the oracle refuses; the funds stay.
    let over = api.post("STB1", "/api/v1/contract-payments", pay(150_000)).await;
    assert_eq!(over.error(StatusCode::UNPROCESSABLE_ENTITY), "oracle_refused");
    assert_eq!(api.balance("STB1", &contractor).await["marked_tiyn"], 300_000);

    // The portal raises the maximum; the payment then goes through.
    let amend = json!({"max_transfer_tiyn": 400_000, "max_cashout_tiyn": 0, "valid_until_ms": api.now() + 90 * DAY});
    let amended = api.post("PORTAL", "/api/v1/oracle/contracts/GZ-2026-0042/C-1/amend", amend).await;
    assert_eq!(amended.ok(StatusCode::OK)["max_transfer_tiyn"], 400_000);
    api.post("STB1", "/api/v1/contract-payments", pay(150_000)).await.ok(StatusCode::OK);
    api.platform.tick().await;
    let state = api.get("STB1", "/api/v1/oracle/contracts/GZ-2026-0042/C-1").await;
    let v = state.ok(StatusCode::OK);
    assert_eq!(
        (
            v["transferred_tiyn"].as_u64().unwrap() + v["transfer_reserved_tiyn"].as_u64().unwrap(),
            v["transfer_remaining_tiyn"].as_u64()
        ),
        (350_000, Some(50_000))
    );
}

#[tokio::test]
async fn pvp_through_the_api_settles_both_legs_or_neither() {
    let api = Api::new().await;
    let stb1_own = api.platform.node("STB1").unwrap().own_account().unwrap().to_string();
    let stb1_da = Da {
        address: api
            .platform
            .node("STB1")
            .unwrap()
            .account(&dtenge_node::accounts::AccountId(stb1_own.clone()))
            .unwrap()
            .address
            .to_string(),
        id: stb1_own.clone(),
    };
    api.fund("STB1", &stb1_da, 20_000_000).await;
    // The foreign central bank issues its currency to the foreign bank (its own node's operation).
    let inst = |key: &str| api.platform.spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let (fcb_da, fbank) = (inst("FCB-DA"), inst("FBANK-DA"));
    let fcb = api.platform.node("FCB").unwrap();
    let fcb_acct = fcb.read(|s| s.account_of(&fcb_da.address).unwrap().id.clone());
    fcb.issue(
        &fcb_acct,
        dtenge_node::service::PayTo { address: fbank.address, amount: dtenge_types::Amount::from_tiyn(100_000) },
        dtenge_types::CbsRef::new("FCB-1").unwrap(),
    )
    .await
    .unwrap();
    api.post("FXDESK", "/api/v1/oracle/fx-rates", json!({"base": "DT", "quote": "FCY", "numerator": 1, "denominator": 125, "valid_until_ms": api.now() + 86_400_000}))
        .await
        .ok(StatusCode::CREATED);
    let exchange = |amount: u64| json!({"account": stb1_own, "counterparty": fbank.address.to_string(), "base": "DT", "amount_tiyn": amount, "quote": "FCY"});
    let done = api.post("STB1", "/api/v1/pvp", exchange(1_250_000)).await;
    assert_eq!(done.ok(StatusCode::OK)["status"]["status"], "success");
    // 150 000 DT would need 1 200 FCY; the foreign bank has 900 left: refused with the
    // foreign bank's own code, nothing moves.
    let before = api.balance("STB1", &stb1_da).await;
    let refused = api.post("STB1", "/api/v1/pvp", exchange(15_000_000)).await;
    assert_eq!(refused.error(StatusCode::UNPROCESSABLE_ENTITY), "insufficient_funds", "{}", refused.message());
    assert_eq!(api.balance("STB1", &stb1_da).await, before);
    let same = api.post("STB1", "/api/v1/pvp", json!({"account": stb1_own, "counterparty": fbank.address.to_string(), "base": "DT", "amount_tiyn": 100, "quote": "DT"})).await;
    assert_eq!(same.error(StatusCode::BAD_REQUEST), "bad_currency");
}
