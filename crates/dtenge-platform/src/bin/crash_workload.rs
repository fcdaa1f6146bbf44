//! A workload to be killed: opens the platform in the given data directory
//! (durable journals), funds a client and pays small amounts between banks in
//! a loop, printing `ACK <tx id>` after each payment the platform confirmed.
//! The crash test kills it with SIGKILL mid-way and checks that every
//! acknowledged payment survived.
//!
//! Usage: dtenge-crash-workload DATA_DIR

use std::io::Write;
use std::sync::Arc;

use dtenge_net::SystemClock;
use dtenge_node::accounts::{Holder, HolderKind, KycState};
use dtenge_node::service::PayTo;
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, CbsRef, IinBin};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::args().nth(1).ok_or("usage: crash_workload DATA_DIR")?;
    let platform =
        Platform::open(std::path::Path::new(&data), Arc::new(SystemClock), PlatformOptions { durable: true }).await?;
    let inst =
        |key: &str| platform.spec.institutions.iter().find(|i| i.key == key).cloned().ok_or("no such institution");
    let nbk_da = inst(ids::NBK_DA)?;
    let stb1_da = inst("STB1-DA")?;
    let nbk = platform.node(ids::NBK)?;
    let stb1 = platform.node("STB1")?;
    let stb2 = platform.node("STB2")?;
    let nbk_account = nbk.read(|s| s.account_of(&nbk_da.address).map(|a| a.id.clone())).ok_or("no NBK DA")?;
    let stb1_account = stb1.read(|s| s.account_of(&stb1_da.address).map(|a| a.id.clone())).ok_or("no STB1 DA")?;
    let iin = |n: u8| IinBin::with_check_digit(&[8, 5, 0, 1, 0, 1, 3, 0, 0, 0, n]).ok_or("no check digit");
    let payer = stb1
        .open_account(
            Holder { iin_bin: iin(1)?, name: "Payer".into(), kind: HolderKind::Individual },
            None,
            KycState::Verified,
        )
        .await?;
    let payee = stb2
        .open_account(
            Holder { iin_bin: iin(2)?, name: "Payee".into(), kind: HolderKind::Individual },
            None,
            KycState::Verified,
        )
        .await?;
    let million = Amount::from_tenge(1_000_000).ok_or("overflow")?;
    nbk.issue(&nbk_account, PayTo { address: stb1_da.address, amount: million }, CbsRef::new("CRASH-FUNDING")?).await?;
    stb1.pay(&stb1_account, &[PayTo { address: payer.address, amount: million }], None).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {} {}", payer.id, payee.id)?;
    out.flush()?;
    loop {
        let outcome = stb1
            .pay(&payer.id, &[PayTo { address: payee.address, amount: Amount::from_tenge(1).ok_or("overflow")? }], None)
            .await?;
        writeln!(out, "ACK {}", outcome.tx)?;
        out.flush()?;
    }
}
