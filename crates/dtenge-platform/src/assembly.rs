//! Every service in one process: the default way to run the platform.
//!
//! ```text
//!  DATA/
//!    platform.json   keys/          participants, keys, ledger parameters
//!    notary/ oracle/ directory/     one journal each
//!    nodes/NBK/ nodes/STB1/ …       one journal per participant node
//!    archive/NBK/ archive/STB1/ …   each node's settled history (fjall; durable platforms)
//!    audit/PLATFORM.log             hash-chained signed envelopes (see `audit_log`)
//! ```
//!
//! Services are wired through [`LocalNetwork`]: each gets a bus bound to its
//! own identity and key, so every message is signed and checked exactly as
//! over the network.
//!
//! A platform whose registry names a notary group (`NOTARY-1` … `NOTARY-N`)
//! runs every replica here too, each on its own storage under
//! `DATA/notary/NOTARY-k/`, talking over the same in-process network (for
//! benchmarks and tests: the replicas share the process's fate, so this
//! measures what replication costs, not what it survives).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dtenge_net::{Bus, Clock, Evidence, LocalNetwork, Participants, Role};
use dtenge_node::directory::DirectoryService;
use dtenge_node::service::NodeService;
use dtenge_notary::{HotCounts, NotaryCallError, NotaryError, NotaryReplica, NotaryService, NotaryState, Receipt};
use dtenge_oracle::service::OracleService;
use dtenge_store::Journal;
use dtenge_types::{ParticipantId, TxId};

use crate::PlatformError;
use crate::audit_log::AuditLog;
use crate::offline::OfflineDesk;
use crate::services::{self, Service, pid};
use crate::spec::{Keys, PlatformSpec, ids};

/// How to run.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// fsync every group commit (on), or not (tests that do not test durability).
    pub durable: bool,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        PlatformOptions { durable: true }
    }
}

/// The platform's notary: one service, or the replicas of a group.
pub enum PlatformNotary {
    /// A single notary.
    Single(Arc<NotaryService>),
    /// A replicated group, every replica in this process.
    Group(Vec<Arc<NotaryReplica>>),
}

impl PlatformNotary {
    /// The replica that applied the most (a group), whose state the
    /// figures below read.
    fn furthest(replicas: &[Arc<NotaryReplica>]) -> Option<&Arc<NotaryReplica>> {
        replicas.iter().max_by_key(|r| r.applied_index())
    }

    /// A copy of the engine's state.
    pub fn state_copy(&self) -> NotaryState {
        match self {
            PlatformNotary::Single(n) => n.state_copy(),
            PlatformNotary::Group(r) => {
                Self::furthest(r).map(|r| r.with_state(|s| s.engine.clone())).unwrap_or_default()
            }
        }
    }

    /// `(committed transactions, unspent, spent)`.
    pub fn stats(&self) -> (u64, usize, usize) {
        match self {
            PlatformNotary::Single(n) => n.stats(),
            PlatformNotary::Group(r) => Self::furthest(r).map_or((0, 0, 0), |r| {
                r.with_state(|s| {
                    let (unspent, spent) = s.engine.counts();
                    (s.engine.committed_count(), unspent, spent)
                })
            }),
        }
    }

    /// Entries held in memory (live set and recent history).
    pub fn hot_counts(&self) -> HotCounts {
        match self {
            PlatformNotary::Single(n) => n.hot_counts(),
            PlatformNotary::Group(r) => {
                Self::furthest(r).map(|r| r.with_state(|s| s.engine.hot_counts())).unwrap_or_default()
            }
        }
    }

    /// The receipt of `tx`, if committed: the single notary's, or read on
    /// the group's leader (a replica that does not lead refuses, so each is
    /// asked in turn; the last refusal is returned if none leads).
    ///
    /// # Errors
    /// The notary could not answer (no leader, no quorum, a store failed).
    pub async fn receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NotaryCallError> {
        match self {
            PlatformNotary::Single(n) => n.receipt(tx).await,
            PlatformNotary::Group(replicas) => {
                let mut last = NotaryCallError::NoQuorum("the notary group has no replica".into());
                for r in replicas {
                    match r.receipt(tx).await {
                        Ok(answer) => return Ok(answer),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    /// The group's replicas (none for a single notary).
    pub fn replicas(&self) -> &[Arc<NotaryReplica>] {
        match self {
            PlatformNotary::Single(_) => &[],
            PlatformNotary::Group(r) => r,
        }
    }

    /// Makes the notary's storage durable. A group's Raft keeps running:
    /// an async caller stops it first with [`Self::shut_down`].
    ///
    /// # Errors
    /// A store failed.
    pub fn close(&self) -> Result<(), NotaryError> {
        match self {
            PlatformNotary::Single(n) => n.close(),
            PlatformNotary::Group(replicas) => replicas.iter().try_for_each(|r| r.close()),
        }
    }

    /// Stops a group's Raft on every replica, then makes the notary's
    /// storage durable ([`Self::close`]). Closing a replica's stores under a
    /// running Raft leaves it writing to closed stores and reporting to
    /// nobody (openraft logs errors as the process ends).
    ///
    /// # Errors
    /// A store failed to close.
    pub async fn shut_down(&self) -> Result<(), NotaryError> {
        match self {
            PlatformNotary::Single(n) => n.close(),
            PlatformNotary::Group(replicas) => {
                for replica in replicas {
                    replica.shutdown().await?;
                }
                Ok(())
            }
        }
    }
}

/// The running platform, in one process.
pub struct Platform {
    /// Its description.
    pub spec: PlatformSpec,
    /// The data directory.
    pub data: PathBuf,
    /// The clock every service reads.
    pub clock: Arc<dyn Clock>,
    /// The in-process network.
    pub network: Arc<LocalNetwork>,
    /// The notary.
    pub notary: PlatformNotary,
    /// The oracle.
    pub oracle: Arc<OracleService>,
    /// The DA directory.
    pub directory: Arc<DirectoryService>,
    /// Participant nodes by id.
    pub nodes: BTreeMap<ParticipantId, Arc<NodeService>>,
    /// Banks' offline desks (issue 21.3), by bank.
    pub offline: BTreeMap<ParticipantId, Arc<OfflineDesk>>,
    journals: Vec<Journal>,
    audit: Arc<AuditLog>,
}

impl Platform {
    /// Opens (or creates) the platform in `data`.
    pub async fn open(data: &Path, clock: Arc<dyn Clock>, options: PlatformOptions) -> Result<Platform, PlatformError> {
        let spec = PlatformSpec::load_or_create(data, &BTreeMap::new())?;
        let keys = Keys::at(data);
        let participants = Arc::new(spec.directory());
        let mut journals = Vec::new();
        let audit = AuditLog::open(&data.join("audit"), "PLATFORM", pid(ids::NBK)?, Arc::new(keys.load(ids::NBK)?))?;
        let evidence: Arc<dyn Evidence> = audit.clone();
        let network = LocalNetwork::new(Arc::clone(&participants), Arc::clone(&clock), evidence);

        // Services in dependency order: notary, directory, oracle, nodes.
        let group = spec.notary_group();
        let mut order: Vec<ParticipantId> = Vec::new();
        if group.is_empty() {
            order.push(pid(ids::NOTARY)?);
        }
        order.extend([ids::DIRECTORY, ids::ORACLE].iter().map(|s| pid(s)).collect::<Result<Vec<_>, _>>()?);
        order.extend(spec.nodes().iter().map(|p| p.id.clone()));
        let (mut notary, mut oracle, mut directory) = (None, None, None);
        if !group.is_empty() {
            notary =
                Some(Self::open_group(&spec, data, &network, &clock, &participants, &group, options.durable).await?);
        }
        let mut nodes = BTreeMap::new();
        for id in order {
            let key = Arc::new(keys.load(id.as_str())?);
            let bus = network.bus(id.clone(), key.clone());
            let (service, journal) =
                services::open(&spec, data, &id, bus, Arc::clone(&clock), Arc::clone(&participants), options.durable)?;
            journals.push(journal);
            network.register(id.clone(), key, service.handler());
            match service {
                Service::Notary(s) => notary = Some(PlatformNotary::Single(s)),
                Service::Replica(_) => {
                    return Err(PlatformError::Config(
                        "a replicated notary group runs one replica per process (`dtenge node --id NOTARY-1`)".into(),
                    ));
                }
                Service::Oracle(s) => oracle = Some(s),
                Service::Directory(s) => directory = Some(s),
                Service::Node(s) => {
                    nodes.insert(id, s);
                }
            }
        }
        let missing = |what: &str| PlatformError::Config(format!("the platform has no {what}"));
        let mut platform = Platform {
            spec,
            data: data.to_path_buf(),
            clock,
            network,
            notary: notary.ok_or_else(|| missing("notary"))?,
            oracle: oracle.ok_or_else(|| missing("oracle"))?,
            directory: directory.ok_or_else(|| missing("directory"))?,
            nodes,
            offline: BTreeMap::new(),
            journals,
            audit,
        };
        for node in platform.nodes.values() {
            let bus = platform.bus(node.id().as_str())?;
            services::bootstrap_node(&platform.spec, data, node, &bus).await?;
        }
        platform.open_offline_desks(&keys, options.durable)?;
        Ok(platform)
    }

    /// Starts every replica of the notary group `group` on `network` and
    /// waits for a leader.
    async fn open_group(
        spec: &PlatformSpec,
        data: &Path,
        network: &Arc<LocalNetwork>,
        clock: &Arc<dyn Clock>,
        participants: &Arc<Participants>,
        group: &BTreeMap<u64, ParticipantId>,
        durable: bool,
    ) -> Result<PlatformNotary, PlatformError> {
        let keys = Keys::at(data);
        let mut replicas = Vec::new();
        for id in group.values() {
            let key = Arc::new(keys.load(id.as_str())?);
            let bus = network.bus(id.clone(), key.clone());
            let replica =
                services::open_replica(spec, data, id, bus, Arc::clone(clock), Arc::clone(participants), durable)
                    .await?;
            network.register(id.clone(), key, replica.clone());
            replicas.push(replica);
        }
        // In one process the replicas share their fate: none is ever wiped
        // alone, so the first initialises the group (a no-op once it is) and
        // the others learn it from its election. Initialising every replica
        // made those already asked for a vote refuse, with an openraft error
        // in the log of a normal start.
        if let Some(r) = replicas.first() {
            r.initialize(group).await.map_err(|e| PlatformError::service(r.id().as_str(), e))?;
        }
        for _ in 0..500 {
            if replicas.iter().any(|r| r.is_leader()) {
                return Ok(PlatformNotary::Group(replicas));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(PlatformError::Config("the notary group elected no leader within 10 s".into()))
    }

    /// Every second-tier bank's offline desk, its journal in
    /// `DATA/offline/<BANK>` and its reserve DA's key `keys/<BANK>-OFFLINE.key`.
    fn open_offline_desks(&mut self, keys: &Keys, durable: bool) -> Result<(), PlatformError> {
        let banks: Vec<(ParticipantId, dtenge_crypto::PublicKey)> =
            self.spec.nodes().iter().map(|p| (p.id.clone(), p.public_key)).collect();
        for (id, node) in &self.nodes {
            if self.role(id) != Some(Role::Stb) {
                continue;
            }
            let own = format!("{id}-DA");
            let Some(bin) = self.spec.institutions.iter().find(|i| i.key == own).map(|i| i.bin) else {
                continue;
            };
            let (desk, journal) = OfflineDesk::open(
                &self.data.join("offline").join(id.as_str()),
                durable,
                Arc::clone(node),
                keys.load(id.as_str())?,
                keys.get_or_create(&format!("{id}-OFFLINE"))?,
                bin,
                banks.clone(),
                Arc::clone(&self.clock),
            )?;
            self.journals.push(journal);
            let desk = Arc::new(desk);
            node.serve_offline_deposits(&(Arc::clone(&desk) as Arc<dyn dtenge_node::service::OfflineDeposits>));
            self.offline.insert(id.clone(), desk);
        }
        Ok(())
    }

    /// A bank's offline desk.
    pub fn offline_desk(&self, bank: &ParticipantId) -> Option<&Arc<OfflineDesk>> {
        self.offline.get(bank)
    }

    /// A bus speaking as participant `id` (providers, operators, tests).
    pub fn bus_for(&self, id: &str, keys: &Keys) -> Result<Arc<dyn Bus>, PlatformError> {
        Ok(self.network.bus(pid(id)?, Arc::new(keys.load(id)?)))
    }

    /// A bus speaking as participant `id`, with its key from this platform's data directory.
    pub fn bus(&self, id: &str) -> Result<Arc<dyn Bus>, PlatformError> {
        self.bus_for(id, &Keys::at(&self.data))
    }

    /// A participant node.
    pub fn node(&self, id: &str) -> Result<&Arc<NodeService>, PlatformError> {
        self.nodes.get(&pid(id)?).ok_or_else(|| PlatformError::Config(format!("no participant node {id}")))
    }

    /// Participants by role.
    pub fn participants(&self) -> Participants {
        self.spec.directory()
    }

    /// One round of background work everywhere: the oracle settles and
    /// resolves reservations, every node processes notices, expiries and
    /// deliveries. Returns what the nodes did.
    pub async fn tick(&self) -> Vec<String> {
        let mut done = Vec::new();
        if let Err(e) = self.oracle.tick().await {
            done.push(format!("oracle: {e}"));
        }
        for (id, node) in &self.nodes {
            for line in node.tick().await {
                done.push(format!("{id}: {line}"));
            }
        }
        for desk in self.offline.values() {
            done.extend(desk.finish_owed().await);
        }
        done
    }

    /// Stops: makes every journal durable and releases the data directory.
    pub fn close(&self) -> Result<(), PlatformError> {
        self.close_participants()?;
        self.notary.close().map_err(|e| PlatformError::service("notary", e))?;
        self.audit.seal()
    }

    /// [`Self::close`] for an async caller, which stops the notary group's
    /// Raft first ([`PlatformNotary::shut_down`]).
    ///
    /// # Errors
    /// As [`Self::close`].
    pub async fn shut_down(&self) -> Result<(), PlatformError> {
        self.close_participants()?;
        self.notary.shut_down().await.map_err(|e| PlatformError::service("notary", e))?;
        self.audit.seal()
    }

    /// Closes the journals and the nodes' archives.
    fn close_participants(&self) -> Result<(), PlatformError> {
        for journal in &self.journals {
            journal.close().map_err(|e| PlatformError::service("journal", e))?;
        }
        for (id, node) in &self.nodes {
            node.close_archive().map_err(|e| PlatformError::service(id.as_str(), e))?;
        }
        Ok(())
    }

    /// Role of a participant.
    pub fn role(&self, id: &ParticipantId) -> Option<Role> {
        self.spec.participant(id.as_str()).map(|p| p.role)
    }
}

impl Drop for Platform {
    /// Frees the services: the network holds each service, and each
    /// service a bus that holds the network.
    fn drop(&mut self) {
        self.network.shut_down();
    }
}
