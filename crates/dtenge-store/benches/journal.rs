//! Durable appends per second of the file journal (fdatasync per batch) with
//! 1, 64 and 1024 records per batch: a batch is appended, then every record
//! is waited for, so each iteration costs one group commit. Records are 128
//! bytes (a few commitments). The journal lives in a temp dir under /tmp —
//! the figures are as good as that filesystem's fdatasync.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dtenge_store::{Journal, JournalConfig};

const RECORD_BYTES: usize = 128;

fn durable_appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_appends");
    for batch in [1usize, 64, 1024] {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let (journal, _) = Journal::open(JournalConfig::new(dir.path())).unwrap();
        let record = vec![0x5A; RECORD_BYTES];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |bencher, &batch| {
            bencher.iter(|| {
                let pendings: Vec<_> = (0..batch).map(|_| journal.append(record.clone()).unwrap()).collect();
                for pending in pendings {
                    pending.wait().unwrap();
                }
            });
        });
        let stats = journal.stats();
        journal.close().unwrap();
        println!(
            "batch {batch}: {} records in {} fsyncs ({:.1} records per fsync)",
            stats.records_written,
            stats.batches,
            stats.records_written as f64 / stats.batches.max(1) as f64
        );
    }
    group.finish();
}

criterion_group!(benches, durable_appends);
criterion_main!(benches);
