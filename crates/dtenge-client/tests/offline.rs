//! Offline device-to-device payments through the API on a real platform
//! (issue 21.3): a purse funded from a DA into the bank's offline reserve
//! (an ordinary payment: supply unchanged), a payment between two devices
//! with no network, the deposit settled from the paying bank's reserve into
//! the receiver's DA at another bank, once — also after a restart — and a
//! cloned device's double spend refused with the proof naming it, the device
//! revoked on the list wallets fetch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_client::{
    CertifyDevice, Client, ClientError, ConversionKindDto, DepositChain, FundPurse, HolderKindDto, KycDto, OpenAccount,
    Recipient, TransferRequest,
};
use dtenge_crypto::{PublicKey, Signer};
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::HolderKind;
use dtenge_offline::{
    Certificate, Load, MAX_PAYMENT_BYTES, OfflineCode, Purse, RevocationList, SecureElement, SoftwareElement, Trust,
    decode_revocations,
};
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::Keys;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, ParticipantId, Timestamp, encoding};

const START: u64 = 1_767_225_600_000;

fn pid(who: &str) -> ParticipantId {
    ParticipantId::new(who).unwrap()
}

fn key(p: &Platform, who: &str) -> Arc<dyn Signer> {
    Arc::new(Keys::at(&p.data).load(who).unwrap())
}

#[track_caller]
fn http_error(e: &ClientError, status: u16, code: &str) {
    match e {
        ClientError::Http { status: s, code: c, message, .. } => {
            assert_eq!((*s, c.as_str()), (status, code), "{message}")
        }
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

struct Clients {
    stb1: Client,
    stb2: Client,
    nbk: Client,
}

fn clients(p: &Arc<Platform>, clock: &Arc<ManualClock>) -> Clients {
    let router = dtenge_api::router(Arc::clone(p));
    let clock: Arc<dyn Clock> = clock.clone();
    let stb1 = Client::in_process(router, pid("STB1"), key(p, "STB1"), clock);
    Clients {
        stb2: stb1.as_participant(pid("STB2"), key(p, "STB2")),
        nbk: stb1.as_participant(pid("NBK"), key(p, "NBK")),
        stb1,
    }
}

async fn open(c: &Client, n: u8, name: &str) -> dtenge_client::AccountView {
    let open = OpenAccount {
        iin_bin: demo_iin_bin(HolderKind::Individual, n).to_string(),
        name: name.into(),
        kind: HolderKindDto::Individual,
        kyc: Some(KycDto::Verified),
        client_public_key: None,
    };
    c.open_account(&open, None).await.unwrap()
}

/// The wallet's trust store from `GET /api/v1/offline/trust`.
async fn trust(c: &Client) -> Trust {
    let view = c.offline_trust().await.unwrap();
    let mut trust = Trust::new(view.banks.iter().map(|b| (pid(&b.bank), b.key.parse::<PublicKey>().unwrap()))).unwrap();
    for r in &view.revocations {
        let list: RevocationList = decode_revocations(&hex::decode(&r.list).unwrap()).unwrap();
        trust.apply_revocations(&list).unwrap();
    }
    trust
}

async fn purse(c: &Client, element: SoftwareElement, trust: Trust) -> Purse<SoftwareElement> {
    let request = CertifyDevice { device_key: element.device_key().to_string(), next_counter: element.next_counter() };
    let view = c.offline_certify(&request).await.unwrap();
    let certificate: Certificate = encoding::decode(&hex::decode(&view.certificate).unwrap(), 1024).unwrap();
    Purse::new(element, certificate, trust).unwrap()
}

async fn fund(c: &Client, from: &str, device: PublicKey, tiyn: u64) -> Load {
    let request = FundPurse { from: from.into(), device_key: device.to_string(), amount_tiyn: tiyn, paid_tx: None };
    let view = c.offline_fund(&request, None).await.unwrap();
    encoding::decode(&hex::decode(&view.load).unwrap(), 1024).unwrap()
}

fn address_key(address: &str) -> PublicKey {
    address.parse().unwrap()
}

#[tokio::test]
async fn fund_pay_offline_deposit_settle_and_catch_a_cloned_device() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let p = Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: true }).await.unwrap());
    let Clients { stb1, stb2, nbk } = clients(&p, &clock);

    // Money at STB1 through the conversion flow, then to two clients.
    let request = stb1.request_conversion(ConversionKindDto::Issue, 1_000_000, None).await.unwrap();
    p.tick().await;
    nbk.approve_conversion(&request.id, "op-1").await.unwrap();
    let own = p.node("STB1").unwrap().own_account().unwrap().to_string();
    let alia = open(&stb1, 60, "Alia").await;
    let carol = open(&stb1, 61, "Carol").await;
    let bob = open(&stb2, 62, "Bob").await;
    let shop = open(&stb2, 63, "Shop").await;
    for (who, tiyn) in [(&alia, 300_000), (&carol, 300_000)] {
        let t =
            TransferRequest { from: own.clone(), to: vec![Recipient::address(who.address.clone(), tiyn)], memo: None };
        stb1.transfer(&t, None).await.unwrap();
    }
    let supply = nbk.supply().await.unwrap().supply_tiyn;

    // Funding: Alia's DA → STB1's offline reserve, a load for her device.
    let wallet_trust = trust(&stb1).await;
    let mut alia_purse = purse(&stb1, SoftwareElement::from_seed([71; 32]), wallet_trust.clone()).await;
    let load = fund(&stb1, &alia.id, alia_purse.device_key(), 200_000).await;
    alia_purse.add_load(load).unwrap();
    assert_eq!(stb1.balance(&alia.id).await.unwrap().standard_tiyn, 100_000);
    assert_eq!(nbk.supply().await.unwrap().supply_tiyn, supply, "funding moves DT, creates none");

    // Offline: Alia's device pays Bob's (a bank-STB2 device); no API call.
    let mut bob_purse = purse(&stb2, SoftwareElement::from_seed([72; 32]), wallet_trust.clone()).await;
    let payment = alia_purse.pay(bob_purse.device_key(), Amount::from_tiyn(50_000), Timestamp(START + 60_000)).unwrap();
    println!("offline payment, 1 hop: {} bytes", payment[0].len());
    assert!(payment[0].len() <= MAX_PAYMENT_BYTES);
    bob_purse.receive(&payment[0], Timestamp(START + 61_000)).unwrap();

    // Reconnection: Bob deposits at STB2; STB1's reserve pays his DA.
    clock.set(Timestamp(START + 3_600_000));
    let deposits = bob_purse.deposit(address_key(&bob.address), clock.now()).unwrap();
    let body = DepositChain { chain: hex::encode(deposits[0].encode()) };
    // Only Bob's bank deposits into Bob's DA.
    http_error(&stb1.offline_deposit(&body, None).await.unwrap_err(), 403, "not_own_account");
    let settled = stb2.offline_deposit(&body, None).await.unwrap();
    assert_eq!((settled.outcome.as_str(), settled.amount_tiyn), ("settled", 50_000));
    assert_eq!(stb2.balance(&bob.id).await.unwrap().standard_tiyn, 50_000);
    let again = stb2.offline_deposit(&body, None).await.unwrap();
    assert_eq!((again.outcome.as_str(), again.tx.as_ref()), ("already_settled", settled.tx.as_ref()));
    assert_eq!(stb2.balance(&bob.id).await.unwrap().standard_tiyn, 50_000, "deposited once");

    // A cloned device: Carol's element copied, both copies hold one load.
    let element = SoftwareElement::from_seed([73; 32]);
    let twin_element = element.extract_clone();
    let mut carol_purse = purse(&stb1, element, wallet_trust.clone()).await;
    let mut twin = purse(&stb1, twin_element, wallet_trust.clone()).await;
    let load = fund(&stb1, &carol.id, carol_purse.device_key(), 100_000).await;
    carol_purse.add_load(load.clone()).unwrap();
    twin.add_load(load).unwrap();
    let mut shop_purse = purse(&stb2, SoftwareElement::from_seed([74; 32]), wallet_trust.clone()).await;
    // Bob's second phone.
    let mut bob_purse = purse(&stb2, SoftwareElement::from_seed([76; 32]), wallet_trust.clone()).await;
    let now = clock.now();
    shop_purse
        .receive(&carol_purse.pay(shop_purse.device_key(), Amount::from_tiyn(80_000), now).unwrap()[0], now)
        .unwrap();
    bob_purse.receive(&twin.pay(bob_purse.device_key(), Amount::from_tiyn(80_000), now).unwrap()[0], now).unwrap();
    let shop_chain = shop_purse.deposit(address_key(&shop.address), now).unwrap().remove(0);
    let bob_chain = bob_purse.deposit(address_key(&bob.address), now).unwrap().remove(0);
    let shop_paid =
        stb2.offline_deposit(&DepositChain { chain: hex::encode(shop_chain.encode()) }, None).await.unwrap();
    assert_eq!(shop_paid.outcome, "settled");
    let caught = stb2.offline_deposit(&DepositChain { chain: hex::encode(bob_chain.encode()) }, None).await.unwrap();
    assert_eq!(caught.outcome, "double_spend");
    assert_eq!(caught.culprit.as_deref(), Some(carol_purse.device_key().to_string().as_str()));
    assert_eq!((caught.amount_tiyn, caught.loss_tiyn), (0, 80_000));
    let proof: dtenge_offline::Proof = encoding::decode(&hex::decode(caught.proof.unwrap()).unwrap(), 4096).unwrap();
    proof.check(&wallet_trust).unwrap();
    assert_eq!(stb2.balance(&bob.id).await.unwrap().standard_tiyn, 50_000, "the double spend paid nothing");

    // Wallets online fetch the revocation: Carol's device is refused offline.
    let fresh_trust = trust(&stb2).await;
    assert!(fresh_trust.is_revoked(&carol_purse.device_key()));
    let mut wary = purse(&stb2, SoftwareElement::from_seed([75; 32]), fresh_trust).await;
    let late = carol_purse.pay(wary.device_key(), Amount::from_tiyn(1_000), now).unwrap();
    assert_eq!(wary.receive(&late[0], now).unwrap_err().code(), OfflineCode::Revoked);

    // Supply conserved; the reserve holds what was loaded less what settled.
    assert_eq!(nbk.supply().await.unwrap().supply_tiyn, supply);
    let reserve = p.offline_desk(&pid("STB1")).unwrap().reserve_address();
    let reserve_id = p.node("STB1").unwrap().read(|s| s.account_of(&reserve).map(|a| a.id.clone())).unwrap();
    assert_eq!(stb1.balance(&reserve_id.0).await.unwrap().standard_tiyn, 200_000 + 100_000 - 50_000 - 80_000);

    // Refusals change nothing.
    http_error(
        &nbk.offline_certify(&CertifyDevice { device_key: carol_purse.device_key().to_string(), next_counter: 0 })
            .await
            .unwrap_err(),
        403,
        "operation_forbidden",
    );
    http_error(
        &stb2.offline_deposit(&DepositChain { chain: "00ff".into() }, None).await.unwrap_err(),
        422,
        "offline_malformed",
    );
    let over = FundPurse {
        from: alia.id.clone(),
        device_key: alia_purse.device_key().to_string(),
        amount_tiyn: 5_000_001,
        paid_tx: None,
    };
    http_error(&stb1.offline_fund(&over, None).await.unwrap_err(), 422, "offline_limit");
    assert_eq!(stb1.balance(&alia.id).await.unwrap().standard_tiyn, 100_000);

    // Deposits are durable: after a restart the settled chain is not paid again.
    drop((stb1, nbk));
    p.close().unwrap();
    drop(p);
    drop(stb2);
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let p = Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: true }).await.unwrap());
    let Clients { stb2, .. } = clients(&p, &clock);
    let after = stb2.offline_deposit(&body, None).await.unwrap();
    assert_eq!(after.outcome, "already_settled");
    let again = stb2.offline_deposit(&DepositChain { chain: hex::encode(bob_chain.encode()) }, None).await.unwrap();
    assert_eq!(again.outcome, "double_spend", "the book after a restart still knows the settled range");
    assert_eq!(stb2.balance(&bob.id).await.unwrap().standard_tiyn, 50_000);
}

/// A DA whose key is the person's funds a purse by paying the reserve itself
/// (the client-signed path); the bank then issues the load for that payment,
/// once: asked again it answers the same load, for another device or amount
/// it refuses, and a payment that is not into the reserve gets no load.
#[tokio::test]
async fn a_payment_the_holder_signed_into_the_reserve_funds_one_load() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(START));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let p = Arc::new(Platform::open(dir.path(), dyn_clock, PlatformOptions { durable: true }).await.unwrap());
    let Clients { stb1, nbk, .. } = clients(&p, &clock);
    let request = stb1.request_conversion(ConversionKindDto::Issue, 1_000_000, None).await.unwrap();
    p.tick().await;
    nbk.approve_conversion(&request.id, "op-1").await.unwrap();
    let own = p.node("STB1").unwrap().own_account().unwrap().to_string();
    let holder = dtenge_crypto::SecretKey::from_seed([81; 32]);
    let open = OpenAccount {
        iin_bin: demo_iin_bin(HolderKind::Individual, 64).to_string(),
        name: "Dana".into(),
        kind: HolderKindDto::Individual,
        kyc: Some(KycDto::Verified),
        client_public_key: Some(holder.public_key().to_string()),
    };
    let dana = stb1.open_account(&open, None).await.unwrap();
    let other = open_da(&stb1, 65, "Erlan").await;
    for to in [&dana, &other] {
        let t = TransferRequest {
            from: own.clone(),
            to: vec![Recipient::address(to.address.clone(), 100_000)],
            memo: None,
        };
        stb1.transfer(&t, None).await.unwrap();
    }
    let supply = nbk.supply().await.unwrap().supply_tiyn;

    // The bank cannot pay from Dana's DA itself.
    let device = SoftwareElement::from_seed([82; 32]).device_key();
    let certified =
        stb1.offline_certify(&CertifyDevice { device_key: device.to_string(), next_counter: 0 }).await.unwrap();
    assert!(
        stb1.offline_fund(
            &FundPurse { from: dana.id.clone(), device_key: device.to_string(), amount_tiyn: 30_000, paid_tx: None },
            None
        )
        .await
        .is_err()
    );

    // Dana pays the reserve (prepared by the bank, signed by her key), then asks for the load.
    let pay_reserve = |tiyn: u64, from: &dtenge_client::AccountView| TransferRequest {
        from: from.id.clone(),
        to: vec![Recipient::address(certified.reserve.clone(), tiyn)],
        memo: None,
    };
    let prepared = stb1.prepare_transfer(&pay_reserve(30_000, &dana)).await.unwrap();
    let mut tx = dtenge_types::decode_transaction(&hex::decode(&prepared.transaction).unwrap()).unwrap();
    tx.sign(&holder).unwrap();
    let done = stb1.submit_transfer(&hex::encode(encoding::encode(&tx))).await.unwrap();
    assert_eq!(done.status.status, "success");
    let ask = |device: PublicKey, tiyn: u64, tx: &str, from: &str| FundPurse {
        from: from.into(),
        device_key: device.to_string(),
        amount_tiyn: tiyn,
        paid_tx: Some(tx.into()),
    };
    let first = stb1.offline_fund(&ask(device, 30_000, &done.tx, &dana.id), None).await.unwrap();
    let load: Load = encoding::decode(&hex::decode(&first.load).unwrap(), 1024).unwrap();
    assert_eq!((load.device, load.amount), (device, Amount::from_tiyn(30_000)));
    assert_eq!(first.tx, done.tx);
    // Asked again (a lost answer): the same load, nothing new.
    let again = stb1.offline_fund(&ask(device, 30_000, &done.tx, &dana.id), None).await.unwrap();
    assert_eq!(again.load, first.load);
    // The same payment for another device, or another amount: refused.
    let thief = SoftwareElement::from_seed([83; 32]).device_key();
    http_error(
        &stb1.offline_fund(&ask(thief, 30_000, &done.tx, &dana.id), None).await.unwrap_err(),
        409,
        "offline_payment_used",
    );
    http_error(
        &stb1.offline_fund(&ask(device, 29_000, &done.tx, &dana.id), None).await.unwrap_err(),
        409,
        "offline_payment_used",
    );
    // A second payment of Dana's, claimed from another DA than the payer's: no load; from hers: a load.
    let prepared = stb1.prepare_transfer(&pay_reserve(10_000, &dana)).await.unwrap();
    let mut tx = dtenge_types::decode_transaction(&hex::decode(&prepared.transaction).unwrap()).unwrap();
    tx.sign(&holder).unwrap();
    let second = stb1.submit_transfer(&hex::encode(encoding::encode(&tx))).await.unwrap();
    http_error(
        &stb1.offline_fund(&ask(thief, 10_000, &second.tx, &other.id), None).await.unwrap_err(),
        422,
        "offline_not_paid",
    );
    let load2 = stb1.offline_fund(&ask(device, 10_000, &second.tx, &dana.id), None).await.unwrap();
    assert_ne!(load2.load, first.load);
    // A payment that did not go to the reserve: no load.
    let elsewhere =
        TransferRequest { from: own.clone(), to: vec![Recipient::address(other.address.clone(), 500)], memo: None };
    let elsewhere = stb1.transfer(&elsewhere, None).await.unwrap();
    http_error(
        &stb1.offline_fund(&ask(device, 500, &elsewhere.tx, &own), None).await.unwrap_err(),
        422,
        "offline_not_paid",
    );
    // Not a transaction id at all.
    http_error(&stb1.offline_fund(&ask(device, 500, "zz", &dana.id), None).await.unwrap_err(), 400, "bad_tx_id");
    assert_eq!(stb1.balance(&dana.id).await.unwrap().standard_tiyn, 60_000);
    assert_eq!(nbk.supply().await.unwrap().supply_tiyn, supply, "a load moves DT, creates none");
}

async fn open_da(c: &Client, n: u8, name: &str) -> dtenge_client::AccountView {
    open(c, n, name).await
}
