//! Decodes arbitrary bytes as a transaction received from outside.
//!
//! Properties: decoding never panics; whatever decodes re-encodes to exactly
//! the bytes received (one encoding per value, so one id per value); the id is
//! stable; and the kernel's rules (`check`, no signature verification) never
//! panic on a decoded transaction with made-up resolved inputs, and give the
//! same answer twice.
//!
//! The platform keys below are the ones the seed corpus was made with
//! (`crates/dtenge-types/tests/decode.rs`), so attested seeds get past the
//! oracle check into the command rules.
#![no_main]

use std::sync::OnceLock;

use dtenge_crypto::{PublicKey, SecretKey, hash};
use dtenge_ledger::{Context, Params, check};
use dtenge_types::encoding::encode;
use dtenge_types::{Address, Currency, ParticipantId, Token, Transaction, decode_transaction};
use libfuzzer_sys::fuzz_target;

fn key(name: &str) -> PublicKey {
    SecretKey::from_seed(*hash(b"decode-test-key", &[name.as_bytes()]).as_bytes()).public_key()
}

struct Fixed {
    params: Params,
    default_owner: Address,
    host: ParticipantId,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let mut params = Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() };
        params.issuers.insert(Currency::DT, Address(key("nbk")));
        if let Ok(xcb) = Currency::new("XCB") {
            params.issuers.insert(xcb, Address(key("foreign-cb")));
        }
        params.oracles.insert(key("oracle"));
        params.tax_authorities.insert(Address(key("tax")));
        let host = ParticipantId::new("STB1").unwrap_or_else(|_| unreachable!("valid participant id"));
        Fixed { params, default_owner: Address(key("a")), host }
    })
}

/// Resolved inputs, one per input id: the transaction's own outputs where
/// there are enough (so marked, held and mandated shapes — including malformed
/// ones — reach the command rules), else standard tokens; owned by the
/// signers, so signature matching can pass.
fn resolve(tx: &Transaction, fixed: &Fixed) -> Vec<Token> {
    let signers: Vec<Address> = tx.signatures.iter().map(|s| Address(s.signer)).collect();
    (0..tx.body.inputs.len())
        .map(|i| {
            let owner = if signers.is_empty() { fixed.default_owner } else { signers[i % signers.len()] };
            match tx.body.outputs.get(i) {
                Some(output) => Token { owner, ..output.clone() },
                None => {
                    let amount = tx.body.outputs.first().map(|t| t.amount).unwrap_or_default();
                    Token::standard(Currency::DT, amount, owner, fixed.host.clone())
                }
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = decode_transaction(data) else {
        return;
    };
    assert_eq!(encode(&tx), data, "accepted bytes are not the canonical encoding");

    let id = tx.id();
    assert_eq!(tx.id(), id, "id is not stable");
    assert_eq!(tx.body.clone().id(), id, "id depends on more than the body's value");
    let again = decode_transaction(data).unwrap_or_else(|e| panic!("second decode failed: {e}"));
    assert_eq!(again, tx);

    let fixed = fixed();
    let inputs = resolve(&tx, fixed);
    // Inside the window when the window allows it, so the rules are reached.
    let ctx = Context { now: tx.body.window.not_before, params: &fixed.params };
    let first = check(&tx, &inputs, &ctx).map(|c| (c.id, c.signatures.len()));
    let second = check(&tx, &inputs, &ctx).map(|c| (c.id, c.signatures.len()));
    assert_eq!(first, second, "check is not deterministic");
    if let Ok((checked_id, _)) = first {
        assert_eq!(checked_id, id);
    }
    // Also with fewer resolved inputs than ids: must be a rejection, not a panic.
    if !inputs.is_empty() {
        let _ = check(&tx, &inputs[1..], &ctx);
    }
});
