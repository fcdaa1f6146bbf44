//! # dtenge-chaos
//!
//! `dtenge chaos`: the platform as separate processes (notary, oracle,
//! directory, NBK, Treasury, banks — each a `dtenge node` child), concurrent
//! transfers between many DAs on the three banks, redemptions, the KZTC
//! stablecoin minted, paid to a client, paid back and burned by its issuer
//! (COINCO, its own process), deliberate double-spend attempts, and SIGKILLs of random services at random moments,
//! each restarted. At the end the load stops, recovery finishes, every
//! service stops and the auditor checks the recovered journals
//! ([`dtenge_platform::ledger_audit`]) and the audit logs
//! ([`dtenge_platform::audit_log`]).
//!
//! ```text
//!  supervisor ── operator requests (signed with a node's key) ──► NBK, STB1..3, COINCO processes
//!      │         rogue notarise batches (signed as STB1..3)   ──► NOTARY process
//!      │ killer: every 1.5–6 s SIGKILL one of the 10 services (shuffled rounds), restart it 0.2–1.5 s later
//!      ▼
//!  stop load → wait until no node has work in flight → SIGTERM all → audit
//!              (supply = issued − redeemed; per stablecoin, DT in reserve = its supply)
//! ```
//!
//! The load goes only through the nodes' message interface
//! ([`dtenge_platform::operator`]); nothing reaches into a service's state
//! while it runs. Double-spend attempts are notarise batches, signed as a
//! (compromised) bank, that spend a token an acknowledged transfer already
//! spent — sent by two banks at once; every one must be refused.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dtenge_crypto::SecretKey;
use dtenge_net::{Bus, BusExt, Clock, HttpBus, HttpBusConfig, NoEvidence, Participants, Role, SystemClock};
use dtenge_node::accounts::{AccountId, HolderKind};
use dtenge_notary::{NotaryClient, NotaryClientError, TxClaim, Verdict};
use dtenge_platform::ledger_audit::{self, Acked};
use dtenge_platform::operator::{OperatorAnswer, OperatorRequest};
use dtenge_platform::spec::{Keys, PlatformSpec, ids};
use dtenge_types::{
    Address, Amount, Command as TxCommand, Currency, ParticipantId, TimeWindow, Token, TokenId, Transaction, TxBody,
};
use serde::Serialize;

mod group;

/// Why a chaos run could not be carried out (violations are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// Setting up the platform failed.
    #[error("platform: {0}")]
    Platform(#[from] dtenge_platform::PlatformError),
    /// A process could not be started or stopped.
    #[error("{what}: {source}")]
    Process {
        /// Which.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The platform did not get ready.
    #[error("setup: {0}")]
    Setup(String),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Data directory (must not hold a platform yet).
    pub data: PathBuf,
    /// How long the load and the kills run.
    pub seconds: u64,
    /// The seed of every random choice (victims, moments, payers, amounts).
    pub seed: u64,
    /// The `dtenge` binary to run services with.
    pub binary: PathBuf,
    /// Client DAs per bank.
    pub clients_per_bank: usize,
    /// Concurrent payers.
    pub workers: usize,
    /// Longest pause between two kills.
    pub max_kill_interval: Duration,
    /// Replicas of the notary group (1: the single notary). With more, the
    /// leader (or a follower) is also killed every 4–6 s and the leader is
    /// partitioned away once.
    pub notary_replicas: u64,
}

impl ChaosConfig {
    /// Defaults for `seconds` and `seed`: 6 DAs on each of 3 banks, 8 payers, a kill every 1.5–6 s.
    pub fn new(data: PathBuf, binary: PathBuf, seconds: u64, seed: u64) -> ChaosConfig {
        ChaosConfig {
            data,
            seconds,
            seed,
            binary,
            clients_per_bank: 6,
            workers: 8,
            max_kill_interval: Duration::from_secs(6),
            notary_replicas: 1,
        }
    }
}

/// Progress, once a second.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Seconds of load so far.
    pub elapsed: u64,
    /// Acknowledged transfers so far.
    pub committed: u64,
    /// Operations refused or unanswered so far (expected while services are down).
    pub refused: u64,
    /// Kills so far.
    pub kills: u64,
    /// Double-spend attempts answered so far.
    pub double_spend_attempts: u64,
    /// The latest kill.
    pub last_kill: Option<String>,
}

/// The outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// The seed (rerun with `--seed`).
    pub seed: u64,
    /// Seconds of load.
    pub seconds: u64,
    /// SIGKILLs.
    pub kills: u64,
    /// SIGKILLs per service.
    pub kills_by_service: BTreeMap<String, u64>,
    /// Transfers, issues and redemptions the platform acknowledged (all audited).
    pub committed: u64,
    /// Transactions the notary committed (acknowledged or not).
    pub notary_committed: u64,
    /// Operations refused or unanswered (a service was down, funds were short).
    pub refused: u64,
    /// Redemptions acknowledged.
    pub redemptions: u64,
    /// Stablecoin mints acknowledged.
    pub stablecoin_mints: u64,
    /// Stablecoin payments acknowledged (issuer to client and back).
    pub stablecoin_payments: u64,
    /// Stablecoin burns acknowledged.
    pub stablecoin_burns: u64,
    /// Per stablecoin, as the audit counted it: the supply in all vaults and
    /// the DT in its reserve (equal, or a violation).
    pub stablecoins: Vec<ledger_audit::StablecoinFigures>,
    /// Double-spend attempts the notary answered.
    pub double_spend_attempts: u64,
    /// Of which refused.
    pub double_spends_refused: u64,
    /// Replicas of the notary group (1: the single notary).
    pub notary_replicas: u64,
    /// SIGKILLs of the group's leader (counted in `kills` too).
    pub notary_leader_kills: u64,
    /// Leader kill → next committed batch, median, in milliseconds.
    pub failover_ms_p50: u64,
    /// Leader kill → next committed batch, longest, in milliseconds.
    pub failover_ms_max: u64,
    /// A replica's restart (or heal) → back in the group (serving, following
    /// a leader, caught up), median, in milliseconds; only then may another
    /// replica go down.
    pub rejoin_ms_p50: u64,
    /// The same, longest, in milliseconds.
    pub rejoin_ms_max: u64,
    /// SIGKILLs of a follower by the group's own round (counted in `kills`
    /// too; the random killer may kill replicas besides).
    pub notary_follower_kills: u64,
    /// Replicas partitioned from the others (cut-links file) and healed.
    pub notary_isolations: u64,
    /// Batches sent straight to a partitioned replica while cut off.
    pub minority_probes: u64,
    /// Of which it answered with verdicts: must be 0 (the minority side acknowledges nothing).
    pub minority_acknowledged: u64,
    /// Every replica reported the same applied index and state digest at the end.
    pub replicas_agree: bool,
    /// Double spends that succeeded (attempts committed + spends found twice by the audit): must be 0.
    pub double_spends: u64,
    /// Acknowledged transfers lost: must be 0.
    pub lost: u64,
    /// Supply = issued − redeemed.
    pub supply_conserved: bool,
    /// DT issued (tiyn).
    pub issued_tiyn: u64,
    /// DT redeemed (tiyn).
    pub redeemed_tiyn: u64,
    /// DT held in all vaults (tiyn).
    pub held_tiyn: u64,
    /// Records in the services' audit logs, all verified.
    pub audit_log_records: u64,
    /// Every violation found.
    pub violations: Vec<String>,
    /// No violation.
    pub passed: bool,
}

/// SplitMix64: small, seedable, good enough to pick victims and payers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo.saturating_add(self.next_u64() % hi.saturating_sub(lo).saturating_add(1))
    }

    /// An index below `n` (n > 0).
    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// The cut-links file in the data directory (see `group`).
const CUT_LINKS_FILE: &str = "cut-links";

/// The child processes, one per service.
struct Services {
    data: PathBuf,
    binary: PathBuf,
    children: Mutex<BTreeMap<String, Child>>,
}

impl Services {
    fn spawn(&self, id: &str) -> Result<(), ChaosError> {
        let logs = self.data.join("logs");
        let io = |what: &str, source| ChaosError::Process { what: format!("{what} {id}"), source };
        std::fs::create_dir_all(&logs).map_err(|e| io("log directory for", e))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{id}.log")))
            .map_err(|e| io("log of", e))?;
        let child = Command::new(&self.binary)
            .env(dtenge_platform::process::CUT_LINKS_ENV, self.cut_links_file())
            .args(["node", "--data"])
            .arg(&self.data)
            .args(["--id", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| io("cannot start", e))?;
        self.children.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_string(), child);
        Ok(())
    }

    /// The cut-links file every service reads (the transport's fault layer).
    fn cut_links_file(&self) -> PathBuf {
        self.data.join(CUT_LINKS_FILE)
    }

    /// SIGKILL and reap.
    fn kill(&self, id: &str) -> Result<(), ChaosError> {
        let child = self.children.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        if let Some(mut child) = child {
            let io = |source| ChaosError::Process { what: format!("kill {id}"), source };
            child.kill().map_err(io)?;
            child.wait().map_err(io)?;
        }
        Ok(())
    }

    /// SIGTERM everything and wait (SIGKILL after 20 s).
    fn stop_all(&self) -> Vec<String> {
        let children: Vec<(String, Child)> =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(PoisonError::into_inner)).into_iter().collect();
        let mut problems = Vec::new();
        for (id, child) in &children {
            let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().is_ok_and(|s| s.success());
            if !ok {
                problems.push(format!("{id}: cannot send SIGTERM"));
            }
        }
        for (id, mut child) in children {
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        if !status.success() {
                            problems.push(format!("{id} stopped with {status} (see logs/{id}.log)"));
                        }
                        break;
                    }
                    Ok(None) if started.elapsed() < Duration::from_secs(20) => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        problems.push(format!("{id} did not stop on SIGTERM"));
                        break;
                    }
                }
            }
        }
        problems
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut *self.children.lock().unwrap_or_else(PoisonError::into_inner)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client DA.
#[derive(Debug, Clone)]
struct Client {
    node: ParticipantId,
    id: AccountId,
    address: Address,
}

#[derive(Default)]
struct Tally {
    acked: Mutex<Vec<Acked>>,
    spent: Mutex<Vec<(TokenId, Token)>>,
    committed: AtomicU64,
    refused: AtomicU64,
    redemptions: AtomicU64,
    mints: AtomicU64,
    coin_payments: AtomicU64,
    burns: AtomicU64,
    ds_attempts: AtomicU64,
    ds_refused: AtomicU64,
    ds_committed: AtomicU64,
    kills: AtomicU64,
    kills_by: Mutex<BTreeMap<String, u64>>,
    last_kill: Mutex<Option<String>>,
    stop: AtomicBool,
    /// A notary replica is out (down, or not back in the group yet): take
    /// no other one out (the group keeps its majority).
    replica_down: AtomicBool,
    /// How long restarted or healed replicas took to be back in the group.
    rejoins: Mutex<Rejoins>,
}

/// Replicas coming back into the group ([`group::back_in_group`]).
#[derive(Default)]
struct Rejoins {
    /// Each one that came back: milliseconds from its restart (or heal).
    ms: Vec<u64>,
    /// Replicas not back within the wait.
    late: Vec<String>,
}

impl Tally {
    fn ack(
        &self,
        tx: dtenge_types::TxId,
        payer: &ParticipantId,
        payees: Vec<ParticipantId>,
        inputs: Vec<(TokenId, Token)>,
    ) {
        self.acked.lock().unwrap_or_else(PoisonError::into_inner).push(Acked { tx, payer: payer.clone(), payees });
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        spent.extend(inputs);
        if spent.len() > 4096 {
            spent.drain(..2048);
        }
        self.committed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Buses speaking as each node (operator requests, rogue batches).
struct Buses(BTreeMap<ParticipantId, Arc<dyn Bus>>);

impl Buses {
    fn of(&self, id: &ParticipantId) -> Result<&Arc<dyn Bus>, String> {
        self.0.get(id).ok_or_else(|| format!("no bus for {id}"))
    }

    async fn operate(&self, node: &ParticipantId, request: &OperatorRequest) -> Result<OperatorAnswer, String> {
        let bus = self.of(node)?;
        bus.request(node, request).await.map_err(|e| format!("{node}: {e}"))
    }

    /// Retries until the node answers without refusing (setup only: nothing is killed then).
    async fn until_ok(&self, node: &ParticipantId, request: &OperatorRequest) -> Result<OperatorAnswer, ChaosError> {
        let started = Instant::now();
        loop {
            let last = match self.operate(node, request).await {
                Ok(OperatorAnswer::Refused(why)) => why,
                Ok(OperatorAnswer::NotCommitted { status, .. }) => status,
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            if started.elapsed() > Duration::from_secs(90) {
                return Err(ChaosError::Setup(format!("{node} keeps refusing {request:?}: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn pid(s: &str) -> Result<ParticipantId, ChaosError> {
    ParticipantId::new(s).map_err(|e| ChaosError::Setup(e.to_string()))
}

fn dt(tenge: u64) -> Amount {
    Amount::from_tenge(tenge).unwrap_or(Amount::ZERO)
}

/// A base port with `count` free ports after it.
fn free_base_port(count: u16, rng: &mut Rng) -> Result<u16, ChaosError> {
    for _ in 0..200 {
        let base = u16::try_from(rng.range(20_000, 60_000)).unwrap_or(20_000);
        if (0..count).all(|i| TcpListener::bind(("127.0.0.1", base.saturating_add(i))).is_ok()) {
            return Ok(base);
        }
    }
    Err(ChaosError::Setup("no free range of ports on 127.0.0.1".into()))
}

/// Runs the chaos test; `progress` is called about once a second during the load.
pub async fn run(config: &ChaosConfig, mut progress: impl FnMut(&Progress)) -> Result<ChaosReport, ChaosError> {
    let mut rng = Rng::new(config.seed);
    let base = free_base_port(16, &mut rng)?;
    let spec = dtenge_platform::process::init(&config.data, "127.0.0.1", base, config.notary_replicas)?;
    let replicas: Vec<ParticipantId> =
        spec.participants.iter().filter(|p| p.role == Role::Notary).map(|p| p.id.clone()).collect();
    let service_ids: Vec<String> =
        spec.participants.iter().filter(|p| p.endpoint.is_some()).map(|p| p.id.to_string()).collect();
    let services = Arc::new(Services {
        data: config.data.clone(),
        binary: config.binary.clone(),
        children: Mutex::new(BTreeMap::new()),
    });
    for id in &service_ids {
        services.spawn(id)?;
    }
    let buses = Arc::new(buses(&spec, &config.data)?);
    let tally = Arc::new(Tally::default());
    let (clients, nbk_da, coin_issuer) = setup(&spec, &buses, &tally, config.clients_per_bank).await?;
    let clients = Arc::new(clients);
    let coin = Currency::new(ids::STABLECOIN).map_err(|e| ChaosError::Setup(e.to_string()))?;

    // The load, the double-spend attempts and the killer.
    let mut tasks = Vec::new();
    for w in 0..config.workers {
        let seed = config.seed.wrapping_add(1_000).wrapping_add(w as u64);
        let (buses, tally, clients, nbk_da) = (buses.clone(), tally.clone(), clients.clone(), nbk_da.clone());
        tasks.push(tokio::spawn(async move { payer(seed, w, &buses, &tally, &clients, &nbk_da).await }));
    }
    {
        let (buses, tally, clients) = (buses.clone(), tally.clone(), clients.clone());
        let seed = config.seed.wrapping_add(4);
        tasks.push(tokio::spawn(async move { coiner(seed, &buses, &tally, &clients, &coin_issuer, coin).await }));
    }
    {
        let keys = Keys::at(&config.data);
        let mut banks = Vec::new();
        for bank in ids::STBS {
            banks.push((pid(bank)?, Arc::new(keys.load(bank)?)));
        }
        let (buses, tally) = (buses.clone(), tally.clone());
        let seed = config.seed.wrapping_add(2);
        let participants = spec.directory();
        tasks.push(tokio::spawn(async move { double_spender(seed, &buses, &tally, &banks, &participants).await }));
    }
    // The bus the group's replicas are asked through (probes, Status).
    let prober_bus = pid(ids::STBS[0]).ok().and_then(|p| buses.of(&p).ok().cloned());
    let killer = {
        let (services, tally, ids) = (services.clone(), tally.clone(), service_ids.clone());
        let (seed, max) = (config.seed.wrapping_add(1), config.max_kill_interval);
        let (replicas, bus) = (replicas.clone(), prober_bus.clone());
        tokio::spawn(async move { killer(seed, max, &services, &tally, &ids, &replicas, bus.as_ref()).await })
    };
    let leader_killer = (replicas.len() > 1).then(|| {
        let (services, tally, replicas) = (services.clone(), tally.clone(), replicas.clone());
        let seed = config.seed.wrapping_add(3);
        let key = Keys::at(&config.data).load(ids::STBS[0]);
        let participants = spec.directory();
        let bus = prober_bus.clone();
        tokio::spawn(async move {
            let (Some(bus), Ok(key)) = (bus, key) else {
                return Err(ChaosError::Setup("no bus or key to probe the notary group with".into()));
            };
            group::leader_killer(seed, &services, &tally, &replicas, bus, Arc::new(key), &participants).await
        })
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()))).await;
        progress(&Progress {
            elapsed: started.elapsed().as_secs(),
            committed: tally.committed.load(Ordering::Relaxed),
            refused: tally.refused.load(Ordering::Relaxed),
            kills: tally.kills.load(Ordering::Relaxed),
            double_spend_attempts: tally.ds_attempts.load(Ordering::Relaxed),
            last_kill: tally.last_kill.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        });
    }
    tally.stop.store(true, Ordering::Relaxed);
    let mut violations = Vec::new();
    match killer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => violations.push(format!("killer: {e}")),
        Err(e) => violations.push(format!("killer task: {e}")),
    }
    let outcome = match leader_killer {
        None => group::GroupOutcome::default(),
        Some(task) => match task.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                violations.push(format!("leader killer: {e}"));
                group::GroupOutcome::default()
            }
            Err(e) => {
                violations.push(format!("leader killer task: {e}"));
                group::GroupOutcome::default()
            }
        },
    };
    violations.extend(outcome.problems.iter().cloned());
    let mut rejoin = {
        let mut rejoins = tally.rejoins.lock().unwrap_or_else(PoisonError::into_inner);
        for replica in &rejoins.late {
            violations.push(format!(
                "{replica} was not back in the notary group within {:?} of its restart",
                group::REJOIN_WAIT
            ));
        }
        std::mem::take(&mut rejoins.ms)
    };
    for task in tasks {
        let _ = task.await;
    }

    // Recovery: every node has nothing in flight and nothing undelivered.
    if let Err(e) = wait_for_recovery(&spec, &buses).await {
        violations.push(e);
    }
    let replicas_agree = if replicas.len() > 1 {
        let bus = buses.of(&pid(ids::NBK)?).map_err(ChaosError::Setup)?.clone();
        let (agree, last) = group::replicas_agree(&bus, &replicas).await;
        if !agree {
            violations.push(format!("the notary replicas do not agree: {last}"));
        }
        agree
    } else {
        true
    };
    violations.extend(services.stop_all());

    // The audit, over the recovered journals.
    let acked = std::mem::take(&mut *tally.acked.lock().unwrap_or_else(PoisonError::into_inner));
    let facts = ledger_audit::gather(&config.data)?;
    let audit = ledger_audit::check(&facts, &acked);
    violations.extend(audit.violations());
    let ds_committed = tally.ds_committed.load(Ordering::Relaxed);
    if ds_committed > 0 {
        violations.push(format!("the notary committed {ds_committed} double-spend attempts"));
    }
    let audit_log_records = match dtenge_platform::audit_log::verify_dir(&config.data) {
        Ok(logs) => logs.iter().map(|l| l.records).sum(),
        Err(e) => {
            violations.push(format!("audit log: {e}"));
            0
        }
    };
    let mints = tally.mints.load(Ordering::Relaxed);
    if config.seconds >= 10 && mints == 0 {
        violations
            .push(format!("no stablecoin mint was acknowledged in {} s: the reserve audit saw none", config.seconds));
    }
    let kills = tally.kills.load(Ordering::Relaxed);
    let expected_kills = config.seconds / 10;
    if kills < expected_kills {
        violations.push(format!("only {kills} kills in {} s (expected at least {expected_kills})", config.seconds));
    }
    let mut failover = outcome.failover_ms.clone();
    let (failover_ms_p50, failover_ms_max) = median_and_max(&mut failover);
    let (rejoin_ms_p50, rejoin_ms_max) = median_and_max(&mut rejoin);
    if replicas.len() > 1 && config.seconds >= 60 && outcome.leader_kills < 5 {
        violations
            .push(format!("only {} leader kills in {} s (expected at least 5)", outcome.leader_kills, config.seconds));
    }
    let passed = violations.is_empty();
    Ok(ChaosReport {
        seed: config.seed,
        seconds: config.seconds,
        kills,
        kills_by_service: tally.kills_by.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        committed: acked.len() as u64,
        notary_committed: audit.committed,
        refused: tally.refused.load(Ordering::Relaxed),
        redemptions: tally.redemptions.load(Ordering::Relaxed),
        stablecoin_mints: mints,
        stablecoin_payments: tally.coin_payments.load(Ordering::Relaxed),
        stablecoin_burns: tally.burns.load(Ordering::Relaxed),
        stablecoins: audit.stablecoins.clone(),
        double_spend_attempts: tally.ds_attempts.load(Ordering::Relaxed),
        double_spends_refused: tally.ds_refused.load(Ordering::Relaxed),
        notary_replicas: replicas.len() as u64,
        notary_leader_kills: outcome.leader_kills,
        failover_ms_p50,
        failover_ms_max,
        rejoin_ms_p50,
        rejoin_ms_max,
        notary_follower_kills: outcome.follower_kills,
        notary_isolations: outcome.isolations,
        minority_probes: outcome.minority_probes,
        minority_acknowledged: outcome.minority_acknowledged,
        replicas_agree,
        double_spends: ds_committed.saturating_add(audit.double_spends.len() as u64),
        lost: audit.lost.len() as u64,
        supply_conserved: audit.supply_conserved,
        issued_tiyn: audit.issued,
        redeemed_tiyn: audit.redeemed,
        held_tiyn: audit.held,
        audit_log_records,
        violations,
        passed,
    })
}

/// The median and the largest of `values` (0 and 0 for none).
fn median_and_max(values: &mut [u64]) -> (u64, u64) {
    values.sort_unstable();
    (values.get(values.len() / 2).copied().unwrap_or(0), values.last().copied().unwrap_or(0))
}

fn buses(spec: &PlatformSpec, data: &Path) -> Result<Buses, ChaosError> {
    let participants: Arc<Participants> = Arc::new(spec.directory());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = Keys::at(data);
    let mut out = BTreeMap::new();
    for info in spec.nodes() {
        let key = Arc::new(keys.load(info.id.as_str())?);
        let bus: Arc<dyn Bus> = HttpBus::with_config(
            info.id.clone(),
            key,
            participants.clone(),
            clock.clone(),
            Arc::new(NoEvidence),
            HttpBusConfig { timeout: Duration::from_secs(15), ..HttpBusConfig::default() },
        );
        out.insert(info.id.clone(), bus);
    }
    Ok(Buses(out))
}

/// Funds the banks and the stablecoin issuer (NBK issues) and opens and
/// funds the client DAs. Returns the clients, NBK's DA and the issuer's DA.
async fn setup(
    spec: &PlatformSpec,
    buses: &Buses,
    tally: &Tally,
    per_bank: usize,
) -> Result<(Vec<Client>, Client, Client), ChaosError> {
    let account = |key: &str| -> Result<(ParticipantId, Address), ChaosError> {
        let inst = spec
            .institutions
            .iter()
            .find(|i| i.key == key)
            .ok_or_else(|| ChaosError::Setup(format!("no institution {key}")))?;
        Ok((inst.host.clone(), inst.address))
    };
    let lookup = |node: ParticipantId, address: Address| async move {
        match buses.until_ok(&node, &OperatorRequest::Account { address }).await? {
            OperatorAnswer::Account { id, address } => Ok(Client { node, id, address }),
            other => Err(ChaosError::Setup(format!("unexpected answer {other:?}"))),
        }
    };
    let (nbk, nbk_address) = account(ids::NBK_DA)?;
    let nbk_da = lookup(nbk.clone(), nbk_address).await?;
    let mut clients = Vec::new();
    let mut serial = 100u8;
    for (b, bank) in ids::STBS.iter().enumerate() {
        let (host, address) = account(&format!("{bank}-DA"))?;
        let bank_da = lookup(host.clone(), address).await?;
        let issue = OperatorRequest::Issue {
            issuer: nbk_da.id.clone(),
            to: bank_da.address,
            amount: dt(10_000_000),
            cbs_reference: format!("CHAOS-FUNDING-{b}"),
        };
        record(tally, &nbk, vec![host.clone()], buses.until_ok(&nbk, &issue).await?);
        for k in 0..per_bank {
            serial = serial.wrapping_add(1);
            let open = OperatorRequest::OpenAccount {
                iin_bin: dtenge_platform::demo_set::demo_iin_bin(HolderKind::Individual, serial),
                name: format!("Chaos client {bank}-{k}"),
                kind: HolderKind::Individual,
            };
            let client = match buses.until_ok(&host, &open).await? {
                OperatorAnswer::Account { id, address } => Client { node: host.clone(), id, address },
                other => return Err(ChaosError::Setup(format!("unexpected answer {other:?}"))),
            };
            let fund = OperatorRequest::Pay { from: bank_da.id.clone(), to: client.address, amount: dt(100_000) };
            record(tally, &host, vec![host.clone()], buses.until_ok(&host, &fund).await?);
            clients.push(client);
        }
    }
    let (coin_host, coin_address) = account(ids::COIN_ISSUER_DA)?;
    let coin_issuer = lookup(coin_host.clone(), coin_address).await?;
    let fund = OperatorRequest::Issue {
        issuer: nbk_da.id.clone(),
        to: coin_issuer.address,
        amount: dt(1_000_000),
        cbs_reference: "CHAOS-FUNDING-COIN".into(),
    };
    record(tally, &nbk, vec![coin_host], buses.until_ok(&nbk, &fund).await?);
    Ok((clients, nbk_da, coin_issuer))
}

/// Records an acknowledged operation; returns whether it was one.
fn record(tally: &Tally, payer: &ParticipantId, payees: Vec<ParticipantId>, answer: OperatorAnswer) -> bool {
    match answer {
        OperatorAnswer::Committed { tx, inputs } => {
            tally.ack(tx, payer, payees, inputs);
            true
        }
        _ => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// One concurrent payer: random transfers between client DAs on all banks;
/// one operation in 25 is a bank paying NBK, then NBK redeeming it.
async fn payer(seed: u64, worker: usize, buses: &Buses, tally: &Tally, clients: &[Client], nbk_da: &Client) {
    let mut rng = Rng::new(seed);
    let mut n = 0u64;
    while !tally.stop.load(Ordering::Relaxed) {
        n += 1;
        let ok = if rng.index(25) == 0 {
            redeem(&mut rng, worker, n, buses, tally, clients, nbk_da).await
        } else {
            let from = &clients[rng.index(clients.len())];
            let to = &clients[rng.index(clients.len())];
            let pay = OperatorRequest::Pay { from: from.id.clone(), to: to.address, amount: dt(rng.range(1, 300)) };
            match buses.operate(&from.node, &pay).await {
                Ok(answer) => record(tally, &from.node, vec![to.node.clone()], answer),
                Err(_) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    false
                }
            }
        };
        if !ok {
            // A service is down or funds are short: do not spin.
            tokio::time::sleep(Duration::from_millis(rng.range(20, 200))).await;
        }
    }
}

/// The stablecoin's round under the kills: its licensed issuer mints, pays a
/// client in it, the client (on a bank's node) pays it back, the issuer
/// burns it. A round stops at the first step not acknowledged; what it
/// left where it was stays counted by the audit (reserve = supply).
async fn coiner(seed: u64, buses: &Buses, tally: &Tally, clients: &[Client], issuer: &Client, coin: Currency) {
    let mut rng = Rng::new(seed);
    while !tally.stop.load(Ordering::Relaxed) {
        let amount = dt(rng.range(1, 500));
        let client = &clients[rng.index(clients.len())];
        let round = [
            (issuer, OperatorRequest::Mint { issuer: issuer.id.clone(), amount }, Vec::new(), &tally.mints),
            (
                issuer,
                OperatorRequest::PayIn { from: issuer.id.clone(), currency: coin, to: client.address, amount },
                vec![client.node.clone()],
                &tally.coin_payments,
            ),
            (
                client,
                OperatorRequest::PayIn { from: client.id.clone(), currency: coin, to: issuer.address, amount },
                vec![issuer.node.clone()],
                &tally.coin_payments,
            ),
            (issuer, OperatorRequest::Burn { issuer: issuer.id.clone(), amount }, Vec::new(), &tally.burns),
        ];
        for (by, request, payees, count) in round {
            let acked = match buses.operate(&by.node, &request).await {
                Ok(answer) => record(tally, &by.node, payees, answer),
                Err(_) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    false
                }
            };
            if !acked {
                // A service is down: do not spin.
                tokio::time::sleep(Duration::from_millis(rng.range(20, 200))).await;
                break;
            }
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn redeem(
    rng: &mut Rng,
    worker: usize,
    n: u64,
    buses: &Buses,
    tally: &Tally,
    clients: &[Client],
    nbk_da: &Client,
) -> bool {
    let from = &clients[rng.index(clients.len())];
    let amount = dt(rng.range(1, 100));
    let pay = OperatorRequest::Pay { from: from.id.clone(), to: nbk_da.address, amount };
    let paid = match buses.operate(&from.node, &pay).await {
        Ok(answer) => record(tally, &from.node, vec![nbk_da.node.clone()], answer),
        Err(_) => false,
    };
    if !paid {
        return false;
    }
    let redeem =
        OperatorRequest::Redeem { issuer: nbk_da.id.clone(), amount, cbs_reference: format!("CHAOS-R-{worker}-{n}") };
    match buses.operate(&nbk_da.node, &redeem).await {
        Ok(answer) => {
            let ok = record(tally, &nbk_da.node, Vec::new(), answer);
            if ok {
                tally.redemptions.fetch_add(1, Ordering::Relaxed);
            }
            ok
        }
        Err(_) => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Every ~0.5 s: two banks at once claim at the notary a token an
/// acknowledged transfer already spent. Each answered claim must be refused.
async fn double_spender(
    seed: u64,
    buses: &Buses,
    tally: &Tally,
    banks: &[(ParticipantId, Arc<SecretKey>)],
    participants: &Participants,
) {
    let mut rng = Rng::new(seed);
    if banks.len() < 2 {
        return;
    }
    // Each bank reaches the notary (one process or the group's leader) as a node does.
    let clients: Vec<Option<NotaryClient>> = banks
        .iter()
        .map(|(bank, key)| {
            let signer: Arc<dyn dtenge_crypto::Signer> = key.clone();
            buses.of(bank).ok().map(|bus| NotaryClient::new(bus.clone(), signer, participants))
        })
        .collect();
    while !tally.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.range(300, 700))).await;
        let pick = {
            let spent = tally.spent.lock().unwrap_or_else(PoisonError::into_inner);
            if spent.is_empty() { None } else { spent.get(rng.index(spent.len())).cloned() }
        };
        let Some((token_id, token)) = pick else { continue };
        let first = rng.index(banks.len());
        let second = (first + 1 + rng.index(banks.len() - 1)) % banks.len();
        // Signed as the bank: the envelope by its bus, the batch with its key.
        async fn attempt(
            client: &Option<NotaryClient>,
            claim: Option<TxClaim>,
        ) -> Option<Result<Vec<Verdict>, NotaryClientError>> {
            Some(client.as_ref()?.notarise(vec![claim?]).await)
        }
        let (a, b) = tokio::join!(
            attempt(&clients[first], rogue_claim(token_id, &token, rng.next_u64())),
            attempt(&clients[second], rogue_claim(token_id, &token, rng.next_u64()))
        );
        for answer in [a, b].into_iter().flatten() {
            let committed = match answer {
                Ok(v) => match v.first() {
                    Some(Verdict::Committed(_)) => true,
                    Some(Verdict::Rejected(_)) => false,
                    None => continue,
                },
                Err(NotaryClientError::Refused(_)) => false,
                // Unanswered (the notary was down): not an attempt the notary decided.
                Err(_) => continue,
            };
            tally.ds_attempts.fetch_add(1, Ordering::Relaxed);
            if committed {
                tally.ds_committed.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.ds_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A transaction spending `token_id` again, to an address derived from `salt`.
fn rogue_claim(token_id: TokenId, token: &Token, salt: u64) -> Option<TxClaim> {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&salt.to_le_bytes());
    let to = Address(SecretKey::from_seed(seed).public_key());
    let body = TxBody {
        inputs: vec![token_id].try_into().ok()?,
        outputs: vec![Token::standard(token.currency, token.amount, to, token.host.clone())].try_into().ok()?,
        command: TxCommand::Transfer,
        window: TimeWindow::starting(SystemClock.now(), 60_000),
        memo: None,
    };
    TxClaim::of(&Transaction::unsigned(body), std::slice::from_ref(token)).ok()
}

/// Shortest pause between two kills.
const MIN_KILL_INTERVAL_MS: u64 = 1_500;

/// Every 1.5–`max` s: SIGKILL a random service, restart it 0.2–1.5 s later
/// (a replica of a group: and wait until it is back in the group, asking
/// through `bus`).
async fn killer(
    seed: u64,
    max: Duration,
    services: &Services,
    tally: &Tally,
    ids: &[String],
    replicas: &[ParticipantId],
    bus: Option<&Arc<dyn Bus>>,
) -> Result<(), ChaosError> {
    let mut rng = Rng::new(seed);
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(6_000).max(MIN_KILL_INTERVAL_MS);
    let mut round: Vec<String> = Vec::new();
    loop {
        let wait = Duration::from_millis(rng.range(MIN_KILL_INTERVAL_MS, max_ms));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if tally.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Random victims in shuffled rounds: every service is killed once per round.
        if round.is_empty() {
            round = ids.to_vec();
            for i in (1..round.len()).rev() {
                round.swap(i, rng.index(i + 1));
            }
        }
        let Some(victim) = round.pop() else { return Ok(()) };
        let victim = &victim;
        // One replica out at a time (the leader killer's included): the
        // group keeps its majority, so each kill measures a failover.
        let replica = replicas.iter().find(|r| r.as_str() == victim).filter(|_| replicas.len() > 1);
        if replica.is_some() && tally.replica_down.swap(true, Ordering::Relaxed) {
            continue;
        }
        services.kill(victim)?;
        tally.kills.fetch_add(1, Ordering::Relaxed);
        *tally.kills_by.lock().unwrap_or_else(PoisonError::into_inner).entry(victim.clone()).or_default() += 1;
        *tally.last_kill.lock().unwrap_or_else(PoisonError::into_inner) = Some(victim.clone());
        tokio::time::sleep(Duration::from_millis(rng.range(200, 1_500))).await;
        services.spawn(victim)?;
        if let Some(replica) = replica {
            match bus {
                Some(bus) => group::let_back(tally, bus, replica, replicas).await,
                None => tally.replica_down.store(false, Ordering::Relaxed),
            }
        }
    }
}

/// Waits until every node reports nothing in flight and nothing undelivered, twice in a row.
async fn wait_for_recovery(spec: &PlatformSpec, buses: &Buses) -> Result<(), String> {
    let started = Instant::now();
    let mut clean_rounds = 0;
    let mut last = String::new();
    while clean_rounds < 2 {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("recovery did not finish within 120 s: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut clean = true;
        for info in spec.nodes() {
            match buses.operate(&info.id, &OperatorRequest::Pending).await {
                Ok(OperatorAnswer::Pending { in_flight: 0, undelivered: 0 }) => {}
                Ok(OperatorAnswer::Pending { in_flight, undelivered }) => {
                    clean = false;
                    last = format!("{}: {in_flight} in flight, {undelivered} undelivered", info.id);
                }
                Ok(other) => {
                    clean = false;
                    last = format!("{}: {other:?}", info.id);
                }
                Err(e) => {
                    clean = false;
                    last = format!("{}: {e}", info.id);
                }
            }
        }
        clean_rounds = if clean { clean_rounds + 1 } else { 0 };
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_stays_in_range() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1000 {
            let x = a.range(2_000, 8_000);
            assert_eq!(x, b.range(2_000, 8_000));
            assert!((2_000..=8_000).contains(&x));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
