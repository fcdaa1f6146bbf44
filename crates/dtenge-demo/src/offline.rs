//! The `offline-p2p` scenario (issue 21.4): two phones pay each other with
//! the network cut, reconnect and settle; a cloned purse pays the same value
//! twice, is caught at deposit, named by its two signatures and revoked, and
//! the supply does not move. The phones are `dtenge-offline` purses over
//! software secure elements; everything online goes through the API.

use dtenge_client::{CertifyDevice, DepositChain, FundPurse};
use dtenge_crypto::PublicKey;
use dtenge_node::accounts::HolderKind;
use dtenge_offline::{
    Certificate, Chain, Load, MAX_PAYMENT_BYTES, OfflineCode, Purse, SecureElement, SoftwareElement, Trust,
};
use dtenge_platform::spec::ids;
use dtenge_types::{Amount, ParticipantId, encoding};

use crate::runner::{Api, Ctx, Da, DemoError, Refused, tiyn};

type Phone = Purse<SoftwareElement>;

fn step_error(e: impl std::fmt::Display) -> DemoError {
    DemoError::Step(e.to_string())
}

fn unhex<T: borsh::BorshDeserialize + borsh::BorshSerialize>(text: &str) -> Result<T, DemoError> {
    let bytes = hex::decode(text).map_err(step_error)?;
    encoding::decode(&bytes, 8 * 1024).map_err(step_error)
}

/// What a wallet fetches when online: bank keys and revocation lists.
async fn trust(api: &Api) -> Result<Trust, DemoError> {
    let view = api.client().offline_trust().await?;
    let mut banks = Vec::new();
    for b in &view.banks {
        let id = ParticipantId::new(b.bank.clone()).map_err(step_error)?;
        banks.push((id, b.key.parse::<PublicKey>().map_err(step_error)?));
    }
    let mut trust = Trust::new(banks)?;
    for r in &view.revocations {
        trust.apply_revocations(&unhex(&r.list)?)?;
    }
    Ok(trust)
}

/// A phone certified by `bank`.
async fn phone(bank: &Api, seed: [u8; 32], trust: Trust) -> Result<Phone, DemoError> {
    let element = SoftwareElement::from_seed(seed);
    phone_over(bank, element, trust).await
}

async fn phone_over(bank: &Api, element: SoftwareElement, trust: Trust) -> Result<Phone, DemoError> {
    let request = CertifyDevice { device_key: element.device_key().to_string(), next_counter: element.next_counter() };
    let view = bank.client().offline_certify(&request).await?;
    let certificate: Certificate = unhex(&view.certificate)?;
    Ok(Purse::new(element, certificate, trust)?)
}

async fn fund(bank: &Api, da: &Da, device: PublicKey, tenge: u64) -> Result<Load, DemoError> {
    let request =
        FundPurse { from: da.id.clone(), device_key: device.to_string(), amount_tiyn: tiyn(tenge), paid_tx: None };
    let view = bank.client().offline_fund(&request, None).await?;
    unhex(&view.load)
}

/// Deposits every chain; the outcomes in order.
async fn deposit(bank: &Api, chains: &[Chain]) -> Result<Vec<String>, DemoError> {
    let mut out = Vec::new();
    for chain in chains {
        let view = bank.client().offline_deposit(&DepositChain { chain: hex::encode(chain.encode()) }, None).await?;
        if view.outcome == "double_spend" {
            return Err(DemoError::DoubleSpend {
                culprit: view.culprit.unwrap_or_default(),
                proof_bytes: view.proof.map_or(0, |p| p.len() / 2),
                loss_tiyn: view.loss_tiyn,
            });
        }
        out.push(view.outcome);
    }
    Ok(out)
}

fn da_key(da: &Da) -> Result<PublicKey, DemoError> {
    da.address.parse().map_err(step_error)
}

fn pay(from: &mut Phone, to: &Phone, tenge: u64, c: &Ctx) -> Result<Vec<Vec<u8>>, DemoError> {
    Ok(from.pay(to.device_key(), Amount::from_tiyn(tiyn(tenge)), c.now())?)
}

pub(crate) async fn offline_p2p(c: &mut Ctx) -> Result<(), DemoError> {
    let alia = c.open_da("Alia", "STB1", HolderKind::Individual, 3_000).await?;
    let bob = c.open_da("Bob", "STB2", HolderKind::Individual, 0).await?;
    let carol = c.open_da("Carol", "STB1", HolderKind::Individual, 1_000).await?;
    let shop = c.open_da("Shop", "STB2", HolderKind::LegalEntity, 0).await?;
    let (stb1, stb2, nbk) = (c.api("STB1")?, c.api("STB2")?, c.api(ids::NBK)?);
    let supply_before = nbk.client().supply().await?.supply_tiyn;
    let wallets = trust(&stb1).await?;
    let mut alia_phone = phone(&stb1, [81; 32], wallets.clone()).await?;
    let mut bob_phone = phone(&stb2, [82; 32], wallets.clone()).await?;

    let (b, a, key) = (stb1.clone(), alia.clone(), alia_phone.device_key());
    let load = c
        .step("Alia funds her phone's offline purse with 1 000 DT: her DA pays STB1's offline reserve (an ordinary payment)", &["Alia"], || async move { fund(&b, &a, key, 1_000).await })
        .await;
    if let Some(load) = load {
        alia_phone.add_load(load)?;
    }

    // The network is cut from here until the deposits.
    let now = c.now();
    let sent = pay(&mut alia_phone, &bob_phone, 400, c);
    let received = match &sent {
        Ok(p) => {
            p.iter().try_for_each(|m| bob_phone.receive(m, now).map(|_| ())).map(|_| p.clone()).map_err(DemoError::from)
        }
        Err(e) => Err(DemoError::Step(e.to_string())),
    };
    let size = received.as_ref().map(|p| p.iter().map(Vec::len).max().unwrap_or(0)).unwrap_or(0);
    c.check(
        "Offline: Alia's phone pays Bob's phone 400 DT; Bob's phone verifies it alone (bank certificate, counter, chain)",
        &[],
        received.is_ok() && bob_phone.balance() == Amount::from_tiyn(tiyn(400)),
        format!("{:?}, Bob's offline balance {}", received.as_ref().err(), bob_phone.balance()),
    )
    .await;
    c.check(
        &format!("The payment is {size} bytes: it fits one QR code or NFC exchange (≤ {MAX_PAYMENT_BYTES} bytes)"),
        &[],
        size > 0 && size <= MAX_PAYMENT_BYTES,
        format!("{size} bytes"),
    )
    .await;
    let back = pay(&mut bob_phone, &alia_phone, 100, c)
        .and_then(|p| p.iter().try_for_each(|m| alia_phone.receive(m, now).map(|_| ())).map_err(DemoError::from));
    let hop2 = alia_phone.balance();
    c.check(
        "Offline: Bob's phone pays 100 DT back to Alia's (a chain of two hops)",
        &[],
        back.is_ok() && hop2 == Amount::from_tiyn(tiyn(700)),
        format!("{back:?}, Alia's offline balance {hop2}"),
    )
    .await;

    // Reconnection.
    let alia_chains = alia_phone.deposit(da_key(&alia)?, c.now())?;
    let bob_chains = bob_phone.deposit(da_key(&bob)?, c.now())?;
    let (s1, s2) = (stb1.clone(), stb2.clone());
    c.step("Reconnected: each deposits at its own bank; STB1's offline reserve settles into Alia's DA (STB1) and Bob's DA (STB2)", &["Alia", "Bob"], || async move {
        let mut outcomes = deposit(&s1, &alia_chains).await?;
        outcomes.extend(deposit(&s2, &bob_chains).await?);
        Ok(outcomes)
    })
    .await;
    let (alia_da, bob_da) = (c.balance("Alia", "standard").await, c.balance("Bob", "standard").await);
    c.check(
        "Balances settle: Alia 3 000 − 1 000 + 700 = 2 700 DT, Bob 300 DT",
        &["Alia", "Bob"],
        alia_da == tiyn(2_700) && bob_da == tiyn(300),
        format!("Alia {alia_da} tiyn, Bob {bob_da} tiyn"),
    )
    .await;

    // A cloned purse: Carol's secure element copied (key and counter).
    let element = SoftwareElement::from_seed([83; 32]);
    let twin_element = element.extract_clone();
    let culprit = element.device_key();
    let mut carol_phone = phone_over(&stb1, element, wallets.clone()).await?;
    let mut twin = phone_over(&stb1, twin_element, wallets.clone()).await?;
    let mut shop_phone = phone(&stb2, [84; 32], wallets.clone()).await?;
    let mut bob_second = phone(&stb2, [85; 32], wallets.clone()).await?;
    let (b, a) = (stb1.clone(), carol.clone());
    let load = c
        .step(
            "Carol funds her phone's purse with 500 DT; a copy of her secure element holds the same load",
            &["Carol"],
            || async move { fund(&b, &a, culprit, 500).await },
        )
        .await;
    if let Some(load) = load {
        carol_phone.add_load(load.clone())?;
        twin.add_load(load)?;
    }
    let now = c.now();
    let spent_twice = pay(&mut carol_phone, &shop_phone, 400, c)
        .and_then(|p| p.iter().try_for_each(|m| shop_phone.receive(m, now).map(|_| ())).map_err(DemoError::from))
        .and_then(|_| pay(&mut twin, &bob_second, 400, c))
        .and_then(|p| p.iter().try_for_each(|m| bob_second.receive(m, now).map(|_| ())).map_err(DemoError::from));
    c.check(
        "Offline, each receiver alone cannot tell: the shop and Bob both accept 400 DT of the same value",
        &[],
        spent_twice.is_ok(),
        format!("{spent_twice:?}"),
    )
    .await;
    let shop_chains = shop_phone.deposit(da_key(&shop)?, c.now())?;
    let bob_chains = bob_second.deposit(da_key(&bob)?, c.now())?;
    let s2 = stb2.clone();
    c.step("The shop deposits first: settled from STB1's reserve", &["Shop"], || async move {
        deposit(&s2, &shop_chains).await
    })
    .await;
    let s2 = stb2.clone();
    c.refused(
        "Bob's deposit of the same value is a double spend: refused, the two signed transfers name Carol's device",
        &["Bob"],
        Refused::DoubleSpendBy(culprit),
        || async move { deposit(&s2, &bob_chains).await },
    )
    .await;
    let after = trust(&stb2).await?;
    c.check(
        "The device is revoked: STB1's signed revocation list, fetched by wallets online, names it",
        &[],
        after.is_revoked(&culprit),
        format!("{culprit} not on the list"),
    )
    .await;
    let mut wary = phone(&stb2, [86; 32], after).await?;
    let late = pay(&mut carol_phone, &wary, 50, c)?;
    let now = c.now();
    c.refused(
        "A wallet that fetched the list refuses the revoked device offline",
        &[],
        Refused::Offline(OfflineCode::Revoked),
        || async move { late.iter().try_for_each(|m| wary.receive(m, now).map(|_| ())).map_err(DemoError::from) },
    )
    .await;
    let supply_after = nbk.client().supply().await?.supply_tiyn;
    c.check(
        "Supply conserved: funding and settlement moved DT, created none; the loss (400 DT) stays within Carol's device limits and falls on STB1, which certified it",
        &[],
        supply_after == supply_before,
        format!("{supply_before:?} → {supply_after:?}"),
    )
    .await;
    Ok(())
}
