//! The demo set of participants `dtenge serve` starts with: government
//! agencies on the Treasury node, companies and people at the banks, each bank
//! and the Treasury funded through the CBS conversion flow (with the CBS
//! simulator) and every demo DA given some DT. Idempotent: a platform that
//! already has them is left as it is.

use dtenge_node::accounts::{Holder, HolderKind, KycState};
use dtenge_node::conversion::ConversionKind;
use dtenge_node::service::PayTo;
use dtenge_types::{Amount, IinBin};

use crate::spec::ids;
use crate::{Platform, PlatformError};

/// One demo DA.
pub struct DemoAccount {
    /// Hosting node.
    pub node: &'static str,
    /// Holder name.
    pub name: &'static str,
    /// Kind.
    pub kind: HolderKind,
    /// Serial used to derive its IIN/BIN.
    pub serial: u8,
    /// Opening balance in whole DT.
    pub tenge: u64,
}

/// The demo DAs.
pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        node: ids::TREASURY,
        name: "Department of Agriculture (DAg)",
        kind: HolderKind::GovernmentAgency,
        serial: 1,
        tenge: 5_000_000,
    },
    DemoAccount {
        node: ids::TREASURY,
        name: "National Fund programme office",
        kind: HolderKind::GovernmentAgency,
        serial: 2,
        tenge: 5_000_000,
    },
    DemoAccount {
        node: ids::TREASURY,
        name: "Socio-entrepreneurial corporation (SEC)",
        kind: HolderKind::GovernmentAgency,
        serial: 3,
        tenge: 2_000_000,
    },
    DemoAccount {
        node: "STB1",
        name: "LLP General Contractor",
        kind: HolderKind::LegalEntity,
        serial: 4,
        tenge: 100_000,
    },
    DemoAccount { node: "STB1", name: "Farmer 1", kind: HolderKind::Individual, serial: 5, tenge: 50_000 },
    DemoAccount { node: "STB2", name: "LLP Road Works", kind: HolderKind::LegalEntity, serial: 6, tenge: 100_000 },
    DemoAccount { node: "STB2", name: "Farmer 2", kind: HolderKind::Individual, serial: 7, tenge: 50_000 },
    DemoAccount {
        node: "STB3",
        name: "LLP Asphalt Supplier",
        kind: HolderKind::LegalEntity,
        serial: 8,
        tenge: 100_000,
    },
    DemoAccount { node: "STB3", name: "Aigerim Nurlanovna", kind: HolderKind::Individual, serial: 9, tenge: 20_000 },
];

/// A valid IIN (individuals) or BIN (others) for a demo serial.
pub fn demo_iin_bin(kind: HolderKind, serial: u8) -> IinBin {
    // IIN: born 1990-01-01 (YYMMDD), century/gender digit 3. BIN: registered 2005-01, type digit 4.
    let prefix: [u8; 7] = match kind {
        HolderKind::Individual => [9, 0, 0, 1, 0, 1, 3],
        _ => [0, 5, 0, 1, 4, 0, 0],
    };
    let mut digits = [0u8; 11];
    digits[..7].copy_from_slice(&prefix);
    digits[9] = serial / 10 % 10;
    digits[10] = serial % 10;
    for bump in 0..10u8 {
        digits[8] = bump;
        if let Some(v) = IinBin::with_check_digit(&digits) {
            return v;
        }
    }
    unreachable!("one of ten variants has a check digit")
}

fn fail(e: impl ToString) -> PlatformError {
    PlatformError::service("demo set", e)
}

/// Creates and funds the demo DAs unless they exist.
pub async fn ensure(p: &Platform) -> Result<(), PlatformError> {
    let first = &DEMO_ACCOUNTS[0];
    let exists = !p.node(first.node)?.accounts_of(&demo_iin_bin(first.kind, first.serial)).is_empty();
    if exists {
        return Ok(());
    }
    let nbk = p.node(ids::NBK)?;
    for funder in [ids::TREASURY, "STB1", "STB2", "STB3"] {
        let need: u64 =
            DEMO_ACCOUNTS.iter().filter(|a| a.node == funder).map(|a| a.tenge).sum::<u64>().saturating_add(10_000_000);
        let amount = Amount::from_tenge(need).ok_or_else(|| fail("amount overflow"))?;
        let request = p.node(funder)?.request_conversion(ConversionKind::Issue, amount).await.map_err(fail)?;
        nbk.import_cbs().await.map_err(fail)?;
        nbk.approve_conversion(&request.id, "demo setup").await.map_err(fail)?;
    }
    for a in DEMO_ACCOUNTS {
        let node = p.node(a.node)?;
        let holder = Holder { iin_bin: demo_iin_bin(a.kind, a.serial), name: a.name.to_string(), kind: a.kind };
        let account = node.open_account(holder, None, KycState::Verified).await.map_err(fail)?;
        let own = node.own_account().map_err(fail)?;
        let amount = Amount::from_tenge(a.tenge).ok_or_else(|| fail("amount overflow"))?;
        node.pay(&own, &[PayTo { address: account.address, amount }], None).await.map_err(fail)?;
    }
    Ok(())
}
