//! The client has a typed method for every operation of the OpenAPI
//! document: each method is called once against the real router, which
//! records the route each request matched; the recorded set must equal the
//! document's. (Answers do not matter here — most are refusals of dummy
//! arguments — only which endpoint each method reaches.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use dtenge_client::*;
use dtenge_crypto::Signer;
use dtenge_net::{Clock, ManualClock};
use dtenge_platform::spec::Keys;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::Timestamp;

type Seen = Arc<Mutex<BTreeSet<(String, String)>>>;

#[tokio::test]
async fn the_client_has_a_method_for_every_documented_operation() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Arc::new(Platform::open(dir.path(), Arc::clone(&clock), PlatformOptions { durable: false }).await.unwrap());
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let router = dtenge_api::router(Arc::clone(&p)).route_layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let record = Arc::clone(&record);
            async move {
                if let Some(path) = request.extensions().get::<MatchedPath>() {
                    let entry = (request.method().to_string(), path.as_str().to_string());
                    record.lock().unwrap().insert(entry);
                }
                next.run(request).await
            }
        },
    ));
    let key: Arc<dyn Signer> = Arc::new(Keys::at(&p.data).load("STB1").unwrap());
    let c = Client::in_process(router, dtenge_types::ParticipantId::new("STB1").unwrap(), key, clock);
    let q = ListQuery::default();
    let r = ReportQuery::default();
    let tier = TierLimitsDto { max_balance_tiyn: 1, per_payment_tiyn: 1, daily_outgoing_tiyn: 1 };

    // Every method, once; the answers are ignored.
    let _ = c.health().await;
    let _ = c
        .open_account(
            &OpenAccount {
                iin_bin: "x".into(),
                name: "x".into(),
                kind: HolderKindDto::Individual,
                kyc: None,
                client_public_key: None,
            },
            None,
        )
        .await;
    let _ = c.list_accounts(&q).await;
    let _ = c.account("X-1").await;
    let _ = c.set_kyc("X-1", KycDto::Verified).await;
    let _ = c.balance("X-1").await;
    let _ = c.history("X-1", &q).await;
    let _ = c.notifications("X-1", &q).await;
    let _ = c.directory("x").await;
    let transfer = TransferRequest { from: "X-1".into(), to: vec![], memo: None };
    let _ = c.transfer(&transfer, None).await;
    let _ = c.prepare_transfer(&transfer).await;
    let _ = c.submit_transfer("00").await;
    let device = "00".repeat(32);
    let _ = c.offline_certify(&CertifyDevice { device_key: device.clone(), next_counter: 0 }).await;
    let _ = c
        .offline_fund(&FundPurse { from: "X-1".into(), device_key: device, amount_tiyn: 1, paid_tx: None }, None)
        .await;
    let _ = c.offline_deposit(&DepositChain { chain: "00".into() }, None).await;
    let _ = c.offline_trust().await;
    let _ = c.transaction("x").await;
    let _ = c.lineage("x").await;
    let _ = c.receipt("x").await;
    let qr = QrPayRequest { from: "X-1".into(), payload: "x".into(), amount_tiyn: None };
    let _ = c.check_qr("x").await;
    let _ = c.pay_qr(&qr, None).await;
    let _ = c.prepare_qr(&qr).await;
    let _ = c.submit_qr("00").await;
    let _ = c.request_conversion(ConversionKindDto::Issue, 1, None).await;
    let _ = c.conversions(&q).await;
    let _ = c.conversion("x").await;
    let _ = c.approve_conversion("x", "op").await;
    let _ = c.reject_conversion("x", "op", "no").await;
    let _ = c.supply().await;
    let _ = c.volumes(&q).await;
    let _ = c.hold(&HoldRequest { account: "X-1".into(), event: "E".into(), amount_tiyn: None }, None).await;
    let _ = c.release_hold("E", "X-1", None).await;
    let _ = c.cancel_hold("E", "X-1", None).await;
    let _ = c.expire_hold("E", "X-1", None).await;
    let _ = c.holds("X-1").await;
    let mark = MarkAddressRequest {
        account: "X-1".into(),
        recipient: "x".into(),
        amount_tiyn: 1,
        reference: "R".into(),
        levels: vec![],
        memo: None,
    };
    let _ = c.mark_address(&mark, None).await;
    let parameter = MarkParameterRequest {
        account: "X-1".into(),
        recipient: "x".into(),
        amount_tiyn: 1,
        parameter: "P".into(),
        memo: None,
    };
    let _ = c.mark_parameter(&parameter, None).await;
    let _ = c
        .pay_marked(&MarkedTransferRequest { from: "X-1".into(), to: vec![], reference: None, memo: None }, None)
        .await;
    let contract = ContractPaymentRequest {
        account: "X-1".into(),
        parameter: "P".into(),
        contract: "C".into(),
        recipient: "x".into(),
        amount_tiyn: 1,
        cash_out: false,
        memo: None,
    };
    let _ = c.contract_payment(&contract, None).await;
    let _ = c.pay_invoice("I", "X-1", None).await;
    let _ = c.pay_vat(&VatPaymentRequest { account: "X-1".into(), amount_tiyn: 1 }, None).await;
    let grant = GrantMandateRequest {
        account: "X-1".into(),
        mandate: "M".into(),
        grantee: "x".into(),
        amount_tiyn: 1,
        valid_until_ms: 1,
    };
    let _ = c.grant_mandate(&grant, None).await;
    let debit = DebitRequest {
        grantee_account: "X-1".into(),
        owner_account: "X-2".into(),
        to: "x".into(),
        amount_tiyn: 1,
        memo: None,
    };
    let _ = c.debit("M", &debit, None).await;
    let _ = c.revoke_mandate("M", "X-1", None).await;
    let pvp = PvpRequest {
        account: "X-1".into(),
        counterparty: "x".into(),
        base: "DT".into(),
        amount_tiyn: 1,
        quote: "FCY".into(),
    };
    let _ = c.pvp(&pvp, None).await;
    let _ = c.register_provider(&ProviderRequest { id: "X".into(), name: "x".into(), registries: vec![] }, None).await;
    let event = EventRequest {
        id: "E".into(),
        kind: EventKindDto::Single,
        target_tiyn: None,
        sender: None,
        sender_node: None,
        recipient: "x".into(),
        recipient_node: "STB1".into(),
        amount_tiyn: None,
        valid_until_ms: 1,
    };
    let _ = c.register_event(&event, None).await;
    let _ = c.events(&q).await;
    let _ = c.event("E").await;
    let _ = c.report_occurrence("E", &OccurrenceRequest::default(), None).await;
    let _ = c.cancel_event("E", None).await;
    let _ = c
        .register_parameter(
            &ParameterRequest {
                id: "P".into(),
                initiator: "x".into(),
                initiator_node: "STB1".into(),
                title: "t".into(),
            },
            None,
        )
        .await;
    let registered = ContractRequest {
        number: "C".into(),
        parameter: "P".into(),
        sender: "x".into(),
        recipient: "x".into(),
        max_transfer_tiyn: 1,
        max_cashout_tiyn: 0,
        valid_until_ms: 1,
        final_recipient: false,
    };
    let _ = c.register_contract(&registered, None).await;
    let _ = c.contract("P", "C").await;
    let amend = AmendRequest { max_transfer_tiyn: 1, max_cashout_tiyn: 0, valid_until_ms: 1 };
    let _ = c.amend_contract("P", "C", &amend, None).await;
    let invoice = InvoiceRequest { id: "I".into(), seller: "x".into(), buyer: "x".into(), net_tiyn: 1, vat_tiyn: 0 };
    let _ = c.register_invoice(&invoice, None).await;
    let _ = c.invoice("I").await;
    let rate = RateRequest { base: "DT".into(), quote: "FCY".into(), numerator: 1, denominator: 1, valid_until_ms: 1 };
    let _ = c.set_rate(&rate, None).await;
    let _ = c.rate("DT", "FCY").await;
    let _ = c.profile("X-1").await;
    let _ = c.set_profile("X-1", &ProfileBody { tier: None, linked_bank_account: None, unlink: false }).await;
    let _ = c.rekey("X-1", &RekeyBody { reidentification: "x".into(), client_public_key: None, proof: None }).await;
    let _ = c.close_account("X-1", false).await;
    let _ = c.limits().await;
    let _ = c.publish_limits(&LimitsBody { simplified: tier, standard: tier, full: tier }).await;
    let order = dtenge_types::EnforcementOrder {
        reference: dtenge_types::OrderRef::new("O").unwrap(),
        authority: dtenge_crypto::SecretKey::from_seed([1; 32]).public_key(),
        debtor: dtenge_types::Address(dtenge_crypto::SecretKey::from_seed([2; 32]).public_key()),
        act: dtenge_types::OrderAct::Freeze,
        reason: dtenge_types::Memo::new("r").unwrap(),
        issued_at: Timestamp(1),
    };
    let _ = c.place_order("STB1", &order).await;
    let _ = c.orders().await;
    let _ = c.regulator_aggregates(&r).await;
    let _ = c.regulator_large_payments(&r).await;
    let _ = c.regulator_marked_funds(&r).await;
    let card = LinkCardRequest { account: "X-1".into(), token: "x".into(), last4: "1".into(), expiry: "1".into() };
    let _ = c.link_card(&card, None).await;
    let _ = c.card("tok_coverage_01").await;
    let message = CardMessageRequest {
        mti: "0100".into(),
        processing_code: "000000".into(),
        amount_tiyn: 1,
        currency: 398,
        transmitted_at_ms: 1,
        stan: "000001".into(),
        card_token: "tok_coverage_01".into(),
        card_expiry: None,
        acquirer_id: "1".into(),
        acquirer_account: "x".into(),
        rrn: "000000000001".into(),
        original_rrn: None,
        replacement_amount_tiyn: None,
    };
    let _ = c.card_message(&message, None).await;
    let _ = c.card_payment("000000000001").await;
    let _ = c.unlink_card("tok_0000000001", None).await;
    let _ = c.stablecoins().await;
    let _ = c.reserves("KZTC").await;
    let change = SupplyChangeRequest { account: "X-1".into(), amount_tiyn: 1, memo: None };
    let _ = c.mint("KZTC", &change, None).await;
    let _ = c.burn("KZTC", &change, None).await;
    let pay = StablecoinTransferRequest { from: "X-1".into(), to: vec![Recipient::address("x", 1)], memo: None };
    let _ = c.stablecoin_transfer("KZTC", &pay, None).await;

    let doc = serde_json::to_value(dtenge_api::openapi()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let seen = seen.lock().unwrap().clone();
    let missing: Vec<_> = documented.difference(&seen).collect();
    assert!(missing.is_empty(), "operations without a client method: {missing:?}");
    assert_eq!(seen, documented);
}
