//! Deterministic simulation of the networked services.
//!
//! One seed drives everything: the participants' keys, the clients, the
//! workload (payments, holds and their events, redemptions, double-spend
//! attempts, resubmissions, linking and unlinking bank accounts), the
//! network's faults (loss of requests and of answers, duplicates, held-back
//! messages delivered late and out of order, cut links between nodes,
//! notary and oracle) and the service restarts from their journals. At the
//! end every link is healed, held messages are delivered, retries and
//! recovery run, and the platform is audited ([`audit`]).
//!
//! ```text
//!  seed ─► SplitMix64 ─┬─► workload step (one operation, awaited to the end)
//!                      ├─► SimPlan::fate(from, to) per request ─► FaultyNetwork
//!                      └─► clock: latency per message, timeouts, jumps
//!  every step and every fate ─► trace ─► digest (same seed ⇒ same digest)
//! ```
//!
//! Why this design rather than `turmoil` or tokio's paused time: the
//! services' journals acknowledge from a writer thread, so a runtime with
//! auto-advancing virtual time would jump timers while a journal syncs, and
//! concurrent tasks would interleave by OS scheduling. Here one task runs
//! one operation at a time, every message's fate comes from the seeded
//! generator in call order, and time is a [`ManualClock`] moved only by the
//! simulation: latency per message, a timeout's cost, and explicit jumps.
//! Reordering comes from held-back messages delivered after newer ones;
//! concurrency between operations is covered by the platform's concurrency
//! tests and `dtenge chaos`, not here.
//!
//! With `notary_replicas` > 1 the notary is a replicated group (openraft)
//! over the same faulty network: its replicas' own messages (appends, votes,
//! snapshots) and the nodes' calls to them are lost, their answers lost, or
//! duplicated, with rates of [`GroupFaultRates`]; a seeded step may isolate
//! one replica from the others (a minority partition) until a heal; restarts
//! pick replicas too. openraft's timers (heartbeats, elections) run on real
//! time, so *when* its messages go and who leads is not seeded: their fates
//! come from a second generator seeded from the seed, take no simulated time
//! and are not traced; the trace holds what is seeded (the workload, the
//! nodes' other messages, cuts, isolations, restarts) and the outcomes, which
//! can depend on who leads: with a group a seed is not always replayed to the
//! same digest (docs/reliability-sim.md). At the end the replicas must agree
//! (same applied index, same state digest) before the audit reads one of them.
//!
//! Invariant: the simulation reaches the services only through their public
//! operations and the message interface (the same `Bus` the services use);
//! it reads their state only to audit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use dtenge_crypto::SecretKey;
use dtenge_net::{
    Bus, BusExt, Clock, Fate, FaultPlan, FaultStats, FaultyNetwork, LocalNetwork, ManualClock, NoEvidence, Participants,
};
use dtenge_node::accounts::{AccountId, Holder, HolderKind, KycState};
use dtenge_node::directory::DirectoryService;
use dtenge_node::service::{NodeService, PayTo};
use dtenge_node::state::{Reason, Status};
use dtenge_notary::{
    NotariseBatch, NotaryAnswer, NotaryClient, NotaryRejection, NotaryReplica, NotaryRequest, NotaryService,
    NotaryState, TxClaim, Verdict,
};
use dtenge_oracle::model::{EventKind, EventSpec};
use dtenge_oracle::service::{OracleAnswer, OracleRequest, OracleService};
use dtenge_store::Journal;
use dtenge_types::{
    Address, Amount, CbsRef, Command, Currency, EventId, IinBin, ParticipantId, TimeWindow, Timestamp, Token,
    Transaction, TxBody, TxId,
};

use crate::services::{self, Service, pid};
use crate::spec::{Keys, PlatformSpec, ids};
use crate::{PlatformError, ledger_audit};

/// The simulation's start time (2026-01-01).
pub const START: Timestamp = Timestamp(1_767_225_600_000);

/// A small, fast, seedable generator (SplitMix64): the only randomness.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// An index into a collection of `n` items.
    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// 32 random bytes (for keys).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// How often each fault happens, per mille of requests.
#[derive(Debug, Clone)]
pub struct FaultRates {
    /// Requests lost.
    pub lose_request: u64,
    /// Answers lost after the callee acted.
    pub lose_answer: u64,
    /// Requests delivered twice.
    pub duplicate: u64,
    /// Requests held back and delivered late.
    pub delay: u64,
}

impl Default for FaultRates {
    fn default() -> Self {
        FaultRates { lose_request: 60, lose_answer: 60, duplicate: 60, delay: 60 }
    }
}

/// How often a replicated notary group's own messages (and the nodes' calls
/// to its replicas) meet each fault, per mille.
#[derive(Debug, Clone)]
pub struct GroupFaultRates {
    /// Requests lost.
    pub lose_request: u64,
    /// Answers lost after the callee acted.
    pub lose_answer: u64,
    /// Requests delivered twice.
    pub duplicate: u64,
}

impl Default for GroupFaultRates {
    fn default() -> Self {
        GroupFaultRates { lose_request: 20, lose_answer: 20, duplicate: 20 }
    }
}

/// What happened to the group's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFaultStats {
    /// Messages to or from a replica that met no fault.
    pub delivered: u64,
    /// Refused on a cut link (an isolated replica, a node cut from the notary).
    pub cut: u64,
    /// Requests lost.
    pub lost_requests: u64,
    /// Answers lost.
    pub lost_answers: u64,
    /// Requests delivered twice.
    pub duplicated: u64,
    /// Replicas isolated from the others by a seeded step.
    pub isolations: u64,
    /// Replicas restarted by a seeded step.
    pub restarts: u64,
}

/// One simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Everything follows from it.
    pub seed: u64,
    /// Workload operations.
    pub steps: usize,
    /// Clients opened at each second-tier bank.
    pub clients_per_bank: usize,
    /// Fault rates.
    pub faults: FaultRates,
    /// Replicas of the notary (1: a single notary; 3, 5 …: a group).
    pub notary_replicas: u64,
    /// Fault rates of the group's messages.
    pub group_faults: GroupFaultRates,
}

impl SimConfig {
    /// The suite's default size for `seed`.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            steps: 200,
            clients_per_bank: 3,
            faults: FaultRates::default(),
            notary_replicas: 1,
            group_faults: GroupFaultRates::default(),
        }
    }
}

/// What a run did, and the digest of its trace.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Hash of every trace line (operations, outcomes, fates, final state).
    pub digest: String,
    /// Number of trace lines.
    pub trace_lines: usize,
    /// The trace itself (for replaying a failing seed by eye).
    pub trace: Vec<String>,
    /// Counts of operations by kind and outcome (`"pay ok"`, `"restart NOTARY"`, …).
    pub counts: BTreeMap<String, u64>,
    /// What the network did.
    pub network: FaultStats,
    /// Payments acknowledged as `Success` to the client.
    pub acknowledged: usize,
    /// Transactions the notary committed.
    pub committed: u64,
    /// What happened to a notary group's messages (zero for a single notary).
    pub group: GroupFaultStats,
}

/// A run that broke an invariant (or could not run).
#[derive(Debug, Clone, thiserror::Error)]
#[error("simulation seed {seed} failed (replay with DTENGE_SIM_SEED={seed}):\n{}", .problems.join("\n"))]
pub struct SimFailure {
    /// The seed to replay.
    pub seed: u64,
    /// What went wrong.
    pub problems: Vec<String>,
    /// The trace up to the failure (last lines are the most useful).
    pub trace_tail: Vec<String>,
}

/// The seeded fault plan: cut links, per-request fates, latency on the clock.
struct SimPlan {
    rng: Mutex<SimRng>,
    clock: Arc<ManualClock>,
    rates: FaultRates,
    cuts: Mutex<BTreeSet<(ParticipantId, ParticipantId)>>,
    enabled: std::sync::atomic::AtomicBool,
    trace: Arc<Trace>,
    /// The notary group's replicas (empty: a single notary).
    replicas: BTreeSet<ParticipantId>,
    /// Fates of messages to or from a replica (see the module docs).
    group_rng: Mutex<SimRng>,
    group_rates: GroupFaultRates,
    group_stats: Mutex<GroupFaultStats>,
}

/// Milliseconds a caller waits before giving up on a lost message.
const TIMEOUT_COST_MS: u64 = 2_000;

fn link(a: &ParticipantId, b: &ParticipantId) -> (ParticipantId, ParticipantId) {
    if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) }
}

impl SimPlan {
    /// Whether the link is cut. A node's link to the notary stands for its
    /// links to every replica of a group (cut together, so that whether a
    /// node reaches the notary does not depend on who leads).
    fn is_cut(&self, from: &ParticipantId, to: &ParticipantId) -> bool {
        let cuts = self.cuts.lock().unwrap_or_else(PoisonError::into_inner);
        if cuts.contains(&link(from, to)) {
            return true;
        }
        let (a, b) = (self.replicas.contains(from), self.replicas.contains(to));
        match (pid(ids::NOTARY), a, b) {
            (Ok(notary), false, true) => cuts.contains(&link(from, &notary)),
            (Ok(notary), true, false) => cuts.contains(&link(&notary, to)),
            _ => false,
        }
    }

    fn group_count(&self, f: impl FnOnce(&mut GroupFaultStats)) {
        f(&mut self.group_stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The fate of a message to or from a replica: from the group's own
    /// generator, no simulated time, not traced.
    fn group_fate(&self) -> Fate {
        let r = self.group_rng.lock().unwrap_or_else(PoisonError::into_inner).below(1000);
        let f = &self.group_rates;
        let fate = if r < f.lose_request {
            Fate::LoseRequest
        } else if r < f.lose_request + f.lose_answer {
            Fate::LoseAnswer
        } else if r < f.lose_request + f.lose_answer + f.duplicate {
            Fate::Duplicate
        } else {
            Fate::Deliver
        };
        self.group_count(|s| match fate {
            Fate::LoseRequest => s.lost_requests += 1,
            Fate::LoseAnswer => s.lost_answers += 1,
            Fate::Duplicate => s.duplicated += 1,
            _ => s.delivered += 1,
        });
        fate
    }
}

impl FaultPlan for SimPlan {
    fn fate(&self, from: &ParticipantId, to: &ParticipantId) -> Fate {
        let group = self.replicas.contains(from) || self.replicas.contains(to);
        if self.is_cut(from, to) {
            if group {
                self.group_count(|s| s.cut += 1);
            } else {
                self.trace.line(format!("  {from}→{to} cut"));
            }
            return Fate::Cut;
        }
        if !self.enabled.load(std::sync::atomic::Ordering::SeqCst) {
            return Fate::Deliver;
        }
        if group {
            return self.group_fate();
        }
        let (fate, latency) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            let latency = 1 + rng.below(40);
            let r = rng.below(1000);
            let f = &self.rates;
            let fate = if r < f.lose_request {
                Fate::LoseRequest
            } else if r < f.lose_request + f.lose_answer {
                Fate::LoseAnswer
            } else if r < f.lose_request + f.lose_answer + f.duplicate {
                Fate::Duplicate
            } else if r < f.lose_request + f.lose_answer + f.duplicate + f.delay {
                Fate::Delay
            } else {
                Fate::Deliver
            };
            (fate, latency)
        };
        self.clock.advance(latency);
        if matches!(fate, Fate::LoseRequest | Fate::LoseAnswer | Fate::Delay) {
            self.clock.advance(TIMEOUT_COST_MS);
        }
        if fate != Fate::Deliver {
            self.trace.line(format!("  {from}→{to} {fate:?}"));
        }
        fate
    }

    fn link_up(&self, from: &ParticipantId, to: &ParticipantId) -> bool {
        !self.is_cut(from, to)
    }
}

/// The run's trace: lines in order.
#[derive(Default)]
struct Trace {
    lines: Mutex<Vec<String>>,
}

impl Trace {
    fn line(&self, line: String) {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).push(line);
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The platform under simulation: every service over one [`FaultyNetwork`].
struct SimPlatform {
    data: PathBuf,
    spec: PlatformSpec,
    clock: Arc<ManualClock>,
    participants: Arc<Participants>,
    net: Arc<FaultyNetwork>,
    plan: Arc<SimPlan>,
    /// The single notary (`None`: a group).
    notary: Option<Arc<NotaryService>>,
    /// The group's running replicas.
    replicas: BTreeMap<ParticipantId, Arc<NotaryReplica>>,
    oracle: Arc<OracleService>,
    nodes: BTreeMap<ParticipantId, Arc<NodeService>>,
    _directory: Arc<DirectoryService>,
    journals: BTreeMap<ParticipantId, Journal>,
}

impl Drop for SimPlatform {
    /// Frees the services, which the network and their buses hold in a
    /// circle (see [`Platform`](crate::Platform)'s drop).
    fn drop(&mut self) {
        self.net.network().shut_down();
    }
}

/// Opens `id`'s service from its journal with a bus through the faults and
/// registers its handler.
fn open_service(
    spec: &PlatformSpec,
    data: &Path,
    net: &Arc<FaultyNetwork>,
    clock: &Arc<ManualClock>,
    participants: &Arc<Participants>,
    id: &ParticipantId,
) -> Result<(Service, Journal), PlatformError> {
    let key = Arc::new(Keys::at(data).load(id.as_str())?);
    let bus = net.bus(id.clone(), key.clone());
    let clock: Arc<dyn Clock> = clock.clone();
    let (service, journal) = services::open(spec, data, id, bus, clock, Arc::clone(participants), false)?;
    net.network().register(id.clone(), key, service.handler());
    Ok((service, journal))
}

/// Writes every key the demo platform needs, derived from `rng`, so that
/// addresses, transaction ids and signatures repeat from run to run.
fn seed_keys(data: &Path, rng: &mut SimRng, notary_replicas: u64) -> Result<(), PlatformError> {
    // The names of the demo's keys: ask the demo itself in a scratch directory.
    let scratch = data.join("scratch-keys");
    PlatformSpec::demo_with(&scratch, &BTreeMap::new(), notary_replicas)?;
    let mut names: Vec<String> = std::fs::read_dir(scratch.join("keys"))
        .map_err(|e| PlatformError::io(&scratch, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".key")).map(str::to_string))
        .collect();
    names.sort();
    std::fs::remove_dir_all(&scratch).map_err(|e| PlatformError::io(&scratch, e))?;
    let dir = data.join("keys");
    std::fs::create_dir_all(&dir).map_err(|e| PlatformError::io(&dir, e))?;
    for name in names {
        let path = dir.join(format!("{name}.key"));
        std::fs::write(&path, hex::encode(rng.bytes32())).map_err(|e| PlatformError::io(&path, e))?;
    }
    Ok(())
}

impl SimPlatform {
    async fn open(data: &Path, rng: &mut SimRng, config: &SimConfig, trace: Arc<Trace>) -> Result<Self, PlatformError> {
        seed_keys(data, rng, config.notary_replicas)?;
        let spec = if config.notary_replicas > 1 {
            let spec = PlatformSpec::demo_with(data, &BTreeMap::new(), config.notary_replicas)?;
            spec.save(data)?;
            spec
        } else {
            PlatformSpec::load_or_create(data, &BTreeMap::new())?
        };
        let group = spec.notary_group();
        let participants = Arc::new(spec.directory());
        let clock = ManualClock::new(START);
        let network = LocalNetwork::new(Arc::clone(&participants), clock.clone(), Arc::new(NoEvidence));
        let plan_seed = rng.next_u64();
        let plan = Arc::new(SimPlan {
            rng: Mutex::new(SimRng::new(plan_seed)),
            clock: clock.clone(),
            rates: config.faults.clone(),
            cuts: Mutex::default(),
            enabled: std::sync::atomic::AtomicBool::new(false),
            trace,
            replicas: group.values().cloned().collect(),
            group_rng: Mutex::new(SimRng::new(plan_seed ^ 0x6772_6f75_7020_6661)),
            group_rates: config.group_faults.clone(),
            group_stats: Mutex::default(),
        });
        let net = FaultyNetwork::new(network, plan.clone());
        let mut journals = BTreeMap::new();
        let mut open = |id: &str| -> Result<Service, PlatformError> {
            let id = pid(id)?;
            let (service, journal) = open_service(&spec, data, &net, &clock, &participants, &id)?;
            journals.insert(id, journal);
            Ok(service)
        };
        let notary = if group.is_empty() {
            match open(ids::NOTARY)? {
                Service::Notary(notary) => Some(notary),
                _ => return Err(PlatformError::Config("the notary has another role".into())),
            }
        } else {
            None
        };
        let (Service::Directory(directory), Service::Oracle(oracle)) = (open(ids::DIRECTORY)?, open(ids::ORACLE)?)
        else {
            return Err(PlatformError::Config("directory and oracle have other roles".into()));
        };
        let mut sim = SimPlatform {
            data: data.to_path_buf(),
            spec,
            clock,
            participants,
            net,
            plan,
            notary,
            replicas: BTreeMap::new(),
            oracle,
            nodes: BTreeMap::new(),
            _directory: directory,
            journals,
        };
        for id in group.values() {
            sim.start_replica(id).await?;
        }
        for replica in sim.replicas.values() {
            replica.initialize(&group).await.map_err(|e| PlatformError::service(replica.id().as_str(), e))?;
        }
        let nodes: Vec<ParticipantId> = sim.spec.nodes().iter().map(|p| p.id.clone()).collect();
        for id in nodes {
            sim.start(&id)?;
        }
        for node in sim.nodes.values() {
            let bus = sim.bus(node.id().as_str())?;
            services::bootstrap_node(&sim.spec, data, node, &bus).await?;
        }
        Ok(sim)
    }

    /// Opens `id`'s service from its journal and registers its handler.
    fn start(&mut self, id: &ParticipantId) -> Result<(), PlatformError> {
        let (service, journal) = open_service(&self.spec, &self.data, &self.net, &self.clock, &self.participants, id)?;
        self.journals.insert(id.clone(), journal);
        match service {
            Service::Notary(s) => self.notary = Some(s),
            Service::Replica(_) => return Err(PlatformError::Config("a replica starts with `start_replica`".into())),
            Service::Oracle(s) => self.oracle = s,
            Service::Directory(s) => self._directory = s,
            Service::Node(s) => {
                self.nodes.insert(id.clone(), s);
            }
        }
        Ok(())
    }

    /// Stops `id`'s service (its journal closed, its memory dropped) and
    /// starts it again from the journal.
    fn restart(&mut self, id: &ParticipantId) -> Result<(), PlatformError> {
        if let Some(journal) = self.journals.remove(id) {
            journal.close().map_err(|e| PlatformError::service(id.as_str(), e))?;
        }
        self.start(id)
    }

    /// Opens replica `id` of the notary group from its storage and registers it.
    async fn start_replica(&mut self, id: &ParticipantId) -> Result<(), PlatformError> {
        let key = Arc::new(Keys::at(&self.data).load(id.as_str())?);
        let bus = self.net.bus(id.clone(), key.clone());
        let clock: Arc<dyn Clock> = self.clock.clone();
        let replica =
            services::open_replica(&self.spec, &self.data, id, bus, clock, Arc::clone(&self.participants), false)
                .await?;
        self.net.network().register(id.clone(), key, replica.clone());
        self.replicas.insert(id.clone(), replica);
        Ok(())
    }

    /// Stops replica `id` (openraft stopped, its stores closed) and starts
    /// it again from what its stores kept.
    async fn restart_replica(&mut self, id: &ParticipantId) -> Result<(), PlatformError> {
        if let Some(replica) = self.replicas.remove(id) {
            replica.shutdown().await.map_err(|e| PlatformError::service(id.as_str(), e))?;
        }
        self.start_replica(id).await
    }

    /// Stops every replica of the group.
    async fn stop_group(&mut self) {
        for (_, replica) in std::mem::take(&mut self.replicas) {
            let _ = replica.shutdown().await;
        }
    }

    /// The notary's state: the single notary's, or the replica that applied
    /// the most (after settling, every replica's is the same).
    fn notary_state(&self) -> NotaryState {
        match &self.notary {
            Some(notary) => notary.state_copy(),
            None => self
                .replicas
                .values()
                .max_by_key(|r| r.applied_index())
                .map(|r| r.with_state(|s| s.engine.clone()))
                .unwrap_or_default(),
        }
    }

    /// Waits (real time: openraft's) until every replica has applied the
    /// same entries to the same state; what differs otherwise.
    async fn group_agrees(&self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..300 {
            let seen: Vec<(u64, dtenge_crypto::Digest)> =
                self.replicas.values().map(|r| (r.applied_index(), r.state_digest())).collect();
            if seen.windows(2).all(|w| w[0] == w[1]) {
                return Ok(());
            }
            last = self
                .replicas
                .values()
                .zip(&seen)
                .map(|(r, (applied, digest))| format!("{}: applied {applied}, digest {}", r.id(), digest.short()))
                .collect::<Vec<_>>()
                .join("; ");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(format!("the notary replicas do not agree: {last}"))
    }

    /// A bus speaking as `id` through the faults.
    fn bus(&self, id: &str) -> Result<Arc<dyn Bus>, PlatformError> {
        Ok(self.net.bus(pid(id)?, Arc::new(Keys::at(&self.data).load(id)?)))
    }

    fn node(&self, id: &str) -> Result<Arc<NodeService>, PlatformError> {
        self.nodes.get(&pid(id)?).cloned().ok_or_else(|| PlatformError::Config(format!("no node {id}")))
    }

    async fn tick(&self) {
        let _ = self.oracle.tick().await;
        for node in self.nodes.values() {
            node.tick().await;
        }
    }

    fn close(&self) {
        for journal in self.journals.values() {
            let _ = journal.close();
        }
    }
}

/// A client DA in the simulation.
#[derive(Debug, Clone)]
struct Client {
    label: String,
    node: ParticipantId,
    account: AccountId,
    address: Address,
}

/// An event registered for a hold.
#[derive(Debug, Clone)]
struct HoldEvent {
    id: EventId,
    provider: &'static str,
    held: bool,
    reported: bool,
}

fn holder(n: u16, kind: HolderKind) -> Result<Holder, PlatformError> {
    let fifth = if kind == HolderKind::Individual { 0 } else { 4 };
    let [hi, lo] = [u8::try_from(n / 10 % 10).unwrap_or(0), u8::try_from(n % 10).unwrap_or(0)];
    let hundreds = u8::try_from(n / 100 % 10).unwrap_or(0);
    let iin = (0..10u8)
        .find_map(|b| IinBin::with_check_digit(&[8, 8, 0, 1, fifth, 1, 3, hundreds, b, hi, lo]))
        .ok_or_else(|| PlatformError::Config(format!("no IIN for holder {n}")))?;
    Ok(Holder { iin_bin: iin, name: format!("Sim holder {n}"), kind })
}

/// The bank account a client's DA is linked to.
const IBAN: &str = "KZ86125KZT5004100100";

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap_or(Amount::ZERO)
}

/// The workload driver: the platform, the clients, what was acknowledged.
struct Sim {
    p: SimPlatform,
    rng: SimRng,
    trace: Arc<Trace>,
    counts: BTreeMap<String, u64>,
    clients: Vec<Client>,
    agency: Client,
    events: Vec<HoldEvent>,
    /// Payments acknowledged `Success`: (tx, payer node).
    acknowledged: Vec<(TxId, ParticipantId)>,
    /// Issues and redemptions attempted: (tx, amount, is issue).
    supply_changes: Vec<(TxId, Amount, bool)>,
    /// Clients the stablecoin issuer paid (who may pay it back).
    coin_holders: Vec<Client>,
    /// Clients whose DA is linked to a bank account.
    linked: BTreeSet<AccountId>,
    /// The client a payment went to last (likelier than any other to be
    /// leased to its payer's bank).
    last_payee: Option<Client>,
    problems: Vec<String>,
}

impl Sim {
    /// Counts an outcome; amounts and ids are dropped from the key so like outcomes add up.
    fn count(&mut self, what: impl Into<String>) {
        let what: String = what.into();
        let words: Vec<&str> = what
            .split(' ')
            .map(|w| if w.len() >= 16 && w.chars().all(|c| c.is_ascii_hexdigit()) { "…" } else { w })
            .collect();
        let key: String = words.join(" ").chars().filter(|c| !c.is_ascii_digit() && *c != ',').take(60).collect();
        *self.counts.entry(key).or_default() += 1;
    }

    fn log(&self, line: String) {
        self.trace.line(line);
    }

    fn outcome_class(result: &Result<dtenge_node::service::TxOutcome, dtenge_node::NodeError>) -> String {
        match result {
            Ok(o) => match &o.status {
                Status::Success => "ok".into(),
                Status::UnderReview => "under-review".into(),
                Status::Rejected { reason: Reason { code: Some(code), .. } } => format!("rejected: {code}"),
                other => format!("{other:?}"),
            },
            Err(e) => match e.code() {
                dtenge_node::RefusalCode::InsufficientFunds => "refused: insufficient funds".into(),
                code if code.is_transient() => "unavailable".into(),
                code => format!("refused: {code}"),
            },
        }
    }

    /// Funds, clients and events, with faults off.
    async fn setup(&mut self, clients_per_bank: usize) -> Result<(), PlatformError> {
        let nbk_account = self.institution(ids::NBK_DA, "nbk")?.account;
        let nbk = self.p.node(ids::NBK)?;
        let fail = |e: dtenge_node::NodeError| PlatformError::service("setup", e);
        let mut n = 0u16;
        for bank in ids::STBS {
            let node = self.p.node(bank)?;
            for _ in 0..clients_per_bank {
                n += 1;
                let key = SecretKey::from_seed(self.rng.bytes32());
                let account = node
                    .open_account_with_key(holder(n, HolderKind::Individual)?, key, KycState::Verified)
                    .await
                    .map_err(fail)?;
                let amount = dt(200 + self.rng.below(800));
                let issued = nbk
                    .issue(&nbk_account, PayTo { address: account.address, amount }, cbs_ref(&mut self.rng)?)
                    .await
                    .map_err(fail)?;
                self.supply_changes.push((issued.tx, amount, true));
                if self.rng.chance(500) {
                    node.set_profile(&account.id, None, Some(Some(IBAN.into()))).await.map_err(fail)?;
                    self.linked.insert(account.id.clone());
                }
                self.clients.push(Client {
                    label: format!("c{n}@{bank}"),
                    node: node.id().clone(),
                    account: account.id,
                    address: account.address,
                });
            }
        }
        let issued = nbk
            .issue(&nbk_account, PayTo { address: self.agency.address, amount: dt(100_000) }, cbs_ref(&mut self.rng)?)
            .await
            .map_err(fail)?;
        self.supply_changes.push((issued.tx, dt(100_000), true));
        // DT for the stablecoin issuer to mint against.
        let coin_da = self.institution(ids::COIN_ISSUER_DA, "coinco")?;
        let issued = nbk
            .issue(&nbk_account, PayTo { address: coin_da.address, amount: dt(10_000) }, cbs_ref(&mut self.rng)?)
            .await
            .map_err(fail)?;
        self.supply_changes.push((issued.tx, dt(10_000), true));
        // Events the agency may hold funds for, to a random client, some short-lived.
        for (i, provider) in ["IFA", "SSIS", "EGOV", "IFA", "SSIS", "EGOV"].into_iter().enumerate() {
            let recipient = self.clients[self.rng.index(self.clients.len())].clone();
            let id = EventId::new(format!("SIM-EV-{i}")).map_err(|e| PlatformError::Config(e.to_string()))?;
            let lifetime = if self.rng.chance(500) { 5 * 60_000 } else { Timestamp::DAY_MS };
            let spec = EventSpec {
                id: id.clone(),
                kind: EventKind::Single,
                sender: Some(self.agency.address),
                sender_node: Some(self.agency.node.clone()),
                recipient: recipient.address,
                recipient_node: recipient.node.clone(),
                amount: Some(dt(100 + self.rng.below(900))),
                valid_until: Timestamp(self.p.clock.now().millis() + lifetime),
            };
            let answer = self.provider_call(provider, OracleRequest::RegisterEvent(spec)).await;
            if !matches!(answer, Ok(OracleAnswer::Done)) {
                return Err(PlatformError::Config(format!("event {id} not registered: {answer:?}")));
            }
            self.events.push(HoldEvent { id, provider, held: false, reported: false });
        }
        self.p.tick().await;
        Ok(())
    }

    async fn provider_call(&self, provider: &str, request: OracleRequest) -> Result<OracleAnswer, String> {
        let bus = self.p.bus(provider).map_err(|e| e.to_string())?;
        let oracle = pid(ids::ORACLE).map_err(|e| e.to_string())?;
        bus.request(&oracle, &request).await.map_err(|e| e.to_string())
    }

    async fn step(&mut self, step: usize) -> Result<(), PlatformError> {
        let roll = self.rng.below(100);
        self.log(format!("#{step} t={} roll={roll}", self.p.clock.now().millis()));
        match roll {
            0..=36 => self.pay().await?,
            37..=39 => self.stablecoin().await?,
            40..=44 => self.hold().await?,
            45..=49 => self.report_event().await,
            50..=53 => self.double_spend().await?,
            54..=57 => self.resubmit().await?,
            58..=63 => self.cut_link()?,
            64..=68 => self.heal_link(),
            69..=71 => self.restart().await?,
            72..=78 => self.deliver_held().await,
            79..=86 => {
                self.count("tick");
                self.p.tick().await;
            }
            88..=92 => self.advance_clock(),
            87 | 93 => self.link().await?,
            _ => self.redeem().await?,
        }
        Ok(())
    }

    async fn pay(&mut self) -> Result<(), PlatformError> {
        let from = self.clients[self.rng.index(self.clients.len())].clone();
        let mut to = self.clients[self.rng.index(self.clients.len())].clone();
        if to.address == from.address {
            to = self.agency.clone();
        }
        let amount = dt(1 + self.rng.below(120));
        let node = self.p.node(from.node.as_str())?;
        let result = node.pay(&from.account, &[PayTo { address: to.address, amount }], None).await;
        let class = Self::outcome_class(&result);
        if to.node != from.node && to.address != self.agency.address {
            self.last_payee = Some(to.clone());
        }
        if let Ok(o) = &result {
            if o.status == Status::Success {
                self.acknowledged.push((o.tx, from.node.clone()));
            }
            self.log(format!("pay {} → {} {amount}: {class} {}", from.label, to.label, o.tx));
        } else {
            self.log(format!("pay {} → {} {amount}: {class}", from.label, to.label));
        }
        self.count(format!("pay {class}"));
        Ok(())
    }

    /// Links a client's DA to a bank account, or unlinks it — the last
    /// payee's, mostly, so that another bank likely holds a lease on it.
    /// Once an unlink is done, no other bank may still believe a lease on
    /// the DA (ARCHITECTURE.md, invariants).
    async fn link(&mut self) -> Result<(), PlatformError> {
        let client = match self.last_payee.take() {
            Some(c) if self.rng.chance(800) => c,
            _ => self.clients[self.rng.index(self.clients.len())].clone(),
        };
        let node = self.p.node(client.node.as_str())?;
        if !self.linked.contains(&client.account) {
            let result = node.set_profile(&client.account, None, Some(Some(IBAN.into()))).await;
            if result.is_ok() {
                self.linked.insert(client.account.clone());
            }
            let class = result.map(|_| "ok".to_string()).unwrap_or_else(|e| format!("refused: {}", e.code()));
            self.log(format!("link {}: {class}", client.label));
            self.count(format!("link {class}"));
            return Ok(());
        }
        let others: Vec<Arc<NodeService>> = ids::STBS
            .iter()
            .filter(|b| **b != client.node.as_str())
            .map(|b| self.p.node(b))
            .collect::<Result<_, _>>()?;
        let leased = others.iter().any(|n| n.holds_lease(&client.address));
        let result = node.set_profile(&client.account, None, Some(None)).await;
        let class = match &result {
            Ok(_) => {
                self.linked.remove(&client.account);
                if let Some(n) = others.iter().find(|n| n.holds_lease(&client.address)) {
                    self.problems.push(format!(
                        "{} still holds a lease on {} after its bank unlinked it",
                        n.id(),
                        client.label
                    ));
                }
                "ok".to_string()
            }
            Err(e) => format!("refused: {}", e.code()),
        };
        let leased = if leased { " (leased)" } else { "" };
        self.log(format!("unlink {}{leased}: {class}", client.label));
        self.count(format!("unlink{leased} {class}"));
        Ok(())
    }

    async fn hold(&mut self) -> Result<(), PlatformError> {
        let open: Vec<usize> = (0..self.events.len()).filter(|&i| !self.events[i].held).collect();
        if open.is_empty() {
            return Ok(());
        }
        let i = open[self.rng.index(open.len())];
        let event = self.events[i].id.clone();
        let treasury = self.p.node(ids::TREASURY)?;
        let result = treasury.hold(&self.agency.account, event.clone(), None).await;
        let class = Self::outcome_class(&result);
        if matches!(&result, Ok(o) if o.status == Status::Success) {
            self.events[i].held = true;
            if let Ok(o) = &result {
                self.acknowledged.push((o.tx, self.agency.node.clone()));
            }
        }
        self.log(format!("hold {event}: {class}"));
        self.count(format!("hold {class}"));
        Ok(())
    }

    async fn report_event(&mut self) {
        let held: Vec<usize> =
            (0..self.events.len()).filter(|&i| self.events[i].held && !self.events[i].reported).collect();
        if held.is_empty() {
            return;
        }
        let i = held[self.rng.index(held.len())];
        let event = self.events[i].clone();
        let answer = self
            .provider_call(event.provider, OracleRequest::ReportOccurrence { event: event.id.clone(), amount: None })
            .await;
        let class = match &answer {
            Ok(OracleAnswer::Done) => {
                self.events[i].reported = true;
                "ok".to_string()
            }
            Ok(OracleAnswer::Refused(refusal)) => format!("refused: {}", refusal.code.code()),
            Ok(other) => format!("{other:?}"),
            Err(_) => "unavailable".into(),
        };
        self.log(format!("report {}: {class}", event.id));
        self.count(format!("report {}", class.split(':').next().unwrap_or("")));
    }

    /// A committed payment's payer signs a second transaction over the same
    /// inputs and its node sends it to the notary: it must never commit.
    async fn double_spend(&mut self) -> Result<(), PlatformError> {
        if self.acknowledged.is_empty() {
            return Ok(());
        }
        let (tx, node_id) = self.acknowledged[self.rng.index(self.acknowledged.len())].clone();
        let node = self.p.node(node_id.as_str())?;
        let Some((inputs, key)) = node.read(|s| {
            let o = s.outgoing(&tx)?;
            let key = s.accounts.get(&o.account)?.key()?.clone();
            Some((o.inputs, key))
        }) else {
            return Ok(());
        };
        if inputs.is_empty() {
            return Ok(());
        }
        let thief = Address(SecretKey::from_seed(self.rng.bytes32()).public_key());
        let outputs: Vec<Token> =
            inputs.iter().map(|t| Token::standard(t.currency, t.amount, thief, t.host.clone())).collect();
        let body = TxBody {
            inputs: inputs_ids(&node, &tx)?.try_into().map_err(|_| PlatformError::Config("inputs".into()))?,
            outputs: outputs.try_into().map_err(|_| PlatformError::Config("outputs".into()))?,
            command: Command::Transfer,
            window: TimeWindow::starting(self.p.clock.now(), 60_000),
            memo: None,
        };
        let mut conflicting = Transaction::unsigned(body);
        conflicting.sign(&key).map_err(|e| PlatformError::Config(e.to_string()))?;
        let claim = TxClaim::of(&conflicting, &inputs).map_err(|e| PlatformError::Config(e.to_string()))?;
        let verdict = self.notarise(node_id.as_str(), claim).await;
        let class = match &verdict {
            Ok(Verdict::Committed(_)) => {
                self.problems.push(format!("double spend of the inputs of {tx} was COMMITTED"));
                "COMMITTED".to_string()
            }
            Ok(Verdict::Rejected(NotaryRejection::Conflict { .. })) => "rejected (conflict)".to_string(),
            Ok(Verdict::Rejected(r)) => format!("rejected ({r})"),
            Err(_) => "unavailable".into(),
        };
        self.log(format!("double-spend of {tx} from {node_id}: {class}"));
        self.count(format!("double-spend {class}"));
        Ok(())
    }

    /// A committed transaction sent to the notary again: the same receipt.
    async fn resubmit(&mut self) -> Result<(), PlatformError> {
        if self.acknowledged.is_empty() {
            return Ok(());
        }
        let (tx, node_id) = self.acknowledged[self.rng.index(self.acknowledged.len())].clone();
        let node = self.p.node(node_id.as_str())?;
        let Some((signed, inputs)) = node.read(|s| s.outgoing(&tx).map(|o| (o.tx, o.inputs))) else {
            return Ok(());
        };
        let claim = TxClaim::of(&signed, &inputs).map_err(|e| PlatformError::Config(e.to_string()))?;
        let verdict = self.notarise(node_id.as_str(), claim).await;
        let committed = self.p.notary_state().committed(&tx);
        let class = match (&verdict, committed) {
            (Ok(Verdict::Committed(r)), Some(body)) if r.body == body => "same receipt".to_string(),
            (Ok(v), _) => {
                self.problems.push(format!("resubmitting committed {tx} gave {v:?}"));
                format!("WRONG {v:?}")
            }
            (Err(_), _) => "unavailable".into(),
        };
        self.log(format!("resubmit {tx}: {class}"));
        self.count(format!("resubmit {class}"));
        Ok(())
    }

    async fn notarise(&self, node: &str, claim: TxClaim) -> Result<Verdict, String> {
        let key = Keys::at(&self.p.data).load(node).map_err(|e| e.to_string())?;
        let bus = self.p.bus(node).map_err(|e| e.to_string())?;
        if self.p.notary.is_none() {
            // A group: reached as a node reaches it, following the leader.
            let client = NotaryClient::new(bus, Arc::new(key), &self.p.participants);
            let mut verdicts = client.notarise(vec![claim]).await.map_err(|e| e.to_string())?;
            return if verdicts.len() == 1 { Ok(verdicts.remove(0)) } else { Err(format!("{verdicts:?}")) };
        }
        let batch = NotariseBatch::signed(pid(node).map_err(|e| e.to_string())?, vec![claim], &key)
            .map_err(|e| e.to_string())?;
        let notary = pid(ids::NOTARY).map_err(|e| e.to_string())?;
        match bus.request(&notary, &NotaryRequest::Notarise(batch)).await {
            Ok(NotaryAnswer::Verdicts(mut v)) if v.len() == 1 => Ok(v.remove(0)),
            other => Err(format!("{other:?}")),
        }
    }

    fn links(&self) -> Result<Vec<(ParticipantId, ParticipantId)>, PlatformError> {
        let nodes: Vec<ParticipantId> = self.p.nodes.keys().cloned().collect();
        let mut links = Vec::new();
        for (i, a) in nodes.iter().enumerate() {
            links.push(link(a, &pid(ids::NOTARY)?));
            links.push(link(a, &pid(ids::ORACLE)?));
            links.push(link(a, &pid(ids::DIRECTORY)?));
            for b in &nodes[i + 1..] {
                links.push(link(a, b));
            }
        }
        links.push(link(&pid(ids::ORACLE)?, &pid(ids::NOTARY)?));
        Ok(links)
    }

    fn cut_link(&mut self) -> Result<(), PlatformError> {
        if !self.p.replicas.is_empty() && self.rng.chance(300) {
            self.isolate_replica();
            return Ok(());
        }
        let links = self.links()?;
        let (a, b) = links[self.rng.index(links.len())].clone();
        self.log(format!("cut {a} ↔ {b}"));
        self.count("cut");
        self.p.plan.cuts.lock().unwrap_or_else(PoisonError::into_inner).insert((a, b));
        Ok(())
    }

    /// Cuts one replica off from the other replicas (nodes still reach it:
    /// it must acknowledge nothing), unless a link between replicas is cut
    /// already: a majority stays connected.
    fn isolate_replica(&mut self) {
        let replicas: Vec<ParticipantId> = self.p.plan.replicas.iter().cloned().collect();
        let k = self.rng.index(replicas.len());
        let mut cuts = self.p.plan.cuts.lock().unwrap_or_else(PoisonError::into_inner);
        if cuts.iter().any(|(a, b)| replicas.contains(a) && replicas.contains(b)) {
            drop(cuts);
            self.log(format!("isolate {}: another replica link is cut", replicas[k]));
            return;
        }
        for (i, other) in replicas.iter().enumerate() {
            if i != k {
                cuts.insert(link(&replicas[k], other));
            }
        }
        drop(cuts);
        self.p.plan.group_count(|s| s.isolations += 1);
        self.log(format!("isolate {} from the other replicas", replicas[k]));
        self.count("isolate replica");
    }

    fn heal_link(&mut self) {
        let mut cuts = self.p.plan.cuts.lock().unwrap_or_else(PoisonError::into_inner);
        let list: Vec<_> = cuts.iter().cloned().collect();
        if list.is_empty() {
            return;
        }
        let (a, b) = list[self.rng.index(list.len())].clone();
        cuts.remove(&(a.clone(), b.clone()));
        drop(cuts);
        self.log(format!("heal {a} ↔ {b}"));
        self.count("heal");
    }

    async fn restart(&mut self) -> Result<(), PlatformError> {
        let mut candidates: Vec<ParticipantId> = self.p.nodes.keys().cloned().collect();
        if self.p.plan.replicas.is_empty() {
            candidates.push(pid(ids::NOTARY)?);
        } else {
            candidates.extend(self.p.plan.replicas.iter().cloned());
        }
        candidates.push(pid(ids::ORACLE)?);
        let id = candidates[self.rng.index(candidates.len())].clone();
        self.log(format!("restart {id}"));
        self.count("restart");
        if self.p.plan.replicas.contains(&id) {
            self.p.plan.group_count(|s| s.restarts += 1);
            return self.p.restart_replica(&id).await;
        }
        self.p.restart(&id)
    }

    async fn deliver_held(&mut self) {
        let n = 1 + self.rng.index(4);
        let rng = &mut self.rng;
        let results = self.p.net.deliver_held(n, |k| rng.index(k)).await;
        for (from, to, result) in results {
            let class = match result {
                Ok(()) => "accepted".to_string(),
                Err(e) => format!("refused ({})", e.to_string().split(':').next().unwrap_or("")),
            };
            self.trace.line(format!("late {from}→{to}: {class}"));
            self.count(format!("late {}", class.split(' ').next().unwrap_or("")));
        }
    }

    fn advance_clock(&mut self) {
        let ms = if self.rng.chance(200) { 70_000 + self.rng.below(60_000) } else { self.rng.below(10_000) };
        self.p.clock.advance(ms);
        self.log(format!("advance {ms} ms"));
        self.count("advance");
    }

    /// An institution's DA (its key in the spec), on the node hosting it.
    fn institution(&self, key: &str, label: &str) -> Result<Client, PlatformError> {
        let da = self
            .p
            .spec
            .institutions
            .iter()
            .find(|i| i.key == key)
            .ok_or_else(|| PlatformError::Config(format!("no institution {key} in the spec")))?;
        let node = self.p.node(da.host.as_str())?;
        let account = node
            .read(|s| s.account_of(&da.address).map(|a| a.id.clone()))
            .ok_or_else(|| PlatformError::Config(format!("{} hosts no DA {key}", da.host)))?;
        Ok(Client { label: label.into(), node: node.id().clone(), account, address: da.address })
    }

    /// The KZTC stablecoin: its issuer mints against DT, pays a client in
    /// it, a client holding some pays it back, or the issuer burns some
    /// (each as likely). Mostly what the coin held allows (with none held
    /// the issuer mints, or pays a client when only it holds some); one
    /// time in ten as drawn, so a payer holding none is refused too.
    async fn stablecoin(&mut self) -> Result<(), PlatformError> {
        let coin = Currency::new(ids::STABLECOIN).map_err(|e| PlatformError::Config(e.to_string()))?;
        let issuer = self.institution(ids::COIN_ISSUER_DA, "coinco")?;
        let holding: Vec<Client> = self.coin_holders.iter().filter(|c| !self.coin_held(c).is_zero()).cloned().collect();
        let issuer_holds = !self.coin_held(&issuer).is_zero();
        let drawn = self.rng.below(4);
        let as_drawn = self.rng.below(10) == 0;
        let kind = match drawn {
            _ if as_drawn => drawn,
            1 | 3 if !issuer_holds => 0,
            2 if holding.is_empty() && issuer_holds => 1,
            2 if holding.is_empty() => 0,
            _ => drawn,
        };
        let client = match (kind, holding.len()) {
            (2, n) if n > 0 => holding[self.rng.index(n)].clone(),
            _ => self.clients[self.rng.index(self.clients.len())].clone(),
        };
        let amount = dt(1 + self.rng.below(100));
        let (what, payer) = match kind {
            0 => ("mint", issuer.clone()),
            1 => ("pay", issuer.clone()),
            2 if holding.is_empty() => ("pay back unheld", client.clone()),
            2 => ("pay back", client.clone()),
            _ => ("burn", issuer.clone()),
        };
        let node = self.p.node(payer.node.as_str())?;
        // Mostly within what the payer holds; nothing held still tries (and is refused).
        let held = self.coin_held(&payer);
        let amount = if what != "mint" && !held.is_zero() { amount.min(held) } else { amount };
        let result = match what {
            "mint" => node.mint(&issuer.account, amount, None).await,
            "burn" => node.burn(&issuer.account, amount, None).await,
            "pay" => node.pay_in(&issuer.account, coin, &[PayTo { address: client.address, amount }], None).await,
            _ => node.pay_in(&client.account, coin, &[PayTo { address: issuer.address, amount }], None).await,
        };
        let class = Self::outcome_class(&result);
        if let Ok(o) = &result
            && o.status == Status::Success
        {
            self.acknowledged.push((o.tx, payer.node.clone()));
            if what == "pay" && !self.coin_holders.iter().any(|c| c.address == client.address) {
                self.coin_holders.push(client.clone());
            }
        }
        self.log(format!("stablecoin {what} {} ↔ {} {amount}: {class}", issuer.label, client.label));
        self.count(format!("stablecoin {what} {class}"));
        Ok(())
    }

    /// How much of the stablecoin `client` holds now, as its node's vault says.
    fn coin_held(&self, client: &Client) -> Amount {
        self.p
            .node(client.node.as_str())
            .ok()
            .and_then(|node| node.balances(&client.account).ok())
            .and_then(|b| b.other_currencies.get(ids::STABLECOIN).copied())
            .unwrap_or(Amount::ZERO)
    }

    /// A client sells DT back: pays NBK's DA, and NBK destroys that much.
    async fn redeem(&mut self) -> Result<(), PlatformError> {
        let from = self.clients[self.rng.index(self.clients.len())].clone();
        let amount = dt(1 + self.rng.below(50));
        let nbk_da = self.institution(ids::NBK_DA, "nbk")?;
        let node = self.p.node(from.node.as_str())?;
        let paid = node.pay(&from.account, &[PayTo { address: nbk_da.address, amount }], None).await;
        let class = Self::outcome_class(&paid);
        if let Ok(o) = &paid
            && o.status == Status::Success
        {
            self.acknowledged.push((o.tx, from.node.clone()));
        }
        let nbk = self.p.node(ids::NBK)?;
        let nbk_account = nbk_da.account;
        let available = nbk.balances(&nbk_account).map(|b| b.standard).unwrap_or(Amount::ZERO);
        let redeemed = if available >= amount {
            let result = nbk.redeem(&nbk_account, amount, cbs_ref(&mut self.rng)?).await;
            if let Ok(o) = &result {
                self.supply_changes.push((o.tx, amount, false));
            }
            Self::outcome_class(&result)
        } else {
            "nothing to redeem".into()
        };
        self.log(format!("redeem {} {amount}: pay {class}, redeem {redeemed}", from.label));
        self.count(format!("redeem {redeemed}"));
        Ok(())
    }

    /// Heal everything, deliver what is held, let retries and recovery finish.
    async fn settle(&mut self) {
        self.p.plan.cuts.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.p.plan.enabled.store(false, std::sync::atomic::Ordering::SeqCst);
        let rng = &mut self.rng;
        let late = self.p.net.deliver_held(usize::MAX, |k| rng.index(k)).await;
        self.log(format!("settle: healed, {} held messages delivered", late.len()));
        // Past every transaction window and envelope age; then past every hold.
        for advance in [120_000, 120_000, 2 * Timestamp::DAY_MS, 120_000] {
            self.p.clock.advance(advance);
            self.p.tick().await;
            self.p.tick().await;
        }
        if !self.p.replicas.is_empty()
            && let Err(e) = self.p.group_agrees().await
        {
            self.problems.push(e);
        }
    }
}

/// The government agency at the Treasury that holds funds for events.
async fn open_agency(p: &SimPlatform, rng: &mut SimRng) -> Result<Client, PlatformError> {
    let treasury = p.node(ids::TREASURY)?;
    let key = SecretKey::from_seed(rng.bytes32());
    let agency = treasury
        .open_account_with_key(holder(900, HolderKind::GovernmentAgency)?, key, KycState::Verified)
        .await
        .map_err(|e| PlatformError::service(ids::TREASURY, e))?;
    Ok(Client { label: "agency".into(), node: treasury.id().clone(), account: agency.id, address: agency.address })
}

fn inputs_ids(node: &NodeService, tx: &TxId) -> Result<Vec<dtenge_types::TokenId>, PlatformError> {
    node.read(|s| s.outgoing(tx).map(|o| o.tx.body.inputs.to_vec()))
        .ok_or_else(|| PlatformError::Config(format!("{tx} unknown")))
}

fn cbs_ref(rng: &mut SimRng) -> Result<CbsRef, PlatformError> {
    CbsRef::new(format!("SIM-{:016x}", rng.next_u64())).map_err(|e| PlatformError::Config(e.to_string()))
}

/// The audit of a settled platform; every broken invariant as a sentence.
fn audit(sim: &Sim) -> Vec<String> {
    let mut problems = Vec::new();
    let p = &sim.p;
    let notary = p.notary_state();
    // No acknowledged transfer lost.
    for (tx, node) in &sim.acknowledged {
        if notary.committed(tx).is_none() {
            problems.push(format!("acknowledged {tx} (payer {node}) is not committed at the notary"));
        }
        let status = p.nodes.get(node).and_then(|n| n.read(|s| s.outgoing(tx).map(|o| o.status)));
        if status != Some(Status::Success) {
            problems.push(format!("acknowledged {tx} is {status:?} at its payer {node}"));
        }
    }
    // Nodes agree with the notary; no token held twice; nothing left unresolved.
    let mut holders: BTreeMap<dtenge_types::TokenId, ParticipantId> = BTreeMap::new();
    // Sums in u128: an audit must never clamp what it checks (u64 tiyn per token, far fewer than 2^64 tokens).
    let mut supply: u128 = 0;
    // What the shared auditor needs for each stablecoin's reserve.
    let mut facts = ledger_audit::Facts::from_notary(&notary);
    facts.stablecoins = p.spec.params.stablecoins.keys().copied().collect();
    for (id, node) in &p.nodes {
        node.read(|s| {
            facts.add_node(&notary, id, s);
            for (token_id, stored) in s.vault.iter() {
                if let Some(other) = holders.insert(*token_id, id.clone()) {
                    problems.push(format!("token {token_id} is held by both {other} and {id}"));
                }
                match notary.token_status(token_id, &stored.token) {
                    Some(Ok(())) => {}
                    Some(Err(by)) => problems.push(format!("{id} holds {token_id}, spent at the notary by {by}")),
                    None => problems.push(format!("{id} holds {token_id}, unknown to the notary")),
                }
                if stored.reserved_by.is_some() {
                    problems.push(format!("{id}: {token_id} is still reserved after settling"));
                }
                if stored.token.currency == Currency::DT {
                    supply += u128::from(stored.token.amount.tiyn());
                }
            }
            s.for_each_outgoing(|tx, o| {
                let at_notary = notary.committed(tx).is_some();
                match &o.status {
                    Status::Success if !at_notary => {
                        problems.push(format!("{id} counts {tx} as done; the notary never committed it"))
                    }
                    Status::Rejected { reason } if at_notary => {
                        problems.push(format!("{id} aborted {tx} ({reason}) but the notary committed it"))
                    }
                    Status::UnderReview | Status::RequestAccepted => {
                        problems.push(format!("{id}: {tx} still unresolved ({:?})", o.status))
                    }
                    _ => {}
                }
                if !o.undelivered.is_empty() {
                    problems.push(format!("{id}: {tx} never delivered to {:?}", o.undelivered));
                }
                if o.status == Status::Success {
                    for (token, input) in o.inputs.iter().zip(o.tx.body.inputs.iter()) {
                        if notary.token_status(input, token) != Some(Err(*tx)) {
                            problems.push(format!("{tx}'s input {input} is not spent by it at the notary"));
                        }
                    }
                }
                true
            });
        });
    }
    let (unspent, _) = notary.counts();
    if unspent != holders.len() {
        problems.push(format!("the notary has {unspent} unspent tokens; the nodes hold {}", holders.len()));
    }
    // Supply = issued − redeemed (as committed at the notary).
    let mut issued: u128 = 0;
    let mut redeemed: u128 = 0;
    for (tx, amount, issue) in &sim.supply_changes {
        if notary.committed(tx).is_some() {
            if *issue {
                issued += u128::from(amount.tiyn());
            } else {
                redeemed += u128::from(amount.tiyn());
            }
        }
    }
    if issued.checked_sub(redeemed) != Some(supply) {
        problems.push(format!("supply is {supply} tiyn; issued {issued} − redeemed {redeemed} tiyn"));
    }
    // Each stablecoin is backed 1:1: its reserve equals what all vaults hold of it.
    problems.extend(facts.reserves().1.into_iter().map(|m| format!("stablecoin: {m}")));
    // Oracle reservations resolved.
    let oracle = p.oracle.state_copy();
    for (tx, _) in oracle.reservations() {
        problems.push(format!("oracle reservation for {tx} still open"));
    }
    let stats = p.net.stats();
    if stats.duplicates_admitted > 0 {
        problems.push(format!("{} duplicated envelopes were admitted twice", stats.duplicates_admitted));
    }
    problems
}

/// The final state in words, for the digest: balances by client, counts.
fn final_state(sim: &Sim) -> Vec<String> {
    let mut out = Vec::new();
    for c in sim.clients.iter().chain(std::iter::once(&sim.agency)) {
        let balances = sim.p.nodes.get(&c.node).and_then(|n| n.balances(&c.account).ok());
        let mut line = format!("final {}:", c.label);
        if let Some(b) = balances {
            let _ = write!(line, " standard {} held {} total {}", b.standard, b.held, b.total);
        }
        out.push(line);
    }
    let notary = sim.p.notary_state();
    out.push(format!("final notary: {} committed, {:?} (unspent, spent)", notary.committed_count(), notary.counts()));
    out
}

/// Runs one simulation in `data` (an empty directory). `Ok` only if every
/// audit passes.
pub async fn run(config: &SimConfig, data: &Path) -> Result<SimReport, SimFailure> {
    let trace = Arc::new(Trace::default());
    let failure = |problems: Vec<String>, trace: &Trace| {
        let lines = trace.snapshot();
        let tail = lines[lines.len().saturating_sub(60)..].to_vec();
        SimFailure { seed: config.seed, problems, trace_tail: tail }
    };
    let mut rng = SimRng::new(config.seed);
    let mut platform = match SimPlatform::open(data, &mut rng, config, Arc::clone(&trace)).await {
        Ok(p) => p,
        Err(e) => return Err(failure(vec![format!("cannot start: {e}")], &trace)),
    };
    let agency = match open_agency(&platform, &mut rng).await {
        Ok(a) => a,
        Err(e) => {
            platform.stop_group().await;
            platform.close();
            return Err(failure(vec![format!("setup: {e}")], &trace));
        }
    };
    let mut sim = Sim {
        p: platform,
        rng,
        trace: Arc::clone(&trace),
        counts: BTreeMap::new(),
        clients: Vec::new(),
        agency,
        events: Vec::new(),
        acknowledged: Vec::new(),
        supply_changes: Vec::new(),
        coin_holders: Vec::new(),
        linked: BTreeSet::new(),
        last_payee: None,
        problems: Vec::new(),
    };
    if let Err(e) = sim.setup(config.clients_per_bank).await {
        sim.p.stop_group().await;
        sim.p.close();
        return Err(failure(vec![format!("setup: {e}")], &trace));
    }
    sim.p.plan.enabled.store(true, std::sync::atomic::Ordering::SeqCst);
    for step in 0..config.steps {
        if let Err(e) = sim.step(step).await {
            sim.problems.push(format!("step {step}: {e}"));
            break;
        }
    }
    sim.settle().await;
    let mut problems = std::mem::take(&mut sim.problems);
    problems.extend(audit(&sim));
    for line in final_state(&sim) {
        trace.line(line);
    }
    let notary = sim.p.notary_state();
    sim.p.stop_group().await;
    sim.p.close();
    if !problems.is_empty() {
        return Err(failure(problems, &trace));
    }
    let lines = trace.snapshot();
    let mut hasher = dtenge_crypto::Hasher::new(b"dtenge/sim/trace/v1");
    for line in &lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    Ok(SimReport {
        seed: config.seed,
        digest: hasher.finish().to_string(),
        trace_lines: lines.len(),
        trace: lines,
        counts: sim.counts,
        network: sim.p.net.stats(),
        acknowledged: sim.acknowledged.len(),
        committed: notary.committed_count(),
        group: sim.p.plan.group_stats.lock().unwrap_or_else(PoisonError::into_inner).clone(),
    })
}
