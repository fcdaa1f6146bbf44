//! The client against a real server on 127.0.0.1 (hyper over TCP) and
//! in process (the router driven directly): every endpoint, typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_client::{
    Client, ClientError, ConversionKindDto, HolderKindDto, KycDto, ListQuery, NotificationKind, OpenAccount, Recipient,
    TransferRequest,
};
use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::HolderKind;
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::Keys;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{ParticipantId, Timestamp};

const START: u64 = 1_767_225_600_000;

async fn platform() -> (tempfile::TempDir, Arc<Platform>, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let p = Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: false }).await.unwrap();
    (dir, Arc::new(p), clock)
}

fn key(p: &Platform, who: &str) -> Arc<dyn Signer> {
    Arc::new(Keys::at(&p.data).load(who).unwrap())
}

fn pid(who: &str) -> ParticipantId {
    ParticipantId::new(who).unwrap()
}

#[track_caller]
fn http_error(e: &ClientError, status: u16, code: &str) {
    match e {
        ClientError::Http { status: s, code: c, message, .. } => {
            assert_eq!((*s, c.as_str()), (status, code), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn every_endpoint_over_tcp() {
    let (_dir, p, clock) = platform().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, dtenge_api::router(Arc::clone(&p))).into_future());
    let clock: Arc<dyn Clock> = clock;
    let base = format!("http://{addr}/");
    let stb1 = Client::new(&base, pid("STB1"), key(&p, "STB1"), Arc::clone(&clock)).unwrap();
    let stb2 = stb1.as_participant(pid("STB2"), key(&p, "STB2"));
    let nbk = Client::new(&base, pid("NBK"), key(&p, "NBK"), Arc::clone(&clock)).unwrap();

    let health = stb1.health().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.now_ms, START);
    let doc = stb1.openapi().await.unwrap();
    assert!(doc["paths"]["/api/v1/transfers"].is_object());

    // Fund STB1 through the conversion flow.
    let request = stb1.request_conversion(ConversionKindDto::Issue, 1_000_000, Some("conv-1")).await.unwrap();
    assert_eq!(request.status.status, "under_review");
    let again = stb1.request_conversion(ConversionKindDto::Issue, 1_000_000, Some("conv-1")).await.unwrap();
    assert_eq!(again.id, request.id, "idempotent");
    http_error(&stb1.approve_conversion(&request.id, "me").await.unwrap_err(), 403, "operation_forbidden");
    p.tick().await;
    assert!(stb1.conversion(&request.id).await.unwrap().cbs_reference.is_some());
    let approved = nbk.approve_conversion(&request.id, "op-1").await.unwrap();
    assert_eq!(approved.status.status, "success");
    assert_eq!(stb1.conversions(&ListQuery::default()).await.unwrap().total, 1);
    http_error(&stb2.conversion(&request.id).await.unwrap_err(), 403, "forbidden");

    // Accounts.
    let iin = demo_iin_bin(HolderKind::Individual, 40).to_string();
    let open = OpenAccount {
        iin_bin: iin.clone(),
        name: "Alia".into(),
        kind: HolderKindDto::Individual,
        kyc: None,
        client_public_key: None,
    };
    let alia = stb1.open_account(&open, None).await.unwrap();
    assert_eq!(alia.kyc, KycDto::Pending);
    assert_eq!(stb1.set_kyc(&alia.id, KycDto::Verified).await.unwrap().kyc, KycDto::Verified);
    assert_eq!(stb1.account(&alia.id).await.unwrap().id, alia.id);
    let bob_iin = demo_iin_bin(HolderKind::Individual, 41).to_string();
    let bob = stb2
        .open_account(
            &OpenAccount {
                iin_bin: bob_iin.clone(),
                name: "Bob".into(),
                kind: HolderKindDto::Individual,
                kyc: Some(KycDto::Verified),
                client_public_key: None,
            },
            Some("open-bob"),
        )
        .await
        .unwrap();
    let listed =
        stb1.list_accounts(&ListQuery { kind: Some("individual".into()), ..ListQuery::default() }).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items[0].id, alia.id);
    let found = stb1.directory(&bob_iin).await.unwrap();
    assert_eq!(found[0].bank, "STB2");

    // Payments: bank's own DA → Alia → Bob (by IIN at STB2), with an idempotency key.
    let own = p.node("STB1").unwrap().own_account().unwrap().to_string();
    let fund =
        TransferRequest { from: own.clone(), to: vec![Recipient::address(alia.address.clone(), 50_000)], memo: None };
    stb1.transfer(&fund, None).await.unwrap();
    let pay = TransferRequest {
        from: alia.id.clone(),
        to: vec![Recipient::holder(bob_iin.clone(), "STB2", 20_000)],
        memo: Some("rent".into()),
    };
    let paid = stb1.transfer(&pay, Some("pay-1")).await.unwrap();
    assert_eq!(paid.status.status, "success");
    assert_eq!(stb1.transfer(&pay, Some("pay-1")).await.unwrap(), paid, "same answer");
    let other = TransferRequest { memo: Some("other".into()), ..pay.clone() };
    http_error(&stb1.transfer(&other, Some("pay-1")).await.unwrap_err(), 422, "idempotency_key_reused");
    assert_eq!(stb1.balance(&alia.id).await.unwrap().standard_tiyn, 30_000);
    assert_eq!(stb2.balance(&bob.id).await.unwrap().standard_tiyn, 20_000);

    let history = stb1.history(&alia.id, &ListQuery { per_page: Some(1), ..ListQuery::default() }).await.unwrap();
    assert_eq!(history.total, 2);
    assert_eq!(history.items[0].tx, paid.tx);
    assert_eq!(history.items[0].kind, "transfer");
    let notes = stb2.notifications(&bob.id, &ListQuery::default()).await.unwrap();
    let note = notes.items.iter().find(|n| n.tx.as_deref() == Some(paid.tx.as_str())).expect("bob is told");
    assert_eq!(note.kind, NotificationKind::Incoming);
    assert_eq!(note.params.get("command").map(String::as_str), Some("transfer"));
    assert_eq!(note.params.get("currency").map(String::as_str), Some("DT"));
    let tx = stb2.transaction(&paid.tx).await.unwrap();
    assert_eq!(tx.direction, "incoming");
    let receipt = stb1.receipt(&paid.tx).await.unwrap();
    assert_eq!(Some(receipt.seq), paid.notary_seq);
    let lineage = stb2.lineage(&format!("{}:0", paid.tx)).await.unwrap();
    assert!(!lineage.parents.is_empty());

    // Typed errors.
    http_error(&stb1.account("STB1-999999").await.unwrap_err(), 404, "not_found");
    http_error(&stb2.balance(&alia.id).await.unwrap_err(), 403, "forbidden");
    let broke = TransferRequest {
        from: alia.id.clone(),
        to: vec![Recipient::address(bob.address.clone(), 10_000_000)],
        memo: None,
    };
    http_error(&stb1.transfer(&broke, None).await.unwrap_err(), 422, "insufficient_funds");
    let zero =
        TransferRequest { from: alia.id.clone(), to: vec![Recipient::address(bob.address.clone(), 0)], memo: None };
    http_error(&stb1.transfer(&zero, None).await.unwrap_err(), 400, "bad_amount");
    let mut bad_iin = iin.clone().into_bytes();
    bad_iin[11] = b'0' + (bad_iin[11] - b'0' + 1) % 10;
    let bad_iin = String::from_utf8(bad_iin).unwrap();
    http_error(&stb1.directory(&bad_iin).await.unwrap_err(), 400, "bad_iin_bin");
    let forged = stb1.as_participant(pid("STB1"), Arc::new(SecretKey::from_seed([3; 32])));
    http_error(
        &forged
            .health()
            .await
            .map(|_| ())
            .and(forged.list_accounts(&ListQuery::default()).await.map(|_| ()))
            .unwrap_err(),
        401,
        "bad_signature",
    );

    // NBK statistics; the generic calls reach any endpoint.
    let supply = nbk.supply().await.unwrap();
    assert_eq!(supply.supply_tiyn.values().sum::<u64>(), 1_000_000);
    assert!(!nbk.volumes(&ListQuery::default()).await.unwrap().is_empty());
    http_error(&stb1.supply().await.unwrap_err(), 403, "operation_forbidden");
    let raw: serde_json::Value = stb1.get_json(&format!("/api/v1/accounts/{}/balance", alia.id)).await.unwrap();
    assert_eq!(raw["standard_tiyn"], 30_000);
    let redeem = stb1
        .post_json::<_, serde_json::Value>(
            "/api/v1/conversions",
            &serde_json::json!({"kind": "redeem", "amount_tiyn": 100}),
            None,
        )
        .await
        .unwrap();
    let rejected = nbk.reject_conversion(redeem["id"].as_str().unwrap(), "op", "not today").await.unwrap();
    assert_eq!(rejected.status.reason.as_deref(), Some("not today"));
    http_error(&stb1.get_json::<serde_json::Value>("/api/v1/nope").await.unwrap_err(), 404, "not_found");
    assert!(matches!(stb1.get_json::<Vec<u8>>("/api/v1/health").await.unwrap_err(), ClientError::Decode(_)));

    // Nothing listens: a transport error.
    server.abort();
    let _ = server.await;
    let closed = Client::new(&base, pid("STB1"), key(&p, "STB1"), clock)
        .unwrap()
        .with_timeout(std::time::Duration::from_secs(5));
    assert!(matches!(closed.health().await.unwrap_err(), ClientError::Transport(_)));
}

#[tokio::test]
async fn in_process_client_signed_payment_and_bad_urls() {
    let (_dir, p, clock) = platform().await;
    dtenge_platform::demo_set::ensure(&p).await.unwrap();
    let clock: Arc<dyn Clock> = clock;
    let router = dtenge_api::router(Arc::clone(&p));
    let stb1 = Client::in_process(router, pid("STB1"), key(&p, "STB1"), clock.clone());
    let device = SecretKey::from_seed([11; 32]);
    let me = stb1
        .open_account(
            &OpenAccount {
                iin_bin: demo_iin_bin(HolderKind::Individual, 42).to_string(),
                name: "Device holder".into(),
                kind: HolderKindDto::Individual,
                kyc: Some(KycDto::Verified),
                client_public_key: Some(device.public_key().to_string()),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(me.custody, "client");
    let farmer1 = p.node("STB1").unwrap().accounts_of(&demo_iin_bin(HolderKind::Individual, 5))[0].id.to_string();
    stb1.transfer(
        &TransferRequest { from: farmer1, to: vec![Recipient::address(me.address.clone(), 900)], memo: None },
        None,
    )
    .await
    .unwrap();
    let farmer2 = p.node("STB2").unwrap().accounts_of(&demo_iin_bin(HolderKind::Individual, 7))[0].address.to_string();
    let prepared = stb1
        .prepare_transfer(&TransferRequest {
            from: me.id.clone(),
            to: vec![Recipient::address(farmer2, 400)],
            memo: None,
        })
        .await
        .unwrap();
    let mut tx = dtenge_types::decode_transaction(&hex::decode(&prepared.transaction).unwrap()).unwrap();
    tx.sign(&device).unwrap();
    let done = stb1.submit_transfer(&hex::encode(dtenge_types::encoding::encode(&tx))).await.unwrap();
    assert_eq!(done.status.status, "success");
    assert_eq!(done.tx, prepared.tx_id);
    assert_eq!(stb1.balance(&me.id).await.unwrap().standard_tiyn, 500);

    for bad in ["https://example.org", "127.0.0.1:80", "http://127.0.0.1:80/prefix", "not a url"] {
        assert!(
            matches!(Client::new(bad, pid("STB1"), key(&p, "STB1"), clock.clone()), Err(ClientError::Transport(_))),
            "{bad}"
        );
    }
}
