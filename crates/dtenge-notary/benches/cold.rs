//! The notary's cold lookup path: a commitment spent long ago (only in the
//! fjall cold store) and a fresh output the filter rules out, each decided as
//! one claim; and the filter alone. 100 000 spends are moved to the cold
//! store first (generations of 10 000 entries).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dtenge_notary::*;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{NOW, batch, c, claim, decide_and_apply};

const N: u64 = 100_000;

/// Decides and applies `claims`; every one must commit.
fn apply(state: &mut NotaryState, claims: Vec<TxClaim>, may_issue: bool) {
    let (decisions, _) = decide_and_apply(state, batch(claims), may_issue);
    assert!(decisions.iter().all(|d| matches!(d, Decision::Commit(_))));
}

fn cold_lookups(cr: &mut Criterion) {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let config = NotaryConfig {
        generation_entries: 10_000,
        generation_ms: u64::MAX,
        filter_bytes: 4 * 1024 * 1024,
        ..NotaryConfig::default()
    };
    let backend = Arc::new(FjallCold::open(dir.path()).unwrap());
    let cold = Arc::new(ColdStore::open(backend, config.filter_bytes, WriteMode::Inline).unwrap());
    let mut state = NotaryState::with_cold(cold, config);
    for chunk in (0..N).collect::<Vec<_>>().chunks(4096) {
        let claims = chunk.chunks(64).enumerate().map(|(i, outs)| claim(10_000_000 + chunk[0] + i as u64, &[], outs));
        apply(&mut state, claims.collect(), true);
        let spends = chunk.iter().map(|n| claim(*n, &[*n], &[N + n])).collect();
        apply(&mut state, spends, false);
    }
    state.flush_to_cold().unwrap();
    assert_eq!(state.hot_counts().spent, 0);

    // Batches are signed beforehand: the bench measures `decide` only.
    let prepared = |f: &dyn Fn(u64) -> TxClaim| -> Vec<NotariseBatch> {
        (0..1024u64).map(|k| batch(vec![f((k * 7919) % N)])).collect()
    };
    let conflicts = prepared(&|i| claim(20_000_000 + i, &[i], &[3 * N + i]));
    let retries = prepared(&|i| claim(i, &[i], &[N + i]));
    let fresh = prepared(&|i| claim(30_000_000 + i, &[N + i], &[4 * N + i]));
    let mut group = cr.benchmark_group("notary_cold");
    let mut i = 0usize;
    group.bench_function("conflict_spent_long_ago", |b| {
        b.iter(|| {
            i = (i + 1) % conflicts.len();
            let d = state.decide(&conflicts[i], NOW, false).unwrap();
            assert!(matches!(d[0], Decision::Reject(NotaryRejection::Conflict { .. })));
        })
    });
    group.bench_function("retry_committed_long_ago", |b| {
        b.iter(|| {
            i = (i + 1) % retries.len();
            let d = state.decide(&retries[i], NOW, false).unwrap();
            assert!(matches!(d[0], Decision::AlreadyCommitted(_)));
        })
    });
    group.bench_function("fresh_spend_outputs_ruled_out_by_filter", |b| {
        b.iter(|| {
            i = (i + 1) % fresh.len();
            let d = state.decide(&fresh[i], NOW, false).unwrap();
            assert!(matches!(d[0], Decision::Commit(_)));
        })
    });
    let mut n = 0u64;
    let filter = state.cold().filter();
    group.bench_function("filter_negative", |b| {
        b.iter(|| {
            n += 1;
            filter.may_contain(c(5 * N + n).0.as_bytes())
        })
    });
    group.finish();
}

criterion_group!(benches, cold_lookups);
criterion_main!(benches);
