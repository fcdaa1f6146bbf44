//! The conformance suite run against both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_store::conformance::{self, Harness};
use dtenge_store::{Journal, JournalConfig, MemJournalHandle, Recovery};
use tempfile::TempDir;

/// File journals, each in its own temporary directory; small segments so
/// rotation and pruning are exercised.
struct FileHarness {
    dirs: Vec<TempDir>,
    segment_bytes: u64,
}

impl FileHarness {
    fn new(segment_bytes: u64) -> Self {
        FileHarness { dirs: Vec::new(), segment_bytes }
    }

    fn config(&self) -> JournalConfig {
        let mut config = JournalConfig::new(self.dirs.last().expect("fresh first").path());
        config.segment_bytes = self.segment_bytes;
        config
    }
}

impl Harness for FileHarness {
    fn fresh(&mut self) -> Journal {
        self.dirs.push(tempfile::tempdir().expect("temp dir"));
        let (journal, recovery) = Journal::open(self.config()).expect("open a new journal");
        assert_eq!(recovery, Recovery::default(), "a new directory recovers nothing");
        journal
    }

    fn reopen(&mut self, journal: Journal) -> (Journal, Recovery) {
        journal.close().expect("close");
        drop(journal);
        Journal::open(self.config()).expect("reopen")
    }
}

/// In-memory journals; a restart is a clean close and a power loss.
#[derive(Default)]
struct MemHarness {
    handle: Option<MemJournalHandle>,
}

impl Harness for MemHarness {
    fn fresh(&mut self) -> Journal {
        let (journal, handle) = Journal::in_memory();
        self.handle = Some(handle);
        journal
    }

    fn reopen(&mut self, journal: Journal) -> (Journal, Recovery) {
        journal.close().expect("close");
        self.handle.as_ref().expect("fresh first").crash_and_reopen()
    }
}

#[test]
fn file_journal_conforms() {
    conformance::run_all(&mut FileHarness::new(dtenge_store::SEGMENT_BYTES_DEFAULT));
}

#[test]
fn file_journal_with_tiny_segments_conforms() {
    // Every record gets its own segment: rotation on every append.
    conformance::run_all(&mut FileHarness::new(1));
}

#[test]
fn file_journal_with_small_segments_conforms() {
    conformance::run_all(&mut FileHarness::new(512));
}

#[test]
fn memory_journal_conforms() {
    conformance::run_all(&mut MemHarness::default());
}
