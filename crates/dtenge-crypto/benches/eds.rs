//! EDS throughput: signing, single verification and batch verification of
//! 64, 256 and 1 024 signatures by as many keys (the payee's node verifies a
//! delivered batch's transactions this way; see docs/performance.md for the
//! floor these figures put under the full path).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dtenge_crypto::{Ed25519, PublicKey, SecretKey, Signature, Verifier, VerifyItem};
use std::hint::black_box;

const BATCHES: [usize; 3] = [64, 256, 1024];

/// A distinct seed per key (more keys than one byte can number).
fn seed(i: usize) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    seed
}

fn eds(c: &mut Criterion) {
    let key = SecretKey::from_seed([7u8; 32]);
    let message = [0xabu8; 128];
    let signature = key.sign(&message);
    let public = key.public_key();

    let mut group = c.benchmark_group("eds");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| b.iter(|| key.sign(black_box(&message))));
    group.bench_function("verify_single", |b| {
        b.iter(|| Ed25519.verify(black_box(&public), black_box(&message), black_box(&signature)).unwrap())
    });

    for batch in BATCHES {
        let keys: Vec<SecretKey> = (0..batch).map(|i| SecretKey::from_seed(seed(i))).collect();
        let messages: Vec<Vec<u8>> = (0..batch).map(|i| format!("tx {i}").into_bytes()).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let items: Vec<VerifyItem<'_>> = (0..batch)
            .map(|i| VerifyItem { public_key: &publics[i], message: &messages[i], signature: &signatures[i] })
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("verify_batch_{batch}"), |b| {
            b.iter(|| Ed25519.verify_batch(black_box(&items)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, eds);
criterion_main!(benches);
