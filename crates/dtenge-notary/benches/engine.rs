//! The notary's critical section: `decide` and `apply` of a batch of 1 024
//! claims (2 inputs, 2 outputs each) over a live set of 2 000 000 unspent
//! commitments, with history going to a fjall cold store in the background
//! as in the service. Digests and the cold-filter probe are made before the
//! clock starts, as the service makes them before taking its lock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dtenge_notary::engine::digests;
use dtenge_notary::*;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{NOW, batch, claim};

const LIVE: u64 = 2_000_000;
const CLAIMS: u64 = 1024;

/// Decides and applies `b` (everything must commit); returns the time of
/// the part the service runs under its lock.
fn decide_apply(state: &mut NotaryState, b: NotariseBatch, may_issue: bool) -> Duration {
    let digests = digests(&b);
    let probe = ColdProbe::new(state.cold(), &b);
    let start = Instant::now();
    let decisions = state.decide_digested(&b, &digests, Some(&probe), NOW, may_issue).unwrap();
    let committed: Vec<u32> = (0..decisions.len() as u32).collect();
    let record = NotaryRecord { batch: b, committed, committed_at: NOW };
    state.apply_decided(&record, &decisions);
    let took = start.elapsed();
    assert!(decisions.iter().all(|d| matches!(d, Decision::Commit(_))), "every claim commits");
    took
}

fn critical_section(cr: &mut Criterion) {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let config = NotaryConfig::default();
    let backend = Arc::new(FjallCold::open(dir.path()).unwrap());
    let cold = Arc::new(ColdStore::open(backend, config.filter_bytes, WriteMode::Background).unwrap());
    let mut state = NotaryState::with_cold(cold, config);
    let mut tx = 0u64;
    let issue: Vec<u64> = (0..LIVE).collect();
    for chunk in issue.chunks(64 * 1024) {
        let claims = chunk.chunks(64).map(|outs| {
            tx += 1;
            claim(tx, &[], outs)
        });
        decide_apply(&mut state, batch(claims.collect()), true);
    }
    // Unspent ids, oldest first: each claim spends the two oldest and
    // creates two new ones, so the live set keeps its size.
    let mut unspent: VecDeque<u64> = (0..LIVE).collect();
    let mut next = LIVE;
    let mut group = cr.benchmark_group("notary_engine");
    group.throughput(Throughput::Elements(CLAIMS * 2));
    group.bench_function("decide_apply_1024_claims_2_in_2_out_over_2M_unspent", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let claims = (0..CLAIMS)
                    .map(|_| {
                        let inputs = [unspent.pop_front().unwrap(), unspent.pop_front().unwrap()];
                        let outputs = [next, next + 1];
                        next += 2;
                        unspent.extend(outputs);
                        tx += 1;
                        claim(tx, &inputs, &outputs)
                    })
                    .collect();
                total += decide_apply(&mut state, batch(claims), false);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, critical_section);
criterion_main!(benches);
