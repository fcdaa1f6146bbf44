//! The file backend: segment files, snapshots, and recovery on open.
//!
//! The byte layout is in [`crate::format`]. This module decides what a
//! directory's contents mean:
//!
//! ```text
//! open ─► LOCK (flock, one process per directory) ─► delete *.tmp
//!      ─► newest snapshot: must decode, else Corrupt
//!      ─► segments in first_seq order: header, then frames with seqs
//!         first_seq, first_seq+1, … and each segment starting where the
//!         previous one ended
//!            bad frame, nothing valid after it, in the LAST segment
//!               → unacknowledged torn tail: truncate, warn, report bytes
//!            bad frame anywhere else, or valid data after it,
//!            a seq mismatch, a bad header, a gap
//!               → Corrupt { file, offset, reason }
//! ```
//!
//! Invariants that make this classification sound:
//! - a segment is created complete (header written to `*.tmp`, synced,
//!   renamed, directory synced) and only after the previous segment was
//!   synced, so damage in a non-last segment is always damage to
//!   acknowledged data;
//! - a snapshot is written the same way and only once its seq is durable in
//!   the log; segments are deleted only after the snapshot covering them is
//!   durable, and the active (last) segment is never deleted;
//! - so the log always starts at or before `snapshot + 1` and ends at or
//!   after the snapshot; anything else is reported as a gap.
//!
//! The active segment is written in place, not appended to: zeros are
//! written ahead of the records in steps of [`RESERVE_BYTES`] (made durable
//! by the next sync), so most syncs write data blocks only and leave the
//! file's size, and so its inode, alone — on ext4 that is one disk write
//! less per group commit. An all-zero remainder after the last frame is that
//! reserve, not a torn tail: no valid frame is all zeros (seqs start at 1).
//! Sealed segments and a cleanly closed active segment are trimmed to their
//! records, so only a crashed journal has a reserve on disk.
//!
//! Limitation: a bit flip in the very last record of the log is
//! indistinguishable from a torn write of an unacknowledged record and is
//! dropped as a tail (as in every single-copy log; replicas cover it).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::format::{
    SEGMENT_HEADER, decode_frame, decode_snapshot, encode_frame, find_valid_frame_after, parse_segment_file_name,
    parse_snapshot_file_name, segment_file_name, snapshot_file_name, snapshot_header,
};
use crate::journal::{Journal, JournalConfig, Limits, LogWriter, Recovery, SnapshotWriter, SyncMode};

/// Bytes buffered before they are written out (without syncing).
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// Zeros written ahead of the active segment's records at a time.
pub const RESERVE_BYTES: u64 = 1024 * 1024;
/// The lock file that keeps a second process out of an open journal.
const LOCK_FILE_NAME: &str = "LOCK";
const TMP_SUFFIX: &str = ".tmp";

struct Segment {
    first_seq: u64,
    path: PathBuf,
}

/// What a directory listing found.
#[derive(Default)]
struct Listing {
    segments: Vec<Segment>,
    snapshots: Vec<(u64, PathBuf)>,
    /// `*.tmp` files: creations a crash interrupted.
    half_written: Vec<PathBuf>,
}

/// Opens the file journal in `config.dir`; see [`Journal::open`].
pub(crate) fn open(config: JournalConfig) -> Result<(Journal, Recovery), StoreError> {
    let dir = config.dir.clone();
    let created = !dir.exists();
    fs::create_dir_all(&dir).map_err(|source| StoreError::io(&dir, source))?;
    if created && let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        // The new directory's own entry must survive a power loss too.
        sync_dir(parent, config.sync)?;
    }
    let lock = lock_dir(&dir)?;
    let listing = list_dir(&dir)?;
    for tmp in &listing.half_written {
        fs::remove_file(tmp).map_err(|source| StoreError::io(tmp, source))?;
    }

    let snapshot = load_snapshot(&listing.snapshots)?;
    let snapshot_seq = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
    let scan = scan_segments(&listing.segments, snapshot_seq, config.sync)?;
    check_reaches_snapshot(&listing.segments, &scan, snapshot_seq)?;

    let log = match listing.segments.last() {
        Some(last) => {
            let file = OpenOptions::new().write(true).open(&last.path).map_err(|e| StoreError::io(&last.path, e))?;
            FileLog {
                reserved_to: scan.active_len,
                dir: dir.clone(),
                sync: config.sync,
                segment_bytes: config.segment_bytes,
                segments: listing.segments,
                file,
                file_bytes: scan.active_bytes,
                records_in_file: scan.active_records,
                buffer: Vec::new(),
                _lock: lock,
            }
        }
        None => FileLog::create(&dir, config.sync, config.segment_bytes, scan.next_seq, lock)?,
    };

    let last_seq = scan.next_seq - 1;
    let recovery = Recovery { snapshot, records: scan.records, truncated_tail_bytes: scan.truncated_bytes };
    let snapshots = FileSnapshots { dir, sync: config.sync };
    let journal = Journal::start(Box::new(log), Box::new(snapshots), last_seq, snapshot_seq, Limits::of(&config))?;
    Ok((journal, recovery))
}

fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::io(&path, source))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::io(
            &path,
            io::Error::new(io::ErrorKind::WouldBlock, "the journal is already open (by this or another process)"),
        )),
        Err(TryLockError::Error(source)) => Err(StoreError::io(&path, source)),
    }
}

/// Lists segments and snapshots in order, and half-written `*.tmp` files.
fn list_dir(dir: &Path) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    let entries = fs::read_dir(dir).map_err(|source| StoreError::io(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::io(dir, source))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if name.ends_with(TMP_SUFFIX) {
            listing.half_written.push(path);
        } else if let Some(first_seq) = parse_segment_file_name(&name) {
            if first_seq == 0 {
                return Err(StoreError::corrupt(path, 0, "segment named for seq 0; sequence numbers start at 1"));
            }
            listing.segments.push(Segment { first_seq, path });
        } else if let Some(seq) = parse_snapshot_file_name(&name) {
            listing.snapshots.push((seq, path));
        }
    }
    listing.segments.sort_by_key(|segment| segment.first_seq);
    listing.snapshots.sort_by_key(|(seq, _)| *seq);
    Ok(listing)
}

/// Reads the newest snapshot; deletes older ones left by an interrupted
/// replacement. An unreadable newest snapshot is never skipped.
fn load_snapshot(snapshots: &[(u64, PathBuf)]) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let Some(((named_seq, path), older)) = snapshots.split_last() else { return Ok(None) };
    let bytes = fs::read(path).map_err(|source| StoreError::io(path, source))?;
    let (seq, state) = decode_snapshot(&bytes).map_err(|(offset, reason)| StoreError::corrupt(path, offset, reason))?;
    if seq != *named_seq {
        return Err(StoreError::corrupt(path, 8, format!("snapshot holds seq {seq} but its name says {named_seq}")));
    }
    let state = state.to_vec();
    for (_, old) in older {
        fs::remove_file(old).map_err(|source| StoreError::io(old, source))?;
    }
    Ok(Some((seq, state)))
}

/// What the segments hold.
struct Scan {
    /// Records with seq above the snapshot.
    records: Vec<(u64, Vec<u8>)>,
    /// The seq the next append gets.
    next_seq: u64,
    truncated_bytes: u64,
    /// Bytes of the last segment's records (header included).
    active_bytes: u64,
    /// Length of the last segment's file: its records and any zero reserve.
    active_len: u64,
    /// Records in the last segment.
    active_records: u64,
}

fn scan_segments(segments: &[Segment], snapshot_seq: u64, sync: SyncMode) -> Result<Scan, StoreError> {
    let mut scan = Scan {
        records: Vec::new(),
        next_seq: snapshot_seq + 1,
        truncated_bytes: 0,
        active_bytes: 0,
        active_len: 0,
        active_records: 0,
    };
    for (index, segment) in segments.iter().enumerate() {
        if index > 0 && segment.first_seq != scan.next_seq {
            return Err(StoreError::corrupt(
                &segment.path,
                0,
                format!(
                    "sequence gap: the previous segment ends before seq {}, this one starts at seq {}",
                    scan.next_seq, segment.first_seq
                ),
            ));
        }
        let is_last = index + 1 == segments.len();
        let (records_in_segment, bytes, len) = scan_segment(segment, is_last, snapshot_seq, sync, &mut scan)?;
        scan.active_records = records_in_segment;
        scan.active_bytes = bytes;
        scan.active_len = len;
    }
    Ok(scan)
}

/// Reads one segment into `scan`; returns its record count, the bytes of its
/// records (header included) and the file's final length.
fn scan_segment(
    segment: &Segment,
    is_last: bool,
    snapshot_seq: u64,
    sync: SyncMode,
    scan: &mut Scan,
) -> Result<(u64, u64, u64), StoreError> {
    let path = &segment.path;
    let bytes = fs::read(path).map_err(|source| StoreError::io(path, source))?;
    if bytes.len() < SEGMENT_HEADER.len() || bytes[..SEGMENT_HEADER.len()] != SEGMENT_HEADER {
        return Err(StoreError::corrupt(
            path,
            0,
            "bad segment header: not a dtenge journal segment of a known version",
        ));
    }
    let mut offset = SEGMENT_HEADER.len();
    let mut next_seq = segment.first_seq;
    let mut records = 0;
    let mut len = bytes.len() as u64;
    while offset < bytes.len() {
        if is_last && is_reserve(&bytes[offset..]) {
            break;
        }
        match decode_frame(&bytes[offset..]) {
            Ok(frame) if frame.seq == next_seq => {
                if frame.seq > snapshot_seq {
                    scan.records.push((frame.seq, frame.payload.to_vec()));
                }
                offset += frame.frame_bytes;
                next_seq += 1;
                records += 1;
            }
            Ok(frame) => {
                return Err(StoreError::corrupt(
                    path,
                    offset as u64,
                    format!("misplaced record: expected seq {next_seq}, found seq {}", frame.seq),
                ));
            }
            Err(error) => {
                if !is_last {
                    return Err(StoreError::corrupt(
                        path,
                        offset as u64,
                        format!("{error}; later segments hold acknowledged records"),
                    ));
                }
                if let Some((valid_at, valid_seq)) = find_valid_frame_after(&bytes, offset, next_seq - 1) {
                    return Err(StoreError::corrupt(
                        path,
                        offset as u64,
                        format!("{error}; a valid record (seq {valid_seq}) follows at offset {valid_at}"),
                    ));
                }
                // What was torn, without the zero reserve after it.
                let cut = bytes[offset..].iter().rposition(|b| *b != 0).map_or(0, |last| last as u64 + 1);
                truncate(path, offset as u64, sync)?;
                len = offset as u64;
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    bytes = cut,
                    %error,
                    "dropped an unacknowledged torn tail of the journal"
                );
                scan.truncated_bytes += cut;
                break;
            }
        }
    }
    scan.next_seq = next_seq;
    Ok((records, offset as u64, len))
}

/// Whether the rest of a segment is unused reserve (all zeros).
fn is_reserve(rest: &[u8]) -> bool {
    rest.iter().all(|b| *b == 0)
}

/// The log must start at or before `snapshot + 1` and reach the snapshot.
fn check_reaches_snapshot(segments: &[Segment], scan: &Scan, snapshot_seq: u64) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else { return Ok(()) };
    if first.first_seq > snapshot_seq + 1 {
        return Err(StoreError::corrupt(
            &first.path,
            0,
            format!(
                "sequence gap: records up to {snapshot_seq} are covered (by a snapshot or none), \
                 but the journal starts at seq {}",
                first.first_seq
            ),
        ));
    }
    if scan.next_seq <= snapshot_seq {
        return Err(StoreError::corrupt(
            &last.path,
            scan.active_bytes,
            format!("the journal ends before seq {} but the snapshot covers up to seq {snapshot_seq}", scan.next_seq),
        ));
    }
    Ok(())
}

fn truncate(path: &Path, length: u64, sync: SyncMode) -> Result<(), StoreError> {
    let file = OpenOptions::new().write(true).open(path).map_err(|source| StoreError::io(path, source))?;
    file.set_len(length).map_err(|source| StoreError::io(path, source))?;
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(|source| StoreError::io(path, source))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path, sync: SyncMode) -> Result<(), StoreError> {
    if sync == SyncMode::Fsync {
        File::open(dir).and_then(|handle| handle.sync_all()).map_err(|source| StoreError::io(dir, source))?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Replaces the file at `path` with `bytes`, atomically and durably: after
/// a crash the file holds either its old content or `bytes`, never a mix.
/// The parent directory must exist.
///
/// # Errors
/// Writing, syncing or renaming failed.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_atomically(dir, path, &[bytes], SyncMode::Fsync).map(drop)
}

/// Creates `path` atomically with `parts` as its content: write to a temp
/// file, sync it, rename, sync the directory.
fn create_atomically(dir: &Path, path: &Path, parts: &[&[u8]], sync: SyncMode) -> Result<File, StoreError> {
    let tmp = tmp_path(path);
    let mut file = File::create(&tmp).map_err(|source| StoreError::io(&tmp, source))?;
    for part in parts {
        file.write_all(part).map_err(|source| StoreError::io(&tmp, source))?;
    }
    if sync == SyncMode::Fsync {
        file.sync_all().map_err(|source| StoreError::io(&tmp, source))?;
    }
    fs::rename(&tmp, path).map_err(|source| StoreError::io(path, source))?;
    sync_dir(dir, sync)?;
    Ok(file)
}

/// The segments of an open file journal; the last one is written to.
struct FileLog {
    dir: PathBuf,
    sync: SyncMode,
    segment_bytes: u64,
    /// In `first_seq` order; never empty once open.
    segments: Vec<Segment>,
    /// The last segment, positioned at its end.
    file: File,
    /// Bytes of the last segment written to the file (header included).
    file_bytes: u64,
    /// The last segment's file length: `file_bytes` and the zeros after them.
    reserved_to: u64,
    records_in_file: u64,
    /// Frames not yet written to `file`.
    buffer: Vec<u8>,
    _lock: File,
}

impl FileLog {
    /// A journal with one empty segment starting at `first_seq`.
    fn create(dir: &Path, sync: SyncMode, segment_bytes: u64, first_seq: u64, lock: File) -> Result<Self, StoreError> {
        let (segment, file) = Self::create_segment(dir, sync, first_seq)?;
        Ok(FileLog {
            dir: dir.to_path_buf(),
            sync,
            segment_bytes,
            segments: vec![segment],
            file,
            file_bytes: SEGMENT_HEADER.len() as u64,
            reserved_to: SEGMENT_HEADER.len() as u64,
            records_in_file: 0,
            buffer: Vec::new(),
            _lock: lock,
        })
    }

    fn create_segment(dir: &Path, sync: SyncMode, first_seq: u64) -> Result<(Segment, File), StoreError> {
        let path = dir.join(segment_file_name(first_seq));
        let file = create_atomically(dir, &path, &[&SEGMENT_HEADER], sync)?;
        Ok((Segment { first_seq, path }, file))
    }

    fn active_path(&self) -> &Path {
        self.segments.last().map_or(self.dir.as_path(), |segment| segment.path.as_path())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let end = self.file_bytes + self.buffer.len() as u64;
        if end > self.reserved_to {
            self.reserve(end)?;
        }
        if let Err(source) = self.file.write_all_at(&self.buffer, self.file_bytes) {
            return Err(StoreError::io(self.active_path(), source));
        }
        self.file_bytes = end;
        self.buffer.clear();
        Ok(())
    }

    /// Writes zeros from the end of the file to past `end`, in whole
    /// [`RESERVE_BYTES`] steps; the next sync makes them durable with the
    /// records.
    fn reserve(&mut self, end: u64) -> Result<(), StoreError> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let target = end.div_ceil(RESERVE_BYTES).saturating_mul(RESERVE_BYTES);
        while self.reserved_to < target {
            let step = (target - self.reserved_to).min(ZEROS.len() as u64) as usize;
            if let Err(source) = self.file.write_all_at(&ZEROS[..step], self.reserved_to) {
                return Err(StoreError::io(self.active_path(), source));
            }
            self.reserved_to += step as u64;
        }
        Ok(())
    }

    /// Cuts the active segment's unused reserve off (synced).
    fn trim(&mut self) -> Result<(), StoreError> {
        if self.reserved_to > self.file_bytes {
            let trimmed = self.file.set_len(self.file_bytes).and_then(|()| match self.sync {
                SyncMode::Fsync => self.file.sync_all(),
                _ => Ok(()),
            });
            if let Err(source) = trimmed {
                return Err(StoreError::io(self.active_path(), source));
            }
            self.reserved_to = self.file_bytes;
        }
        Ok(())
    }

    /// Seals the active segment (synced, reserve cut off) and starts one at `first_seq`.
    fn rotate(&mut self, first_seq: u64) -> Result<(), StoreError> {
        self.sync()?;
        self.trim()?;
        let (segment, file) = Self::create_segment(&self.dir, self.sync, first_seq)?;
        self.segments.push(segment);
        self.file = file;
        self.file_bytes = SEGMENT_HEADER.len() as u64;
        self.reserved_to = self.file_bytes;
        self.records_in_file = 0;
        Ok(())
    }
}

impl Drop for FileLog {
    /// A closed journal leaves no reserve behind: its active segment ends
    /// with its last record, like a sealed one. (A failure here changes
    /// nothing that was written; the next open reads the zeros as reserve.)
    fn drop(&mut self) {
        if self.buffer.is_empty()
            && let Err(error) = self.trim()
        {
            tracing::warn!(%error, "could not trim the journal's reserve on close");
        }
    }
}

impl LogWriter for FileLog {
    fn append(&mut self, seq: u64, payload: &[u8]) -> Result<u64, StoreError> {
        let frame_bytes = (crate::format::FRAME_HEADER_BYTES + payload.len()) as u64;
        let pending_bytes = self.file_bytes + self.buffer.len() as u64;
        if self.records_in_file > 0 && pending_bytes + frame_bytes > self.segment_bytes {
            self.rotate(seq)?;
        }
        encode_frame(seq, payload, &mut self.buffer);
        self.records_in_file += 1;
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(frame_bytes)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        if self.sync == SyncMode::Fsync {
            let started = std::time::Instant::now();
            if let Err(source) = self.file.sync_data() {
                return Err(StoreError::io(self.active_path(), source));
            }
            metrics::histogram!("dtenge_journal_sync_seconds").record(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn prune(&mut self, covered_seq: u64) -> Result<(), StoreError> {
        let mut removed = false;
        while self.segments.len() >= 2 && self.segments[1].first_seq <= covered_seq + 1 {
            let oldest = self.segments.remove(0);
            fs::remove_file(&oldest.path).map_err(|source| StoreError::io(&oldest.path, source))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir, self.sync)?;
        }
        Ok(())
    }
}

/// Writes snapshots into the journal directory.
struct FileSnapshots {
    dir: PathBuf,
    sync: SyncMode,
}

impl SnapshotWriter for FileSnapshots {
    fn write(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(snapshot_file_name(seq));
        let header = snapshot_header(seq, state);
        drop(create_atomically(&self.dir, &path, &[&header, state], self.sync)?);
        // Only the newest valid snapshot is kept; an older one left behind by
        // a crash here is deleted on the next open.
        let listing = list_dir(&self.dir)?;
        for (old_seq, old_path) in listing.snapshots {
            if old_seq < seq {
                fs::remove_file(&old_path).map_err(|source| StoreError::io(&old_path, source))?;
            }
        }
        Ok(())
    }
}
