//! The seed corpus of the `decode_offline_chain` fuzz target
//! (`fuzz/corpus/decode_offline_chain/`): real payments of one to three hops,
//! a deposit and a revocation list, signed with the key the target trusts.
//! Checks that every checked-in seed still decodes; with
//! `DTENGE_WRITE_FUZZ_CORPUS=1` it first writes them afresh.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use dtenge_crypto::SecretKey;
use dtenge_offline::{decode_chain, decode_revocations};
use dtenge_types::{Amount, encoding};
use support::{Bank, at, purse};

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let stb1 = Bank::new("STB1", 1);
    let banks = [&stb1];
    let (mut a, mut b, mut c, mut d) =
        (purse(&stb1, 61, &banks), purse(&stb1, 62, &banks), purse(&stb1, 63, &banks), purse(&stb1, 64, &banks));
    a.add_load(stb1.load(a.device_key(), 50_000, at(0))).unwrap();
    let one = a.pay(b.device_key(), Amount::from_tiyn(30_000), at(1_000)).unwrap().remove(0);
    b.receive(&one, at(1_000)).unwrap();
    let two = b.pay(c.device_key(), Amount::from_tiyn(20_000), at(2_000)).unwrap().remove(0);
    c.receive(&two, at(2_000)).unwrap();
    let three = c.pay(d.device_key(), Amount::from_tiyn(10_000), at(3_000)).unwrap().remove(0);
    d.receive(&three, at(3_000)).unwrap();
    let deposit = d.deposit(SecretKey::from_seed([65; 32]).public_key(), at(4_000)).unwrap().remove(0).encode();
    let revocations = encoding::encode(&stb1.revocations(1, vec![a.device_key()]));
    vec![
        ("payment-1-hop", one),
        ("payment-2-hops", two),
        ("payment-3-hops", three),
        ("deposit-4-hops", deposit),
        ("revocations", revocations),
    ]
}

#[test]
fn every_seed_decodes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode_offline_chain");
    if std::env::var_os("DTENGE_WRITE_FUZZ_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            decode_chain(&bytes).is_ok() || decode_revocations(&bytes).is_ok(),
            "a seed no longer decodes: regenerate with DTENGE_WRITE_FUZZ_CORPUS=1 cargo test -p dtenge-offline --test fuzz_corpus"
        );
        count += 1;
    }
    assert!(
        count >= 5,
        "seed corpus missing: DTENGE_WRITE_FUZZ_CORPUS=1 cargo test -p dtenge-offline --test fuzz_corpus"
    );
}
