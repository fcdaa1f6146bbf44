//! `dtenge chaos` for a short run: separate processes, concurrent transfers,
//! double-spend attempts, SIGKILLs every few seconds; the audit must pass.
//! A failing run's data directory (journals, archives, service logs) is kept
//! under `target/chaos-failures/` and its path printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A run's data directory: removed when the test passes, moved to
/// `target/chaos-failures/` when it panics.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
            return;
        }
        let failures = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap_or(Path::new(".")).join("chaos-failures");
        let name = self.0.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let kept = failures.join(name);
        let moved = std::fs::create_dir_all(&failures).and_then(|()| std::fs::rename(&self.0, &kept));
        match moved {
            Ok(()) => eprintln!("chaos: the failing run's data directory is kept at {}", kept.display()),
            Err(e) => eprintln!("chaos: the failing run's data directory stays at {} ({e})", self.0.display()),
        }
    }
}

/// Runs `dtenge chaos` for `seconds` with `replicas` notary replicas; the
/// JSON report, after checking that the run passed.
fn chaos(seed: u64, seconds: u64, replicas: u64) -> (RunDir, serde_json::Value) {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let run = RunDir(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chaos-seed{seed}-r{replicas}-{stamp}-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&run.0);
    std::fs::create_dir_all(&run.0).unwrap();
    let data = run.0.join("platform");
    let output = Command::new(env!("CARGO_BIN_EXE_dtenge"))
        .args(["chaos", "--seconds", &seconds.to_string(), "--seed", &seed.to_string(), "--json"])
        .args(["--notary-replicas", &replicas.to_string(), "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}\n{stderr}"));
    assert!(output.status.success(), "chaos failed: {report:#}\n{stderr}");
    assert_eq!(report["passed"], true, "{report:#}");
    (run, report)
}

#[test]
fn a_short_chaos_run_keeps_every_invariant() {
    let (_run, report) = chaos(8, 25, 1);
    assert_eq!(report["double_spends"], 0);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["supply_conserved"], true);
    assert!(report["kills"].as_u64().unwrap() >= 2, "{report:#}");
    assert!(report["committed"].as_u64().unwrap() > 50, "{report:#}");
    assert!(report["double_spend_attempts"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["double_spends_refused"], report["double_spend_attempts"]);
    assert!(report["audit_log_records"].as_u64().unwrap() > 0);
    // The stablecoin went round under the kills, and its reserve still equals its supply.
    assert!(report["stablecoin_mints"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["stablecoin_payments"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["stablecoin_burns"].as_u64().unwrap() > 0, "{report:#}");
    let coins = report["stablecoins"].as_array().unwrap();
    assert_eq!(coins.len(), 1, "{report:#}");
    assert_eq!(coins[0]["code"], "KZTC");
    assert_eq!(coins[0]["supply"], coins[0]["reserve"], "{report:#}");
}

/// The notary as a group of 3 processes: leaders and a follower killed, the
/// leader partitioned away (cut-links file) and probed directly while cut
/// off: it acknowledges nothing, the majority serves, the replicas agree.
#[test]
fn a_short_chaos_run_with_a_notary_group_keeps_every_invariant() {
    let (_run, report) = chaos(9, 30, 3);
    assert_eq!(report["double_spends"], 0);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["supply_conserved"], true);
    assert_eq!(report["replicas_agree"], true, "{report:#}");
    assert!(report["notary_leader_kills"].as_u64().unwrap() >= 1, "{report:#}");
    assert_eq!(report["notary_isolations"], 1, "the leader was partitioned away and healed: {report:#}");
    assert!(report["minority_probes"].as_u64().unwrap() >= 1, "{report:#}");
    assert_eq!(report["minority_acknowledged"], 0, "{report:#}");
    assert!(report["committed"].as_u64().unwrap() > 50, "{report:#}");
}
