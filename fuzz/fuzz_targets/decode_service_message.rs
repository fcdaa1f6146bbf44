//! Decodes arbitrary bytes as each borsh message body a service accepts
//! from another participant (the body of an envelope): notary, oracle, node
//! and directory requests and answers, notarisation batches and receipts.
//! The first byte picks the message type.
//!
//! Properties: decoding never panics or allocates without bound; whatever
//! decodes re-encodes to bytes that decode to the same encoding again
//! (stable); signature checks on decoded batches and receipts refuse or
//! accept without panicking.
#![no_main]

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Ed25519, SecretKey};
use dtenge_node::directory::{DirectoryAnswer, DirectoryRequest};
use dtenge_node::service::{NodeAnswer, NodeRequest};
use dtenge_notary::{NotariseBatch, NotaryAnswer, NotaryRequest, Receipt, TxClaim};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use libfuzzer_sys::fuzz_target;

fn stable<T: BorshSerialize + BorshDeserialize>(bytes: &[u8]) -> Option<T> {
    let value = borsh::from_slice::<T>(bytes).ok()?;
    let encoded = borsh::to_vec(&value).unwrap_or_else(|e| panic!("a decoded message does not encode: {e}"));
    let again = borsh::from_slice::<T>(&encoded).unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}"));
    assert_eq!(borsh::to_vec(&again).ok(), Some(encoded), "encoding is not stable");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let key = SecretKey::from_seed([2; 32]).public_key();
    match which % 10 {
        0 => {
            if let Some(NotaryRequest::Notarise(batch)) = stable::<NotaryRequest>(bytes) {
                let _ = batch.verify(&key, &Ed25519);
                let _ = batch.signing_digest();
            }
        }
        1 => {
            let _ = stable::<NotaryAnswer>(bytes);
        }
        2 => {
            let _ = stable::<OracleRequest>(bytes);
        }
        3 => {
            let _ = stable::<OracleAnswer>(bytes);
        }
        4 => {
            let _ = stable::<NodeRequest>(bytes);
        }
        5 => {
            let _ = stable::<NodeAnswer>(bytes);
        }
        6 => {
            let _ = stable::<DirectoryRequest>(bytes);
        }
        7 => {
            let _ = stable::<DirectoryAnswer>(bytes);
        }
        8 => {
            if let Some(batch) = stable::<NotariseBatch>(bytes) {
                let _ = batch.verify(&key, &Ed25519);
                for claim in batch.claims.iter() {
                    let _ = (claim.inputs_digest(), claim.outputs_digest());
                }
            }
        }
        _ => {
            // A receipt checked against a claim, both from the input: a u16 (LE)
            // length of the receipt, the receipt, the claim.
            let Some((len, rest)) = bytes.split_first_chunk::<2>() else {
                return;
            };
            let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
            if let (Some(receipt), Some(claim)) = (stable::<Receipt>(&rest[..len]), stable::<TxClaim>(&rest[len..])) {
                let _ = receipt.verify(&key, &claim, &Ed25519);
            }
        }
    }
});
