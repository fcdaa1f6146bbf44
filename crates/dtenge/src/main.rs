//! The `dtenge` command. `main` only parses flags and calls one function per
//! subcommand; the work lives in the library crates.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dtenge_crypto::SecretKey;
use dtenge_types::{Amount, IinBin, decode_transaction};

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
    },
    /// Run one service of a platform prepared with `dtenge init` (NOTARY, ORACLE, DIRECTORY, NBK, TREASURY, STB1…).
    Node {
        /// The data directory prepared with `dtenge init`.
        #[arg(long)]
        data: PathBuf,
        /// The participant whose service to run.
        #[arg(long)]
        id: String,
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

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { data, listen } => run_async(serve(data, listen)),
        Command::Init { data, host, base_port } => init(&data, &host, base_port),
        Command::Node { data, id } => run_async(node(data, id)),
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

fn run_async(work: impl std::future::Future<Output = Result<()>>) -> Result<()> {
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
    println!("dtenge is running: NBK, TREASURY, STB1, STB2, STB3, NOTARY, ORACLE, DIRECTORY in one process");
    println!("  API:    http://{addr}/api/v1");
    println!("  health: http://{addr}/api/v1/health");
    println!("  data:   {}", data.display());
    println!("Stop with Ctrl+C; state survives restarts (and kill -9).");
    let app = dtenge_api::router(Arc::clone(&platform));
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("server failed")?;
    ticker.abort();
    platform.close().context("cannot close the platform cleanly")?;
    println!("dtenge stopped; everything committed is in {}", data.display());
    Ok(())
}

fn init(data: &std::path::Path, host: &str, base_port: u16) -> Result<()> {
    let spec = dtenge_platform::process::init(data, host, base_port)?;
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
