//! # dtenge-bench — measuring the platform
//!
//! `full path`: many DAs on the three banks' nodes; concurrent payers send
//! signed transfers built by their node, validated by the kernel, notarised
//! durably (fsync on), delivered to the payee's node. Measures committed
//! transfers per second and end-to-end latency (from the call to the
//! acknowledged commit), CPU cores used and peak memory.
//!
//! `notary only`: signed batches of claims straight to the notary service
//! (journal with group commit on): input checks per second. With
//! `notary_replicas` > 1 the notary is a replicated group (openraft) in this
//! process, each replica on its own fsynced log, snapshots and cold store,
//! over the in-process network: a batch goes to the leader and is answered
//! once a majority has it durable and the leader applied it.
//!
//! Nothing here asserts a time; the figures are printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dtenge_net::SystemClock;
use dtenge_node::accounts::{Account, Holder, HolderKind, KycState};
use dtenge_node::conversion::ConversionKind;
use dtenge_node::service::PayTo;
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::Amount;
use hdrhistogram::Histogram;
use serde::Serialize;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Data directory (a fresh one is made inside).
    pub data: std::path::PathBuf,
    /// How long to measure.
    pub seconds: u64,
    /// Number of paying DAs (spread over STB1-STB3).
    pub users: usize,
    /// Who pays whom (see [`Workload`]).
    pub workload: Workload,
    /// Pay through the HTTP API (signed requests over loopback, as a bank's
    /// integration does) instead of calling the nodes.
    pub api: bool,
    /// Whether the platform makes its writes durable (fsync, archives on
    /// disk). Off only to measure what durability costs.
    pub durable: bool,
    /// Concurrent payers.
    pub concurrency: usize,
    /// Open-loop rate (transfers/s), or as fast as possible.
    pub rate: Option<u64>,
    /// Notary only: how many claims to prepare (the run ends early when they are used up).
    pub claims: usize,
    /// Replicas of the notary (1: a single notary; 3: a group in this process).
    pub notary_replicas: u64,
}

/// Who pays whom on the full path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Every DA pays a random other DA `n` DT from whatever tokens it holds
    /// (funded with 1 DT tokens; received payments come as larger ones, so
    /// a transfer spends 1–2 inputs whatever `n` is): the workload of the
    /// figures in docs/performance.md.
    Mixed(usize),
    /// Exactly `k` inputs and two outputs per transfer, as OpenCBDC measures
    /// (2-in-2-out): half the DAs pay, funded with 1 DT tokens only, and
    /// never receive; the other half receive. Each payment is `k` DT less
    /// 0,50: the largest-first selection takes `k` 1 DT tokens, and the
    /// 0,50 change is below the split minimum, so it is one output.
    Exact(usize),
    /// One DA, funded by a single token, pays the others with every payer
    /// at once: a bank's payout system on one hot DA.
    HotDa,
}

impl Workload {
    /// The name the report gives it.
    pub fn name(self) -> String {
        match self {
            Workload::Mixed(n) => format!("mixed ({n} DT per transfer)"),
            Workload::Exact(k) => format!("exact ({k} inputs, 2 outputs)"),
            Workload::HotDa => "one hot DA".into(),
        }
    }
}

/// Payments each paying DA is funded for in the [`Workload::Exact`] run,
/// per second measured.
const EXACT_PAYMENTS_PER_SECOND: usize = 60;

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// What ran: `full_path` or `notary_only`.
    pub mode: String,
    /// Who paid whom ([`Workload::name`]).
    pub workload: String,
    /// Committed transfers (or notarised claims) per second.
    pub tx_per_s: f64,
    /// Input checks per second (notary).
    pub input_checks_per_s: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Transfers committed.
    pub committed: u64,
    /// Transfers refused (funds in flight, …).
    pub refused: u64,
    /// Refused transfers by the refusal's stable code (`funds_in_flight`,
    /// `busy`, …; over the API the API's code), most frequent first.
    pub refused_by: Vec<(String, u64)>,
    /// Wall seconds measured.
    pub seconds: f64,
    /// CPU cores busy on average (user + system time / wall time).
    pub cpu_cores: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// Resident memory during the run: `[seconds, MiB]` every
    /// [`RSS_SAMPLE_SECONDS`] seconds (the first at the start of the run).
    pub rss_samples_mib: Vec<[f64; 2]>,
    /// Growth of resident memory from [`WARM_SECONDS`] to the end, percent
    /// (`null` for runs shorter than twice that).
    pub rss_growth_after_warmup_pct: Option<f64>,
    /// Average inputs per committed transfer.
    pub inputs_per_tx: f64,
    /// Average outputs per committed transfer (payee and change).
    pub outputs_per_tx: f64,
    /// CPU time of the whole process per committed transfer, µs.
    pub cpu_us_per_tx: f64,
    /// The cryptographic floor of a transfer measured on this machine just
    /// before the run: one Ed25519 signature plus one signature's share of
    /// a batch verification of 1 024, µs (see [`crypto_floor_us`]).
    pub crypto_floor_us: f64,
    /// Notary memory at the end: unspent commitments (the live set).
    pub notary_unspent: u64,
    /// Notary memory at the end: recent history entries (spent commitments
    /// and receipt bodies) not yet moved to the cold store.
    pub notary_hot_history: u64,
    /// History entries the notary moved to its cold store during the run.
    pub notary_cold_entries: u64,
    /// Replicas of the notary (1: a single notary).
    pub notary_replicas: u64,
    /// A group's Raft term at the end (1 + elections after the first: a
    /// term above 1 in a run without faults is a spurious election).
    pub notary_term: u64,
    /// Claims per batch the nodes sent the notary during the run, on
    /// average (`null` when none was sent: the notary-only mode).
    pub claims_per_notary_batch: Option<f64>,
    /// Requests (deliveries and payee pre-checks) per batch a node sent
    /// another node during the run, on average (`null` when none was sent).
    pub requests_per_node_batch: Option<f64>,
    /// Journal syncs (`fdatasync`s of every node's and the notary's
    /// journal) during the run per committed transfer (`null` when nothing
    /// was committed or nothing is made durable: `--volatile`).
    pub syncs_per_transfer: Option<f64>,
    /// Mean milliseconds a transaction spent in each stage of its node's
    /// pipeline during the run, by the stage's label (`pre_check`,
    /// `prepare`, `notarise`, `settle`, `deliver`; see
    /// `dtenge_node::metrics::Stage`); a stage no transaction went through
    /// is absent. The pre-check runs beside `prepare`, the delivery beside
    /// `settle`.
    pub stage_ms: BTreeMap<String, f64>,
    /// Payments during the run that a lease spared the pre-check to the
    /// payee's bank, and leases the nodes took (`dtenge_node::lease`;
    /// `null` in the notary-only mode).
    pub leases: Option<LeaseUse>,
}

/// What leases did during a run ([`BenchReport::leases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeaseUse {
    /// Payments that skipped the pre-check.
    pub spared: u64,
    /// Leases taken (one pre-check each).
    pub taken: u64,
}

/// Leases used and taken by every node of `platform` so far.
fn lease_use(platform: &Platform) -> LeaseUse {
    platform.nodes.values().map(|node| node.lease_counts()).fold(LeaseUse { spared: 0, taken: 0 }, |sum, c| LeaseUse {
        spared: sum.spared + c.used,
        taken: sum.taken + c.taken,
    })
}

impl BenchReport {
    /// [`BenchReport::stage_ms`] in the order a payment meets the stages.
    pub fn stages_in_order(&self) -> Vec<(&'static str, f64)> {
        dtenge_node::metrics::Stage::ALL
            .iter()
            .filter_map(|stage| Some((stage.label(), *self.stage_ms.get(stage.label())?)))
            .collect()
    }
}

fn notary_memory(notary: &dtenge_platform::PlatformNotary) -> (u64, u64, u64) {
    let hot = notary.hot_counts();
    let cold = notary.state_copy().cold().written().1;
    (hot.unspent as u64, (hot.spent + hot.receipts) as u64, cold)
}

/// A group's Raft term: the highest any replica reached.
fn group_term(replicas: &[Arc<dtenge_notary::NotaryReplica>]) -> u64 {
    replicas.iter().map(|r| r.raft().metrics().borrow().current_term).max().unwrap_or(0)
}

/// The nodes' batches, the journals' syncs and the pipeline's stages so
/// far, from the process's metrics (`dtenge_node_batch_size`, see
/// `dtenge_node::metrics`: requests and batches to the notary, and to other
/// nodes; the count of `dtenge_journal_sync_seconds`, see `dtenge_store`;
/// `dtenge_node_stage_seconds`: seconds and transactions per stage, every
/// node's summed).
#[derive(Debug, Clone, Default, PartialEq)]
struct RunMetrics {
    notary: (f64, f64),
    nodes: (f64, f64),
    syncs: f64,
    stages: BTreeMap<String, (f64, f64)>,
}

impl RunMetrics {
    fn now() -> RunMetrics {
        RunMetrics::parse(&dtenge_net::telemetry::render_metrics())
    }

    /// Reads the batch histogram's `_sum` (requests) and `_count` (batches)
    /// lines of every node and destination, the stage histogram's (seconds
    /// and transactions) of every node and stage, and the sync histogram's
    /// `_count`, out of a Prometheus text rendering.
    fn parse(rendered: &str) -> RunMetrics {
        let mut out = RunMetrics::default();
        for line in rendered.lines() {
            if let Some(rest) = line.strip_prefix("dtenge_journal_sync_seconds_count") {
                // Unlabelled today; labels, if ever added, are summed over.
                let value = rest.rsplit_once(['}', ' ']).map_or(rest, |(_, v)| v);
                if let Ok(value) = value.trim().parse::<f64>() {
                    out.syncs += value;
                }
            } else if let Some((labels, more)) = sum_or_count(line, "dtenge_node_stage_seconds") {
                if let Some(stage) = labels.split(',').find_map(|l| l.trim().strip_prefix("stage=\"")) {
                    add(out.stages.entry(stage.trim_end_matches('"').to_string()).or_default(), more);
                }
            } else if let Some((labels, more)) = sum_or_count(line, "dtenge_node_batch_size") {
                add(if labels.contains("to=\"notary\"") { &mut out.notary } else { &mut out.nodes }, more);
            }
        }
        out
    }

    /// Requests per batch since `before`, to the notary and to other nodes.
    fn per_batch_since(&self, before: &RunMetrics) -> (Option<f64>, Option<f64>) {
        (mean_since(self.notary, before.notary), mean_since(self.nodes, before.nodes))
    }

    /// Mean milliseconds per stage since `before`, for the stages some
    /// transaction went through.
    fn stage_ms_since(&self, before: &RunMetrics) -> BTreeMap<String, f64> {
        self.stages
            .iter()
            .filter_map(|(stage, &now)| {
                let seconds = mean_since(now, before.stages.get(stage).copied().unwrap_or_default())?;
                Some((stage.clone(), seconds * 1000.0))
            })
            .collect()
    }

    /// Journal syncs since `before` per one of `transfers` (none: `None`).
    fn syncs_per_since(&self, before: &RunMetrics, transfers: u64) -> Option<f64> {
        let syncs = self.syncs - before.syncs;
        (transfers > 0 && syncs > 0.0).then(|| syncs / transfers as f64)
    }
}

/// A labelled histogram's `_sum` or `_count` line: its labels, and its
/// value as what it adds to a `(sum, count)` pair.
fn sum_or_count<'a>(line: &'a str, name: &str) -> Option<(&'a str, (f64, f64))> {
    let rest = line.strip_prefix(name)?;
    let (is_count, rest) = match rest.strip_prefix("_sum{") {
        Some(rest) => (false, rest),
        None => (true, rest.strip_prefix("_count{")?),
    };
    let (labels, value) = rest.split_once('}')?;
    let value = value.trim().parse::<f64>().ok()?;
    Some((labels, if is_count { (0.0, value) } else { (value, 0.0) }))
}

/// Adds `more` to `pair`.
fn add(pair: &mut (f64, f64), more: (f64, f64)) {
    pair.0 += more.0;
    pair.1 += more.1;
}

/// The mean of a `(sum, count)` pair's growth since `then` (nothing counted:
/// `None`).
fn mean_since(now: (f64, f64), then: (f64, f64)) -> Option<f64> {
    let count = now.1 - then.1;
    (count > 0.0).then(|| (now.0 - then.0) / count)
}

/// Process CPU seconds (user + system) from /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after ")" start at index 0 = state; utime = 11, stime = 12; 100 ticks/s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/self/status` figure in kB (`VmHWM:`, `VmRSS:`), as MiB.
fn status_mib(field: &str) -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0.0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident set, MiB.
fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Seconds between two samples of resident memory.
pub const RSS_SAMPLE_SECONDS: f64 = 10.0;
/// Seconds of warm-up before memory is expected to stay flat: the replay
/// caches of the envelope gates fill for their 70-second window, and block
/// caches, memtables and the notary's generations of recent history (closed
/// every 10 s) reach their fixed sizes.
pub const WARM_SECONDS: f64 = 60.0;

/// Resident memory sampled during a run.
#[derive(Default)]
struct RssSamples {
    samples: Vec<[f64; 2]>,
}

impl RssSamples {
    /// Takes a sample if [`RSS_SAMPLE_SECONDS`] passed since the last one.
    fn tick(&mut self, elapsed: f64) {
        let due = self.samples.last().is_none_or(|[t, _]| elapsed - t >= RSS_SAMPLE_SECONDS);
        if due {
            self.samples.push([elapsed, status_mib("VmRSS:")]);
        }
    }

    /// The samples, the last taken at `elapsed`, and the growth after warm-up.
    fn finish(mut self, elapsed: f64) -> (Vec<[f64; 2]>, Option<f64>) {
        self.samples.push([elapsed, status_mib("VmRSS:")]);
        let growth = if elapsed >= 2.0 * WARM_SECONDS {
            let warm = self.samples.iter().find(|[t, _]| *t >= WARM_SECONDS).map(|[_, m]| *m);
            let end = self.samples.last().map(|[_, m]| *m);
            match (warm, end) {
                (Some(w), Some(e)) if w > 0.0 => Some((e - w) / w * 100.0),
                _ => None,
            }
        } else {
            None
        };
        (self.samples, growth)
    }
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap_or(Amount::MAX)
}

/// Waits for every task; the first error wins.
fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<Result<(), BenchError>>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BenchError>> + Send>> {
    Box::pin(async move {
        for task in tasks {
            task.await.map_err(fail)??;
        }
        Ok(())
    })
}

/// Why the bench could not run.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

fn fail(e: impl ToString) -> BenchError {
    BenchError(e.to_string())
}

/// Runs the full path; `progress(committed, elapsed)` is called about every 200 ms.
pub async fn full_path(
    config: &BenchConfig,
    progress: impl Fn(u64, f64) + Send + Sync + 'static,
) -> Result<BenchReport, BenchError> {
    if config.notary_replicas > 1 && !config.data.join("platform.json").exists() {
        std::fs::create_dir_all(&config.data).map_err(fail)?;
        let spec = dtenge_platform::spec::PlatformSpec::demo_with(
            &config.data,
            &std::collections::BTreeMap::new(),
            config.notary_replicas,
        )
        .map_err(fail)?;
        spec.save(&config.data).map_err(fail)?;
    }
    let platform = Arc::new(
        Platform::open(&config.data, Arc::new(SystemClock), PlatformOptions { durable: config.durable })
            .await
            .map_err(fail)?,
    );
    let banks = ["STB1", "STB2", "STB3"];
    // Who pays (indices into `users`), who receives, how much, and what each
    // user is funded with: `(1 DT tokens, one token of this many DT)`.
    let payers_count = match config.workload {
        Workload::Mixed(_) => config.users,
        Workload::Exact(_) => (config.users / 2).max(1),
        Workload::HotDa => 1,
    };
    let funding = |user: usize| -> (usize, u64) {
        match config.workload {
            Workload::Mixed(n) => (n.max(1).saturating_mul(20), 0),
            Workload::Exact(k) if user < payers_count => (
                k.max(1)
                    .saturating_mul(EXACT_PAYMENTS_PER_SECOND)
                    .saturating_mul(usize::try_from(config.seconds).unwrap_or(usize::MAX).max(1)),
                0,
            ),
            Workload::Exact(_) => (0, 0),
            Workload::HotDa if user == 0 => (0, 10_000_000),
            Workload::HotDa => (0, 0),
        }
    };
    let amount = match config.workload {
        Workload::Mixed(n) => dt(u64::try_from(n.max(1)).unwrap_or(1)),
        Workload::Exact(k) => {
            dt(u64::try_from(k.max(1)).unwrap_or(1)).checked_sub(Amount::from_tiyn(50)).unwrap_or(Amount::ZERO)
        }
        Workload::HotDa => dt(1),
    };
    let mut users: Vec<(usize, (String, Account))> = Vec::with_capacity(config.users);
    let nbk = platform.node(ids::NBK).map_err(fail)?.clone();
    // Users are numbered bank by bank, so payers (the first) spread over the banks.
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(config.users);
    for (b, _) in banks.iter().enumerate() {
        let count = config.users / banks.len() + usize::from(b < config.users % banks.len());
        order.extend((0..count).map(|i| (b, i)));
    }
    order.sort_by_key(|&(b, i)| (i, b));
    for (b, bank) in banks.iter().enumerate() {
        let node = platform.node(bank).map_err(fail)?.clone();
        let mine: Vec<usize> = (0..order.len()).filter(|u| order[*u].0 == b).collect();
        let count = mine.len();
        let total = mine.iter().try_fold(0u64, |sum, u| {
            let (units, single) = funding(*u);
            sum.checked_add(u64::try_from(units).ok()?)?.checked_add(single)
        });
        let total = total.ok_or_else(|| fail("the funding does not fit in an amount"))?;
        if total == 0 && count == 0 {
            continue;
        }
        if total > 0 {
            let request = node.request_conversion(ConversionKind::Issue, dt(total)).await.map_err(fail)?;
            nbk.import_cbs().await.map_err(fail)?;
            nbk.approve_conversion(&request.id, "bench").await.map_err(fail)?;
        }
        let own = node.own_account().map_err(fail)?;
        for (i, user) in mine.into_iter().enumerate() {
            let n = u8::try_from((b * 1000 + i) % 250).unwrap_or(0);
            let iin = dtenge_platform::demo_set::demo_iin_bin(HolderKind::Individual, n);
            let account = node
                .open_account(
                    Holder { iin_bin: iin, name: format!("Bench user {b}-{i}"), kind: HolderKind::Individual },
                    None,
                    KycState::Verified,
                )
                .await
                .map_err(fail)?;
            // Split the funds into 1 DT tokens, 60 outputs per transaction.
            let (units, single) = funding(user);
            let mut left = units;
            while left > 0 {
                let n = left.min(60);
                let to: Vec<PayTo> = (0..n).map(|_| PayTo { address: account.address, amount: dt(1) }).collect();
                node.pay(&own, &to, None).await.map_err(fail)?;
                left -= n;
            }
            if single > 0 {
                node.pay(&own, &[PayTo { address: account.address, amount: dt(single) }], None).await.map_err(fail)?;
            }
            users.push((user, (bank.to_string(), account)));
        }
    }
    users.sort_by_key(|(user, _)| *user);
    let users: Vec<(String, Account)> = users.into_iter().map(|(_, u)| u).collect();
    let users = Arc::new(users);
    let crypto_floor_us = crypto_floor_us();
    let clients = if config.api { Some(Arc::new(api_clients(&platform, &banks).await?)) } else { None };
    let committed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let reasons = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let inputs_total = Arc::new(AtomicU64::new(0));
    let outputs_total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let histogram =
        Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(fail)?));
    let metrics_before = RunMetrics::now();
    let leases_before = lease_use(&platform);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let interval = config.rate.map(|r| Duration::from_secs_f64(config.concurrency as f64 / r.max(1) as f64));
    let mut tasks = Vec::new();
    for w in 0..config.concurrency.max(1) {
        let (platform, users, committed, refused, reasons, inputs_total, outputs_total, stop, histogram) = (
            platform.clone(),
            users.clone(),
            committed.clone(),
            refused.clone(),
            reasons.clone(),
            inputs_total.clone(),
            outputs_total.clone(),
            stop.clone(),
            histogram.clone(),
        );
        let workload = config.workload;
        let clients = clients.clone();
        tasks.push(tokio::spawn(async move {
            let mut seq = w;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += i;
                }
                seq = seq.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let (payer, payee) = pick(workload, payers_count, users.len(), seq);
                let (bank, from) = &users[payer];
                let Ok(node) = platform.node(bank) else { break };
                let t0 = Instant::now();
                let paid = match &clients {
                    Some(clients) => pay_over_api(clients, bank, from, &users[payee].1, amount).await,
                    None => node
                        .pay(&from.id, &[PayTo { address: users[payee].1.address, amount }], None)
                        .await
                        .map(|outcome| outcome.tx)
                        .map_err(|e| e.code().to_string()),
                };
                match paid {
                    Ok(tx) => {
                        let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                        if let Ok(mut h) = histogram.lock() {
                            let _ = h.record(micros.max(1));
                        }
                        committed.fetch_add(1, Ordering::Relaxed);
                        let (ins, outs) = node.read(|s| {
                            s.outgoing(&tx).map_or((0, 0), |o| (o.tx.body.inputs.len(), o.tx.body.outputs.len()))
                        });
                        inputs_total.fetch_add(u64::try_from(ins).unwrap_or(0), Ordering::Relaxed);
                        outputs_total.fetch_add(u64::try_from(outs).unwrap_or(0), Ordering::Relaxed);
                    }
                    Err(code) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut reasons) = reasons.lock() {
                            *reasons.entry(code).or_default() += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
        }));
    }
    let deadline = started + Duration::from_secs(config.seconds);
    let mut rss = RssSamples::default();
    rss.tick(0.0);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let elapsed = started.elapsed().as_secs_f64();
        rss.tick(elapsed);
        progress(committed.load(Ordering::Relaxed), elapsed);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let metrics_after = RunMetrics::now();
    let (claims_per_notary_batch, requests_per_node_batch) = metrics_after.per_batch_since(&metrics_before);
    let (rss_samples_mib, rss_growth_after_warmup_pct) = rss.finish(wall);
    let done = committed.load(Ordering::Relaxed);
    let syncs_per_transfer = metrics_after.syncs_per_since(&metrics_before, done);
    let stage_ms = metrics_after.stage_ms_since(&metrics_before);
    let h = histogram.lock().map_err(|_| fail("histogram lock"))?.clone();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (notary_unspent, notary_hot_history, notary_cold_entries) = notary_memory(&platform.notary);
    let notary_term = group_term(platform.notary.replicas());
    let leases_after = lease_use(&platform);
    let leases = LeaseUse {
        spared: leases_after.spared.saturating_sub(leases_before.spared),
        taken: leases_after.taken.saturating_sub(leases_before.taken),
    };
    let _ = platform.shut_down().await;
    let per_tx = |total: u64| if done == 0 { 0.0 } else { total as f64 / done as f64 };
    Ok(BenchReport {
        mode: format!(
            "full_path{}{}",
            if config.api { "_api" } else { "" },
            if config.durable { "" } else { "_volatile" }
        ),
        workload: config.workload.name(),
        tx_per_s: done as f64 / wall,
        input_checks_per_s: inputs_total.load(Ordering::Relaxed) as f64 / wall,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        committed: done,
        refused: refused.load(Ordering::Relaxed),
        refused_by: by_frequency(&reasons),
        seconds: wall,
        cpu_cores: cpu / wall,
        peak_rss_mib: peak_rss_mib(),
        rss_samples_mib,
        rss_growth_after_warmup_pct,
        inputs_per_tx: per_tx(inputs_total.load(Ordering::Relaxed)),
        outputs_per_tx: per_tx(outputs_total.load(Ordering::Relaxed)),
        cpu_us_per_tx: if done == 0 { 0.0 } else { cpu * 1e6 / done as f64 },
        crypto_floor_us,
        notary_unspent,
        notary_hot_history,
        notary_cold_entries,
        notary_replicas: config.notary_replicas.max(1),
        notary_term,
        claims_per_notary_batch,
        requests_per_node_batch,
        syncs_per_transfer,
        stage_ms,
        leases: Some(leases),
    })
}

/// The API of `platform` served over HTTP on a loopback port, and a signed
/// client per bank (each bank signs with its own key, as its integration
/// would).
async fn api_clients(
    platform: &Arc<Platform>,
    banks: &[&str],
) -> Result<std::collections::BTreeMap<String, dtenge_client::Client>, BenchError> {
    let api = dtenge_api::Api::open(Arc::clone(platform), dtenge_api::ApiOptions::default(), true).map_err(fail)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    let router = api.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let keys = dtenge_platform::spec::Keys::at(&platform.data);
    let clock: Arc<dyn dtenge_net::Clock> = Arc::new(SystemClock);
    let mut clients = std::collections::BTreeMap::new();
    for bank in banks {
        let key: Arc<dyn dtenge_crypto::Signer> = Arc::new(keys.load(bank).map_err(fail)?);
        let participant = dtenge_types::ParticipantId::new(*bank).map_err(fail)?;
        let client = dtenge_client::Client::new(&format!("http://{addr}"), participant, key, Arc::clone(&clock))
            .map_err(fail)?;
        clients.insert(bank.to_string(), client);
    }
    Ok(clients)
}

/// One transfer through the API: `POST /api/v1/transfers`, signed by the
/// payer's bank; the committed transaction's id.
async fn pay_over_api(
    clients: &std::collections::BTreeMap<String, dtenge_client::Client>,
    bank: &str,
    from: &Account,
    to: &Account,
    amount: Amount,
) -> Result<dtenge_types::TxId, String> {
    let client = clients.get(bank).ok_or_else(|| format!("no API client for {bank}"))?;
    let request = dtenge_api_types::TransferRequest {
        from: from.id.to_string(),
        to: vec![dtenge_api_types::Recipient::address(to.address.to_string(), amount.tiyn())],
        memo: None,
    };
    // The API's stable code names a refusal; a transport failure has none.
    let view = client.transfer(&request, None).await.map_err(|e| e.code().unwrap_or("transport").to_string())?;
    if view.status.status != "success" {
        return Err(view.status.status);
    }
    view.tx.parse().map_err(|_: dtenge_types::TypesError| "bad_transaction_id".to_string())
}

/// Counts by name, most frequent first (ties by name).
fn by_frequency(counts: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>) -> Vec<(String, u64)> {
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<(String, u64)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The payer and payee of the next transfer, from a pseudo-random `seq`.
fn pick(workload: Workload, payers: usize, users: usize, seq: usize) -> (usize, usize) {
    let others = (users - 1).max(1);
    match workload {
        Workload::Mixed(_) => {
            let payer = (seq >> 33) % users;
            (payer, (payer + 1 + (seq >> 13) % others) % users)
        }
        Workload::Exact(_) => {
            let receivers = (users - payers).max(1);
            ((seq >> 33) % payers, (payers + (seq >> 13) % receivers) % users)
        }
        Workload::HotDa => (0, 1 + (seq >> 13) % others),
    }
}

/// One Ed25519 signature plus one signature's share of verifying a batch
/// of 1 024, µs, measured now on this machine: the least CPU any transfer
/// costs (the payer signs, the payee's node verifies), before the notary's
/// share of a claim, the kernel's checks and every journal record.
pub fn crypto_floor_us() -> f64 {
    use dtenge_crypto::{Ed25519, SecretKey, Verifier, VerifyItem};
    const N: usize = 1024;
    let keys: Vec<SecretKey> = (0..N).map(|i| SecretKey::from_seed([u8::try_from(i % 251).unwrap_or(0); 32])).collect();
    let messages: Vec<[u8; 32]> = (0..N).map(|i| [u8::try_from(i % 256).unwrap_or(0); 32]).collect();
    let publics: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
    let started = Instant::now();
    let signatures: Vec<_> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let signing = started.elapsed().as_secs_f64();
    let items: Vec<VerifyItem<'_>> = publics
        .iter()
        .zip(&messages)
        .zip(&signatures)
        .map(|((public_key, message), signature)| VerifyItem { public_key, message, signature })
        .collect();
    let started = Instant::now();
    let verified = Ed25519.verify_batch(&items).is_ok();
    let verifying = started.elapsed().as_secs_f64();
    if !verified {
        return f64::NAN;
    }
    (signing + verifying) * 1e6 / N as f64
}

/// The notary being measured: one service, or a group's replicas.
enum Target {
    Single(Arc<dtenge_notary::NotaryService>),
    Group(Vec<Arc<dtenge_notary::NotaryReplica>>),
}

impl Target {
    /// Notarises on the single notary, or on the group's leader (following
    /// it if it changes).
    async fn notarise(
        &self,
        node: &dtenge_types::ParticipantId,
        batch: dtenge_notary::NotariseBatch,
    ) -> Result<Vec<dtenge_notary::Verdict>, BenchError> {
        match self {
            Target::Single(notary) => notary.notarise(node, batch).await.map_err(fail),
            Target::Group(replicas) => {
                let mut last = String::new();
                for _ in 0..100 {
                    let Some(leader) = replicas.iter().find(|r| r.is_leader()) else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    match leader.notarise(node, batch.clone()).await {
                        Ok(verdicts) => return Ok(verdicts),
                        Err(dtenge_notary::NotaryCallError::NotLeader(_)) => last = "leader changed".into(),
                        Err(e) => return Err(fail(e)),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(fail(format!("no leader took the batch: {last}")))
            }
        }
    }

    fn memory(&self) -> (u64, u64, u64) {
        match self {
            Target::Single(notary) => {
                let hot = notary.hot_counts();
                let cold = notary.state_copy().cold().written().1;
                (hot.unspent as u64, (hot.spent + hot.receipts) as u64, cold)
            }
            Target::Group(replicas) => replicas.iter().find(|r| r.is_leader()).map_or((0, 0, 0), |r| {
                r.with_state(|s| {
                    let hot = s.engine.hot_counts();
                    (hot.unspent as u64, (hot.spent + hot.receipts) as u64, s.engine.cold().written().1)
                })
            }),
        }
    }

    fn term(&self) -> u64 {
        match self {
            Target::Single(_) => 0,
            Target::Group(replicas) => group_term(replicas),
        }
    }

    async fn close(&self) {
        match self {
            Target::Single(notary) => {
                let _ = notary.close();
            }
            Target::Group(replicas) => {
                for r in replicas {
                    let _ = r.shutdown().await;
                }
            }
        }
    }
}

fn fsynced_journal(dir: std::path::PathBuf) -> Result<(dtenge_store::Journal, dtenge_store::Recovery), BenchError> {
    let mut jc = dtenge_store::JournalConfig::new(dir);
    jc.sync = dtenge_store::SyncMode::Fsync;
    dtenge_store::Journal::open(jc).map_err(fail)
}

fn on_disk_cold(
    dir: &std::path::Path,
    config: dtenge_notary::NotaryConfig,
) -> Result<Arc<dtenge_notary::ColdStore>, BenchError> {
    let backend = Arc::new(dtenge_notary::FjallCold::open(dir).map_err(fail)?);
    Ok(Arc::new(
        dtenge_notary::ColdStore::open(backend, config.filter_bytes, dtenge_notary::WriteMode::Background)
            .map_err(fail)?,
    ))
}

/// A group of `n` replicas in this process, over the in-process network,
/// each on its own fsynced storage under `data`; waits for a leader.
async fn open_group(
    data: &std::path::Path,
    n: u64,
    node: (&dtenge_types::ParticipantId, dtenge_crypto::PublicKey),
    clock: Arc<dyn dtenge_net::Clock>,
) -> Result<Vec<Arc<dtenge_notary::NotaryReplica>>, BenchError> {
    use dtenge_crypto::SecretKey;
    use dtenge_net::{ParticipantInfo, Role};
    use dtenge_types::ParticipantId;

    let mut list = vec![ParticipantInfo {
        id: node.0.clone(),
        name: "bench issuer".into(),
        role: Role::Nbk,
        public_key: node.1,
        endpoint: None,
        tls_key: None,
    }];
    let mut members = std::collections::BTreeMap::new();
    let mut keys = Vec::new();
    for k in 1..=n {
        let id = ParticipantId::new(format!("NOTARY-{k}")).map_err(fail)?;
        let key = Arc::new(SecretKey::generate());
        list.push(ParticipantInfo {
            id: id.clone(),
            name: id.to_string(),
            role: Role::Notary,
            public_key: key.public_key(),
            endpoint: None,
            tls_key: None,
        });
        members.insert(k, id.clone());
        keys.push((k, id, key));
    }
    let participants = Arc::new(dtenge_net::Participants::new(list));
    let network =
        dtenge_net::LocalNetwork::new(Arc::clone(&participants), Arc::clone(&clock), Arc::new(dtenge_net::NoEvidence));
    let config = dtenge_notary::NotaryConfig::default();
    let mut replicas = Vec::new();
    for (k, id, key) in keys {
        let dir = data.join(format!("notary-bench-{k}"));
        let stores = dtenge_notary::ReplicaStores {
            log: fsynced_journal(dir.join("log"))?,
            snapshots: fsynced_journal(dir.join("snapshots"))?,
            cold: on_disk_cold(&dir.join("cold"), config)?,
            config,
        };
        let bus = network.bus(id.clone(), key.clone());
        let replica = dtenge_notary::NotaryReplica::start(
            k,
            id.clone(),
            key.clone(),
            Arc::clone(&participants),
            Arc::clone(&clock),
            bus,
            stores,
            dtenge_notary::GroupOptions::default(),
        )
        .await
        .map_err(fail)?;
        network.register(id, key, replica.clone());
        replicas.push(replica);
    }
    // One replica initialises the group; the others learn it from its
    // election (as the platform does).
    if let Some(r) = replicas.first() {
        r.initialize(&members).await.map_err(fail)?;
    }
    for _ in 0..500 {
        if replicas.iter().any(|r| r.is_leader()) {
            return Ok(replicas);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(fail("the notary group elected no leader within 10 s"))
}

/// The notary alone: signed batches of `batch` claims with `inputs` inputs
/// each, every input an unspent commitment, journal with fsync on.
pub async fn notary_only(
    config: &BenchConfig,
    batch: usize,
    progress: impl Fn(u64, f64),
) -> Result<BenchReport, BenchError> {
    use dtenge_crypto::{SecretKey, hash};
    use dtenge_notary::{NotariseBatch, NotaryService, TxClaim};
    use dtenge_types::{Commitment, ParticipantId, TimeWindow, TxId};

    let node_key = SecretKey::generate();
    let notary_key = Arc::new(SecretKey::generate());
    let participants = Arc::new(dtenge_net::Participants::new(vec![dtenge_net::ParticipantInfo {
        id: ParticipantId::new("NBK").map_err(fail)?,
        name: "bench issuer".into(),
        role: dtenge_net::Role::Nbk,
        public_key: node_key.public_key(),
        endpoint: None,
        tls_key: None,
    }]));
    let clock: Arc<dyn dtenge_net::Clock> = Arc::new(SystemClock);
    let node = ParticipantId::new("NBK").map_err(fail)?;
    let notary = if config.notary_replicas > 1 {
        Arc::new(Target::Group(
            open_group(&config.data, config.notary_replicas, (&node, node_key.public_key()), clock.clone()).await?,
        ))
    } else {
        let (journal, recovery) = fsynced_journal(config.data.join("notary-bench"))?;
        // History leaves memory for an on-disk cold store, as in a deployment.
        let notary_config = dtenge_notary::NotaryConfig::default();
        let cold = on_disk_cold(&config.data.join("notary-bench-cold"), notary_config)?;
        Arc::new(Target::Single(
            NotaryService::recover_with(
                notary_key,
                participants,
                clock.clone(),
                journal,
                recovery,
                cold,
                notary_config,
            )
            .map_err(fail)?,
        ))
    };
    let total_claims = config.claims.max(batch);
    // Inputs and outputs per claim: `Exact(k)` claims k in, 2 out.
    let (k, outputs) = match config.workload {
        Workload::Mixed(n) => (n.max(1), 1),
        Workload::Exact(k) => (k.max(1), 2),
        Workload::HotDa => (1, 2),
    };
    let mut counter: u64 = 0;
    // Tokens are hosted by the submitting node: a spend opens each input
    // to it (the notary checks the opening and the host).
    let mut sealed = || {
        counter += 1;
        hash(b"bench", &[&counter.to_le_bytes()])
    };
    let bound = |s: &dtenge_crypto::Digest| Commitment::bound(&node, s);
    let window = || TimeWindow::starting(clock.now(), 3_600_000);
    // Issue the commitments to spend, in large batches.
    let mut unspent: Vec<dtenge_crypto::Digest> = Vec::with_capacity(total_claims * k);
    for chunk in 0..(total_claims * k).div_ceil(60 * batch) {
        let claims: Vec<TxClaim> = (0..batch)
            .map(|i| {
                let seals: Vec<dtenge_crypto::Digest> = (0..60).map(|_| sealed()).collect();
                let outs: Vec<Commitment> = seals.iter().map(&bound).collect();
                unspent.extend(seals);
                TxClaim {
                    tx: TxId(hash(b"bench-issue", &[&(chunk as u64).to_le_bytes(), &(i as u64).to_le_bytes()])),
                    inputs: Default::default(),
                    outputs: outs.try_into().unwrap_or_default(),
                    window: window(),
                    openings: Default::default(),
                    consents: Default::default(),
                }
            })
            .collect();
        let signed = NotariseBatch::signed(node.clone(), claims, &node_key).map_err(fail)?;
        notary.notarise(&node, signed).await.map_err(fail)?;
    }
    // The spends are built and signed before the clock starts: in a real
    // deployment they come from other machines (the participant nodes).
    let mut batches: Vec<NotariseBatch> = Vec::new();
    let mut pos = 0usize;
    let mut n = 0u64;
    while pos + batch * k <= unspent.len() {
        let claims: Vec<TxClaim> = (0..batch)
            .map(|i| {
                let seals = &unspent[pos + i * k..pos + (i + 1) * k];
                let ins: Vec<Commitment> = seals.iter().map(&bound).collect();
                let openings: Vec<dtenge_notary::InputOpening> =
                    seals.iter().map(|s| dtenge_notary::InputOpening { host: node.clone(), sealed: *s }).collect();
                n += 1;
                TxClaim {
                    tx: TxId(hash(b"bench-spend", &[&n.to_le_bytes()])),
                    inputs: ins.try_into().unwrap_or_default(),
                    outputs: (0..outputs).map(|_| bound(&sealed())).collect::<Vec<_>>().try_into().unwrap_or_default(),
                    window: window(),
                    openings: openings.try_into().unwrap_or_default(),
                    consents: Default::default(),
                }
            })
            .collect();
        pos += batch * k;
        batches.push(NotariseBatch::signed(node.clone(), claims, &node_key).map_err(fail)?);
    }
    drop(unspent);
    batches.reverse();
    let queue = Arc::new(std::sync::Mutex::new(batches));
    let hist = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(fail)?));
    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Duration::from_secs(config.seconds);
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    // Several batches in flight, as from several nodes: the journal's group
    // commit makes one fsync for all of them.
    let mut tasks = Vec::new();
    for _ in 0..config.concurrency.clamp(1, 16) {
        let (queue, hist, done, refused, notary, node) =
            (queue.clone(), hist.clone(), done.clone(), refused.clone(), notary.clone(), node.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < deadline {
                let Some(next) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else { break };
                let claims = next.claims.len() as u64;
                let t0 = Instant::now();
                match notary.notarise(&node, next).await {
                    Ok(verdicts) => {
                        let rejected = verdicts.iter().filter(|v| !matches!(v, dtenge_notary::Verdict::Committed(_)));
                        refused.fetch_add(rejected.count() as u64, Ordering::Relaxed);
                    }
                    Err(e) => return Err(fail(e)),
                }
                let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
                let _ = hist.lock().unwrap_or_else(|p| p.into_inner()).record(micros);
                done.fetch_add(claims, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let mut tasks = futures_join(tasks);
    let mut rss = RssSamples::default();
    rss.tick(0.0);
    loop {
        tokio::select! {
            result = &mut tasks => { result?; break; }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let elapsed = started.elapsed().as_secs_f64();
                rss.tick(elapsed);
                progress(done.load(Ordering::Relaxed), elapsed);
            }
        }
    }
    let done_claims = done.load(Ordering::Relaxed);
    let hist = hist.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let (rss_samples_mib, rss_growth_after_warmup_pct) = rss.finish(wall);
    let (notary_unspent, notary_hot_history, notary_cold_entries) = notary.memory();
    let notary_term = notary.term();
    notary.close().await;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(BenchReport {
        mode: "notary_only".into(),
        workload: format!("claims of {k} inputs, {outputs} outputs"),
        tx_per_s: done_claims as f64 / wall,
        input_checks_per_s: (done_claims * k as u64) as f64 / wall,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        committed: done_claims,
        refused: refused.load(Ordering::Relaxed),
        refused_by: match refused.load(Ordering::Relaxed) {
            0 => Vec::new(),
            n => vec![("notary_rejected".to_string(), n)],
        },
        seconds: wall,
        cpu_cores: cpu / wall,
        peak_rss_mib: peak_rss_mib(),
        rss_samples_mib,
        rss_growth_after_warmup_pct,
        inputs_per_tx: k as f64,
        outputs_per_tx: outputs as f64,
        cpu_us_per_tx: if done_claims == 0 { 0.0 } else { cpu * 1e6 / done_claims as f64 },
        crypto_floor_us: crypto_floor_us(),
        notary_unspent,
        notary_hot_history,
        notary_cold_entries,
        notary_replicas: config.notary_replicas.max(1),
        notary_term,
        // The bench sends its batches itself, not through a node.
        claims_per_notary_batch: None,
        requests_per_node_batch: None,
        syncs_per_transfer: None,
        stage_ms: BTreeMap::new(),
        leases: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What the bench reads is what the nodes' batchers record: batches to
    /// the notary and to other nodes apart, only those of the run.
    #[test]
    fn batch_sizes_are_read_from_the_nodes_metrics_for_the_run_only() {
        // Each test binary is its own process; names no node uses here.
        dtenge_node::metrics::batch("BENCH-T1", "notary", 9, 0);
        let before = RunMetrics::now();
        for size in [4, 6] {
            dtenge_node::metrics::batch("BENCH-T1", "notary", size, 0);
        }
        for size in [2, 3, 7] {
            dtenge_node::metrics::batch("BENCH-T1", "BENCH-T2", size, 0);
        }
        let (notary, nodes) = RunMetrics::now().per_batch_since(&before);
        assert_eq!(notary, Some(5.0));
        assert_eq!(nodes, Some(4.0));
        assert_eq!(RunMetrics::now().per_batch_since(&RunMetrics::now()), (None, None), "no batch, no figure");
    }

    /// Stage times are the nodes' own, summed over nodes, per stage, only
    /// those of the run; a stage nothing went through is absent.
    #[test]
    fn stage_means_are_read_from_the_nodes_metrics_for_the_run_only() {
        use dtenge_node::metrics::{Stage, StageTimes};
        let node = StageTimes::new(&dtenge_types::ParticipantId::new("BENCH-T3").unwrap());
        let other = StageTimes::new(&dtenge_types::ParticipantId::new("BENCH-T4").unwrap());
        let ago = |ms: u64| Instant::now() - Duration::from_millis(ms);
        node.record(Stage::Notarise, ago(500));
        let before = RunMetrics::now();
        node.record(Stage::Notarise, ago(10));
        other.record(Stage::Notarise, ago(30));
        node.record(Stage::Prepare, ago(4));
        let means = RunMetrics::now().stage_ms_since(&before);
        let notarise = means["notarise"];
        assert!((20.0..25.0).contains(&notarise), "the mean of 10 and 30 ms, not the 500 before: {notarise}");
        assert!((4.0..9.0).contains(&means["prepare"]), "{means:?}");
        assert!(!means.contains_key("deliver"), "nothing delivered, no figure");
        let rendered = "dtenge_node_stage_seconds_sum{node=\"STB1\",stage=\"settle\"} 0.5\n\
                        dtenge_node_stage_seconds_count{node=\"STB1\",stage=\"settle\"} 4\n\
                        dtenge_node_stage_seconds_sum{node=\"STB2\",stage=\"settle\"} 0.3\n\
                        dtenge_node_stage_seconds_count{node=\"STB2\",stage=\"settle\"} 4\n";
        assert_eq!(RunMetrics::parse(rendered).stage_ms_since(&RunMetrics::default())["settle"], 100.0);
    }

    /// Syncs are the journals' own: a journal with fsync on, appended to
    /// and synced during the "run", is what the count sees.
    #[test]
    fn syncs_are_read_from_the_journals_metrics_for_the_run_only() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = dtenge_store::Journal::open(dtenge_store::JournalConfig::new(dir.path())).unwrap();
        journal.append(b"before".to_vec()).unwrap().wait().unwrap();
        let before = RunMetrics::now();
        for n in 0..3u8 {
            journal.append(vec![n]).unwrap().wait().unwrap();
        }
        let after = RunMetrics::now();
        assert_eq!(after.syncs_per_since(&before, 3), Some(1.0), "one sync per waited-for append");
        assert_eq!(after.syncs_per_since(&before, 0), None, "nothing committed, no figure");
        assert_eq!(after.syncs_per_since(&after, 3), None, "no sync, no figure");
        let rendered = "dtenge_journal_sync_seconds_count 7\ndtenge_journal_sync_seconds_sum 0.5\n";
        assert_eq!(RunMetrics::parse(rendered).syncs, 7.0);
    }

    #[test]
    fn a_rendering_without_batches_reads_as_none() {
        let rendered = "# TYPE other_sum counter\nother_sum{to=\"notary\"} 5\n";
        assert_eq!(RunMetrics::parse(rendered), RunMetrics::default());
    }
}
