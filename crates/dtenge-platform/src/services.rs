//! Opening one service from the data directory, whatever carries its
//! messages: the in-process assembly and a one-service process both use this,
//! so the same service code runs either way.

use std::path::Path;
use std::sync::Arc;

use dtenge_net::{Bus, Clock, Handler, Participants, Role};
use dtenge_node::accounts::{Holder, KycState};
use dtenge_node::archive::Archive;
use dtenge_node::directory::DirectoryService;
use dtenge_node::service::{NodeConfig, NodeService};
use dtenge_notary::{
    ColdStore, FjallCold, GroupOptions, MemoryCold, NotaryConfig, NotaryReplica, NotaryService, ReplicaStores,
    WriteMode,
};
use dtenge_oracle::service::{OracleRequest, OracleService};
use dtenge_store::{Journal, JournalConfig, Recovery, SyncMode};
use dtenge_types::ParticipantId;

use crate::PlatformError;
use crate::spec::{Keys, PlatformSpec, ids};

/// A service opened from its journal.
pub enum Service {
    /// The notary.
    Notary(Arc<NotaryService>),
    /// A replica of a replicated notary group.
    Replica(Arc<NotaryReplica>),
    /// The oracle.
    Oracle(Arc<OracleService>),
    /// The DA directory.
    Directory(Arc<DirectoryService>),
    /// A participant node.
    Node(Arc<NodeService>),
}

impl Service {
    /// Its message handler.
    pub fn handler(&self) -> Arc<dyn Handler> {
        match self {
            Service::Notary(s) => s.clone(),
            Service::Replica(s) => s.clone(),
            Service::Oracle(s) => s.clone(),
            Service::Directory(s) => s.clone(),
            Service::Node(s) => s.clone(),
        }
    }
}

pub(crate) fn open_journal(dir: &Path, durable: bool) -> Result<(Journal, Recovery), PlatformError> {
    let mut config = JournalConfig::new(dir);
    config.sync = if durable { SyncMode::Fsync } else { SyncMode::None };
    Journal::open(config).map_err(|e| PlatformError::service(dir.display().to_string(), e))
}

/// The notary's cold store (history that left memory): on disk in
/// `DATA/notary-cold` (`DATA/notary/NOTARY-2/cold` for a replica) for a
/// durable platform, or wherever that directory already exists (an audit
/// opening a durable platform's data); in memory otherwise (the notary then
/// keeps its whole journal: no snapshots).
pub fn open_notary_cold(data: &Path, durable: bool) -> Result<Arc<ColdStore>, dtenge_notary::ColdError> {
    open_cold_at(&data.join("notary-cold"), durable)
}

fn open_cold_at(dir: &Path, durable: bool) -> Result<Arc<ColdStore>, dtenge_notary::ColdError> {
    let config = NotaryConfig::default();
    if durable || dir.exists() {
        let backend = Arc::new(FjallCold::open(dir)?);
        Ok(Arc::new(ColdStore::open_saved(backend, config.filter_bytes, WriteMode::Background)?))
    } else {
        Ok(Arc::new(ColdStore::memory(MemoryCold::new(), config.filter_bytes)))
    }
}

pub(crate) fn pid(s: &str) -> Result<ParticipantId, PlatformError> {
    ParticipantId::new(s).map_err(|e| PlatformError::Config(e.to_string()))
}

/// The directory of a notary replica's log, snapshots and cold store.
pub fn replica_dir(data: &Path, id: &ParticipantId) -> std::path::PathBuf {
    data.join("notary").join(id.as_str())
}

/// Opens replica `id` of the notary group from `DATA/notary/<id>/` (`log/`,
/// `snapshots/`, `cold/`) and starts it on `bus`. The group is initialised
/// separately ([`NotaryReplica::initialize`]).
pub async fn open_replica(
    spec: &PlatformSpec,
    data: &Path,
    id: &ParticipantId,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    participants: Arc<Participants>,
    durable: bool,
) -> Result<Arc<NotaryReplica>, PlatformError> {
    let fail = |e: &dyn std::fmt::Display| PlatformError::service(id.as_str(), e);
    let number = ids::notary_replica_number(id.as_str())
        .filter(|n| spec.notary_group().contains_key(n))
        .ok_or_else(|| PlatformError::Config(format!("{id} is not a replica of the notary group")))?;
    let key = Arc::new(Keys::at(data).load(id.as_str())?);
    let dir = replica_dir(data, id);
    let cold = open_cold_at(&dir.join("cold"), durable).map_err(|e| fail(&e))?;
    let stores = ReplicaStores {
        log: open_journal(&dir.join("log"), durable)?,
        snapshots: open_journal(&dir.join("snapshots"), durable)?,
        // With history only in memory, the log is never cut: no snapshots.
        config: NotaryConfig::default(),
        cold,
    };
    let options = GroupOptions {
        snapshot_every: if durable { GroupOptions::default().snapshot_every } else { None },
        ..GroupOptions::default()
    };
    NotaryReplica::start(number, id.clone(), key, participants, clock, bus, stores, options).await.map_err(|e| fail(&e))
}

/// Every replica of the notary group recovered from its storage without
/// starting it (the processes have stopped): for audits.
pub fn recover_replicas(
    spec: &PlatformSpec,
    data: &Path,
) -> Result<Vec<(ParticipantId, dtenge_notary::group::replica::RecoveredReplica)>, PlatformError> {
    let mut out = Vec::new();
    for id in spec.notary_group().values() {
        let fail = |e: &dyn std::fmt::Display| PlatformError::service(id.as_str(), e);
        let dir = replica_dir(data, id);
        let stores = ReplicaStores {
            log: open_journal(&dir.join("log"), false)?,
            snapshots: open_journal(&dir.join("snapshots"), false)?,
            cold: open_cold_at(&dir.join("cold"), false).map_err(|e| fail(&e))?,
            config: NotaryConfig::default(),
        };
        out.push((id.clone(), dtenge_notary::group::replica::recover_state(stores).map_err(|e| fail(&e))?));
    }
    Ok(out)
}

/// The journal directory of a participant's service.
pub fn journal_dir(data: &Path, id: &ParticipantId, role: Role) -> std::path::PathBuf {
    match role {
        Role::Notary => data.join("notary"),
        Role::Oracle => data.join("oracle"),
        Role::Directory => data.join("directory"),
        _ => data.join("nodes").join(id.as_str()),
    }
}

/// The directory of a node's archive of settled history (fjall).
pub fn archive_dir(data: &Path, id: &ParticipantId) -> std::path::PathBuf {
    data.join("archive").join(id.as_str())
}

/// A node's archive: on disk (fjall) on a durable platform, or where one
/// exists already (its journal may start from a snapshot); otherwise in
/// memory, rebuilt from the journal at every start.
fn open_archive(dir: &Path, durable: bool) -> Result<Archive, dtenge_node::NodeError> {
    if durable || dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| dtenge_node::NodeError::Storage(format!("archive {}: {e}", dir.display())))?;
        Archive::open(dir)
    } else {
        Ok(Archive::memory())
    }
}

/// Opens participant `id`'s service: recovers it from its journal and gives
/// it `bus` to reach the others. Returns the service and its journal.
pub fn open(
    spec: &PlatformSpec,
    data: &Path,
    id: &ParticipantId,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    participants: Arc<Participants>,
    durable: bool,
) -> Result<(Service, Journal), PlatformError> {
    let info =
        spec.participant(id.as_str()).ok_or_else(|| PlatformError::Config(format!("unknown participant {id}")))?;
    let key = Arc::new(Keys::at(data).load(id.as_str())?);
    let (journal, recovery) = open_journal(&journal_dir(data, id, info.role), durable)?;
    let fail = |e: &dyn std::fmt::Display| PlatformError::service(id.as_str(), e);
    let service = match info.role {
        Role::Notary if ids::notary_replica_number(id.as_str()).is_some() => {
            return Err(PlatformError::Config(format!(
                "{id} is a replica of the notary group: open it with `open_replica`"
            )));
        }
        Role::Notary => {
            let cold = open_notary_cold(data, durable).map_err(|e| fail(&e))?;
            Service::Notary(
                NotaryService::recover_with(
                    key,
                    participants,
                    clock,
                    journal.clone(),
                    recovery,
                    cold,
                    NotaryConfig::default(),
                )
                .map_err(|e| fail(&e))?,
            )
        }
        Role::Oracle => {
            // The oracle counts reserves by asking the nodes over its own bus.
            let counts = Arc::new(dtenge_node::service::StablecoinCountOverBus::new(Arc::clone(&bus)));
            Service::Oracle(
                OracleService::recover(key, participants, clock, bus, counts, journal.clone(), recovery)
                    .map_err(|e| fail(&e))?,
            )
        }
        Role::Directory => Service::Directory(
            DirectoryService::recover(participants, journal.clone(), recovery).map_err(|e| fail(&e))?,
        ),
        Role::Nbk | Role::Stb | Role::Treasury | Role::CounterpartyCentralBank | Role::StablecoinIssuer => {
            let config = NodeConfig {
                id: id.clone(),
                role: info.role,
                oracle: pid(ids::ORACLE)?,
                directory: pid(ids::DIRECTORY)?,
                params: spec.params.clone(),
                cbs: (id.as_str() == ids::NBK)
                    .then(|| dtenge_node::conversion::CbsLink { root: data.join("cbs"), simulate: true }),
            };
            let archive = open_archive(&archive_dir(data, id), durable).map_err(|e| fail(&e))?;
            Service::Node(
                NodeService::recover(config, key, bus, clock, participants, journal.clone(), recovery, archive)
                    .map_err(|e| fail(&e))?,
            )
        }
        Role::Provider => return Err(PlatformError::Config(format!("{id} is an event provider, not a service"))),
    };
    Ok((service, journal))
}

/// What a node does once at start (idempotent): opens the institutions' own
/// DAs it hosts; NBK also registers the event providers on the oracle.
pub async fn bootstrap_node(
    spec: &PlatformSpec,
    data: &Path,
    node: &NodeService,
    bus: &Arc<dyn Bus>,
) -> Result<(), PlatformError> {
    let keys = Keys::at(data);
    for inst in spec.institutions.iter().filter(|i| i.host == *node.id()) {
        let holder = Holder { iin_bin: inst.bin, name: inst.name.clone(), kind: inst.kind };
        node.open_account_with_key(holder, keys.load(&inst.key)?, KycState::Verified)
            .await
            .map_err(|e| PlatformError::service(node.id().as_str(), e))?;
    }
    if node.id().as_str() == ids::NBK {
        for provider in &spec.providers {
            let name = spec.participant(provider.id.as_str()).map(|p| p.name.clone()).unwrap_or_default();
            let request = OracleRequest::RegisterProvider {
                id: provider.id.clone(),
                name,
                registries: provider.registries.clone(),
            };
            let body = borsh::to_vec(&request).map_err(|e| PlatformError::service(ids::ORACLE, e))?;
            bus.call(&pid(ids::ORACLE)?, body).await.map_err(|e| PlatformError::service(ids::ORACLE, e))?;
        }
    }
    Ok(())
}
