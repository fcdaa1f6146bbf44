//! The command line as a user meets it: exit codes and messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use dtenge_crypto::SecretKey;
use dtenge_types::{
    Address, Amount, BoundedVec, CbsRef, Currency, ParticipantId, TimeWindow, Timestamp, Token, Transaction, TxBody,
};

fn dtenge(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtenge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn iin_check_accepts_valid_and_names_the_problem_otherwise() {
    let (ok, out, _) = dtenge(&["iin", "011123715493"], b"");
    assert!(ok && out.contains("is valid"));
    let (ok, _, err) = dtenge(&["iin", "011123715494"], b"");
    assert!(!ok);
    assert!(err.contains("check digit does not match"), "{err}");
}

#[test]
fn amount_parses_kazakh_formatting() {
    let (ok, out, _) = dtenge(&["amount", "4 000,00"], b"");
    assert!(ok);
    assert!(out.contains("400000 tiyn"), "{out}");
    let (ok, _, err) = dtenge(&["amount", "1,234"], b"");
    assert!(!ok && err.contains("two decimals"), "{err}");
}

#[test]
fn decode_prints_a_transaction_as_json_with_its_id() {
    let owner = SecretKey::from_seed([7; 32]);
    let body = TxBody {
        inputs: BoundedVec::empty(),
        outputs: vec![Token::standard(
            Currency::DT,
            Amount::from_tiyn(500),
            Address(owner.public_key()),
            ParticipantId::new("STB1").unwrap(),
        )]
        .try_into()
        .unwrap(),
        command: dtenge_types::Command::Issue { cbs_reference: CbsRef::new("CBS-1").unwrap() },
        window: TimeWindow::starting(Timestamp(1), 1000),
        memo: None,
    };
    let tx = Transaction::unsigned(body);
    let hex_text = hex::encode(dtenge_types::encoding::encode(&tx));
    let (ok, out, err) = dtenge(&["decode", "-"], hex_text.as_bytes());
    assert!(ok, "{err}");
    assert!(out.contains(&tx.id().to_string()));
    assert!(out.contains("\"issue\""), "{out}");
    let (ok, _, err) = dtenge(&["decode", "-"], b"00ff");
    assert!(!ok && err.contains("cannot decode"), "{err}");
}

#[test]
fn demo_runs_a_scenario_and_reports_json_and_fails_on_unknown_names() {
    let (ok, out, err) = dtenge(&["demo", "--json", "--scenario", "taxi-split"], b"");
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["scenarios"][0];
    assert_eq!(s["name"], "taxi-split");
    assert_eq!(s["passed"], true);
    assert!(s["steps"].as_array().unwrap().len() >= 3);
    let (ok, out, _) = dtenge(&["demo", "--scenario", "digital-vat"], b"");
    assert!(ok);
    assert!(out.contains("PASS digital-vat") && out.contains("1 passed, 0 failed"), "{out}");
    let (ok, _, err) = dtenge(&["demo", "--scenario", "no-such-scenario"], b"");
    assert!(!ok);
    assert!(err.contains("no scenario no-such-scenario"), "{err}");
}

/// `dtenge bench` runs the full path and reports what it measured; with
/// `--volatile` the same path runs with nothing durable and says so.
#[test]
fn bench_measures_the_full_path_durable_or_volatile_and_says_which() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let args = ["bench", "--seconds", "1", "--users", "6", "--concurrency", "4", "--json", "--data", data];
    for volatile in [false, true] {
        let mut args = args.to_vec();
        if volatile {
            args.push("--volatile");
        }
        let (ok, out, err) = dtenge(&args, b"");
        assert!(ok, "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mode = report["mode"].as_str().unwrap();
        assert_eq!(mode.starts_with("full_path_volatile"), volatile, "{mode}");
        assert_eq!(mode == "full_path", !volatile, "{mode}");
        assert!(report["committed"].as_u64().unwrap() > 0, "{out}");
        assert_eq!(report["inputs_per_tx"].as_f64(), Some(1.0), "{out}");
    }
    let (ok, _, err) = dtenge(&["bench", "--notary-only", "--volatile"], b"");
    assert!(!ok && err.contains("--volatile"), "{err}");
}
