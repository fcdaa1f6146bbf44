//! What the file journal makes of damaged directories: an unacknowledged
//! torn tail is cut off and reported; damage to acknowledged data is
//! `StoreError::Corrupt` naming the file and offset, never a silent loss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use dtenge_store::format::{FRAME_HEADER_BYTES, SEGMENT_HEADER, decode_frame, segment_file_name, snapshot_file_name};
use dtenge_store::{Journal, JournalConfig, RESERVE_BYTES, Recovery, StoreError};
use tempfile::TempDir;

fn config(dir: &Path, segment_bytes: u64) -> JournalConfig {
    let mut config = JournalConfig::new(dir);
    config.segment_bytes = segment_bytes;
    config
}

fn open(dir: &Path, segment_bytes: u64) -> Result<(Journal, Recovery), StoreError> {
    Journal::open(config(dir, segment_bytes))
}

/// Writes `records` durably into a new journal and closes it.
fn write_journal(dir: &Path, segment_bytes: u64, records: &[Vec<u8>]) {
    let (journal, _) = open(dir, segment_bytes).unwrap();
    let pendings: Vec<_> = records.iter().map(|record| journal.append(record.clone()).unwrap()).collect();
    for pending in pendings {
        pending.wait().unwrap();
    }
    journal.close().unwrap();
}

fn three_records() -> Vec<Vec<u8>> {
    vec![vec![0x11; 10], vec![0x22; 20], vec![0x33; 30]]
}

fn numbered(records: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    records.iter().enumerate().map(|(index, record)| (index as u64 + 1, record.clone())).collect()
}

fn segment(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(segment_file_name(first_seq))
}

/// Byte offsets of every frame in a segment file.
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_HEADER.len();
    while offset < bytes.len() {
        offsets.push(offset);
        offset += decode_frame(&bytes[offset..]).unwrap().frame_bytes;
    }
    offsets
}

fn expect_corrupt(result: Result<(Journal, Recovery), StoreError>) -> (PathBuf, u64, String) {
    match result {
        Err(StoreError::Corrupt { file, offset, reason }) => (file, offset, reason),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok((_, recovery)) => panic!("expected Corrupt, the journal opened with {recovery:?}"),
    }
}

#[test]
fn torn_tail_at_every_offset_inside_the_last_record_drops_only_that_record() {
    let dir = TempDir::new().unwrap();
    let records = three_records();
    write_journal(dir.path(), u64::MAX, &records);
    let path = segment(dir.path(), 1);
    let original = fs::read(&path).unwrap();
    let last_start = *frame_offsets(&original).last().unwrap();
    for cut in last_start..original.len() {
        fs::write(&path, &original[..cut]).unwrap();
        let (journal, recovery) = open(dir.path(), u64::MAX).unwrap();
        assert_eq!(recovery.records, numbered(&records[..2]), "cut at {cut}: earlier records intact");
        // Zeros at the very end of a torn tail cannot be told from the unused
        // reserve, so they are not counted (see `Recovery::truncated_tail_bytes`).
        let torn = original[last_start..cut].iter().rposition(|b| *b != 0).map_or(0, |last| last + 1);
        assert_eq!(recovery.truncated_tail_bytes, torn as u64, "cut at {cut}: torn bytes reported");
        assert_eq!(journal.last_seq(), 2, "cut at {cut}: the torn record's seq is reused");
        journal.close().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), last_start as u64, "cut at {cut}: the tail is cut off");
    }
}

#[test]
fn after_a_torn_tail_new_records_continue_the_sequence() {
    let dir = TempDir::new().unwrap();
    write_journal(dir.path(), u64::MAX, &three_records());
    let path = segment(dir.path(), 1);
    let length = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(length - 5).unwrap();
    let (journal, recovery) = open(dir.path(), u64::MAX).unwrap();
    assert_eq!(recovery.truncated_tail_bytes, 30 + FRAME_HEADER_BYTES as u64 - 5);
    assert_eq!(journal.append(b"again".to_vec()).unwrap().wait().unwrap(), 3);
    journal.close().unwrap();
    let (_, recovery) = open(dir.path(), u64::MAX).unwrap();
    let mut expected = numbered(&three_records()[..2]);
    expected.push((3, b"again".to_vec()));
    assert_eq!(recovery.records, expected);
    assert_eq!(recovery.truncated_tail_bytes, 0);
}

#[test]
fn bit_flip_anywhere_in_the_last_record_drops_it_as_a_torn_tail() {
    let dir = TempDir::new().unwrap();
    let records = three_records();
    write_journal(dir.path(), u64::MAX, &records);
    let path = segment(dir.path(), 1);
    let original = fs::read(&path).unwrap();
    let last_start = *frame_offsets(&original).last().unwrap();
    for position in last_start..original.len() {
        let mut damaged = original.clone();
        damaged[position] ^= 1 << (position % 8);
        fs::write(&path, &damaged).unwrap();
        let (journal, recovery) = open(dir.path(), u64::MAX).unwrap();
        assert_eq!(recovery.records, numbered(&records[..2]), "flip at {position}");
        assert_eq!(recovery.truncated_tail_bytes, (original.len() - last_start) as u64, "flip at {position}");
        journal.close().unwrap();
    }
}

#[test]
fn bit_flip_anywhere_in_an_earlier_record_is_corrupt_naming_file_and_offset() {
    let dir = TempDir::new().unwrap();
    write_journal(dir.path(), u64::MAX, &three_records());
    let path = segment(dir.path(), 1);
    let original = fs::read(&path).unwrap();
    let offsets = frame_offsets(&original);
    for (record, window) in offsets.windows(2).enumerate() {
        for position in window[0]..window[1] {
            let mut damaged = original.clone();
            damaged[position] ^= 1 << (position % 8);
            fs::write(&path, &damaged).unwrap();
            let (file, offset, reason) = expect_corrupt(open(dir.path(), u64::MAX));
            assert_eq!(file, path, "record {record}, flip at {position}: the segment is named");
            assert_eq!(offset, window[0] as u64, "record {record}, flip at {position}: the record's offset");
            assert!(reason.contains("follows"), "record {record}, flip at {position}: {reason}");
        }
    }
    // The damaged file is left as it was for an operator to inspect.
    assert_eq!(fs::metadata(&path).unwrap().len(), original.len() as u64);
}

#[test]
fn corrupt_error_message_names_file_and_offset() {
    let dir = TempDir::new().unwrap();
    write_journal(dir.path(), u64::MAX, &three_records());
    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes[SEGMENT_HEADER.len() + FRAME_HEADER_BYTES] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    let message = open(dir.path(), u64::MAX).err().unwrap().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("offset 8"), "{message}");
    assert!(message.contains("restore"), "the message says what to do: {message}");
}

#[test]
fn damage_in_the_last_record_of_an_earlier_segment_is_corrupt() {
    let dir = TempDir::new().unwrap();
    // One record per segment.
    write_journal(dir.path(), 1, &three_records());
    let path = segment(dir.path(), 2);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let (file, offset, reason) = expect_corrupt(open(dir.path(), 1));
    assert_eq!((file, offset), (path, SEGMENT_HEADER.len() as u64));
    assert!(reason.contains("later segments"), "{reason}");
}

#[test]
fn torn_tail_of_the_last_segment_is_dropped_when_segments_rotate() {
    let dir = TempDir::new().unwrap();
    let records = three_records();
    write_journal(dir.path(), 1, &records);
    let path = segment(dir.path(), 3);
    let length = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(length - 1).unwrap();
    let (journal, recovery) = open(dir.path(), 1).unwrap();
    assert_eq!(recovery.records, numbered(&records[..2]));
    assert_eq!(recovery.truncated_tail_bytes, length - 1 - SEGMENT_HEADER.len() as u64);
    assert_eq!(journal.append(b"x".to_vec()).unwrap().wait().unwrap(), 3, "seq 3 is written to the emptied segment");
}

#[test]
fn deleted_middle_segment_is_a_sequence_gap() {
    let dir = TempDir::new().unwrap();
    let records: Vec<Vec<u8>> = (0..5).map(|index| vec![index; 8]).collect();
    write_journal(dir.path(), 1, &records);
    fs::remove_file(segment(dir.path(), 3)).unwrap();
    let (file, offset, reason) = expect_corrupt(open(dir.path(), 1));
    assert_eq!((file, offset), (segment(dir.path(), 4), 0));
    assert!(reason.contains("sequence gap"), "{reason}");
}

#[test]
fn deleted_first_segment_without_a_snapshot_is_a_sequence_gap() {
    let dir = TempDir::new().unwrap();
    write_journal(dir.path(), 1, &three_records());
    fs::remove_file(segment(dir.path(), 1)).unwrap();
    let (file, _, reason) = expect_corrupt(open(dir.path(), 1));
    assert_eq!(file, segment(dir.path(), 2));
    assert!(reason.contains("sequence gap"), "{reason}");
}

#[test]
fn garbage_after_a_valid_tail_is_cut_off_as_a_torn_tail() {
    for garbage in [vec![0xFF; 3], (0..=255u8).cycle().take(1000).collect::<Vec<u8>>()] {
        let dir = TempDir::new().unwrap();
        let records = three_records();
        write_journal(dir.path(), u64::MAX, &records);
        let path = segment(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let valid_length = bytes.len() as u64;
        bytes.extend_from_slice(&garbage);
        fs::write(&path, &bytes).unwrap();
        let (journal, recovery) = open(dir.path(), u64::MAX).unwrap();
        assert_eq!(recovery.records, numbered(&records), "every record survives");
        assert_eq!(recovery.truncated_tail_bytes, garbage.len() as u64);
        journal.close().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), valid_length);
    }
}

#[test]
fn bad_segment_header_is_corrupt() {
    let dir = TempDir::new().unwrap();
    write_journal(dir.path(), u64::MAX, &three_records());
    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes[6] = 99; // an unknown format version
    fs::write(&path, &bytes).unwrap();
    let (file, offset, reason) = expect_corrupt(open(dir.path(), u64::MAX));
    assert_eq!((file, offset), (path, 0));
    assert!(reason.contains("header"), "{reason}");
}

#[test]
fn misplaced_record_with_a_valid_checksum_is_corrupt() {
    let dir = TempDir::new().unwrap();
    // Two records of the same size, then swap them: each frame is valid but
    // sits at the other's place.
    write_journal(dir.path(), u64::MAX, &[vec![1; 16], vec![2; 16], vec![3; 16]]);
    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let offsets = frame_offsets(&bytes);
    let first = bytes[offsets[0]..offsets[1]].to_vec();
    let second = bytes[offsets[1]..offsets[2]].to_vec();
    bytes[offsets[0]..offsets[1]].copy_from_slice(&second);
    bytes[offsets[1]..offsets[2]].copy_from_slice(&first);
    fs::write(&path, &bytes).unwrap();
    let (file, offset, reason) = expect_corrupt(open(dir.path(), u64::MAX));
    assert_eq!((file, offset), (path, offsets[0] as u64));
    assert!(reason.contains("expected seq 1, found seq 2"), "{reason}");
}

#[test]
fn record_of_another_journal_is_corrupt() {
    let ours = TempDir::new().unwrap();
    let theirs = TempDir::new().unwrap();
    write_journal(ours.path(), 1, &three_records());
    write_journal(theirs.path(), 1, &[vec![9; 3], vec![9; 4]]);
    // A misdirected write: their segment 2 lands in our segment 3's place.
    fs::copy(segment(theirs.path(), 2), segment(ours.path(), 3)).unwrap();
    let (file, _, reason) = expect_corrupt(open(ours.path(), 1));
    assert_eq!(file, segment(ours.path(), 3));
    assert!(reason.contains("expected seq 3, found seq 2"), "{reason}");
}

#[test]
fn corrupt_snapshot_is_corrupt_not_skipped() {
    let dir = TempDir::new().unwrap();
    let (journal, _) = open(dir.path(), u64::MAX).unwrap();
    for record in three_records() {
        journal.append(record).unwrap().wait().unwrap();
    }
    journal.snapshot(2, b"state at two").unwrap();
    journal.close().unwrap();
    let path = dir.path().join(snapshot_file_name(2));
    let original = fs::read(&path).unwrap();
    for position in 0..original.len() {
        let mut damaged = original.clone();
        damaged[position] ^= 0x10;
        fs::write(&path, &damaged).unwrap();
        let (file, _, _) = expect_corrupt(open(dir.path(), u64::MAX));
        assert_eq!(file, path, "flip at {position}");
    }
    fs::write(&path, &original[..original.len() - 1]).unwrap();
    let (file, _, reason) = expect_corrupt(open(dir.path(), u64::MAX));
    assert_eq!(file, path);
    assert!(reason.contains("declares"), "a short snapshot: {reason}");
}

#[test]
fn snapshot_deletes_the_segments_it_covers_and_older_snapshots() {
    let dir = TempDir::new().unwrap();
    let (journal, _) = open(dir.path(), 1).unwrap();
    for index in 0..10u8 {
        journal.append(vec![index; 4]).unwrap().wait().unwrap();
    }
    journal.snapshot(3, b"three").unwrap();
    journal.snapshot(6, b"six").unwrap();
    let mut names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let mut expected: Vec<String> = (7..=10).map(segment_file_name).collect();
    expected.push("LOCK".to_owned());
    expected.push(snapshot_file_name(6));
    expected.sort();
    assert_eq!(names, expected, "segments 1..=6 are covered by the snapshot at 6; only the newest snapshot stays");
    journal.close().unwrap();
    let (_, recovery) = open(dir.path(), 1).unwrap();
    assert_eq!(recovery.snapshot, Some((6, b"six".to_vec())));
    assert_eq!(recovery.records.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), vec![7, 8, 9, 10]);
}

#[test]
fn active_segment_is_kept_when_a_snapshot_covers_everything() {
    let dir = TempDir::new().unwrap();
    let (journal, _) = open(dir.path(), u64::MAX).unwrap();
    for record in three_records() {
        journal.append(record).unwrap().wait().unwrap();
    }
    journal.snapshot(3, b"all").unwrap();
    assert!(segment(dir.path(), 1).exists(), "the segment being written is never deleted");
    journal.close().unwrap();
    let (journal, recovery) = open(dir.path(), u64::MAX).unwrap();
    assert_eq!((recovery.snapshot, recovery.records), (Some((3, b"all".to_vec())), vec![]));
    assert_eq!(journal.last_seq(), 3);
}

#[test]
fn half_written_files_are_removed_on_open() {
    let dir = TempDir::new().unwrap();
    write_journal(dir.path(), u64::MAX, &three_records());
    let tmp_segment = dir.path().join(format!("{}.tmp", segment_file_name(4)));
    let tmp_snapshot = dir.path().join(format!("{}.tmp", snapshot_file_name(3)));
    fs::write(&tmp_segment, b"DTJ").unwrap();
    fs::write(&tmp_snapshot, b"half a snapshot").unwrap();
    let (_, recovery) = open(dir.path(), u64::MAX).unwrap();
    assert_eq!(recovery.records, numbered(&three_records()));
    assert!(!tmp_segment.exists() && !tmp_snapshot.exists());
}

#[test]
fn second_open_of_an_open_journal_is_refused() {
    let dir = TempDir::new().unwrap();
    let (journal, _) = open(dir.path(), u64::MAX).unwrap();
    match open(dir.path(), u64::MAX) {
        Err(StoreError::Io { path, source }) => {
            assert_eq!(path, dir.path().join("LOCK"));
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock);
        }
        Err(other) => panic!("expected the lock to be refused, got {other}"),
        Ok(_) => panic!("two journals opened on one directory"),
    }
    journal.close().unwrap();
    assert!(open(dir.path(), u64::MAX).is_ok(), "close releases the directory");
}

#[test]
fn stats_count_records_batches_and_bytes() {
    let dir = TempDir::new().unwrap();
    let (journal, _) = open(dir.path(), u64::MAX).unwrap();
    journal.append(vec![0; 10]).unwrap().wait().unwrap();
    journal.append(vec![0; 20]).unwrap().wait().unwrap();
    let stats = journal.stats();
    assert_eq!(stats.records_written, 2);
    assert_eq!(stats.batches, 2, "each waited record is its own batch");
    assert_eq!(stats.bytes_written, (30 + 2 * FRAME_HEADER_BYTES) as u64);
}

#[test]
fn zeros_after_the_last_record_are_reserve_and_left_for_the_next_records() {
    let dir = TempDir::new().unwrap();
    let records = three_records();
    write_journal(dir.path(), u64::MAX, &records);
    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let valid_length = bytes.len() as u64;
    // What a crash leaves: the records, then zeros written ahead of them.
    bytes.extend_from_slice(&vec![0u8; RESERVE_BYTES as usize]);
    fs::write(&path, &bytes).unwrap();

    let (journal, recovery) = open(dir.path(), u64::MAX).unwrap();
    assert_eq!(recovery.records, numbered(&records), "every record survives");
    assert_eq!(recovery.truncated_tail_bytes, 0, "zeros are not a torn tail");
    assert_eq!(fs::metadata(&path).unwrap().len(), valid_length + RESERVE_BYTES, "the reserve is kept while open");
    journal.append(b"written into the reserve".to_vec()).unwrap().wait().unwrap();
    journal.close().unwrap();

    let after = fs::read(&path).unwrap();
    assert_eq!(frame_offsets(&after).len(), 4, "the new record follows the old ones, and closing trims the reserve");
    let (_, recovery) = open(dir.path(), u64::MAX).unwrap();
    assert_eq!(recovery.records.len(), 4);
    assert_eq!(recovery.records[3], (4, b"written into the reserve".to_vec()));
}

#[test]
fn an_open_journal_writes_ahead_zeros_and_a_crash_copy_of_it_recovers_every_acknowledged_record() {
    let dir = TempDir::new().unwrap();
    let (journal, _) = open(dir.path(), u64::MAX).unwrap();
    let records: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i.wrapping_add(1); 100 + usize::from(i)]).collect();
    for record in &records {
        journal.append(record.clone()).unwrap().wait().unwrap();
    }
    // The segment as a crash would leave it: every acknowledged record, then reserve.
    let path = segment(dir.path(), 1);
    let on_disk = fs::read(&path).unwrap();
    assert_eq!(on_disk.len() as u64 % RESERVE_BYTES, 0, "the file is grown in whole reserve steps");
    let crashed = TempDir::new().unwrap();
    fs::write(segment(crashed.path(), 1), &on_disk).unwrap();
    journal.close().unwrap();

    let (_, recovery) = open(crashed.path(), u64::MAX).unwrap();
    assert_eq!(recovery.records, numbered(&records));
    assert_eq!(recovery.truncated_tail_bytes, 0);
    // A record torn in the reserve is cut off, and only its bytes are reported.
    let mut torn = on_disk.clone();
    // The closed journal was trimmed to its records: they end where it ends.
    let end = fs::metadata(&path).unwrap().len() as usize;
    torn[end..end + 7].copy_from_slice(&[9, 0, 0, 0, 1, 2, 3]);
    let again = TempDir::new().unwrap();
    fs::write(segment(again.path(), 1), &torn).unwrap();
    let (_, recovery) = open(again.path(), u64::MAX).unwrap();
    assert_eq!(recovery.records, numbered(&records));
    assert_eq!(recovery.truncated_tail_bytes, 7);
}
