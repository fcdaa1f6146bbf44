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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dtenge_net::{Bus, Clock, Evidence, LocalNetwork, Participants, Role};
use dtenge_node::directory::DirectoryService;
use dtenge_node::service::NodeService;
use dtenge_notary::NotaryService;
use dtenge_oracle::service::OracleService;
use dtenge_store::Journal;
use dtenge_types::ParticipantId;

use crate::PlatformError;
use crate::audit_log::AuditLog;
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
    pub notary: Arc<NotaryService>,
    /// The oracle.
    pub oracle: Arc<OracleService>,
    /// The DA directory.
    pub directory: Arc<DirectoryService>,
    /// Participant nodes by id.
    pub nodes: BTreeMap<ParticipantId, Arc<NodeService>>,
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
        let mut order: Vec<ParticipantId> =
            [ids::NOTARY, ids::DIRECTORY, ids::ORACLE].iter().map(|s| pid(s)).collect::<Result<_, _>>()?;
        order.extend(spec.nodes().iter().map(|p| p.id.clone()));
        let (mut notary, mut oracle, mut directory) = (None, None, None);
        let mut nodes = BTreeMap::new();
        for id in order {
            let key = Arc::new(keys.load(id.as_str())?);
            let bus = network.bus(id.clone(), key.clone());
            let (service, journal) =
                services::open(&spec, data, &id, bus, Arc::clone(&clock), Arc::clone(&participants), options.durable)?;
            journals.push(journal);
            network.register(id.clone(), key, service.handler());
            match service {
                Service::Notary(s) => notary = Some(s),
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
        let platform = Platform {
            spec,
            data: data.to_path_buf(),
            clock,
            network,
            notary: notary.ok_or_else(|| missing("notary"))?,
            oracle: oracle.ok_or_else(|| missing("oracle"))?,
            directory: directory.ok_or_else(|| missing("directory"))?,
            nodes,
            journals,
            audit,
        };
        for node in platform.nodes.values() {
            let bus = platform.bus(node.id().as_str())?;
            services::bootstrap_node(&platform.spec, data, node, &bus).await?;
        }
        Ok(platform)
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
        done
    }

    /// Stops: makes every journal durable and releases the data directory.
    pub fn close(&self) -> Result<(), PlatformError> {
        for journal in &self.journals {
            journal.close().map_err(|e| PlatformError::service("journal", e))?;
        }
        for (id, node) in &self.nodes {
            node.close_archive().map_err(|e| PlatformError::service(id.as_str(), e))?;
        }
        self.notary.close().map_err(|e| PlatformError::service("notary", e))?;
        self.audit.seal()
    }

    /// Role of a participant.
    pub fn role(&self, id: &ParticipantId) -> Option<Role> {
        self.spec.participant(id.as_str()).map(|p| p.role)
    }
}
