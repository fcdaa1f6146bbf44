//! The group-committed journal: the part shared by the file and in-memory
//! backends.
//!
//! ```text
//!  append() ──┐ seq assigned under the queue lock (call order = log order)
//!  append() ──┼──► queue ──► writer thread: take ≤ max_batch_records,
//!  append() ──┘    (bounded)   write every frame, ONE sync, then
//!                              durable_seq = last of batch, complete each Pending
//!  snapshot(seq): wait durable_seq ≥ seq → write snapshot → prune covered log
//! ```
//!
//! Invariants:
//! - sequence numbers are consecutive, starting after the last recovered one;
//!   the log holds them in that order;
//! - a [`Pending`] completes `Ok` only after the sync that covers its record
//!   returned; `durable_seq` only grows;
//! - after a failed write or sync the journal is poisoned: the batch, the
//!   queue and every later append fail — nothing is ever acknowledged after a
//!   failed fsync;
//! - a snapshot at `seq` is written only once `seq` is durable, so the log on
//!   disk always reaches at least the snapshot.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::format::RECORD_BYTES_MAX;

/// Default size at which the file journal starts a new segment (64 MiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Default most records written per sync.
pub const BATCH_RECORDS_DEFAULT: usize = 4096;
/// Default most records queued before `append` blocks (backpressure).
pub const QUEUED_RECORDS_DEFAULT: usize = 64 * 1024;

const _: () = assert!(BATCH_RECORDS_DEFAULT <= QUEUED_RECORDS_DEFAULT);

/// How durable a batch is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `fdatasync` of the segment after every batch (and fsync of the
    /// directory when files are created, renamed or deleted). The default.
    #[default]
    Fsync,
    /// No fsync at all: a power loss can lose acknowledged records. For tests
    /// and benchmarks only — never for a service that answers clients.
    None,
}

/// Where and how a journal lives.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// The journal's directory (created if missing). One journal per directory.
    pub dir: PathBuf,
    /// Size after which a new segment is started (default 64 MiB). A segment
    /// can exceed it by one record, since a record is never split.
    pub segment_bytes: u64,
    /// Most records written per sync (default 4096; 0 is taken as 1).
    pub max_batch_records: usize,
    /// Most records waiting for the writer; `append` blocks while the queue
    /// is full (default 65 536; 0 is taken as 1).
    pub max_queued_records: usize,
    /// Whether batches are fsynced (default [`SyncMode::Fsync`]).
    pub sync: SyncMode,
}

impl JournalConfig {
    /// The defaults, for a journal in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalConfig {
            dir: dir.into(),
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            max_batch_records: BATCH_RECORDS_DEFAULT,
            max_queued_records: QUEUED_RECORDS_DEFAULT,
            sync: SyncMode::Fsync,
        }
    }
}

/// What a journal held when opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The newest snapshot: it covers every record with seq ≤ its seq.
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// The records after the snapshot, `(seq, record)`, in order, consecutive.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Bytes of an unacknowledged torn or corrupt tail that were cut off, up
    /// to its last non-zero byte: zeros after it cannot be told from the
    /// file backend's unused reserve, which is not counted.
    pub truncated_tail_bytes: u64,
}

impl Recovery {
    /// The last sequence number the journal holds (0 if none).
    pub fn last_seq(&self) -> u64 {
        let snapshot_seq = self.snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        self.records.last().map_or(snapshot_seq, |(seq, _)| *seq)
    }
}

/// Counters of work done since the journal was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records made durable.
    pub records_written: u64,
    /// Batches committed; each is one fsync under [`SyncMode::Fsync`].
    pub batches: u64,
    /// Bytes written to the log, framing included.
    pub bytes_written: u64,
}

/// The log a backend offers the writer thread.
pub(crate) trait LogWriter: Send {
    /// Writes one record (not yet durable); returns the bytes it takes.
    fn append(&mut self, seq: u64, payload: &[u8]) -> Result<u64, StoreError>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Drops log data entirely covered by a durable snapshot at `covered_seq`.
    fn prune(&mut self, covered_seq: u64) -> Result<(), StoreError>;
}

/// Where a backend keeps snapshots.
pub(crate) trait SnapshotWriter: Send {
    /// Durably and atomically replaces the snapshot by one at `seq`.
    fn write(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError>;
}

/// A group-committed append-only journal of opaque records.
///
/// Cheap to clone; all clones are one journal. Dropping the last clone
/// closes it (as [`Journal::close`], errors ignored).
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Journal>();
};

struct Inner {
    shared: Arc<Shared>,
    log: Arc<Mutex<Option<Box<dyn LogWriter>>>>,
    snapshots: Mutex<Snapshots>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Snapshots {
    writer: Box<dyn SnapshotWriter>,
    /// Seq of the newest snapshot (0 if none).
    latest_seq: u64,
}

/// State shared by appenders and the writer thread.
pub(crate) struct Shared {
    state: Mutex<QueueState>,
    /// Signalled when records are queued or the journal closes or fails.
    work: Condvar,
    /// Signalled when the queue drains or `durable_seq` moves or the journal fails.
    progress: Condvar,
    max_batch_records: usize,
    max_queued_records: usize,
    records_written: AtomicU64,
    batches: AtomicU64,
    bytes_written: AtomicU64,
}

struct QueueState {
    next_seq: u64,
    durable_seq: u64,
    queue: VecDeque<Queued>,
    /// Waiters for "everything appended up to seq is durable" (see `sync_point`).
    barriers: Vec<(u64, oneshot::Sender<Result<u64, StoreError>>)>,
    closing: bool,
    writer_done: bool,
    failure: Option<StoreError>,
    /// The writer waits on `work` for records: only then does an append
    /// wake it (a wake is a syscall; while it writes or syncs, the records
    /// queued meanwhile are its next batch anyway).
    writer_idle: bool,
    /// Threads waiting on `progress`: with none, there is nobody to wake.
    progress_waiters: usize,
}

struct Queued {
    seq: u64,
    record: Vec<u8>,
    done: oneshot::Sender<Result<u64, StoreError>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not hide the journal's state from close/drop.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `progress`, counted, so that the writer wakes only when
/// somebody waits.
fn wait_progress<'a>(shared: &Shared, mut state: MutexGuard<'a, QueueState>) -> MutexGuard<'a, QueueState> {
    state.progress_waiters += 1;
    let mut state = wait(&shared.progress, state);
    state.progress_waiters -= 1;
    state
}

impl Shared {
    /// Fails the journal: the queue and every later append get `error`.
    pub(crate) fn poison(&self, error: StoreError) {
        let mut state = lock(&self.state);
        Self::poison_locked(&mut state, error);
        drop(state);
        self.work.notify_all();
        self.progress.notify_all();
    }

    fn poison_locked(state: &mut QueueState, error: StoreError) {
        for queued in state.queue.drain(..) {
            // The receiver may be gone; nobody is waiting then.
            let _ = queued.done.send(Err(error.duplicate()));
        }
        for (_, done) in state.barriers.drain(..) {
            let _ = done.send(Err(error.duplicate()));
        }
        if state.failure.is_none() {
            state.failure = Some(error);
        }
    }
}

/// A record's durability, to wait for.
#[must_use = "a record is not durable until its Pending completes"]
#[derive(Debug)]
pub struct Pending {
    /// The record's sequence number.
    pub seq: u64,
    done: oneshot::Receiver<Result<u64, StoreError>>,
}

impl Pending {
    /// Blocks until the record is durable; returns its seq.
    ///
    /// Needs no async runtime.
    ///
    /// # Panics
    /// If called from inside an async runtime thread (use [`Pending::durable`] there).
    pub fn wait(self) -> Result<u64, StoreError> {
        self.done.blocking_recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Resolves when the record is durable; returns its seq.
    pub async fn durable(self) -> Result<u64, StoreError> {
        self.done.await.unwrap_or(Err(StoreError::Closed))
    }
}

/// Numbers a [`Journal`] is started with.
pub(crate) struct Limits {
    pub(crate) max_batch_records: usize,
    pub(crate) max_queued_records: usize,
}

impl Limits {
    pub(crate) fn of(config: &JournalConfig) -> Self {
        Limits { max_batch_records: config.max_batch_records, max_queued_records: config.max_queued_records }
    }
}

impl Journal {
    /// Starts the writer thread over a recovered backend whose last record
    /// (or snapshot) is `last_seq`.
    pub(crate) fn start(
        log: Box<dyn LogWriter>,
        snapshots: Box<dyn SnapshotWriter>,
        last_seq: u64,
        snapshot_seq: u64,
        limits: Limits,
    ) -> Result<Journal, StoreError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState {
                next_seq: last_seq + 1,
                durable_seq: last_seq,
                queue: VecDeque::new(),
                barriers: Vec::new(),
                closing: false,
                writer_done: false,
                failure: None,
                writer_idle: false,
                progress_waiters: 0,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            max_batch_records: limits.max_batch_records.max(1),
            max_queued_records: limits.max_queued_records.max(1),
            records_written: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        });
        let log = Arc::new(Mutex::new(Some(log)));
        let writer = {
            let shared = Arc::clone(&shared);
            let log = Arc::clone(&log);
            std::thread::Builder::new()
                .name("dtenge-journal-writer".to_owned())
                .spawn(move || run_writer(&shared, &log))
                .map_err(|source| StoreError::io("<journal writer thread>", source))?
        };
        Ok(Journal {
            inner: Arc::new(Inner {
                shared,
                log,
                snapshots: Mutex::new(Snapshots { writer: snapshots, latest_seq: snapshot_seq }),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.inner.shared)
    }

    /// Enqueues a record and returns its sequence number at once; the record
    /// becomes durable with the next group commit. The order of `append`
    /// calls is the log order. Blocks only while `max_queued_records` are
    /// already waiting.
    ///
    /// # Errors
    /// [`StoreError::RecordTooLarge`] above [`RECORD_BYTES_MAX`];
    /// [`StoreError::Closed`] after `close`; a copy of the failure that
    /// poisoned the journal after a failed write or sync.
    pub fn append(&self, record: Vec<u8>) -> Result<Pending, StoreError> {
        if record.len() > RECORD_BYTES_MAX {
            return Err(StoreError::RecordTooLarge { size: record.len(), max: RECORD_BYTES_MAX });
        }
        let shared = &self.inner.shared;
        let mut state = lock(&shared.state);
        loop {
            if let Some(failure) = &state.failure {
                return Err(failure.duplicate());
            }
            if state.closing || state.writer_done {
                return Err(StoreError::Closed);
            }
            if state.queue.len() < shared.max_queued_records {
                break;
            }
            state = wait_progress(shared, state);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let (done, receiver) = oneshot::channel();
        state.queue.push_back(Queued { seq, record, done });
        let idle = state.writer_idle;
        drop(state);
        if idle {
            shared.work.notify_one();
        }
        Ok(Pending { seq, done: receiver })
    }

    /// Writes a snapshot covering every record with seq ≤ `seq`, then drops
    /// the log data it covers. Waits until `seq` is durable first, so the log
    /// always reaches the snapshot. A snapshot older than the newest one is
    /// ignored. The caller guarantees `state` reflects exactly records ≤ `seq`.
    ///
    /// # Errors
    /// [`StoreError::Closed`] once closing; the poisoning failure; I/O
    /// errors of the snapshot itself (these do not poison the journal: the
    /// log is intact, retry later).
    ///
    /// # Panics
    /// If `seq` is beyond [`Journal::last_seq`]: a snapshot of records never
    /// appended is a bug in the caller.
    pub fn snapshot(&self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        self.wait_durable(seq)?;
        let mut snapshots = lock(&self.inner.snapshots);
        if seq < snapshots.latest_seq {
            return Ok(());
        }
        snapshots.writer.write(seq, state)?;
        snapshots.latest_seq = seq;
        match lock(&self.inner.log).as_mut() {
            Some(log) => log.prune(seq),
            None => Err(StoreError::Closed),
        }
    }

    fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        let shared = &self.inner.shared;
        let mut state = lock(&shared.state);
        assert!(seq < state.next_seq, "snapshot at seq {seq} beyond the last appended seq {}", state.next_seq - 1);
        loop {
            if let Some(failure) = &state.failure {
                return Err(failure.duplicate());
            }
            if state.closing || state.writer_done {
                return Err(StoreError::Closed);
            }
            if state.durable_seq >= seq {
                return Ok(());
            }
            state = wait_progress(shared, state);
        }
    }

    /// The last appended sequence number (0 if none).
    pub fn last_seq(&self) -> u64 {
        lock(&self.inner.shared.state).next_seq - 1
    }

    /// A [`Pending`] that completes when everything appended so far is
    /// durable, without appending anything: a service answering from state
    /// that earlier (maybe not yet durable) records produced waits on it.
    pub fn sync_point(&self) -> Pending {
        let shared = &self.inner.shared;
        let mut state = lock(&shared.state);
        let seq = state.next_seq - 1;
        let (done, receiver) = oneshot::channel();
        if let Some(failure) = &state.failure {
            let _ = done.send(Err(failure.duplicate()));
        } else if state.durable_seq >= seq {
            let _ = done.send(Ok(seq));
        } else if state.closing || state.writer_done {
            let _ = done.send(Err(StoreError::Closed));
        } else {
            state.barriers.push((seq, done));
        }
        Pending { seq, done: receiver }
    }

    /// Waits until everything appended so far is durable, then stops the
    /// writer thread and releases the files. Later appends fail with
    /// [`StoreError::Closed`]. Closing twice is harmless.
    ///
    /// # Errors
    /// The failure that poisoned the journal, if any: then not everything
    /// appended is durable.
    pub fn close(&self) -> Result<(), StoreError> {
        let shared = &self.inner.shared;
        lock(&shared.state).closing = true;
        shared.work.notify_all();
        shared.progress.notify_all();
        let writer = lock(&self.inner.writer).take();
        let panicked = writer.is_some_and(|writer| writer.join().is_err());
        // Release the segment file and the directory lock.
        drop(lock(&self.inner.log).take());
        let state = lock(&shared.state);
        match &state.failure {
            Some(failure) => Err(failure.duplicate()),
            None if panicked => Err(StoreError::Closed),
            None => Ok(()),
        }
    }

    /// The failure that poisoned the journal, if one has: every later
    /// append fails with it, so nothing more can be made durable.
    pub fn failure(&self) -> Option<StoreError> {
        lock(&self.inner.shared.state).failure.as_ref().map(StoreError::duplicate)
    }

    /// Counters of work done since the journal was opened.
    pub fn stats(&self) -> JournalStats {
        let shared = &self.inner.shared;
        JournalStats {
            records_written: shared.records_written.load(Ordering::Relaxed),
            batches: shared.batches.load(Ordering::Relaxed),
            bytes_written: shared.bytes_written.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let shared = &self.shared;
        lock(&shared.state).closing = true;
        shared.work.notify_all();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: batch, write, sync, acknowledge, until closed and
/// drained or failed.
fn run_writer(shared: &Shared, log: &Mutex<Option<Box<dyn LogWriter>>>) {
    yield_to_request_work();
    let mut batch: Vec<Queued> = Vec::with_capacity(shared.max_batch_records);
    while take_batch(shared, &mut batch) {
        match write_batch(log, &batch) {
            Ok(bytes) => acknowledge(shared, &mut batch, bytes),
            Err(error) => {
                // Poison first: whoever sees its record fail must find the
                // journal already refusing everything.
                let copies: Vec<StoreError> = batch.iter().map(|_| error.duplicate()).collect();
                shared.poison(error);
                for (queued, copy) in batch.drain(..).zip(copies) {
                    let _ = queued.done.send(Err(copy));
                }
                break;
            }
        }
    }
    {
        let mut state = lock(&shared.state);
        state.writer_done = true;
        for (_, done) in state.barriers.drain(..) {
            let _ = done.send(Err(StoreError::Closed));
        }
    }
    shared.progress.notify_all();
}

/// Makes the calling writer thread wait for a free core instead of taking
/// one from request work when its records arrive (Linux's `SCHED_BATCH`,
/// nice unchanged; elsewhere nothing). With a core to spare it runs at
/// once. When every core is busy, a normally scheduled writer, woken for
/// every few records, would preempt the threads handling payments once per
/// group commit; a batch thread runs when one of them waits or its time
/// slice ends, takes everything queued meanwhile, and syncs it as one
/// larger group: fewer syncs and context switches per record
/// (docs/performance.md). Its fair share of the CPU is unchanged, so it is
/// never starved.
fn yield_to_request_work() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        // The call sets the nice value too; the OS value 0 is nice 0, so a
        // thread at another nice value (the operator's choice) is left alone.
        if own_nice() != Some(0) {
            return;
        }
        let nice_unchanged = ThreadPriority::Os(ThreadPriorityOsValue::default());
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        if let Err(error) = set_thread_priority_and_policy(thread_native_id(), nice_unchanged, batch) {
            tracing::debug!(?error, "the journal writer keeps the default scheduling policy");
        }
    }
}

/// The calling thread's nice value (field 19 of `/proc/thread-self/stat`).
#[cfg(target_os = "linux")]
fn own_nice() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces, start with the third (the state).
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19 - 3)?.parse().ok()
}

/// Waits for records; fills `batch`. False when the writer should stop.
fn take_batch(shared: &Shared, batch: &mut Vec<Queued>) -> bool {
    let mut state = lock(&shared.state);
    while state.queue.is_empty() && !state.closing && state.failure.is_none() {
        state.writer_idle = true;
        state = wait(&shared.work, state);
        state.writer_idle = false;
    }
    if state.failure.is_some() || state.queue.is_empty() {
        return false;
    }
    let take = state.queue.len().min(shared.max_batch_records);
    batch.extend(state.queue.drain(..take));
    let waiting = state.progress_waiters > 0;
    drop(state);
    // Room in the queue for blocked appenders.
    if waiting {
        shared.progress.notify_all();
    }
    true
}

fn write_batch(log: &Mutex<Option<Box<dyn LogWriter>>>, batch: &[Queued]) -> Result<u64, StoreError> {
    let mut log = lock(log);
    let log = log.as_mut().ok_or(StoreError::Closed)?;
    let mut bytes = 0;
    for queued in batch {
        bytes += log.append(queued.seq, &queued.record)?;
    }
    log.sync()?;
    Ok(bytes)
}

fn acknowledge(shared: &Shared, batch: &mut Vec<Queued>, bytes: u64) {
    let Some(last) = batch.last() else { return };
    let waiting = {
        let mut state = lock(&shared.state);
        debug_assert!(last.seq > state.durable_seq, "durable_seq only grows");
        state.durable_seq = last.seq;
        let durable = state.durable_seq;
        let (reached, waiting): (Vec<_>, Vec<_>) = state.barriers.drain(..).partition(|(seq, _)| *seq <= durable);
        state.barriers = waiting;
        for (seq, done) in reached {
            let _ = done.send(Ok(seq));
        }
        state.progress_waiters > 0
    };
    if waiting {
        shared.progress.notify_all();
    }
    shared.records_written.fetch_add(batch.len() as u64, Ordering::Relaxed);
    shared.batches.fetch_add(1, Ordering::Relaxed);
    shared.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    for queued in batch.drain(..) {
        let _ = queued.done.send(Ok(queued.seq));
    }
}
