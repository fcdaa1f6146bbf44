//! QR payments through the API (issue 21.2): a dynamic QR signed by the
//! merchant's bank is paid once, by a custodial DA or by a holder who signs
//! the transaction; a tampered, expired, already-paid or wrongly-signed QR
//! is refused and moves nothing; a static QR takes the payer's amount.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_api_types::qr::{self, QrPayment};
use dtenge_client::{
    AccountView, Client, ClientError, HolderKindDto, KycDto, OpenAccount, QrPayRequest, Recipient, TransferRequest,
};
use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::HolderKind;
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::Keys;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{ParticipantId, Timestamp};

const START: u64 = 1_767_225_600_000;

struct World {
    _dir: tempfile::TempDir,
    p: Arc<Platform>,
    clock: Arc<ManualClock>,
    stb1: Client,
    stb2: Client,
    payer: AccountView,
    merchant: AccountView,
}

fn key(p: &Platform, who: &str) -> Arc<dyn Signer> {
    Arc::new(Keys::at(&p.data).load(who).unwrap())
}

#[track_caller]
fn refused(e: &ClientError, status: u16, code: &str) {
    match e {
        ClientError::Http { status: s, code: c, message, .. } => {
            assert_eq!((*s, c.as_str()), (status, code), "{message}")
        }
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

async fn open(c: &Client, serial: u8, name: &str, kind: HolderKindDto, device: Option<&SecretKey>) -> AccountView {
    let holder = if kind == HolderKindDto::LegalEntity { HolderKind::LegalEntity } else { HolderKind::Individual };
    c.open_account(
        &OpenAccount {
            iin_bin: demo_iin_bin(holder, serial).to_string(),
            name: name.into(),
            kind,
            kyc: Some(KycDto::Verified),
            client_public_key: device.map(|d| d.public_key().to_string()),
        },
        None,
    )
    .await
    .unwrap()
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let p =
        Arc::new(Platform::open(dir.path(), Arc::clone(&dyn_clock), PlatformOptions { durable: false }).await.unwrap());
    dtenge_platform::demo_set::ensure(&p).await.unwrap();
    let router = dtenge_api::router(Arc::clone(&p));
    let stb1 = Client::in_process(router, ParticipantId::new("STB1").unwrap(), key(&p, "STB1"), dyn_clock);
    let stb2 = stb1.as_participant(ParticipantId::new("STB2").unwrap(), key(&p, "STB2"));
    let payer = open(&stb1, 60, "Aigerim", HolderKindDto::Individual, None).await;
    let merchant = open(&stb2, 61, "Coffee Point", HolderKindDto::LegalEntity, None).await;
    let farmer = p.node("STB1").unwrap().accounts_of(&demo_iin_bin(HolderKind::Individual, 5))[0].id.to_string();
    stb1.transfer(
        &TransferRequest { from: farmer, to: vec![Recipient::address(payer.address.clone(), 100_000)], memo: None },
        None,
    )
    .await
    .unwrap();
    World { _dir: dir, p, clock, stb1, stb2, payer, merchant }
}

impl World {
    fn now_s(&self) -> u64 {
        self.clock.now().millis() / 1_000
    }

    fn order(&self, reference: &str, tiyn: u64) -> QrPayment {
        QrPayment {
            address: self.merchant.address.clone(),
            bank: "STB2".into(),
            name: "Coffee Point".into(),
            city: "Astana".into(),
            amount_tiyn: Some(tiyn),
            reference: Some(reference.into()),
            expires_at_s: Some(self.now_s() + 300),
        }
    }

    fn dynamic(&self, reference: &str, tiyn: u64) -> String {
        qr::encode_dynamic(&self.order(reference, tiyn), key(&self.p, "STB2").as_ref()).unwrap()
    }

    fn pay(&self, payload: &str, amount_tiyn: Option<u64>) -> QrPayRequest {
        QrPayRequest { from: self.payer.id.clone(), payload: payload.into(), amount_tiyn }
    }

    async fn balances(&self) -> (u64, u64) {
        (
            self.stb1.balance(&self.payer.id).await.unwrap().total_tiyn,
            self.stb2.balance(&self.merchant.id).await.unwrap().total_tiyn,
        )
    }
}

#[tokio::test]
async fn a_dynamic_qr_is_paid_once_and_the_merchant_sees_its_reference() {
    let w = world().await;
    let text = w.dynamic("ORDER-1", 2_500);
    let view = w.stb1.check_qr(&text).await.unwrap();
    assert_eq!((view.kind.as_str(), view.payment.amount_tiyn, view.paid_by), ("dynamic", Some(2_500), None));

    let done = w.stb1.pay_qr(&w.pay(&text, None), None).await.unwrap();
    assert_eq!(done.status.status, "success");
    assert_eq!(w.balances().await, (97_500, 2_500));
    let history = w.stb2.history(&w.merchant.id, &Default::default()).await.unwrap();
    assert!(history.items.iter().any(|h| h.memo.as_deref() == Some("QR ORDER-1") && h.incoming_tiyn == 2_500));
    assert_eq!(w.stb1.check_qr(&text).await.unwrap().paid_by, Some(done.tx.clone()));

    // Paid again — by the same payer, or by another bank's client: refused, nothing moves.
    refused(&w.stb1.pay_qr(&w.pay(&text, None), None).await.unwrap_err(), 409, "qr_already_paid");
    let other = open(&w.stb2, 62, "Other payer", HolderKindDto::Individual, None).await;
    let other_pay = QrPayRequest { from: other.id.clone(), payload: text.clone(), amount_tiyn: None };
    refused(&w.stb2.pay_qr(&other_pay, None).await.unwrap_err(), 409, "qr_already_paid");
    // A dynamic QR's amount is signed: the payer cannot name another.
    let fresh = w.dynamic("ORDER-2", 100);
    refused(&w.stb1.pay_qr(&w.pay(&fresh, Some(1)), None).await.unwrap_err(), 400, "qr_amount_fixed");
    assert_eq!(w.balances().await, (97_500, 2_500));
}

#[tokio::test]
async fn tampered_expired_and_wrongly_signed_qrs_move_nothing() {
    let w = world().await;
    let text = w.dynamic("ORDER-9", 2_500);
    // The amount changed and the CRC recomputed: the bank's signature fails.
    let body = text.replacen("540525.00", "540599.00", 1);
    assert_ne!(body, text);
    let forged = format!("{}{:04X}", &body[..body.len() - 4], qr::crc16(&body.as_bytes()[..body.len() - 4]));
    refused(&w.stb1.pay_qr(&w.pay(&forged, None), None).await.unwrap_err(), 422, "qr_bad_signature");
    // Changed without a new CRC.
    refused(&w.stb1.pay_qr(&w.pay(&body, None), None).await.unwrap_err(), 422, "qr_checksum");
    // Signed by a bank that does not host the payee (STB1 signs for STB2's merchant).
    let wrong = qr::encode_dynamic(&w.order("ORDER-10", 100), key(&w.p, "STB1").as_ref()).unwrap();
    refused(&w.stb1.pay_qr(&w.pay(&wrong, None), None).await.unwrap_err(), 422, "qr_bad_signature");
    // Naming the signer as the bank, but the payee is elsewhere.
    let elsewhere = QrPayment { bank: "STB1".into(), ..w.order("ORDER-11", 100) };
    let elsewhere = qr::encode_dynamic(&elsewhere, key(&w.p, "STB1").as_ref()).unwrap();
    refused(&w.stb1.pay_qr(&w.pay(&elsewhere, None), None).await.unwrap_err(), 422, "qr_wrong_bank");
    // Expired.
    w.clock.advance(301_000);
    refused(&w.stb1.pay_qr(&w.pay(&text, None), None).await.unwrap_err(), 422, "qr_expired");
    refused(&w.stb1.check_qr("not a qr").await.unwrap_err(), 422, "qr_malformed");
    assert_eq!(w.balances().await, (100_000, 0));
    // The refused QR was never claimed: once valid (a new one), it pays.
    let again = w.dynamic("ORDER-9", 2_500);
    assert_eq!(w.stb1.pay_qr(&w.pay(&again, None), None).await.unwrap().status.status, "success");
}

#[tokio::test]
async fn a_holder_signs_a_qr_payment_and_a_static_qr_takes_the_payers_amount() {
    let w = world().await;
    let device = SecretKey::from_seed([21; 32]);
    let me = open(&w.stb1, 63, "Dana", HolderKindDto::Individual, Some(&device)).await;
    w.stb1
        .transfer(
            &TransferRequest {
                from: w.payer.id.clone(),
                to: vec![Recipient::address(me.address.clone(), 10_000)],
                memo: None,
            },
            None,
        )
        .await
        .unwrap();
    let text = w.dynamic("ORDER-20", 4_000);
    let request = QrPayRequest { from: me.id.clone(), payload: text.clone(), amount_tiyn: None };
    let prepared = w.stb1.prepare_qr(&request).await.unwrap();
    let mut tx = dtenge_types::decode_transaction(&hex::decode(&prepared.transaction).unwrap()).unwrap();
    tx.sign(&device).unwrap();
    let signed = hex::encode(dtenge_types::encoding::encode(&tx));
    // The general submit route would skip the QR's claim: refused there.
    refused(&w.stb1.submit_transfer(&signed).await.unwrap_err(), 422, "qr_submit_elsewhere");
    let done = w.stb1.submit_qr(&signed).await.unwrap();
    assert_eq!(done.status.status, "success");
    assert_eq!(w.stb1.balance(&me.id).await.unwrap().total_tiyn, 6_000);
    refused(&w.stb1.prepare_qr(&request).await.unwrap_err(), 409, "qr_already_paid");
    refused(&w.stb1.submit_qr(&signed).await.unwrap_err(), 422, "qr_not_prepared");

    // Static: the merchant's payee only; the payer names the amount, and may pay again.
    let payee = QrPayment { amount_tiyn: None, reference: None, expires_at_s: None, ..w.order("x", 1) };
    let stat = qr::encode_static(&payee).unwrap();
    assert_eq!(w.stb1.check_qr(&stat).await.unwrap().kind, "static");
    refused(&w.stb1.pay_qr(&w.pay(&stat, None), None).await.unwrap_err(), 400, "qr_amount_missing");
    for _ in 0..2 {
        w.stb1.pay_qr(&w.pay(&stat, Some(1_000)), None).await.unwrap();
    }
    assert_eq!(w.stb2.balance(&w.merchant.id).await.unwrap().total_tiyn, 6_000);
}
