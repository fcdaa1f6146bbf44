//! Decodes arbitrary bytes as an offline payment chain (from a QR code, NFC
//! or a deposit body) or a revocation list.
//!
//! Properties: decoding never panics; what decodes re-encodes to exactly the
//! bytes received; offline verification and a bank's deposit decision never
//! panic and give the same answer twice. The bank key is the one the seed
//! corpus was made with (`crates/dtenge-offline/tests/fuzz_corpus.rs`), so
//! seeds get past the signature checks into the chain rules.
#![no_main]

use dtenge_crypto::SecretKey;
use dtenge_offline::{DepositBook, Purpose, Trust, decode_chain, decode_revocations, verify_chain};
use dtenge_types::{ParticipantId, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bank = ParticipantId::new("STB1").unwrap_or_else(|_| unreachable!("valid participant id"));
    let trust = Trust::new([(bank.clone(), SecretKey::from_seed([1; 32]).public_key())])
        .unwrap_or_else(|_| unreachable!("one bank"));
    if let Ok(list) = decode_revocations(data) {
        assert_eq!(dtenge_types::encoding::encode(&list), data, "accepted bytes are not canonical");
    }
    let Ok(chain) = decode_chain(data) else {
        return;
    };
    assert_eq!(chain.encode(), data, "accepted bytes are not the canonical encoding");
    let now = Timestamp(1_800_000_010_000);
    let receiver = chain.hops.as_slice().last().map(|h| h.payee).unwrap_or(chain.load.device);
    for purpose in [Purpose::Payment { receiver }, Purpose::Deposit] {
        let first = verify_chain(&chain, &trust, purpose, now);
        assert_eq!(first, verify_chain(&chain, &trust, purpose, now), "verification is not deterministic");
    }
    let book = DepositBook::new(bank);
    let decided = book.decide(&chain, &trust, now);
    assert_eq!(decided, book.decide(&chain, &trust, now), "the deposit decision is not deterministic");
});
