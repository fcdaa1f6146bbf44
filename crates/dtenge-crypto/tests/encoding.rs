//! Hex, serde and borsh encodings; secret hygiene of `Debug`.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use borsh::BorshDeserialize;
use dtenge_crypto::{CryptoError, Digest, PublicKey, SecretKey, Signature, hash};

#[test]
fn digest_hex_display_debug_and_from_str_round_trip() {
    let d = hash(b"test", &[b"x"]);
    let s = d.to_string();
    assert_eq!(s.len(), 64);
    assert_eq!(s, s.to_lowercase());
    assert_eq!(format!("{d:?}"), s);
    assert_eq!(Digest::from_str(&s).unwrap(), d);
    assert_eq!(Digest::from_str(&s.to_uppercase()).unwrap(), d);
    assert_eq!(d.short(), s[..8]);
    assert_eq!(Digest::ZERO.to_string(), "0".repeat(64));
}

#[test]
fn public_key_and_signature_hex_round_trip() {
    let sk = SecretKey::from_seed([1; 32]);
    let pk = sk.public_key();
    let sig = sk.sign(b"m");
    assert_eq!(PublicKey::from_str(&pk.to_string()).unwrap(), pk);
    assert_eq!(format!("{pk:?}"), pk.to_string());
    assert_eq!(sig.to_string().len(), 128);
    assert_eq!(Signature::from_str(&sig.to_string()).unwrap(), sig);
    assert_eq!(format!("{sig:?}"), sig.to_string());
}

#[test]
fn from_str_rejects_bad_hex_and_wrong_length() {
    assert!(matches!(Digest::from_str(&"zz".repeat(32)), Err(CryptoError::Hex(_))));
    assert!(matches!(Digest::from_str("abc"), Err(CryptoError::Hex(_))));
    assert_eq!(Digest::from_str("abcd"), Err(CryptoError::Length { expected: 32, actual: 2 }));
    assert_eq!(Signature::from_str(&"00".repeat(32)), Err(CryptoError::Length { expected: 64, actual: 32 }));
    assert!(matches!(PublicKey::from_str(&"é".repeat(32)), Err(CryptoError::Hex(_))));
}

#[test]
fn serde_json_uses_hex_strings_and_round_trips() {
    let sk = SecretKey::from_seed([3; 32]);
    let pk = sk.public_key();
    let sig = sk.sign(b"m");
    let d = hash(b"d", &[]);

    let pk_json = serde_json::to_string(&pk).unwrap();
    assert_eq!(pk_json, format!("\"{pk}\""));
    assert_eq!(serde_json::from_str::<PublicKey>(&pk_json).unwrap(), pk);

    let sig_json = serde_json::to_string(&sig).unwrap();
    assert_eq!(sig_json, format!("\"{sig}\""));
    assert_eq!(serde_json::from_str::<Signature>(&sig_json).unwrap(), sig);

    let d_json = serde_json::to_string(&d).unwrap();
    assert_eq!(d_json, format!("\"{d}\""));
    assert_eq!(serde_json::from_str::<Digest>(&d_json).unwrap(), d);

    let sk_json = serde_json::to_string(&sk).unwrap();
    assert_eq!(sk_json, format!("\"{}\"", "03".repeat(32)));
    assert_eq!(serde_json::from_str::<SecretKey>(&sk_json).unwrap(), sk);

    assert!(serde_json::from_str::<PublicKey>("\"abcd\"").is_err());
    assert!(serde_json::from_str::<PublicKey>("12").is_err());
}

#[test]
fn borsh_uses_raw_bytes_and_round_trips() {
    let sk = SecretKey::from_seed([4; 32]);
    let pk = sk.public_key();
    let sig = sk.sign(b"m");
    let d = hash(b"d", &[b"1", b"2"]);

    let bytes = borsh::to_vec(&pk).unwrap();
    assert_eq!(bytes, pk.0);
    assert_eq!(PublicKey::try_from_slice(&bytes).unwrap(), pk);

    let bytes = borsh::to_vec(&sig).unwrap();
    assert_eq!(bytes, sig.0);
    assert_eq!(Signature::try_from_slice(&bytes).unwrap(), sig);

    let bytes = borsh::to_vec(&d).unwrap();
    assert_eq!(bytes, d.0);
    assert_eq!(Digest::try_from_slice(&bytes).unwrap(), d);

    let bytes = borsh::to_vec(&sk).unwrap();
    assert_eq!(bytes, [4u8; 32]);
    let back = SecretKey::try_from_slice(&bytes).unwrap();
    assert_eq!(back, sk);
    assert_eq!(back.public_key(), pk);

    assert!(PublicKey::try_from_slice(&[0u8; 31]).is_err());
    assert!(SecretKey::try_from_slice(&[0u8; 33]).is_err());
}

#[test]
fn any_32_bytes_decode_as_public_key_even_if_invalid() {
    let mut invalid = [0u8; 32];
    invalid[0] = 2;
    let hex_str = hex::encode(invalid);
    let pk = PublicKey::from_str(&hex_str).unwrap();
    assert_eq!(pk.check(), Err(CryptoError::InvalidPublicKey));
    assert_eq!(borsh::from_slice::<PublicKey>(&invalid).unwrap(), pk);
}

#[test]
fn secret_key_debug_shows_public_key_not_seed() {
    let seed = [0x5au8; 32];
    let sk = SecretKey::from_seed(seed);
    let dbg = format!("{sk:?}");
    assert_eq!(dbg, format!("SecretKey({})", sk.public_key()));
    assert!(!dbg.contains(&hex::encode(seed)));
    assert!(!dbg.to_lowercase().contains("5a5a5a5a"));
    let dbg_alt = format!("{sk:#?}");
    assert!(!dbg_alt.contains(&hex::encode(seed)));
}

#[test]
fn batch_error_display_counts_failures_and_names_first_index() {
    let e = dtenge_crypto::BatchError { failed: vec![3, 7] };
    assert_eq!(e.to_string(), "2 of the signatures in the batch do not verify (first at index 3)");
    // Never panics, even when constructed by hand with no indices.
    let empty = dtenge_crypto::BatchError { failed: vec![] };
    assert!(!empty.to_string().is_empty());
}
