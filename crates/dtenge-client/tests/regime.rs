//! The account regime through the API with the typed client (issue #9):
//! tiers and NBK's limits, waterfall and reverse waterfall, freezes,
//! arrests and collection orders, key rotation, closing, the regulator view —
//! and the attempts that must fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_client::{
    Client, ClientError, HolderKindDto, KycDto, LimitsBody, OpenAccount, ProfileBody, Recipient, RekeyBody,
    ReportQuery, TierDto, TierLimitsDto, TransferRequest,
};
use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::{AccountId, HolderKind};
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::Keys;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Address, Amount, EnforcementOrder, Memo, OrderAct, OrderRef, ParticipantId, Timestamp};

const START: u64 = 1_767_225_600_000;

async fn platform() -> (tempfile::TempDir, Arc<Platform>, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let p = Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: false }).await.unwrap();
    dtenge_platform::demo_set::ensure(&p).await.unwrap();
    (dir, Arc::new(p), clock)
}

fn key(p: &Platform, who: &str) -> Arc<dyn Signer> {
    Arc::new(Keys::at(&p.data).load(who).unwrap())
}

fn pid(who: &str) -> ParticipantId {
    ParticipantId::new(who).unwrap()
}

#[track_caller]
fn http_error(e: &ClientError, status: u16, code: &str) -> String {
    match e {
        ClientError::Http { status: s, code: c, message, .. } => {
            assert_eq!((*s, c.as_str()), (status, code), "{message}");
            message.clone()
        }
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

fn limits(max: u64, per: u64, daily: u64) -> TierLimitsDto {
    TierLimitsDto { max_balance_tiyn: max, per_payment_tiyn: per, daily_outgoing_tiyn: daily }
}

async fn open(client: &Client, n: u8, name: &str, device: Option<&SecretKey>) -> dtenge_client::AccountView {
    client
        .open_account(
            &OpenAccount {
                iin_bin: demo_iin_bin(HolderKind::Individual, n).to_string(),
                name: name.into(),
                kind: HolderKindDto::Individual,
                kyc: Some(KycDto::Verified),
                client_public_key: device.map(|d| d.public_key().to_string()),
            },
            None,
        )
        .await
        .unwrap()
}

fn pay(from: &str, to: &str, tiyn: u64) -> TransferRequest {
    TransferRequest { from: from.to_string(), to: vec![Recipient::address(to.to_string(), tiyn)], memo: None }
}

struct World {
    p: Arc<Platform>,
    stb1: Client,
    stb2: Client,
    nbk: Client,
    bailiff: Client,
    tax: Client,
    bank_da: String,
    bank_da_address: String,
}

async fn world() -> (tempfile::TempDir, World) {
    let (dir, p, clock) = platform().await;
    let clock: Arc<dyn Clock> = clock;
    let router = dtenge_api::router(Arc::clone(&p));
    let stb1 = Client::in_process(router, pid("STB1"), key(&p, "STB1"), clock);
    let stb2 = stb1.as_participant(pid("STB2"), key(&p, "STB2"));
    let nbk = stb1.as_participant(pid("NBK"), key(&p, "NBK"));
    let bailiff = stb1.as_participant(pid("BAILIFF"), key(&p, "BAILIFF"));
    let tax = stb1.as_participant(pid("SRC"), key(&p, "SRC"));
    let bank_da = p.node("STB1").unwrap().own_account().unwrap().to_string();
    let bank_da_address = stb1.account(&bank_da).await.unwrap().address;
    (dir, World { p, stb1, stb2, nbk, bailiff, tax, bank_da, bank_da_address })
}

async fn publish(w: &World) {
    let policy = w
        .nbk
        .publish_limits(&LimitsBody {
            simplified: limits(100_000, 20_000, 30_000),
            standard: limits(10_000_000, 5_000_000, 5_000_000),
            full: limits(1_000_000_000, 500_000_000, 500_000_000),
        })
        .await
        .unwrap();
    assert_eq!(policy.version, 1);
    assert!(policy.nodes.iter().any(|n| n.node == "STB1" && n.answer == "adopted"), "{:?}", policy.nodes);
}

#[tokio::test]
async fn tiers_limits_waterfall_and_reverse_waterfall() {
    let (_dir, w) = world().await;
    // Only NBK publishes; bad limits are refused.
    let body =
        LimitsBody { simplified: limits(100_000, 20_000, 30_000), standard: limits(1, 1, 1), full: limits(1, 1, 1) };
    http_error(&w.stb1.publish_limits(&body).await.unwrap_err(), 403, "operation_forbidden");
    let bad = LimitsBody { simplified: limits(100_000, 50_000, 30_000), ..body.clone() };
    http_error(&w.nbk.publish_limits(&bad).await.unwrap_err(), 400, "invalid");
    http_error(&w.stb1.limits().await.unwrap_err(), 404, "not_found");
    publish(&w).await;
    // Every node obtained it through the message interface.
    assert_eq!(w.stb1.limits().await.unwrap().version, 1);
    assert_eq!(w.stb2.limits().await.unwrap().limits.simplified.max_balance_tiyn, 100_000);

    let alia = open(&w.stb1, 60, "Alia", None).await;
    let bob = open(&w.stb2, 61, "Bob", None).await;
    let profile = w
        .stb1
        .set_profile(
            &alia.id,
            &ProfileBody { tier: Some(TierDto::Simplified), linked_bank_account: None, unlink: false },
        )
        .await
        .unwrap();
    assert_eq!(profile.tier, TierDto::Simplified);
    assert_eq!(profile.limits.unwrap().per_payment_tiyn, 20_000);
    w.stb1.transfer(&pay(&w.bank_da, &alia.address, 50_000), None).await.unwrap();

    // Per-payment and daily limits, named in the refusal.
    let msg = http_error(
        &w.stb1.transfer(&pay(&alia.id, &bob.address, 25_000), None).await.unwrap_err(),
        422,
        "limit_exceeded",
    );
    assert!(msg.contains("simplified tier per-payment limit"), "{msg}");
    w.stb1.transfer(&pay(&alia.id, &bob.address, 15_000), None).await.unwrap();
    let msg = http_error(
        &w.stb1.transfer(&pay(&alia.id, &bob.address, 16_000), None).await.unwrap_err(),
        422,
        "limit_exceeded",
    );
    assert!(msg.contains("daily outgoing limit") && msg.contains("150,00 already paid today"), "{msg}");
    assert_eq!(w.stb1.profile(&alia.id).await.unwrap().spent_today_tiyn, 15_000);

    // Balance cap: refused up front by the payee's bank (a remote payer too).
    let msg = http_error(
        &w.stb1.transfer(&pay(&w.bank_da, &alia.address, 90_000), None).await.unwrap_err(),
        422,
        "limit_exceeded",
    );
    assert!(msg.contains("maximum balance"), "{msg}");
    let bob_funds = w.p.node("STB2").unwrap().own_account().unwrap().to_string();
    w.stb2.transfer(&pay(&bob_funds, &bob.address, 200_000), None).await.unwrap();
    let msg = http_error(
        &w.stb2.transfer(&pay(&bob.id, &alia.address, 90_000), None).await.unwrap_err(),
        422,
        "payee_refused",
    );
    assert!(msg.contains("STB1") && msg.contains("maximum balance"), "{msg}");
    assert_eq!(w.stb1.balance(&alia.id).await.unwrap().standard_tiyn, 35_000);

    // Reverse waterfall: with a linked bank account the excess moves on.
    let bad_link = ProfileBody { tier: None, linked_bank_account: Some("KZ 12".into()), unlink: false };
    http_error(&w.stb1.set_profile(&alia.id, &bad_link).await.unwrap_err(), 400, "invalid");
    let link = ProfileBody { tier: None, linked_bank_account: Some("KZ86125KZT5004100100".into()), unlink: false };
    w.stb1.set_profile(&alia.id, &link).await.unwrap();
    w.stb2.transfer(&pay(&bob.id, &alia.address, 90_000), None).await.unwrap();
    w.p.tick().await;
    let profile = w.stb1.profile(&alia.id).await.unwrap();
    assert_eq!(w.stb1.balance(&alia.id).await.unwrap().total_tiyn, 100_000);
    let sweep = &profile.linked_transfers[0];
    assert_eq!((sweep.direction.as_str(), sweep.amount_tiyn), ("to_bank_account", 25_000));
    assert_eq!(sweep.bank_account, "KZ86125KZT5004100100");

    // Waterfall: a payment above the DT balance is topped up from the linked account.
    let dana = open(&w.stb1, 62, "Dana", None).await;
    w.stb1
        .set_profile(
            &dana.id,
            &ProfileBody { tier: Some(TierDto::Standard), linked_bank_account: Some("KZ11111".into()), unlink: false },
        )
        .await
        .unwrap();
    w.stb1.transfer(&pay(&w.bank_da, &dana.address, 1_000), None).await.unwrap();
    w.stb1.transfer(&pay(&dana.id, &bob.address, 5_000), None).await.unwrap();
    let profile = w.stb1.profile(&dana.id).await.unwrap();
    assert_eq!(w.stb1.balance(&dana.id).await.unwrap().total_tiyn, 0);
    assert_eq!(
        (profile.linked_transfers[0].direction.as_str(), profile.linked_transfers[0].amount_tiyn),
        ("from_bank_account", 4_000)
    );
    let _ = w.bank_da_address;
}

/// The payee's bank is asked while the payer's node prepares (issue 18):
/// whenever its refusal arrives, no money has moved — no top-up from the
/// payer's linked bank account, nothing spent, reserved or counted against
/// the payer's day.
#[tokio::test]
async fn a_payment_the_payees_bank_refuses_moves_no_money() {
    let (_dir, w) = world().await;
    publish(&w).await;
    // Alia (STB1, simplified tier: at most 1 000,00) holds 900,00.
    let alia = open(&w.stb1, 100, "Alia", None).await;
    let simplified = ProfileBody { tier: Some(TierDto::Simplified), linked_bank_account: None, unlink: false };
    w.stb1.set_profile(&alia.id, &simplified).await.unwrap();
    w.stb1.transfer(&pay(&w.bank_da, &alia.address, 90_000), None).await.unwrap();
    // Dana (STB2, standard tier, a linked bank account) holds 200,00.
    let dana = open(&w.stb2, 101, "Dana", None).await;
    let standard =
        ProfileBody { tier: Some(TierDto::Standard), linked_bank_account: Some("KZ22222".into()), unlink: false };
    w.stb2.set_profile(&dana.id, &standard).await.unwrap();
    let stb2_da = w.p.node("STB2").unwrap().own_account().unwrap().to_string();
    w.stb2.transfer(&pay(&stb2_da, &dana.address, 20_000), None).await.unwrap();

    // 500,00 needs a top-up of 300,00: refused before the top-up.
    let msg = http_error(
        &w.stb2.transfer(&pay(&dana.id, &alia.address, 50_000), None).await.unwrap_err(),
        422,
        "payee_refused",
    );
    assert!(msg.contains("maximum balance"), "{msg}");
    // 150,00 needs none: refused whether the answer came before or after `Prepared`.
    let msg = http_error(
        &w.stb2.transfer(&pay(&dana.id, &alia.address, 15_000), None).await.unwrap_err(),
        422,
        "payee_refused",
    );
    assert!(msg.contains("maximum balance"), "{msg}");

    let profile = w.stb2.profile(&dana.id).await.unwrap();
    assert!(profile.linked_transfers.is_empty(), "{:?}", profile.linked_transfers);
    assert_eq!(profile.spent_today_tiyn, 0);
    assert_eq!(w.stb2.balance(&dana.id).await.unwrap().total_tiyn, 20_000);
    assert_eq!(w.stb1.balance(&alia.id).await.unwrap().total_tiyn, 90_000);
    // Nothing is left reserved: all 200,00 pay at once, and Alia's bank takes 100,00.
    w.stb2.transfer(&pay(&dana.id, &alia.address, 10_000), None).await.unwrap();
    w.stb2.transfer(&pay(&dana.id, &w.bank_da_address, 10_000), None).await.unwrap();
    assert_eq!(w.stb2.balance(&dana.id).await.unwrap().total_tiyn, 0);
    assert_eq!(w.stb1.balance(&alia.id).await.unwrap().total_tiyn, 100_000);
    // Dana's history: the two payments made; a refused one shows, if at
    // all, as rejected with the payee's bank's reason.
    let history = w.stb2.history(&dana.id, &dtenge_client::ListQuery::default()).await.unwrap().items;
    let paid: Vec<u64> = history.iter().filter(|h| h.status.status == "success").map(|h| h.outgoing_tiyn).collect();
    assert_eq!(paid.iter().filter(|&&t| t > 0).count(), 2, "{history:?}");
    for line in history.iter().filter(|h| h.status.status != "success") {
        assert_eq!(line.status.status, "rejected", "{line:?}");
        assert!(line.status.reason.as_deref().unwrap_or("").contains("maximum balance"), "{line:?}");
        assert_eq!(line.status.reason_code.as_deref(), Some("payee_refused"), "{line:?}");
    }
}

#[tokio::test]
async fn freeze_arrest_collect_and_lift_only_by_the_same_body() {
    let (_dir, w) = world().await;
    let bob = open(&w.stb1, 70, "Bob", None).await;
    let creditor = open(&w.stb2, 71, "Creditor", None).await;
    w.stb1.transfer(&pay(&w.bank_da, &bob.address, 100_000), None).await.unwrap();
    let now = Timestamp(START);
    let order = |reference: &str, act: OrderAct, authority: &str| EnforcementOrder {
        reference: OrderRef::new(reference).unwrap(),
        authority: key(&w.p, authority).public_key(),
        debtor: bob.address.parse::<Address>().unwrap(),
        act,
        reason: Memo::new("Enforcement proceedings 2026-77, Law on Enforcement art. 62").unwrap(),
        issued_at: now,
    };

    // Banks are not authorities; an order needs a registered body.
    http_error(
        &w.stb2.place_order("STB1", &order("X-1", OrderAct::Freeze, "STB2")).await.unwrap_err(),
        403,
        "operation_forbidden",
    );

    // Freeze: nothing leaves.
    let freeze = w.bailiff.place_order("STB1", &order("ENF-1", OrderAct::Freeze, "BAILIFF")).await.unwrap();
    assert!(freeze.active);
    let msg = http_error(
        &w.stb1.transfer(&pay(&bob.id, &creditor.address, 10), None).await.unwrap_err(),
        422,
        "enforcement_order",
    );
    assert!(msg.contains("frozen") && msg.contains("ENF-1"), "{msg}");
    assert!(w.stb1.profile(&bob.id).await.unwrap().frozen);
    // Only the body that placed it lifts it.
    let lift = |by: &str, r: &str| order(r, OrderAct::Lift { order: OrderRef::new("ENF-1").unwrap() }, by);
    http_error(&w.tax.place_order("STB1", &lift("SRC", "SRC-L1")).await.unwrap_err(), 403, "forbidden");
    let lifted = w.bailiff.place_order("STB1", &lift("BAILIFF", "ENF-1-LIFT")).await.unwrap();
    assert!(!lifted.active);
    w.stb1.transfer(&pay(&bob.id, &creditor.address, 10), None).await.unwrap();

    // Arrest: the arrested amount stays, the rest may be spent.
    w.tax
        .place_order("STB1", &order("TAX-9", OrderAct::Arrest { amount: Amount::from_tiyn(60_000) }, "SRC"))
        .await
        .unwrap();
    let msg = http_error(
        &w.stb1.transfer(&pay(&bob.id, &creditor.address, 50_000), None).await.unwrap_err(),
        422,
        "enforcement_order",
    );
    assert!(msg.contains("600,00") && msg.contains("399,90"), "{msg}");
    w.stb1.transfer(&pay(&bob.id, &creditor.address, 39_990), None).await.unwrap();
    assert_eq!(w.stb1.profile(&bob.id).await.unwrap().arrested_tiyn, 60_000);
    // A closing while an order is in force is refused.
    http_error(&w.stb1.close_account(&bob.id, true).await.unwrap_err(), 422, "enforcement_order");

    // Collection: debits the DA to the beneficiary without the owner, at most the ordered amount.
    let beneficiary = creditor.address.parse::<Address>().unwrap();
    let collect = order("TAX-10", OrderAct::Collect { amount: Amount::from_tiyn(45_000), beneficiary }, "SRC");
    let done = w.tax.place_order("STB1", &collect).await.unwrap();
    assert_eq!(done.collected_tiyn, 45_000);
    assert_eq!(done.txs.len(), 1);
    assert_eq!(w.stb1.balance(&bob.id).await.unwrap().total_tiyn, 15_000);
    assert_eq!(w.stb2.balance(&creditor.id).await.unwrap().total_tiyn, 10 + 39_990 + 45_000);
    assert_eq!(w.stb1.transaction(&done.txs[0]).await.unwrap().kind, "collect");
    // Repeating the same order is idempotent; a different order under the same reference is refused.
    assert_eq!(w.tax.place_order("STB1", &collect).await.unwrap().collected_tiyn, 45_000);
    let changed = order("TAX-10", OrderAct::Collect { amount: Amount::from_tiyn(1), beneficiary }, "SRC");
    http_error(&w.tax.place_order("STB1", &changed).await.unwrap_err(), 400, "invalid");
    // An order whose signature is not the calling authority's is refused.
    let forged = order("TAX-11", OrderAct::Freeze, "SRC");
    let body = dtenge_client::OrderBody {
        bank: "STB1".into(),
        reference: "TAX-11".into(),
        debtor: bob.address.clone(),
        act: dtenge_client::OrderActDto::Freeze,
        reason: forged.reason.to_string(),
        issued_at_ms: START,
        signature: key(&w.p, "BAILIFF").sign(&forged.signing_message()).to_string(),
    };
    let e = w.tax.post_json::<_, serde_json::Value>("/api/v1/enforcement/orders", &body, None).await.unwrap_err();
    http_error(&e, 403, "forbidden");

    // The holder's bank sees every act; the other bank none; each authority its own.
    let seen = w.stb1.orders().await.unwrap();
    assert_eq!(seen.len(), 4);
    assert!(w.stb2.orders().await.unwrap().is_empty());
    assert_eq!(w.bailiff.orders().await.unwrap().len(), 2);
    assert_eq!(w.tax.orders().await.unwrap().len(), 2);
    let notes = w.stb1.notifications(&bob.id, &Default::default()).await.unwrap();
    let told: Vec<_> =
        notes.items.iter().filter(|n| n.params.get("order").map(String::as_str) == Some("TAX-10")).collect();
    assert!(!told.is_empty() && told.iter().all(|n| n.text.contains("TAX-10")), "{:?}", notes.items);
}

#[tokio::test]
async fn key_rotation_revokes_the_old_key_and_moves_the_tokens() {
    let (_dir, w) = world().await;
    let old_device = SecretKey::from_seed([21; 32]);
    let carol = open(&w.stb1, 80, "Carol", Some(&old_device)).await;
    w.stb1.transfer(&pay(&w.bank_da, &carol.address, 9_000), None).await.unwrap();
    let new_device = SecretKey::from_seed([22; 32]);
    let id = AccountId(carol.id.clone());
    let message = dtenge_node::regime::rekey_proof_message(
        &id,
        &carol.address.parse().unwrap(),
        &Address(new_device.public_key()),
    );
    // A proof by another key is refused.
    let wrong = RekeyBody {
        reidentification: "branch visit 2026-11-26, passport checked".into(),
        client_public_key: Some(new_device.public_key().to_string()),
        proof: Some(old_device.sign(&message).to_string()),
    };
    http_error(&w.stb1.rekey(&carol.id, &wrong).await.unwrap_err(), 400, "invalid");
    let body = RekeyBody { proof: Some(new_device.sign(&message).to_string()), ..wrong };
    let rotated = w.stb1.rekey(&carol.id, &body).await.unwrap();
    assert_eq!(rotated.new_address, new_device.public_key().to_string());
    assert_eq!(rotated.txs.len(), 1);
    assert_eq!(w.stb1.transaction(&rotated.txs[0]).await.unwrap().kind, "rekey");
    assert_eq!(w.stb1.balance(&carol.id).await.unwrap().standard_tiyn, 9_000);
    assert_eq!(w.stb1.profile(&carol.id).await.unwrap().revoked_keys, vec![carol.address.clone()]);
    // The directory knows the new key.
    let found = w.stb2.directory(&demo_iin_bin(HolderKind::Individual, 80).to_string()).await.unwrap();
    assert!(found.iter().any(|e| e.address == rotated.new_address));

    // The old key signs nothing any more.
    let dest = open(&w.stb2, 81, "Dest", None).await;
    let prepared = w.stb1.prepare_transfer(&pay(&carol.id, &dest.address, 1_000)).await.unwrap();
    let mut tx = dtenge_types::decode_transaction(&hex::decode(&prepared.transaction).unwrap()).unwrap();
    let mut stolen = tx.clone();
    stolen.sign(&old_device).unwrap();
    http_error(
        &w.stb1.submit_transfer(&hex::encode(dtenge_types::encoding::encode(&stolen))).await.unwrap_err(),
        403,
        "forbidden",
    );
    // Payments to the old address are refused; the new key pays.
    w.stb1.transfer(&pay(&w.bank_da, &dest.address, 10), None).await.unwrap();
    let msg =
        http_error(&w.stb2.transfer(&pay(&dest.id, &carol.address, 1), None).await.unwrap_err(), 422, "payee_refused");
    assert!(msg.contains("revoked"), "{msg}");
    let prepared = w.stb1.prepare_transfer(&pay(&carol.id, &dest.address, 1_000)).await.unwrap();
    tx = dtenge_types::decode_transaction(&hex::decode(&prepared.transaction).unwrap()).unwrap();
    tx.sign(&new_device).unwrap();
    let done = w.stb1.submit_transfer(&hex::encode(dtenge_types::encoding::encode(&tx))).await.unwrap();
    assert_eq!(done.status.status, "success");

    // A custodial DA gets a bank-held key.
    let erlan = open(&w.stb1, 82, "Erlan", None).await;
    w.stb1.transfer(&pay(&w.bank_da, &erlan.address, 500), None).await.unwrap();
    let body = RekeyBody { reidentification: "biometric check".into(), client_public_key: None, proof: None };
    let rotated = w.stb1.rekey(&erlan.id, &body).await.unwrap();
    assert_ne!(rotated.new_address, erlan.address);
    w.stb1.transfer(&pay(&erlan.id, &dest.address, 500), None).await.unwrap();
    let bad = RekeyBody { reidentification: " ".into(), client_public_key: None, proof: None };
    http_error(&w.stb1.rekey(&erlan.id, &bad).await.unwrap_err(), 400, "invalid");
}

#[tokio::test]
async fn closing_and_the_regulator_view() {
    let (_dir, w) = world().await;
    publish(&w).await;
    let fatima = open(&w.stb1, 90, "Fatima", None).await;
    let gani = open(&w.stb2, 91, "Gani", None).await;
    w.stb1.transfer(&pay(&w.bank_da, &fatima.address, 7_000_000), None).await.unwrap();
    let msg = http_error(&w.stb1.close_account(&fatima.id, false).await.unwrap_err(), 422, "balance_not_zero");
    assert!(msg.contains("70 000,00"), "{msg}");
    http_error(&w.stb1.close_account(&fatima.id, true).await.unwrap_err(), 400, "invalid");
    w.stb1
        .set_profile(&fatima.id, &ProfileBody { tier: None, linked_bank_account: Some("KZ22".into()), unlink: false })
        .await
        .unwrap();
    let closed = w.stb1.close_account(&fatima.id, true).await.unwrap();
    assert!(closed.closed);
    assert_eq!(closed.linked_transfers[0].amount_tiyn, 7_000_000);
    assert_eq!(w.stb1.balance(&fatima.id).await.unwrap().total_tiyn, 0);
    // A closed DA accepts nothing and pays nothing.
    http_error(&w.stb1.transfer(&pay(&w.bank_da, &fatima.address, 1), None).await.unwrap_err(), 422, "account_closed");
    http_error(&w.stb2.transfer(&pay(&gani.id, &fatima.address, 1), None).await.unwrap_err(), 422, "payee_refused");
    http_error(&w.stb1.close_account(&fatima.id, false).await.unwrap_err(), 422, "account_closed");
    // An empty DA closes at once.
    let empty = open(&w.stb1, 92, "Empty", None).await;
    assert!(w.stb1.close_account(&empty.id, false).await.unwrap().closed);

    // The regulator view: NBK only, aggregates without retail detail.
    http_error(&w.stb1.regulator_aggregates(&ReportQuery::default()).await.unwrap_err(), 403, "operation_forbidden");
    let aggregates = w.nbk.regulator_aggregates(&ReportQuery::default()).await.unwrap();
    let stb1 = aggregates.iter().find(|a| a.bank == "STB1").unwrap();
    assert!(stb1.accounts_closed >= 2);
    assert!(stb1.days.iter().any(|d| d.amount_out_tiyn >= 7_000_000));
    let q = ReportQuery { threshold_tiyn: Some(5_000_000), ..ReportQuery::default() };
    let large = w.nbk.regulator_large_payments(&q).await.unwrap();
    assert!(large.iter().any(|l| l.bank == "STB1" && l.amount_tiyn == 7_000_000));
    let raw: serde_json::Value =
        w.nbk.get_json("/api/v1/regulator/large-payments?threshold_tiyn=5000000").await.unwrap();
    let text = raw.to_string();
    assert!(!text.contains("Fatima") && !text.contains(&demo_iin_bin(HolderKind::Individual, 90).to_string()));
    let _marked = w.nbk.regulator_marked_funds(&ReportQuery::default()).await.unwrap();
    let bad = ReportQuery { from_ms: Some(10), to_ms: Some(5), threshold_tiyn: None };
    http_error(&w.nbk.regulator_aggregates(&bad).await.unwrap_err(), 400, "bad_period");
}
