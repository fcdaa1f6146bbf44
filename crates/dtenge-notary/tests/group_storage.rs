//! openraft's storage conformance suite against a replica's storage: the
//! Raft log over a `dtenge-store` journal and the notary engine as the state
//! machine, on the in-memory journal with an in-memory cold store and on
//! files with the fjall cold store.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use dtenge_notary::group::GroupConfig;
use dtenge_notary::group::log::LogStore;
use dtenge_notary::group::machine::Machine;
use dtenge_notary::{ColdStore, FjallCold, MemoryCold, NotaryConfig, WriteMode};
use dtenge_store::{Journal, JournalConfig};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

struct InMemory;

impl StoreBuilder<GroupConfig, LogStore, Machine, ()> for InMemory {
    async fn build(&self) -> Result<((), LogStore, Machine), StorageError<u64>> {
        let (log, _) = Journal::in_memory();
        let (snapshots, _) = Journal::in_memory();
        let config = NotaryConfig::default();
        let cold = Arc::new(ColdStore::memory(MemoryCold::new(), 1 << 16));
        let log = LogStore::recover(log, Default::default()).unwrap();
        let machine = Machine::recover(snapshots, Default::default(), cold, config).unwrap();
        Ok(((), log, machine))
    }
}

struct OnDisk;

impl StoreBuilder<GroupConfig, LogStore, Machine, tempfile::TempDir> for OnDisk {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, Machine), StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let (log, log_recovery) = Journal::open(JournalConfig::new(dir.path().join("log"))).unwrap();
        let (snapshots, snapshots_recovery) = Journal::open(JournalConfig::new(dir.path().join("snapshots"))).unwrap();
        let backend = Arc::new(FjallCold::open(&dir.path().join("cold")).unwrap());
        let cold = Arc::new(ColdStore::open_saved(backend, 1 << 16, WriteMode::Background).unwrap());
        let log = LogStore::recover(log, log_recovery).unwrap();
        let machine = Machine::recover(snapshots, snapshots_recovery, cold, NotaryConfig::default()).unwrap();
        Ok((dir, log, machine))
    }
}

#[test]
fn replica_storage_in_memory_passes_openraft_suite() {
    Suite::test_all(InMemory).unwrap();
}

#[test]
fn replica_storage_on_files_passes_openraft_suite() {
    Suite::test_all(OnDisk).unwrap();
}
