//! Every service in one process: the default way to run the platform.
//!
//! ```text
//!  DATA/
//!    platform.json   keys/          participants, keys, ledger parameters
//!    notary/ oracle/ directory/     one journal each
//!    nodes/NBK/ nodes/STB1/ …       one journal per participant node
//!    evidence/                      signed envelopes
//! ```
//!
//! Services are wired through [`LocalNetwork`]: each gets a bus bound to its
//! own identity and key, so every message is signed and checked exactly as
//! over the network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dtenge_net::{Bus, Clock, Evidence, LocalNetwork, Participants, Role};
use dtenge_node::accounts::{Holder, KycState};
use dtenge_node::directory::DirectoryService;
use dtenge_node::service::{NodeConfig, NodeService};
use dtenge_notary::NotaryService;
use dtenge_oracle::service::{OracleRequest, OracleService};
use dtenge_store::{Journal, JournalConfig, Recovery, SyncMode};
use dtenge_types::ParticipantId;

use crate::PlatformError;
use crate::evidence::JournalEvidence;
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
}

pub(crate) fn open_journal(dir: &Path, durable: bool) -> Result<(Journal, Recovery), PlatformError> {
    let mut config = JournalConfig::new(dir);
    config.sync = if durable { SyncMode::Fsync } else { SyncMode::None };
    Journal::open(config).map_err(|e| PlatformError::service(dir.display().to_string(), e))
}

fn pid(s: &str) -> Result<ParticipantId, PlatformError> {
    ParticipantId::new(s).map_err(|e| PlatformError::Config(e.to_string()))
}

impl Platform {
    /// Opens (or creates) the platform in `data`.
    pub async fn open(data: &Path, clock: Arc<dyn Clock>, options: PlatformOptions) -> Result<Platform, PlatformError> {
        let spec = PlatformSpec::load_or_create(data, &BTreeMap::new())?;
        let keys = Keys::at(data);
        let participants = Arc::new(spec.directory());
        let mut journals = Vec::new();
        let (evidence_journal, _) = open_journal(&data.join("evidence"), false)?;
        journals.push(evidence_journal.clone());
        let evidence: Arc<dyn Evidence> = Arc::new(JournalEvidence::new(evidence_journal));
        let network = LocalNetwork::new(Arc::clone(&participants), Arc::clone(&clock), evidence);

        let key_of =
            |id: &str| -> Result<Arc<dtenge_crypto::SecretKey>, PlatformError> { Ok(Arc::new(keys.load(id)?)) };

        // Notary.
        let (journal, recovery) = open_journal(&data.join("notary"), options.durable)?;
        journals.push(journal.clone());
        let notary_key = key_of(ids::NOTARY)?;
        let notary = NotaryService::recover(
            notary_key.clone(),
            Arc::clone(&participants),
            Arc::clone(&clock),
            journal,
            recovery,
        )
        .map_err(|e| PlatformError::service(ids::NOTARY, e))?;
        network.register(pid(ids::NOTARY)?, notary_key, notary.clone());

        // Directory.
        let (journal, recovery) = open_journal(&data.join("directory"), options.durable)?;
        journals.push(journal.clone());
        let directory = DirectoryService::recover(Arc::clone(&participants), journal, recovery)
            .map_err(|e| PlatformError::service(ids::DIRECTORY, e))?;
        network.register(pid(ids::DIRECTORY)?, key_of(ids::DIRECTORY)?, directory.clone());

        // Oracle.
        let (journal, recovery) = open_journal(&data.join("oracle"), options.durable)?;
        journals.push(journal.clone());
        let oracle_key = key_of(ids::ORACLE)?;
        let oracle_bus = network.bus(pid(ids::ORACLE)?, oracle_key.clone());
        let oracle = OracleService::recover(
            oracle_key.clone(),
            Arc::clone(&participants),
            Arc::clone(&clock),
            oracle_bus,
            pid(ids::NOTARY)?,
            journal,
            recovery,
        )
        .map_err(|e| PlatformError::service(ids::ORACLE, e))?;
        network.register(pid(ids::ORACLE)?, oracle_key, oracle.clone());

        // Participant nodes.
        let mut nodes = BTreeMap::new();
        for info in spec.nodes() {
            let dir = data.join("nodes").join(info.id.as_str());
            let (journal, recovery) = open_journal(&dir, options.durable)?;
            journals.push(journal.clone());
            let key = key_of(info.id.as_str())?;
            let bus = network.bus(info.id.clone(), key.clone());
            let config = NodeConfig {
                id: info.id.clone(),
                role: info.role,
                notary: pid(ids::NOTARY)?,
                oracle: pid(ids::ORACLE)?,
                directory: pid(ids::DIRECTORY)?,
                params: spec.params.clone(),
            };
            let node = NodeService::recover(
                config,
                key.clone(),
                bus,
                Arc::clone(&clock),
                Arc::clone(&participants),
                journal,
                recovery,
            )
            .map_err(|e| PlatformError::service(info.id.as_str(), e))?;
            network.register(info.id.clone(), key, node.clone());
            nodes.insert(info.id.clone(), node);
        }

        let platform =
            Platform { spec, data: data.to_path_buf(), clock, network, notary, oracle, directory, nodes, journals };
        platform.bootstrap(&keys).await?;
        Ok(platform)
    }

    /// Opens institutions' own DAs and registers event providers (idempotent).
    async fn bootstrap(&self, keys: &Keys) -> Result<(), PlatformError> {
        for inst in &self.spec.institutions {
            let node = self.node(inst.host.as_str())?;
            let holder = Holder { iin_bin: inst.bin, name: inst.name.clone(), kind: inst.kind };
            node.open_account_with_key(holder, keys.load(&inst.key)?, KycState::Verified)
                .await
                .map_err(|e| PlatformError::service(inst.host.as_str(), e))?;
        }
        let nbk_bus = self.bus_for(ids::NBK, keys)?;
        for provider in &self.spec.providers {
            let name = self.spec.participant(provider.id.as_str()).map(|p| p.name.clone()).unwrap_or_default();
            let request = OracleRequest::RegisterProvider {
                id: provider.id.clone(),
                name,
                registries: provider.registries.clone(),
            };
            let body = borsh::to_vec(&request).map_err(|e| PlatformError::service(ids::ORACLE, e))?;
            nbk_bus.call(&pid(ids::ORACLE)?, body).await.map_err(|e| PlatformError::service(ids::ORACLE, e))?;
        }
        Ok(())
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
        Ok(())
    }

    /// Role of a participant.
    pub fn role(&self, id: &ParticipantId) -> Option<Role> {
        self.spec.participant(id.as_str()).map(|p| p.role)
    }
}
