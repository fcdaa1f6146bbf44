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
