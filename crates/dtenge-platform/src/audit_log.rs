//! The audit log: an append-only, hash-chained record of every signed message
//! a service sends or accepts — requests, and the signed answers that carry
//! its decisions (notary receipts and conflicts, oracle attestations and
//! refusals, nodes' acceptances and refusals of deliveries and conversions).
//!
//! ```text
//!  DATA/audit/<LOG>.log    record 0 │ record 1 │ … (one file per process: NOTARY, STB1, … or PLATFORM)
//!  DATA/audit/<LOG>.head   the newest signed head (replaced atomically after each fsync)
//!
//!  record = len u32 LE │ kind u8 │ index u64 LE │ prev [32] │ payload [len] │ hash [32]
//!  hash   = SHA-256("dtenge/audit/record/v1" ‖ index ‖ prev ‖ kind ‖ payload)
//!  kind 0 = an Envelope (borsh, signed by its sender)
//!  kind 1 = a SignedHead: {log, index, hash of record `index`, signer, signature}
//! ```
//!
//! Every [`SEAL_INTERVAL`] (and at close) the writer appends a head record
//! signed with the service key, fsyncs, then replaces the `.head` file. So:
//! changing, deleting, inserting or reordering a record breaks the chain;
//! re-hashing the chain after a forgery breaks the signed heads; cutting the
//! tail leaves the `.head` file pointing past the end. Records after the last
//! head (at most one interval, e.g. after `kill -9`) are reported as unsealed.
//!
//! Appends are buffered and written every [`FLUSH_INTERVAL`] (or 64 KiB), and
//! never wait for the fsync: the log follows the messages, it does not hold
//! them up. So `kill -9` loses at most the last ~10 ms of records, a power cut
//! those since the last seal; neither breaks the chain (a torn last record is
//! cut off on reopen). [`verify_dir`] is `dtenge audit verify`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Ed25519, Hasher, Signature, Signer, Verifier};
use dtenge_net::{Envelope, Evidence, Participants};
use dtenge_types::ParticipantId;

use crate::PlatformError;

/// How often the writer seals (fsync + signed head) when there is something new.
pub const SEAL_INTERVAL: Duration = Duration::from_millis(250);
/// How often buffered records are written to the file (also when 64 KiB are buffered).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(10);
const FLUSH_BYTES: usize = 64 * 1024;
/// Record kind: a signed envelope.
pub const KIND_ENVELOPE: u8 = 0;
/// Record kind: a signed head.
pub const KIND_HEAD: u8 = 1;
/// Largest payload the reader accepts.
const MAX_PAYLOAD: usize = dtenge_net::MAX_ENVELOPE_BYTES;
/// Bytes of a record around its payload.
const FRAME: usize = 4 + 1 + 8 + 32 + 32;

/// The hash of one record.
pub fn record_hash(index: u64, prev: &[u8; 32], kind: u8, payload: &[u8]) -> [u8; 32] {
    let mut h = Hasher::new(b"dtenge/audit/record/v1");
    h.update(&index.to_le_bytes());
    h.update(prev);
    h.update(&[kind]);
    h.update(payload);
    *h.finish().as_bytes()
}

/// A head: "record `index` of log `log` has hash `hash`", signed by `signer`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedHead {
    /// The log's name.
    pub log: String,
    /// The record covered.
    pub index: u64,
    /// Its hash (which chains every earlier one).
    pub hash: [u8; 32],
    /// Who signed.
    pub signer: ParticipantId,
    /// The signature over [`SignedHead::message`].
    pub signature: Signature,
}

impl SignedHead {
    fn message(log: &str, index: u64, hash: &[u8; 32]) -> [u8; 32] {
        let mut h = Hasher::new(b"dtenge/audit/head/v1");
        h.update(log.as_bytes());
        h.update(&index.to_le_bytes());
        h.update(hash);
        *h.finish().as_bytes()
    }

    fn sign(log: &str, index: u64, hash: [u8; 32], signer: &ParticipantId, key: &dyn Signer) -> SignedHead {
        let signature = key.sign(&Self::message(log, index, &hash));
        SignedHead { log: log.to_string(), index, hash, signer: signer.clone(), signature }
    }
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its kind.
    pub kind: u8,
    /// Its index as written.
    pub index: u64,
    /// The previous record's hash as written.
    pub prev: [u8; 32],
    /// What it holds.
    pub payload: Vec<u8>,
    /// Its hash as written.
    pub hash: [u8; 32],
    /// Where it starts in the file.
    pub offset: u64,
}

/// Encodes one record.
pub fn encode_record(kind: u8, index: u64, prev: &[u8; 32], payload: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let hash = record_hash(index, prev, kind, payload);
    let mut out = Vec::with_capacity(FRAME + payload.len());
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(prev);
    out.extend_from_slice(payload);
    out.extend_from_slice(&hash);
    (out, hash)
}

/// Splits a log file into records. Returns the records and, if the file ends
/// inside a record, the offset where that incomplete record starts.
pub fn split_records(bytes: &[u8]) -> (Vec<Record>, Option<u64>) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let offset = at as u64;
        let Some(len) = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes) else {
            return (records, Some(offset));
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_PAYLOAD || rest.len() < FRAME.saturating_add(len) {
            return (records, Some(offset));
        }
        let kind = rest[4];
        let index = u64::from_le_bytes(rest[5..13].try_into().unwrap_or([0; 8]));
        let prev: [u8; 32] = rest[13..45].try_into().unwrap_or([0; 32]);
        let payload = rest[45..45 + len].to_vec();
        let hash: [u8; 32] = rest[45 + len..FRAME + len].try_into().unwrap_or([0; 32]);
        records.push(Record { kind, index, prev, payload, hash, offset });
        at += FRAME + len;
    }
    (records, None)
}

struct Writer {
    file: File,
    /// Encoded records not yet written.
    buf: Vec<u8>,
    path: PathBuf,
    head_path: PathBuf,
    next: u64,
    prev: [u8; 32],
    /// Index of the last record covered by a signed head.
    sealed: Option<u64>,
    failed: bool,
}

/// The audit log of one process; also its [`Evidence`] sink.
pub struct AuditLog {
    name: String,
    signer_id: ParticipantId,
    key: Arc<dyn Signer>,
    writer: Mutex<Writer>,
    /// The same file, for fsync outside the writer's lock.
    sync: File,
    /// One seal at a time.
    sealing: Mutex<()>,
}

impl AuditLog {
    /// Opens (or creates) `dir/<name>.log`, continuing its chain after a
    /// torn tail (an incomplete last record from a crash is cut off). A log
    /// whose chain is broken is not appended to: the service refuses to start.
    pub fn open(
        dir: &Path,
        name: &str,
        signer_id: ParticipantId,
        key: Arc<dyn Signer>,
    ) -> Result<Arc<AuditLog>, PlatformError> {
        std::fs::create_dir_all(dir).map_err(|e| PlatformError::io(dir, e))?;
        let path = dir.join(format!("{name}.log"));
        let head_path = dir.join(format!("{name}.head"));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(PlatformError::io(&path, e)),
        };
        let (records, torn) = split_records(&bytes);
        let mut prev = [0u8; 32];
        let mut sealed = None;
        for (i, r) in records.iter().enumerate() {
            if r.index != i as u64 || r.prev != prev || record_hash(r.index, &r.prev, r.kind, &r.payload) != r.hash {
                return Err(PlatformError::Config(format!(
                    "{}: record {i} breaks the hash chain; run `dtenge audit verify` (refusing to append)",
                    path.display()
                )));
            }
            if r.kind == KIND_HEAD {
                sealed = Some(r.index);
            }
            prev = r.hash;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| PlatformError::io(&path, e))?;
        if let Some(offset) = torn {
            file.set_len(offset).map_err(|e| PlatformError::io(&path, e))?;
        }
        let sync = file.try_clone().map_err(|e| PlatformError::io(&path, e))?;
        let writer =
            Writer { file, buf: Vec::new(), path, head_path, next: records.len() as u64, prev, sealed, failed: false };
        let log = Arc::new(AuditLog {
            name: name.to_string(),
            signer_id,
            key,
            writer: Mutex::new(writer),
            sync,
            sealing: Mutex::new(()),
        });
        let weak: Weak<AuditLog> = Arc::downgrade(&log);
        std::thread::Builder::new()
            .name(format!("audit-{name}"))
            .spawn(move || {
                let every = (SEAL_INTERVAL.as_millis() / FLUSH_INTERVAL.as_millis()).max(1);
                let mut tick: u128 = 0;
                loop {
                    std::thread::sleep(FLUSH_INTERVAL);
                    let Some(log) = weak.upgrade() else { return };
                    tick = tick.wrapping_add(1);
                    let done = if tick.is_multiple_of(every) { log.seal() } else { log.flush() };
                    if let Err(e) = done {
                        tracing::error!(error = %e, "audit log cannot write");
                    }
                }
            })
            .map_err(|e| PlatformError::service("audit log", e))?;
        Ok(log)
    }

    /// The log's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of records written.
    pub fn len(&self) -> u64 {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner).next
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(w: &mut Writer, kind: u8, payload: &[u8]) -> Result<(), PlatformError> {
        if w.failed {
            return Err(PlatformError::Config(format!("{}: an earlier write failed", w.path.display())));
        }
        let (bytes, hash) = encode_record(kind, w.next, &w.prev, payload);
        w.buf.extend_from_slice(&bytes);
        w.prev = hash;
        w.next += 1;
        if w.buf.len() >= FLUSH_BYTES {
            Self::write_out(w)?;
        }
        Ok(())
    }

    fn write_out(w: &mut Writer) -> Result<(), PlatformError> {
        if w.failed {
            return Err(PlatformError::Config(format!("{}: an earlier write failed", w.path.display())));
        }
        if w.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = w.file.write_all(&w.buf) {
            // A partial write would leave a hole in the chain: stop appending.
            w.failed = true;
            return Err(PlatformError::io(&w.path, e));
        }
        w.buf.clear();
        Ok(())
    }

    /// Writes buffered records to the file (no fsync).
    pub fn flush(&self) -> Result<(), PlatformError> {
        Self::write_out(&mut self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Appends a signed head over everything written, fsyncs, then replaces
    /// the `.head` file. Does nothing when nothing is new.
    pub fn seal(&self) -> Result<(), PlatformError> {
        let _one = self.sealing.lock().unwrap_or_else(PoisonError::into_inner);
        let (payload, path, head_path) = {
            let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let last = match w.next.checked_sub(1) {
                Some(last) if w.sealed != Some(last) => last,
                _ => return Self::write_out(&mut w),
            };
            let head = SignedHead::sign(&self.name, last, w.prev, &self.signer_id, self.key.as_ref());
            let payload = borsh::to_vec(&head).map_err(|e| PlatformError::service("audit log", e))?;
            Self::append(&mut w, KIND_HEAD, &payload)?;
            w.sealed = Some(w.next.saturating_sub(1));
            Self::write_out(&mut w)?;
            (payload, w.path.clone(), w.head_path.clone())
        };
        // fsync outside the writer's lock: appends go on meanwhile.
        self.sync.sync_data().map_err(|e| PlatformError::io(&path, e))?;
        let tmp = head_path.with_extension("head.tmp");
        std::fs::write(&tmp, &payload).map_err(|e| PlatformError::io(&tmp, e))?;
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| PlatformError::io(&tmp, e))?;
        std::fs::rename(&tmp, &head_path).map_err(|e| PlatformError::io(&head_path, e))
    }
}

impl Evidence for AuditLog {
    fn keep(&self, envelope: &Envelope) {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = Self::append(&mut w, KIND_ENVELOPE, &envelope.encode()) {
            tracing::error!(error = %e, "audit log refused an envelope");
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.seal();
    }
}

/// What a verified log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// The file.
    pub file: PathBuf,
    /// Records in it.
    pub records: u64,
    /// Signed envelopes among them.
    pub envelopes: u64,
    /// Signed heads among them.
    pub heads: u64,
    /// Records after the last signed head (written since the last seal, e.g. before a crash).
    pub unsealed: u64,
    /// Bytes of an incomplete record at the end (a write cut by a crash), if any.
    pub torn_bytes: u64,
}

/// The first thing found wrong in a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: record {index}: {problem}")]
pub struct Tampering {
    /// The file.
    pub file: String,
    /// The record (its position in the file).
    pub index: u64,
    /// What is wrong.
    pub problem: String,
}

/// Checks one log: the chain, every envelope's signature against its
/// sender's key, every head's signature and hash, and the `.head` file.
pub fn verify_log(path: &Path, participants: &Participants) -> Result<LogSummary, Tampering> {
    let file = path.display().to_string();
    let fail = |index: u64, problem: String| Tampering { file: file.clone(), index, problem };
    let bytes = std::fs::read(path).map_err(|e| fail(0, format!("cannot read: {e}")))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    let (records, torn) = split_records(&bytes);
    let mut prev = [0u8; 32];
    let (mut envelopes, mut heads, mut last_head) = (0u64, 0u64, None);
    let verifier = Ed25519;
    let key_of = |id: &ParticipantId| participants.get(id).map(|p| p.public_key);
    for (i, r) in records.iter().enumerate() {
        let i = i as u64;
        if record_hash(r.index, &r.prev, r.kind, &r.payload) != r.hash {
            return Err(fail(i, "hash does not match its contents (altered)".into()));
        }
        if r.index != i {
            return Err(fail(
                i,
                format!("carries index {} (records deleted, inserted or reordered before it)", r.index),
            ));
        }
        if r.prev != prev {
            return Err(fail(i, "does not chain to the record before it (deleted, inserted or reordered)".into()));
        }
        match r.kind {
            KIND_ENVELOPE => {
                let envelope =
                    Envelope::decode(&r.payload).map_err(|e| fail(i, format!("envelope does not decode: {e}")))?;
                let key = key_of(&envelope.from)
                    .ok_or_else(|| fail(i, format!("envelope from unknown participant {}", envelope.from)))?;
                envelope.open(&key, &verifier).map_err(|_| {
                    fail(i, format!("envelope signature of {} does not verify (forged)", envelope.from))
                })?;
                envelopes += 1;
            }
            KIND_HEAD => {
                let head = check_head(&r.payload, &name, &records, participants)
                    .map_err(|problem| fail(i, format!("signed head: {problem}")))?;
                if head.index >= i {
                    return Err(fail(i, format!("signed head covers record {} which is not before it", head.index)));
                }
                heads += 1;
                last_head = Some(i);
            }
            other => return Err(fail(i, format!("unknown record kind {other}"))),
        }
        prev = r.hash;
    }
    let count = records.len() as u64;
    let head_path = path.with_extension("head");
    match std::fs::read(&head_path) {
        Ok(bytes) => {
            let head = check_head(&bytes, &name, &records, participants).map_err(|problem| {
                fail(count, format!("{}: {problem} (the log was truncated or rewritten)", head_path.display()))
            })?;
            let _ = head;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && heads == 0 => {}
        Err(e) => {
            return Err(fail(count, format!("{}: signed head file missing or unreadable: {e}", head_path.display())));
        }
    }
    let unsealed = match last_head {
        Some(h) => count.saturating_sub(h).saturating_sub(1),
        None => count,
    };
    let torn_bytes = torn.map_or(0, |at| (bytes.len() as u64).saturating_sub(at));
    Ok(LogSummary { file: path.to_path_buf(), records: count, envelopes, heads, unsealed, torn_bytes })
}

/// Decodes and checks a signed head against the log's records.
fn check_head(
    payload: &[u8],
    name: &str,
    records: &[Record],
    participants: &Participants,
) -> Result<SignedHead, String> {
    let head = SignedHead::try_from_slice(payload).map_err(|e| format!("does not decode: {e}"))?;
    if head.log != name {
        return Err(format!("belongs to log {}, not {name}", head.log));
    }
    if participants.get(&head.signer).is_none() {
        return Err(format!("signed by unknown participant {}", head.signer));
    }
    if name != "PLATFORM" && head.signer.as_str() != name {
        return Err(format!("signed by {}, not by the log's owner {name}", head.signer));
    }
    let key = participants.get(&head.signer).map(|p| p.public_key).ok_or("no key")?;
    Ed25519
        .verify(&key, &SignedHead::message(&head.log, head.index, &head.hash), &head.signature)
        .map_err(|_| format!("signature of {} does not verify (forged)", head.signer))?;
    let covered = usize::try_from(head.index)
        .ok()
        .and_then(|i| records.get(i))
        .ok_or_else(|| format!("covers record {} but the log has only {} records", head.index, records.len()))?;
    if covered.hash != head.hash {
        return Err(format!("record {} does not have the hash that was signed (rewritten)", head.index));
    }
    Ok(head)
}

/// Verifies every `*.log` under `data/audit`. Returns the summaries, or the
/// first tampering found.
pub fn verify_dir(data: &Path) -> Result<Vec<LogSummary>, VerifyError> {
    let spec = crate::PlatformSpec::load(data).map_err(VerifyError::Platform)?;
    let participants = spec.directory();
    let dir = data.join("audit");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| VerifyError::Platform(PlatformError::io(&dir, e)))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(VerifyError::Platform(PlatformError::Config(format!("{}: no audit logs", dir.display()))));
    }
    files.iter().map(|f| verify_log(f, &participants).map_err(VerifyError::Tampered)).collect()
}

/// Why `verify_dir` failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The platform or the directory cannot be read.
    #[error(transparent)]
    Platform(PlatformError),
    /// A log was tampered with.
    #[error("tampering: {0}")]
    Tampered(Tampering),
}
