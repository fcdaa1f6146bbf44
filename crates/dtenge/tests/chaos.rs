//! `dtenge chaos` for a short run: separate processes, concurrent transfers,
//! double-spend attempts, SIGKILLs every few seconds; the audit must pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn a_short_chaos_run_keeps_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("platform");
    let output = Command::new(env!("CARGO_BIN_EXE_dtenge"))
        .args(["chaos", "--seconds", "25", "--seed", "8", "--json", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}\n{stderr}"));
    assert!(output.status.success(), "chaos failed: {report:#}\n{stderr}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["double_spends"], 0);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["supply_conserved"], true);
    assert!(report["kills"].as_u64().unwrap() >= 2, "{report:#}");
    assert!(report["committed"].as_u64().unwrap() > 50, "{report:#}");
    assert!(report["double_spend_attempts"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["double_spends_refused"], report["double_spend_attempts"]);
    assert!(report["audit_log_records"].as_u64().unwrap() > 0);
}
