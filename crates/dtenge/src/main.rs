//! The `dtenge` command. `main` only parses flags and calls one function per
//! subcommand; the work lives in the library crates.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dtenge_crypto::SecretKey;
use dtenge_types::{Amount, IinBin, decode_transaction};

/// jemalloc rather than glibc malloc: with many threads glibc's arenas keep
/// freed memory, so resident memory crept up through a long run; jemalloc
/// returns it (decay) and is also faster here (docs/performance.md, "Fourth
/// round").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "dtenge", version, about = "Digital Tenge platform: token-based two-tier CBDC")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Inputs per transfer.
        #[arg(long, default_value_t = 1)]
        inputs: usize,
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
    },
    /// Run one service of a platform prepared with `dtenge init` (NOTARY or NOTARY-1…N, ORACLE, DIRECTORY, NBK, TREASURY, STB1…).
    Node {
        /// The data directory prepared with `dtenge init`.
        #[arg(long)]
        data: PathBuf,
        /// The participant whose service to run.
        #[arg(long)]
        id: String,
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
        /// killed every 6–9 s too and a follower is cut off once.
        #[arg(long, default_value_t = 1)]
        notary_replicas: u64,
    },
    /// The hash-chained audit logs of signed messages and decisions.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Generate an Ed25519 EDS key; prints the public key (the DA address).
    Keygen {
        /// Write the secret seed (hex) to this file, created with mode 0600.
        #[arg(long)]
        out: Option<PathBuf>,
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
enum AuditAction {
    /// Check every service's audit log under DATA/audit: the hash chain, every signature, the signed heads (exit 1 on tampering).
    Verify {
        /// The platform's data directory.
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { data, listen } => run_async(serve(data, listen)),
        Command::Init { data, host, base_port, notary_replicas } => init(&data, &host, base_port, notary_replicas),
        Command::Bench { data, seconds, users, inputs, concurrency, rate, notary_only, claims, json } => {
            run_async(bench(data, seconds, users, inputs, concurrency, rate, notary_only, claims, json))
        }
        Command::Demo { data, json, scenario, list } => {
            if list {
                for s in dtenge_demo::scenarios::all() {
                    println!("{:<22} {}", s.name, s.title);
                }
                return ExitCode::SUCCESS;
            }
            match run_async(demo(data, json, scenario)) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Node { data, id } => run_async(node(data, id)),
        Command::Chaos { data, seconds, seed, json, notary_replicas } => {
            match run_async(chaos(data, seconds, seed, json, notary_replicas)) {
                Ok(true) => return ExitCode::SUCCESS,
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Audit { action: AuditAction::Verify { data } } => match audit_verify(&data) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Keygen { out } => keygen(out),
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

fn run_async<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(work)
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

async fn serve(data: PathBuf, listen: String) -> Result<()> {
    use std::sync::Arc;
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
            loop {
                tokio::time::sleep(dtenge_platform::process::TICK).await;
                for line in platform.tick().await {
                    tracing::debug!("{line}");
                }
            }
        })
    };
    let api_service = dtenge_api::Api::open(Arc::clone(&platform), dtenge_api::ApiOptions::default(), true)
        .context("cannot open the API's idempotency journal")?;
    let api = api_service.router();
    let (ui, created_staff) =
        dtenge_ui::open_for_serve(&platform, api.clone()).context("cannot open the web interface")?;
    println!("dtenge is running: NBK, TREASURY, STB1, STB2, STB3, NOTARY, ORACLE, DIRECTORY in one process");
    println!("  API:    http://{addr}/api/v1");
    println!("  health: http://{addr}/api/v1/health");
    println!("  UI:     http://{addr}/ui/");
    println!("  data:   {}", data.display());
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
    let app = api.merge(dtenge_ui::router(Arc::clone(&ui)));
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("server failed")?;
    ticker.abort();
    ui.close().context("cannot close the web interface's journal cleanly")?;
    api_service.close().context("cannot close the API's idempotency journal cleanly")?;
    platform.close().context("cannot close the platform cleanly")?;
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

#[allow(clippy::too_many_arguments)]
async fn bench(
    data: Option<PathBuf>,
    seconds: u64,
    users: usize,
    inputs: usize,
    concurrency: usize,
    rate: Option<u64>,
    notary_only: bool,
    claims: usize,
    json: bool,
) -> Result<()> {
    if users < 2 {
        bail!("--users must be at least 2");
    }
    if !(1..=dtenge_types::MAX_INPUTS).contains(&inputs) {
        bail!("--inputs must be 1-{}", dtenge_types::MAX_INPUTS);
    }
    let temp = std::env::temp_dir().join(format!("dtenge-bench-{}", std::process::id()));
    let root = data.clone().unwrap_or_else(|| temp.clone());
    let dir = root.join(if notary_only { "notary" } else { "full" });
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let config = dtenge_bench::BenchConfig { data: dir, seconds, users, inputs, concurrency, rate, claims };
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
    println!("mode:            {}", report.mode);
    println!("transfers/s:     {:.0}", report.tx_per_s);
    println!("input checks/s:  {:.0}", report.input_checks_per_s);
    println!("latency p50:     {:.2} ms", report.p50_ms);
    println!("latency p99:     {:.2} ms", report.p99_ms);
    println!("latency p99.9:   {:.2} ms", report.p999_ms);
    println!("committed:       {} in {:.1} s ({} refused)", report.committed, report.seconds, report.refused);
    println!("cpu:             {:.2} cores", report.cpu_cores);
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

fn init(data: &std::path::Path, host: &str, base_port: u16, notary_replicas: u64) -> Result<()> {
    let spec = dtenge_platform::process::init(data, host, base_port, notary_replicas)?;
    println!(
        "platform prepared in {}; start each service with `dtenge node --data {} --id ID`:",
        data.display(),
        data.display()
    );
    for p in spec.participants.iter().filter(|p| p.endpoint.is_some()) {
        println!("  {:<10} {:?}  {}", p.id.as_str(), p.role, p.endpoint.as_deref().unwrap_or(""));
    }
    Ok(())
}

async fn node(data: PathBuf, id: String) -> Result<()> {
    println!("dtenge node {id} starting from {}", data.display());
    dtenge_platform::process::run(&data, &id, true, shutdown_signal()).await?;
    println!("dtenge node {id} stopped");
    Ok(())
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
        println!("refused / unanswered: {}", report.refused);
        println!(
            "double spends:        {} succeeded, {} of {} attempts refused",
            report.double_spends, report.double_spends_refused, report.double_spend_attempts
        );
        println!("lost:                 {}", report.lost);
        if report.notary_replicas > 1 {
            println!(
                "notary group:         {} replicas, {} leader kills, failover p50 {} ms max {} ms, {} follower cut off and healed, replicas agree: {}",
                report.notary_replicas,
                report.notary_leader_kills,
                report.failover_ms_p50,
                report.failover_ms_max,
                report.notary_isolations,
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
