//! The audit log detects tampering: a flipped byte, a deleted record, two
//! records swapped, a cut tail, a forged record with the chain re-hashed
//! after it; and it survives a crash's torn last record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dtenge_net::Envelope;
use dtenge_platform::PlatformSpec;
use dtenge_platform::audit_log::{
    AuditLog, KIND_ENVELOPE, Record, VerifyError, encode_record, split_records, verify_dir,
};
use dtenge_platform::spec::Keys;
use dtenge_types::{ParticipantId, Timestamp};

fn id(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn envelope(data: &Path, nonce: u64) -> Envelope {
    let key = Keys::at(data).load("STB1").unwrap();
    Envelope::seal(id("STB1"), id("NOTARY"), Timestamp(1_000 + nonce), nonce, format!("claim {nonce}").into(), &key)
}

/// A platform directory with a NOTARY log of 60 envelopes, sealed every 10.
fn written() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    PlatformSpec::load_or_create(data, &BTreeMap::new()).unwrap();
    let key = Arc::new(Keys::at(data).load("NOTARY").unwrap());
    let log = AuditLog::open(&data.join("audit"), "NOTARY", id("NOTARY"), key).unwrap();
    for nonce in 0..60 {
        dtenge_net::Evidence::keep(log.as_ref(), &envelope(data, nonce));
        if nonce % 10 == 9 {
            log.seal().unwrap();
        }
    }
    drop(log);
    let file = data.join("audit").join("NOTARY.log");
    (dir, file)
}

fn read_records(file: &Path) -> (Vec<u8>, Vec<Record>) {
    let bytes = std::fs::read(file).unwrap();
    let (records, torn) = split_records(&bytes);
    assert_eq!(torn, None);
    (bytes, records)
}

fn span(bytes: &[u8], records: &[Record], i: usize) -> std::ops::Range<usize> {
    let start = records[i].offset as usize;
    let end = records.get(i + 1).map_or(bytes.len(), |r| r.offset as usize);
    start..end
}

/// The first envelope record at or after `from`.
fn envelope_at(records: &[Record], from: usize) -> usize {
    (from..records.len()).find(|&i| records[i].kind == KIND_ENVELOPE).unwrap()
}

fn tampering(data: &Path) -> (u64, String) {
    match verify_dir(data) {
        Err(VerifyError::Tampered(t)) => (t.index, t.problem),
        other => panic!("tampering not detected: {other:?}"),
    }
}

/// Re-encodes records from `from` on so that the chain (index, prev, hash) is consistent again.
fn rechain(records: &[Record], from: usize, prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let mut prev = if from == 0 { [0u8; 32] } else { records[from - 1].hash };
    for (i, r) in records.iter().enumerate().skip(from) {
        let (bytes, hash) = encode_record(r.kind, i as u64, &prev, &r.payload);
        out.extend_from_slice(&bytes);
        prev = hash;
    }
    out
}

#[test]
fn an_untouched_log_verifies() {
    let (dir, _) = written();
    let logs = verify_dir(dir.path()).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].envelopes, 60);
    assert!(logs[0].heads >= 6);
    assert_eq!(logs[0].unsealed, 0);
}

#[test]
fn a_flipped_byte_is_detected() {
    let (dir, file) = written();
    let (mut bytes, records) = read_records(&file);
    let i = envelope_at(&records, 5);
    let at = records[i].offset as usize + 60;
    bytes[at] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let (index, problem) = tampering(dir.path());
    assert_eq!(index, i as u64, "{problem}");
    assert!(problem.contains("altered"), "{problem}");
}

#[test]
fn a_deleted_record_is_detected() {
    let (dir, file) = written();
    let (mut bytes, records) = read_records(&file);
    let i = envelope_at(&records, 7);
    bytes.drain(span(&bytes, &records, i));
    std::fs::write(&file, bytes).unwrap();
    let (index, problem) = tampering(dir.path());
    assert_eq!(index, i as u64, "{problem}");
}

#[test]
fn two_reordered_records_are_detected() {
    let (dir, file) = written();
    let (bytes, records) = read_records(&file);
    let i = envelope_at(&records, 3);
    assert_eq!(records[i + 1].kind, KIND_ENVELOPE);
    let (a, b) = (span(&bytes, &records, i), span(&bytes, &records, i + 1));
    let mut out = bytes[..a.start].to_vec();
    out.extend_from_slice(&bytes[b.clone()]);
    out.extend_from_slice(&bytes[a]);
    out.extend_from_slice(&bytes[b.end..]);
    std::fs::write(&file, out).unwrap();
    let (index, problem) = tampering(dir.path());
    assert_eq!(index, i as u64, "{problem}");
}

#[test]
fn a_truncated_tail_is_detected() {
    let (dir, file) = written();
    let (bytes, records) = read_records(&file);
    // Cut cleanly at a record boundary, even right after an earlier signed head.
    let head = (0..records.len() - 5).rev().find(|&i| records[i].kind != KIND_ENVELOPE).unwrap();
    std::fs::write(&file, &bytes[..records[head + 1].offset as usize]).unwrap();
    let (_, problem) = tampering(dir.path());
    assert!(problem.contains("truncated"), "{problem}");
}

#[test]
fn a_forged_record_with_the_chain_rehashed_is_detected() {
    // A validly signed but different envelope in place of record i, every later hash recomputed.
    let (dir, file) = written();
    let (bytes, mut records) = read_records(&file);
    let i = envelope_at(&records, 12);
    records[i].payload = envelope(dir.path(), 999).encode();
    std::fs::write(&file, rechain(&records, i, &bytes[..records[i].offset as usize])).unwrap();
    let (index, problem) = tampering(dir.path());
    assert!(index > i as u64, "caught by the next signed head: {problem}");
    assert!(problem.contains("rewritten"), "{problem}");

    // A forged envelope (bad signature), chain rehashed: caught at the record itself.
    let (dir, file) = written();
    let (bytes, mut records) = read_records(&file);
    let i = envelope_at(&records, 12);
    let mut forged = envelope(dir.path(), 12);
    forged.body = b"pay the forger".to_vec();
    records[i].payload = forged.encode();
    std::fs::write(&file, rechain(&records, i, &bytes[..records[i].offset as usize])).unwrap();
    let (index, problem) = tampering(dir.path());
    assert_eq!(index, i as u64);
    assert!(problem.contains("forged"), "{problem}");
}

#[test]
fn a_crash_torn_record_is_cut_off_on_reopen_and_the_chain_continues() {
    let (dir, file) = written();
    let data = dir.path();
    let mut bytes = std::fs::read(&file).unwrap();
    let (partial, _) = encode_record(KIND_ENVELOPE, 9_999, &[0; 32], &envelope(data, 77).encode());
    bytes.extend_from_slice(&partial[..partial.len() / 2]);
    std::fs::write(&file, bytes).unwrap();
    let logs = verify_dir(data).unwrap();
    assert!(logs[0].torn_bytes > 0);

    let key = Arc::new(Keys::at(data).load("NOTARY").unwrap());
    let log = AuditLog::open(&data.join("audit"), "NOTARY", id("NOTARY"), key).unwrap();
    dtenge_net::Evidence::keep(log.as_ref(), &envelope(data, 100));
    log.seal().unwrap();
    drop(log);
    let logs = verify_dir(data).unwrap();
    assert_eq!((logs[0].envelopes, logs[0].torn_bytes, logs[0].unsealed), (61, 0, 0));
}

#[test]
fn a_platform_keeps_an_audit_log_of_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let p = dtenge_platform::Platform::open(
            dir.path(),
            Arc::new(dtenge_net::SystemClock),
            dtenge_platform::PlatformOptions { durable: false },
        )
        .await
        .unwrap();
        p.close().unwrap();
    });
    let logs = verify_dir(dir.path()).unwrap();
    assert!(logs[0].envelopes > 0, "the bootstrap's messages are in the log");
}
