//! Property tests of the offline protocol: random payments among devices,
//! one of them possibly cloned, then every device deposits. Value is never
//! created (a load settles at most its amount), nothing is lost among honest
//! devices (all of it settles), and a double spend is always detected and
//! attributed to the cloned device by a proof anyone can check.
#![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_offline::{Decision, DepositBook, Purse, SecureElement, SoftwareElement};
use dtenge_types::Amount;
use proptest::prelude::*;
use support::{Bank, at, limits, trust};

const DEVICES: usize = 5;
const LOADED: u64 = 60_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn value_is_conserved_and_every_double_spend_is_attributed(
        payments in proptest::collection::vec((0..=DEVICES, 0..DEVICES, 1u64..30_000), 0..40),
        clone_active in any::<bool>(),
        order in proptest::collection::vec(any::<u32>(), 0..64),
    ) {
        let stb1 = Bank::new("STB1", 1);
        let t = trust(&[&stb1]);
        let mut purses: Vec<Purse<SoftwareElement>> = Vec::new();
        let mut twin = None;
        for d in 0..DEVICES {
            let element = SoftwareElement::from_seed([50 + d as u8; 32]);
            if d == 0 {
                twin = Some(element.extract_clone());
            }
            let certificate = stb1.certify(element.device_key(), 0, limits(), at(0));
            purses.push(Purse::new(element, certificate, t.clone()).unwrap());
        }
        let victim = purses[0].device_key();
        let twin_element = twin.unwrap();
        let certificate = stb1.certify(twin_element.device_key(), 0, limits(), at(0));
        purses.push(Purse::new(twin_element, certificate, t.clone()).unwrap());
        let load = stb1.load(victim, LOADED, at(0));
        purses[0].add_load(load.clone()).unwrap();
        if clone_active {
            purses[DEVICES].add_load(load.clone()).unwrap();
        }

        let mut now = 1_000;
        for (from, to, amount) in payments {
            now += 1_000;
            if from == to || (from == DEVICES && !clone_active) {
                continue;
            }
            let payee = purses[to].device_key();
            let Ok(sent) = purses[from].pay(payee, Amount::from_tiyn(amount), at(now)) else { continue };
            for bytes in sent {
                let received = purses[to].receive(&bytes, at(now));
                // Honest value always fits (the balance limit is above the
                // load); two copies of it may not.
                prop_assert!(received.is_ok() || clone_active, "{:?}", received);
            }
        }

        // Reconnection: every device deposits what it holds, in a random order.
        let mut deposits = Vec::new();
        for (i, purse) in purses.iter_mut().enumerate() {
            let da = SecretKey::from_seed([150 + i as u8; 32]).public_key();
            deposits.extend(purse.deposit(da, at(now + 10_000)).unwrap());
        }
        let mut keyed: Vec<(u32, _)> =
            deposits.into_iter().enumerate().map(|(i, c)| (order.get(i).copied().unwrap_or(0), c)).collect();
        keyed.sort_by_key(|(k, _)| *k);

        let mut book = DepositBook::new(stb1.id.clone());
        let (mut settled, mut conflicts) = (0u64, 0usize);
        for (_, chain) in &keyed {
            let decision = book.decide(chain, &t, at(now + 20_000)).unwrap();
            match &decision {
                Decision::Settle { amount, .. } => settled += amount.tiyn(),
                Decision::Already { .. } => prop_assert!(false, "every deposit is a different chain"),
                Decision::Conflict(c) => {
                    conflicts += 1;
                    prop_assert_eq!(c.proof.device(), victim, "only the cloned device can pay twice");
                    prop_assert!(c.proof.check(&t).is_ok());
                }
            }
            book.apply(chain, &decision);
        }
        prop_assert!(settled <= LOADED, "the reserve settles at most what was loaded: {}", settled);
        prop_assert_eq!(book.settled(&load.id()), settled);
        if clone_active {
            prop_assert!(conflicts >= 1, "two copies of one load deposited and no conflict");
            prop_assert!(book.revoked().contains(&victim));
        } else {
            prop_assert_eq!(conflicts, 0);
            prop_assert_eq!(settled, LOADED, "honest devices: every tiyn loaded settles");
        }
    }
}
