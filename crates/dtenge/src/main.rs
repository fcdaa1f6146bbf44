//! The `dtenge` command. `main` only parses flags and calls one function per
//! subcommand; the work lives in the library crates.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dtenge_crypto::SecretKey;
use dtenge_platform::config::{LogFormat, ServiceConfig};
use dtenge_types::{Amount, IinBin, decode_transaction};

/// jemalloc rather than glibc malloc: with many threads glibc's arenas keep
/// freed memory, so resident memory crept up through a long run; jemalloc
/// returns it (decay) and is also faster here (docs/performance.md, "Tunables").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "dtenge", version, about = "Digital Tenge platform: token-based two-tier CBDC")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as `text` or `json` (one object per line, with the trace id of the request or payment).
    #[arg(long, global = true)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in one process (NBK, Treasury, three banks, notary, oracle, directory) with a demo set of participants.
    Serve {
        /// Data directory (created if missing): journals, keys, platform.json.
        #[arg(long, default_value = "./dtenge-data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Serve the API over TLS with this PEM certificate chain (from your CA); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Run every scenario of the seed end to end against a fresh embedded platform and report PASS/FAIL.
    Demo {
        /// Keep each scenario's platform under this directory (default: a temporary one, removed after).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print the report as JSON: {"scenarios":[{"name", "passed", "steps":[…]}]}.
        #[arg(long)]
        json: bool,
        /// Run only this scenario (repeatable); `dtenge demo --list` shows the names.
        #[arg(long)]
        scenario: Vec<String>,
        /// List the scenarios and exit.
        #[arg(long)]
        list: bool,
    },
    /// Measure the platform: transfers/s and latency on the full path (or the notary alone), durability on.
    Bench {
        /// Data directory (default: a temporary one, removed after).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seconds to measure.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Paying DAs, spread over the three banks.
        #[arg(long, default_value_t = 300)]
        users: usize,
        /// Exactly K inputs and two outputs per transfer (2-in-2-out as OpenCBDC measures): half the DAs pay,
        /// the other half receive. Without it, every DA pays every other 1 DT from whatever it holds.
        #[arg(long, value_name = "K")]
        inputs: Option<usize>,
        /// Every payer pays from one hot DA funded by a single token (payments/s from one DA).
        #[arg(long, conflicts_with = "inputs")]
        hot_da: bool,
        /// Pay through the HTTP API with signed requests (what a bank's integration gets) instead of calling the
        /// nodes.
        #[arg(long, conflicts_with = "notary_only")]
        api: bool,
        /// Make nothing durable (no fsync; the nodes' archives and the notary's cold store in memory): what
        /// durability costs, for comparison only — a platform run this way loses money in a crash.
        #[arg(long, conflicts_with = "notary_only")]
        volatile: bool,
        /// Concurrent payers.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Offered load in transfers/s (default: as fast as possible).
        #[arg(long)]
        rate: Option<u64>,
        /// Measure the notary alone (input checks per second).
        #[arg(long)]
        notary_only: bool,
        /// Notary only: claims to prepare before measuring (the run ends when they are used up).
        #[arg(long, default_value_t = 1_000_000)]
        claims: usize,
        /// Replicas of the notary (1: a single notary; 3, 5 …: a replicated group, every replica in this process).
        #[arg(long, default_value_t = 1)]
        notary_replicas: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prepare a data directory for running one service per process (`dtenge node`): keys and endpoints.
    Init {
        /// Data directory to create.
        #[arg(long)]
        data: PathBuf,
        /// Host the services listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// First port; each service gets the next one.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Replicas of the notary group (odd): NOTARY-1 … NOTARY-N, each its own process
        /// (`dtenge node --id NOTARY-2`); 1 keeps the single notary NOTARY.
        #[arg(long, default_value_t = 1)]
        notary_replicas: u64,
        /// Give every service a TLS key: mutually authenticated TLS between them, keys pinned in the signed registry.
        #[arg(long)]
        tls: bool,
    },
    /// Run one service (NOTARY or NOTARY-1…N, ORACLE, DIRECTORY, NBK, TREASURY, STB1…) of a platform whose signed registry is in its data directory.
    Node {
        /// The service's configuration file (TOML; examples in deploy/config/); the flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory (keys/, registry.json, journals).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The participant whose service to run.
        #[arg(long)]
        id: Option<String>,
        /// Listen here instead of the endpoint the registry lists.
        #[arg(long)]
        listen: Option<String>,
        /// Also serve GET /metrics over plain HTTP here (for Prometheus).
        #[arg(long)]
        metrics_listen: Option<String>,
        /// NBK's registry key (hex), instead of DATA/registry.pub.
        #[arg(long)]
        registry_key: Option<String>,
    },
    /// Run the platform as separate processes under concurrent transfers, double-spend attempts and random SIGKILLs, then audit every invariant (exit 1 on any violation).
    Chaos {
        /// Data directory for the platform (must not hold one yet; default: a temporary one, removed if the audit passes).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seconds of load and kills.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Seed of every random choice (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the report as JSON: {"kills", "committed", "double_spends", "lost", "supply_conserved",
        /// "notary_leader_kills", "failover_ms_max", "replicas_agree", …}.
        #[arg(long)]
        json: bool,
        /// Run the notary as a replicated group of this many replicas (odd): its leader is then
        /// killed every 4–6 s too (some rounds a follower), and the leader is partitioned away once.
        #[arg(long, default_value_t = 1)]
        notary_replicas: u64,
    },
    /// One deterministic simulation run: every service in this process over a
    /// faulty network driven by one seed (workload, faults, restarts), audited at the end.
    Sim {
        /// Seed of the run (the same seed gives the same trace digest).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Operations and faults to play.
        #[arg(long, default_value_t = 200)]
        steps: usize,
        /// Replicas of the notary (1: a single notary; 3, 5 …: a group whose own messages meet faults too).
        #[arg(long, default_value_t = 1)]
        notary_replicas: u64,
    },
    /// The hash-chained audit logs of signed messages and decisions.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Generate keys. With --id: a participant's keys on its own host (DATA/keys/, mode 0600) and the request
    /// to send NBK (DATA/<ID>.request.json). Without: one Ed25519 EDS key; prints the public key (the DA address).
    Keygen {
        /// Write the secret seed (hex) to this file, created with mode 0600 (single key).
        #[arg(long, conflicts_with = "id")]
        out: Option<PathBuf>,
        /// The participant id (STB4, NBK, NOTARY…): make its keys and its request.
        #[arg(long, requires = "data")]
        id: Option<String>,
        /// Its data directory on this host.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Its role: nbk, stb, treasury, notary, oracle, directory, provider, counterparty-central-bank,
        /// stablecoin-issuer.
        #[arg(long, default_value = "stb")]
        role: String,
        /// Its name.
        #[arg(long)]
        name: Option<String>,
        /// Where its service will listen (host:port), for services.
        #[arg(long)]
        endpoint: Option<String>,
        /// No TLS key (one machine, plain HTTP).
        #[arg(long)]
        no_tls: bool,
        /// The BIN of its own DA (NBK, banks, the Treasury): makes the DA's key too.
        #[arg(long)]
        bin: Option<String>,
        /// For a provider: the oracle registries it may write (events, parameters, invoices, fx), comma-separated.
        #[arg(long, value_delimiter = ',')]
        registries: Vec<String>,
    },
    /// A node operator's requests to its own node, from the node's host (signed with the node's key): prints the answer as JSON.
    Operator {
        /// The node's data directory (its keys and signed registry).
        #[arg(long)]
        data: PathBuf,
        /// The node (NBK, STB1…).
        #[arg(long)]
        id: String,
        /// Send to this participant instead of the node itself (only the node itself answers operator requests).
        #[arg(long)]
        to: Option<String>,
        /// NBK's registry key (hex), instead of DATA/registry.pub.
        #[arg(long)]
        registry_key: Option<String>,
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// NBK's tooling for the signed participant registry (key ceremony, joining, rotation, revocation).
    Registry {
        #[command(subcommand)]
        action: RegistryAction,
    },
    /// Check a 12-digit IIN/BIN and its check digit.
    Iin {
        /// The number.
        number: String,
    },
    /// Parse an amount (`4 000,00`, `4000.5`) and show it in tiyn.
    Amount {
        /// The amount text.
        text: String,
    },
    /// Decode a canonically encoded transaction (a file, or `-` for stdin; raw bytes or hex) and print it as JSON with its id.
    Decode {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum OperatorAction {
    /// The node's DA with this address.
    Account {
        /// The address (hex public key).
        #[arg(long)]
        address: String,
    },
    /// A standard payment from one of the node's DAs.
    Pay {
        /// The paying DA's id.
        #[arg(long)]
        from: String,
        /// The payee's address.
        #[arg(long)]
        to: String,
        /// The amount (`150`, `4 000,00`).
        #[arg(long)]
        amount: String,
    },
    /// NBK issues DT (after the CBS confirmed).
    Issue {
        /// NBK's issuing DA.
        #[arg(long)]
        issuer: String,
        /// The recipient's address.
        #[arg(long)]
        to: String,
        /// The amount.
        #[arg(long)]
        amount: String,
        /// The CBS confirmation reference.
        #[arg(long)]
        cbs_reference: String,
    },
    /// A DA's standard DT balance.
    Balance {
        /// The DA's id.
        #[arg(long)]
        account: String,
    },
    /// Unfinished work: transactions in flight, deliveries outstanding.
    Pending,
}

#[derive(Subcommand)]
enum RegistryAction {
    /// The first registry (serial 1) from every participant's request file.
    Init {
        /// NBK's registry signing key (hex seed file, created with mode 0600 if missing).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed registry.
        #[arg(long)]
        out: PathBuf,
        /// The participants' request files (from `dtenge keygen --id`).
        #[arg(long, required = true, num_args = 1..)]
        request: Vec<PathBuf>,
    },
    /// A participant joins: its request is added, serial + 1.
    Add {
        /// The current signed registry (replaced by the new one).
        #[arg(long)]
        registry: PathBuf,
        /// NBK's registry signing key.
        #[arg(long)]
        key: PathBuf,
        /// The new participant's request file.
        #[arg(long)]
        request: PathBuf,
    },
    /// A participant's keys are replaced by those of its new request; the old ones are revoked.
    Rotate {
        /// The current signed registry (replaced by the new one).
        #[arg(long)]
        registry: PathBuf,
        /// NBK's registry signing key.
        #[arg(long)]
        key: PathBuf,
        /// The participant's new request file (new keys, same id).
        #[arg(long)]
        request: PathBuf,
    },
    /// A participant is withdrawn and its keys revoked everywhere.
    Revoke {
        /// The current signed registry (replaced by the new one).
        #[arg(long)]
        registry: PathBuf,
        /// NBK's registry signing key.
        #[arg(long)]
        key: PathBuf,
        /// The participant.
        #[arg(long)]
        id: String,
        /// Why (shown in every refusal of its keys).
        #[arg(long)]
        reason: String,
    },
    /// A participant's service moves to another address.
    Move {
        /// The current signed registry (replaced by the new one).
        #[arg(long)]
        registry: PathBuf,
        /// NBK's registry signing key.
        #[arg(long)]
        key: PathBuf,
        /// The participant.
        #[arg(long)]
        id: String,
        /// Its new endpoint (host:port).
        #[arg(long)]
        endpoint: String,
    },
    /// Checks a registry's signature and prints it.
    Show {
        /// The signed registry.
        #[arg(long)]
        registry: PathBuf,
        /// The trust anchor (hex public key; default: its own signer, printed).
        #[arg(long)]
        trust: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check every service's audit log under DATA/audit: the hash chain, every signature, the signed heads (exit 1 on tampering).
    Verify {
        /// The platform's data directory.
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = LogSetup { format: cli.log_format, filter: None };
    let result = match cli.command {
        Command::Serve { data, listen, tls_cert, tls_key } => {
            run_async(&log, serve(data, listen, tls_cert.zip(tls_key)))
        }
        Command::Init { data, host, base_port, notary_replicas, tls } => {
            init(&data, &host, base_port, notary_replicas, tls)
        }
        Command::Bench {
            data,
            seconds,
            users,
            inputs,
            concurrency,
            rate,
            notary_only,
            claims,
            notary_replicas,
            json,
            hot_da,
            api,
            volatile,
        } => {
            let options = BenchOptions { notary_only, claims, notary_replicas, json, hot_da, api, volatile };
            run_async(&log, bench(data, seconds, users, inputs, concurrency, rate, options))
        }
        Command::Demo { data, json, scenario, list } => {
            if list {
                for s in dtenge_demo::scenarios::all() {
                    println!("{:<22} {}", s.name, s.title);
                }
                return ExitCode::SUCCESS;
            }
            match run_async(&log, demo(data, json, scenario)) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Node { config, data, id, listen, metrics_listen, registry_key } => {
            let flags = ServiceConfig {
                id,
                data,
                listen,
                registry_key,
                metrics: dtenge_platform::config::MetricsSection { listen: metrics_listen },
                ..ServiceConfig::default()
            };
            node(config, flags, log)
        }
        Command::Chaos { data, seconds, seed, json, notary_replicas } => {
            match run_async(&log, chaos(data, seconds, seed, json, notary_replicas)) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Sim { seed, steps, notary_replicas } => match simulate(seed, steps, notary_replicas) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Audit { action: AuditAction::Verify { data } } => match audit_verify(&data) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Keygen { out, id: None, .. } => keygen(out),
        Command::Keygen { id: Some(id), data, role, name, endpoint, no_tls, bin, registries, .. } => {
            participant_keygen(id, data, &role, name, endpoint, !no_tls, bin, registries)
        }
        Command::Registry { action } => registry(action),
        Command::Operator { data, id, to, registry_key, action } => {
            run_async(&log, operator(data, id, to, registry_key, action))
        }
        Command::Iin { number } => iin(&number),
        Command::Amount { text } => amount(&text),
        Command::Decode { file } => decode(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter unless `RUST_LOG` or the config names one: warnings and
/// errors, without openraft's own lines — they repeat at every retry while a
/// replica is down (a WARN and an ERROR every half second); a replica logs
/// the group's changes itself, once each (who leads, which replica is
/// unreachable and when it answers again, a replica stopping on a fatal
/// error). `RUST_LOG=warn,openraft=warn` shows openraft's.
const DEFAULT_LOG_FILTER: &str = "warn,openraft=off";

/// How log lines are written: `--log-format` (or the config's `[log]`), and
/// `RUST_LOG` (or the config's filter; default [`DEFAULT_LOG_FILTER`]).
struct LogSetup {
    format: Option<LogFormat>,
    filter: Option<String>,
}

fn init_logs(log: &LogSetup) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::try_new(log.filter.as_deref().unwrap_or(DEFAULT_LOG_FILTER))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Metrics recorded before the recorder exists would be lost.
    dtenge_net::telemetry::metrics_handle();
    match log.format.unwrap_or_default() {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
}

fn run_async<T>(log: &LogSetup, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    init_logs(log);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(work)
}

/// `dtenge sim`: one seeded run on one thread (the simulation's own
/// concurrent calls keep their order, as in its tests); false if the audit failed.
fn simulate(seed: u64, steps: usize, notary_replicas: u64) -> Result<bool> {
    if notary_replicas == 0 || notary_replicas.is_multiple_of(2) {
        bail!("--notary-replicas must be odd (1, 3, 5 …), not {notary_replicas}");
    }
    let dir = std::env::temp_dir().join(format!("dtenge-sim-{}-{seed}", std::process::id()));
    let config =
        dtenge_platform::sim::SimConfig { steps, notary_replicas, ..dtenge_platform::sim::SimConfig::new(seed) };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    let outcome = runtime.block_on(dtenge_platform::sim::run(&config, &dir));
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        Ok(report) => {
            println!("seed:          {}", report.seed);
            println!("trace digest:  {} ({} lines)", report.digest, report.trace_lines);
            println!("acknowledged:  {} payments; notary committed {}", report.acknowledged, report.committed);
            println!("network:       {:?}", report.network);
            if notary_replicas > 1 {
                println!("group:         {:?}", report.group);
            }
            println!("operations:    {:?}", report.counts);
            println!("audit:         passed");
            Ok(true)
        }
        Err(failure) => {
            for line in &failure.trace_tail {
                eprintln!("{line}");
            }
            eprintln!("{failure}");
            Ok(false)
        }
    }
}

/// Resolves on Ctrl+C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn serve(data: PathBuf, listen: String, tls: Option<(PathBuf, PathBuf)>) -> Result<()> {
    let tls = match &tls {
        Some((cert, key)) => Some(
            dtenge_net::tls::api_server_config(cert, key)
                .context("cannot set up TLS for the API (--tls-cert/--tls-key)")?,
        ),
        None => None,
    };
    use std::sync::Arc;
    // The platform is read from a registry signed (on one machine) with
    // keys/REGISTRY.key and verified at every start, like every `dtenge node`'s.
    let sealed = dtenge_platform::process::seal_one_process(&data)
        .with_context(|| format!("refusing to start from {}", data.display()))?;
    let platform = Arc::new(
        dtenge_platform::Platform::open(
            &data,
            Arc::new(dtenge_net::SystemClock),
            dtenge_platform::PlatformOptions::default(),
        )
        .await
        .with_context(|| format!("cannot open the platform in {}", data.display()))?,
    );
    dtenge_platform::demo_set::ensure(&platform).await.context("cannot set up the demo participants")?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let ticker = {
        let platform = Arc::clone(&platform);
        tokio::spawn(async move {
            let mut sampled = std::time::Instant::now();
            loop {
                tokio::time::sleep(dtenge_platform::process::TICK).await;
                for line in dtenge_net::telemetry::in_background_trace(platform.tick()).await {
                    tracing::debug!("{line}");
                }
                if sampled.elapsed() >= dtenge_platform::gauges::GAUGE_EVERY {
                    sampled = std::time::Instant::now();
                    platform.nodes.values().for_each(|node| dtenge_platform::gauges::record_node(node));
                    dtenge_platform::gauges::record_notary_stats(platform.notary.stats());
                }
            }
        })
    };
    let api_service = dtenge_api::Api::open(Arc::clone(&platform), dtenge_api::ApiOptions::default(), true)
        .context("cannot open the API's records (DATA/api)")?;
    let api = api_service.router();
    let (ui, created_staff) =
        dtenge_ui::open_for_serve(&platform, api.clone()).context("cannot open the web interface")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("dtenge is running: NBK, TREASURY, STB1, STB2, STB3, NOTARY, ORACLE, DIRECTORY in one process");
    println!("  API:      {scheme}://{addr}/api/v1");
    println!("  health:   {scheme}://{addr}/api/v1/health");
    println!("  UI:       {scheme}://{addr}/ui/");
    println!("  wallet:   {scheme}://{addr}/wallet/");
    println!("  metrics:  {scheme}://{addr}/metrics");
    println!("  data:     {}", data.display());
    match sealed {
        dtenge_platform::process::Sealed::Verified { serial } => {
            println!("  registry: signed, serial {serial}, verified against registry.pub")
        }
        dtenge_platform::process::Sealed::Created => {
            println!("  registry: signed now (serial 1) with keys/REGISTRY.key; verified at every start")
        }
        dtenge_platform::process::Sealed::Signed => println!(
            "  registry: platform.json of an earlier release signed now (serial 1) with keys/REGISTRY.key; verified at \
             every start"
        ),
    }
    match created_staff {
        Some(staff) => {
            println!("  web interface staff (created now; also in {}):", dtenge_ui::credentials_path(&data).display());
            for (login, password) in staff {
                println!("    {login:<18} {password}");
            }
        }
        None => println!(
            "  web interface staff: see {} (created at first start)",
            dtenge_ui::credentials_path(&data).display()
        ),
    }
    println!("Stop with Ctrl+C; state survives restarts (and kill -9).");
    let app = dtenge_net::telemetry::http_layer(
        api.merge(dtenge_ui::router(Arc::clone(&ui)))
            .route("/metrics", axum::routing::get(dtenge_net::telemetry::metrics_route)),
    );
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("server failed")?,
        Some(config) => tokio::select! {
            served = dtenge_net::serve_router(listener, app, Some(config)) => served.context("server failed")?,
            () = shutdown_signal() => {}
        },
    }
    ticker.abort();
    ui.close().context("cannot close the web interface's journal cleanly")?;
    api_service.close().context("cannot close the API's idempotency journal cleanly")?;
    platform.shut_down().await.context("cannot close the platform cleanly")?;
    println!("dtenge stopped; everything committed is in {}", data.display());
    Ok(())
}

async fn demo(data: Option<PathBuf>, json: bool, only: Vec<String>) -> Result<bool> {
    let total = if only.is_empty() { dtenge_demo::scenarios::all().len() } else { only.len() };
    let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("starting");
    let reports = dtenge_demo::run(data.as_deref(), &only, |r| {
        bar.inc(1);
        bar.set_message(format!("{} {}", if r.passed { "PASS" } else { "FAIL" }, r.name));
    })
    .await?;
    bar.finish_and_clear();
    let passed = reports.iter().all(|r| r.passed);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "scenarios": reports }))?);
        return Ok(passed);
    }
    for r in &reports {
        println!("\n{} {} — {}", if r.passed { "PASS" } else { "FAIL" }, r.name, r.title);
        for s in &r.steps {
            let mark = if s.passed { "ok " } else { "XX " };
            println!("  {mark} {}", s.title);
            println!("       → {}", s.outcome);
            for b in &s.balances {
                if b.before != b.after {
                    println!("       {:<32} {} → {}", b.account, show(&b.before), show(&b.after));
                } else if !b.before.is_empty() {
                    println!("       {:<32} {}", b.account, show(&b.before));
                }
            }
        }
    }
    let ok = reports.iter().filter(|r| r.passed).count();
    println!("\n{ok} passed, {} failed", reports.len() - ok);
    Ok(passed)
}

/// `standard 4 850,00 · held 150,00` (DT kinds; other currencies named).
fn show(balances: &std::collections::BTreeMap<String, u64>) -> String {
    if balances.is_empty() {
        return "0,00".into();
    }
    balances.iter().map(|(kind, tiyn)| format!("{kind} {}", Amount::from_tiyn(*tiyn))).collect::<Vec<_>>().join(" · ")
}

/// `dtenge bench` flags beyond the load's shape.
struct BenchOptions {
    notary_only: bool,
    hot_da: bool,
    api: bool,
    volatile: bool,
    claims: usize,
    notary_replicas: u64,
    json: bool,
}

async fn bench(
    data: Option<PathBuf>,
    seconds: u64,
    users: usize,
    inputs: Option<usize>,
    concurrency: usize,
    rate: Option<u64>,
    options: BenchOptions,
) -> Result<()> {
    let BenchOptions { notary_only, claims, notary_replicas, json, hot_da, api, volatile } = options;
    if notary_replicas == 0 || notary_replicas.is_multiple_of(2) {
        bail!("--notary-replicas must be odd (1, 3, 5 …), not {notary_replicas}");
    }
    if users < 2 {
        bail!("--users must be at least 2");
    }
    let workload = match inputs {
        Some(k) if !(1..=dtenge_types::MAX_INPUTS).contains(&k) => {
            bail!("--inputs must be 1-{}, not {k}", dtenge_types::MAX_INPUTS)
        }
        Some(k) => dtenge_bench::Workload::Exact(k),
        None if hot_da => dtenge_bench::Workload::HotDa,
        None => dtenge_bench::Workload::Mixed(1),
    };
    let temp = std::env::temp_dir().join(format!("dtenge-bench-{}", std::process::id()));
    let root = data.clone().unwrap_or_else(|| temp.clone());
    let dir = root.join(if notary_only { "notary" } else { "full" });
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let config = dtenge_bench::BenchConfig {
        data: dir,
        seconds,
        users,
        workload,
        api,
        durable: !volatile,
        concurrency,
        rate,
        claims,
        notary_replicas,
    };
    let bar = indicatif::ProgressBar::new(seconds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let tick = {
        let bar = bar.clone();
        move |done: u64, elapsed: f64| {
            bar.set_position(elapsed as u64);
            bar.set_message(format!("{done} committed, {:.0}/s", done as f64 / elapsed.max(0.001)));
        }
    };
    if !json {
        eprintln!("setting up {} …", if notary_only { "the notary" } else { "an embedded platform with funded DAs" });
    }
    let report = if notary_only {
        dtenge_bench::notary_only(&config, 1024, tick).await?
    } else {
        dtenge_bench::full_path(&config, tick).await?
    };
    bar.finish_and_clear();
    if data.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("mode:            {} — {}", report.mode, report.workload);
    if volatile {
        println!("durability:      none (no fsync, archives in memory): for comparison only");
    }
    if report.notary_replicas > 1 {
        println!("notary:          {} replicas, Raft term {} at the end", report.notary_replicas, report.notary_term);
    }
    println!("transfers/s:     {:.0}", report.tx_per_s);
    println!("input checks/s:  {:.0}", report.input_checks_per_s);
    println!("latency p50:     {:.2} ms", report.p50_ms);
    println!("latency p99:     {:.2} ms", report.p99_ms);
    println!("latency p99.9:   {:.2} ms", report.p999_ms);
    let why: Vec<String> = report.refused_by.iter().map(|(code, n)| format!("{n} {code}")).collect();
    let why = if why.is_empty() { String::new() } else { format!(": {}", why.join(", ")) };
    println!("committed:       {} in {:.1} s ({} refused{why})", report.committed, report.seconds, report.refused);
    println!("cpu:             {:.2} cores", report.cpu_cores);
    println!(
        "cpu per transfer: {:.0} µs (floor: {:.1} µs for one signature and its share of a 1 024-batch verification, \
         measured now; the notary's share and the journals come on top)",
        report.cpu_us_per_tx, report.crypto_floor_us
    );
    println!("shape:           {:.2} inputs, {:.2} outputs per transfer", report.inputs_per_tx, report.outputs_per_tx);
    if let Some(claims) = report.claims_per_notary_batch {
        let to_nodes = report.requests_per_node_batch.map_or_else(
            || "none to other nodes".to_string(),
            |n| format!("{n:.1} requests per batch to another node"),
        );
        println!("batches:         {claims:.1} claims per notary batch, {to_nodes}");
    }
    if let Some(syncs) = report.syncs_per_transfer {
        println!("journal syncs:   {syncs:.2} per transfer (every node's and the notary's)");
    }
    let stages: Vec<String> =
        report.stages_in_order().iter().map(|(stage, ms)| format!("{} {ms:.1}", stage.replace('_', "-"))).collect();
    if !stages.is_empty() {
        println!(
            "stages:          {} ms, means (the pre-check runs beside prepare, deliver beside settle)",
            stages.join(", ")
        );
    }
    if let Some(leases) = report.leases {
        println!(
            "leases:          {} payments to other banks skipped the pre-check under a lease; {} leases taken",
            leases.spared, leases.taken
        );
    }
    println!("peak memory:     {:.0} MiB", report.peak_rss_mib);
    let rss_at = |t: f64| report.rss_samples_mib.iter().find(|[s, _]| *s >= t).copied();
    if let (Some([tw, warm]), Some([te, end]), Some(growth)) =
        (rss_at(dtenge_bench::WARM_SECONDS), report.rss_samples_mib.last().copied(), report.rss_growth_after_warmup_pct)
    {
        println!(
            "memory:          {warm:.0} MiB at {tw:.0} s, {end:.0} MiB at {te:.0} s ({growth:+.1} % after warm-up)"
        );
    }
    println!(
        "notary memory:   {} unspent, {} recent history entries ({} moved to the cold store)",
        report.notary_unspent, report.notary_hot_history, report.notary_cold_entries
    );
    Ok(())
}

fn init(data: &std::path::Path, host: &str, base_port: u16, notary_replicas: u64, tls: bool) -> Result<()> {
    let options = dtenge_platform::process::InitOptions { host: host.to_string(), base_port, notary_replicas, tls };
    let spec = dtenge_platform::process::init_with(data, &options)?;
    println!(
        "platform prepared in {} (registry signed with keys/REGISTRY.key, trusted through registry.pub{}); start each \
         service with `dtenge node --data {} --id ID`:",
        data.display(),
        if tls { "; mutual TLS between services" } else { "" },
        data.display()
    );
    for p in spec.participants.iter().filter(|p| p.endpoint.is_some()) {
        println!("  {:<10} {:?}  {}", p.id.as_str(), p.role, p.endpoint.as_deref().unwrap_or(""));
    }
    Ok(())
}

/// `dtenge node`: the configuration file (if any) with the flags on top.
fn node(config: Option<PathBuf>, flags: ServiceConfig, mut log: LogSetup) -> Result<()> {
    let file = match &config {
        Some(path) => ServiceConfig::load(path)?,
        None => ServiceConfig::default(),
    };
    let options = file.options(&flags)?;
    log.format = log.format.or(file.log.format);
    log.filter = file.log.filter.clone();
    run_async(&log, async move {
        println!("dtenge node {} starting from {}", options.id, options.data.display());
        dtenge_platform::process::run_with(&options, shutdown_signal()).await?;
        println!("dtenge node {} stopped", options.id);
        Ok(())
    })
}

async fn chaos(
    data: Option<PathBuf>,
    seconds: u64,
    seed: Option<u64>,
    json: bool,
    notary_replicas: u64,
) -> Result<bool> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let temp = data.is_none();
    let dir = data.unwrap_or_else(|| std::env::temp_dir().join(format!("dtenge-chaos-{}-{seed}", std::process::id())));
    let binary = std::env::current_exe().context("cannot find the dtenge binary to run services with")?;
    let mut config = dtenge_chaos::ChaosConfig::new(dir.clone(), binary, seconds, seed);
    config.notary_replicas = notary_replicas;
    eprintln!("chaos: seed {seed}, {seconds} s, platform in {}", dir.display());
    let bar = indicatif::ProgressBar::new(seconds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = dtenge_chaos::run(&config, |p| {
        bar.set_position(p.elapsed);
        bar.set_message(format!(
            "{} committed, {} refused, {} kills (last: {}), {} double spends tried",
            p.committed,
            p.refused,
            p.kills,
            p.last_kill.as_deref().unwrap_or("-"),
            p.double_spend_attempts
        ));
    })
    .await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("seed:                 {}", report.seed);
        println!("run:                  {} s", report.seconds);
        println!("kills (SIGKILL):      {} {:?}", report.kills, report.kills_by_service);
        println!("acknowledged:         {} (notary committed {})", report.committed, report.notary_committed);
        println!("redemptions:          {}", report.redemptions);
        println!(
            "stablecoin:           {} mints, {} payments, {} burns acknowledged",
            report.stablecoin_mints, report.stablecoin_payments, report.stablecoin_burns
        );
        for coin in &report.stablecoins {
            println!(
                "  {}:                {} in all vaults, {} DT in reserve: {}",
                coin.code,
                Amount::from_tiyn(coin.supply),
                Amount::from_tiyn(coin.reserve),
                if coin.supply == coin.reserve { "backed 1:1" } else { "NOT BACKED 1:1" }
            );
        }
        println!("refused / unanswered: {}", report.refused);
        println!(
            "double spends:        {} succeeded, {} of {} attempts refused",
            report.double_spends, report.double_spends_refused, report.double_spend_attempts
        );
        println!("lost:                 {}", report.lost);
        if report.notary_replicas > 1 {
            println!(
                "notary group:         {} replicas, {} leader kills, {} follower kills, failover p50 {} ms max {} ms, back in the group after a restart p50 {} ms max {} ms, {} partitioned and healed ({} of {} probes acknowledged while cut off), replicas agree: {}",
                report.notary_replicas,
                report.notary_leader_kills,
                report.notary_follower_kills,
                report.failover_ms_p50,
                report.failover_ms_max,
                report.rejoin_ms_p50,
                report.rejoin_ms_max,
                report.notary_isolations,
                report.minority_acknowledged,
                report.minority_probes,
                report.replicas_agree
            );
        }
        println!(
            "supply:               {} held = {} issued - {} redeemed: {}",
            Amount::from_tiyn(report.held_tiyn),
            Amount::from_tiyn(report.issued_tiyn),
            Amount::from_tiyn(report.redeemed_tiyn),
            if report.supply_conserved { "conserved" } else { "NOT CONSERVED" }
        );
        println!("audit log:            {} records verified", report.audit_log_records);
        for v in &report.violations {
            println!("VIOLATION: {v}");
        }
        println!("{}", if report.passed { "PASS" } else { "FAIL" });
    }
    if temp && report.passed {
        let _ = std::fs::remove_dir_all(&dir);
    } else if !report.passed {
        eprintln!("the platform's data and service logs are kept in {}", dir.display());
    }
    Ok(report.passed)
}

fn audit_verify(data: &std::path::Path) -> Result<bool> {
    use dtenge_platform::audit_log::{VerifyError, verify_dir};
    match verify_dir(data) {
        Ok(logs) => {
            for l in &logs {
                let name = l.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let mut line = format!(
                    "ok  {name}: {} records ({} signed envelopes, {} signed heads)",
                    l.records, l.envelopes, l.heads
                );
                if l.unsealed > 0 {
                    line.push_str(&format!(", {} after the last signed head", l.unsealed));
                }
                if l.torn_bytes > 0 {
                    line.push_str(&format!(", {} bytes of an incomplete last record (crash)", l.torn_bytes));
                }
                println!("{line}");
            }
            println!("{} audit logs verified", logs.len());
            Ok(true)
        }
        Err(VerifyError::Tampered(t)) => {
            println!("TAMPERED {t}");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn keygen(out: Option<PathBuf>) -> Result<()> {
    let key = SecretKey::generate();
    if let Some(path) = out {
        write_secret(&path, &hex::encode(key.seed()))?;
        eprintln!("secret seed written to {}", path.display());
    }
    println!("{}", key.public_key());
    Ok(())
}

#[cfg(unix)]
fn write_secret(path: &PathBuf, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_secret(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[allow(clippy::too_many_arguments)]
fn participant_keygen(
    id: String,
    data: Option<PathBuf>,
    role: &str,
    name: Option<String>,
    endpoint: Option<String>,
    tls: bool,
    bin: Option<String>,
    registries: Vec<String>,
) -> Result<()> {
    use dtenge_platform::ceremony;
    let data = data.context("--id needs --data (where the keys are kept on this host)")?;
    let id = dtenge_types::ParticipantId::new(&id)?;
    let role = parse_role(role)?;
    let institution = match bin {
        Some(bin) => {
            Some((IinBin::parse(bin.trim())?, format!("{} (own DA)", name.clone().unwrap_or_else(|| id.to_string()))))
        }
        None => None,
    };
    let registries = registries
        .iter()
        .map(|r| serde_json::from_value(serde_json::Value::String(capitalised(r.trim()))))
        .collect::<std::result::Result<_, _>>()
        .context("--registries: events, parameters, invoices or fx")?;
    let options = ceremony::KeygenOptions {
        id: id.clone(),
        name: name.unwrap_or_else(|| id.to_string()),
        role,
        endpoint,
        tls,
        institution,
        registries,
    };
    let request = ceremony::keygen(&data, &options)?;
    println!("keys of {id} made in {} (mode 0600; they never leave this host)", data.join("keys").display());
    println!("  EDS key:  {}", request.participant.public_key);
    if let Some(tls) = request.participant.tls_key {
        println!("  TLS key:  {tls}");
    }
    for da in &request.institutions {
        println!("  own DA:   {} ({})", da.address, da.bin);
    }
    println!("send NBK the request (public keys only): {}", ceremony::request_path(&data, id.as_str()).display());
    Ok(())
}

async fn operator(
    data: PathBuf,
    id: String,
    to: Option<String>,
    registry_key: Option<String>,
    action: OperatorAction,
) -> Result<()> {
    use dtenge_platform::operator::{OperatorRequest, ask, connect};
    let anchor = match registry_key {
        Some(text) => {
            Some(dtenge_platform::registry::parse_anchor(&text).map_err(|e| anyhow::anyhow!("--registry-key: {e}"))?)
        }
        None => None,
    };
    let address = |text: &str| -> Result<dtenge_types::Address> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).context("not a DA address (hex)")
    };
    let account = |text: &str| dtenge_node_account(text);
    let request = match action {
        OperatorAction::Account { address: a } => OperatorRequest::Account { address: address(&a)? },
        OperatorAction::Pay { from, to, amount } => {
            OperatorRequest::Pay { from: account(&from)?, to: address(&to)?, amount: amount.parse()? }
        }
        OperatorAction::Issue { issuer, to, amount, cbs_reference } => OperatorRequest::Issue {
            issuer: account(&issuer)?,
            to: address(&to)?,
            amount: amount.parse()?,
            cbs_reference,
        },
        OperatorAction::Balance { account: a } => OperatorRequest::Balance { account: account(&a)? },
        OperatorAction::Pending => OperatorRequest::Pending,
    };
    let bus = connect(&data, &id, anchor)?;
    let to = dtenge_types::ParticipantId::new(to.as_deref().unwrap_or(&id))?;
    let answer = ask(&bus, &to, &request).await.with_context(|| format!("{to} refused or did not answer"))?;
    println!("{}", serde_json::to_string(&answer)?);
    Ok(())
}

fn dtenge_node_account(text: &str) -> Result<dtenge_platform::operator::AccountId> {
    Ok(serde_json::from_value(serde_json::Value::String(text.to_string()))?)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn parse_role(text: &str) -> Result<dtenge_net::Role> {
    use dtenge_net::Role;
    Ok(match text.to_ascii_lowercase().as_str() {
        "nbk" => Role::Nbk,
        "stb" | "bank" => Role::Stb,
        "treasury" => Role::Treasury,
        "notary" => Role::Notary,
        "oracle" => Role::Oracle,
        "directory" => Role::Directory,
        "provider" => Role::Provider,
        "counterparty-central-bank" | "ccb" => Role::CounterpartyCentralBank,
        "stablecoin-issuer" => Role::StablecoinIssuer,
        other => bail!(
            "role {other:?}: one of nbk, stb, treasury, notary, oracle, directory, provider, counterparty-central-bank, \
             stablecoin-issuer"
        ),
    })
}

fn registry(action: RegistryAction) -> Result<()> {
    use dtenge_platform::ceremony;
    use dtenge_platform::registry::{RegistryBody, SignedRegistry, parse_anchor};
    let now = dtenge_net::Clock::now(&dtenge_net::SystemClock).millis();
    let signing_key = |path: &std::path::Path, create: bool| -> Result<SecretKey> {
        if !path.exists() && create {
            let key = SecretKey::generate();
            write_secret(&path.to_path_buf(), &hex::encode(key.seed()))?;
            eprintln!(
                "registry signing key made: {} (keep it offline; its public key is the trust anchor)",
                path.display()
            );
            return Ok(key);
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{}: not a 32-byte hex key", path.display()))?;
        Ok(SecretKey::from_seed(seed))
    };
    // The current registry, checked against the key about to sign its successor.
    let current = |registry: &std::path::Path, key: &SecretKey| -> Result<RegistryBody> {
        Ok(SignedRegistry::load(registry)?.verify(&key.public_key())?)
    };
    let write = |path: &std::path::Path, body: &RegistryBody, key: &SecretKey| -> Result<()> {
        SignedRegistry::sign(body, key)?.save(path)?;
        println!("registry serial {} signed by {} → {}", body.serial, key.public_key(), path.display());
        Ok(())
    };
    match action {
        RegistryAction::Init { key, out, request } => {
            let key = signing_key(&key, true)?;
            let requests =
                request.iter().map(|p| ceremony::load_request(p)).collect::<std::result::Result<Vec<_>, _>>()?;
            let body = ceremony::genesis(&requests, &ceremony::GenesisOptions::default(), now)?;
            write(&out, &body, &key)?;
            println!("trust anchor (registry_key of every service): {}", key.public_key());
        }
        RegistryAction::Add { registry, key, request } => {
            let key = signing_key(&key, false)?;
            let body = ceremony::add(&current(&registry, &key)?, &ceremony::load_request(&request)?, now)?;
            write(&registry, &body, &key)?;
        }
        RegistryAction::Rotate { registry, key, request } => {
            let key = signing_key(&key, false)?;
            let body = ceremony::rotate(&current(&registry, &key)?, &ceremony::load_request(&request)?, now)?;
            write(&registry, &body, &key)?;
        }
        RegistryAction::Revoke { registry, key, id, reason } => {
            let key = signing_key(&key, false)?;
            let id = dtenge_types::ParticipantId::new(&id)?;
            let body = ceremony::revoke(&current(&registry, &key)?, &id, &reason, now)?;
            write(&registry, &body, &key)?;
        }
        RegistryAction::Move { registry, key, id, endpoint } => {
            let key = signing_key(&key, false)?;
            let id = dtenge_types::ParticipantId::new(&id)?;
            let body = ceremony::move_endpoint(&current(&registry, &key)?, &id, &endpoint, now)?;
            write(&registry, &body, &key)?;
        }
        RegistryAction::Show { registry, trust } => {
            let signed = SignedRegistry::load(&registry)?;
            let anchor = match trust {
                Some(text) => parse_anchor(&text).map_err(|e| anyhow::anyhow!("--trust: {e}"))?,
                None => signed.signer,
            };
            let body = signed.verify(&anchor)?;
            println!("serial {} signed by {} (signature verified)", body.serial, signed.signer);
            for p in &body.platform.participants {
                println!(
                    "  {:<10} {:<9} {:<22} key {}{}",
                    p.id.as_str(),
                    format!("{:?}", p.role),
                    p.endpoint.as_deref().unwrap_or("-"),
                    p.public_key,
                    p.tls_key.map(|k| format!(" tls {k}")).unwrap_or_default()
                );
            }
            for r in &body.revoked {
                println!("  revoked: {} key {} (serial {}, {})", r.participant, r.key, r.serial, r.reason);
            }
        }
    }
    Ok(())
}

fn iin(number: &str) -> Result<()> {
    let parsed = IinBin::parse(number.trim())?;
    println!("{parsed} is valid ({:?} by its fifth digit)", parsed.kind());
    Ok(())
}

fn amount(text: &str) -> Result<()> {
    let parsed: Amount = text.parse()?;
    println!("{parsed} DT = {} tiyn", parsed.tiyn());
    Ok(())
}

fn decode(file: &PathBuf) -> Result<()> {
    let mut raw = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut raw)?;
    } else {
        raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    let text = String::from_utf8_lossy(&raw);
    let trimmed = text.trim();
    let bytes = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(trimmed).context("the input looks like hex but does not decode")?
    } else {
        raw
    };
    if bytes.is_empty() {
        bail!("the input is empty");
    }
    let tx = decode_transaction(&bytes)?;
    let json = serde_json::json!({ "id": tx.id().to_string(), "transaction": tx });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
