//! `dtenge serve` as a user runs it: prints where the API is, answers
//! health, and comes back with its state after `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtenge"))
        .args(["serve", "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("API:") {
            let url = rest.trim();
            addr = Some(url.trim_start_matches("http://").trim_end_matches("/api/v1").to_string());
            break;
        }
    }
    // Keep reading stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve { child, addr: addr.expect("serve prints its API address") }
}

fn get(addr: &str, path: &str) -> (u16, String) {
    for _ in 0..100 {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr} does not answer");
}

fn committed(body: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["notary_committed"].as_u64().unwrap()
}

#[test]
fn serve_answers_health_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path());
    let (status, body) = get(&first.addr, "/api/v1/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""));
    let before = committed(&body);
    drop(first); // SIGKILL

    // Make state in between, in this process, through the platform's interfaces.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let clock = std::sync::Arc::new(dtenge_net::SystemClock);
        let p = dtenge_platform::Platform::open(dir.path(), clock, dtenge_platform::PlatformOptions::default())
            .await
            .unwrap();
        let stb1 = p.node("STB1").unwrap();
        let request = stb1
            .request_conversion(
                dtenge_node::conversion::ConversionKind::Issue,
                dtenge_types::Amount::from_tenge(500).unwrap(),
            )
            .await
            .unwrap();
        p.tick().await;
        p.node("NBK").unwrap().approve_conversion(&request.id, "test").await.unwrap();
        p.close().unwrap();
    });

    let second = start(dir.path());
    let (status, body) = get(&second.addr, "/api/v1/health");
    assert_eq!(status, 200);
    let after = committed(&body);
    assert_eq!(after, before + 1, "the issue is committed");
    drop(second); // SIGKILL again
    let third = start(dir.path());
    let (status, body) = get(&third.addr, "/api/v1/health");
    assert_eq!(status, 200);
    assert_eq!(committed(&body), after, "state survives kill -9");
}

/// `dtenge serve` reads its platform from a signed registry and refuses to
/// start from one changed after signing, or from a bare platform.json once
/// a registry was signed with another key.
#[test]
fn serve_refuses_a_registry_changed_after_signing() {
    use dtenge_platform::process::{Sealed, seal_one_process};
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(seal_one_process(dir.path()).unwrap(), Sealed::Created);
    assert_eq!(seal_one_process(dir.path()).unwrap(), Sealed::Verified { serial: 1 });
    let file = dir.path().join("registry.json");
    let signed = std::fs::read_to_string(&file).unwrap();

    let refused = |why: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_dtenge"))
            .args(["serve", "--data", dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "serve started: {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.contains(why), "{stderr}");
    };
    // A participant's role changed by hand after signing.
    assert!(signed.contains("\"role\": \"Stb\""), "{signed}");
    std::fs::write(&file, signed.replacen("\"role\": \"Stb\"", "\"role\": \"Nbk\"", 1)).unwrap();
    refused("signature does not verify");
    // The registry removed and another signing key put in place.
    std::fs::remove_file(&file).unwrap();
    let key = dir.path().join("keys").join("REGISTRY.key");
    std::fs::remove_file(&key).unwrap();
    refused("trusts another key");
    // A directory of an earlier release (platform.json only) is signed as it is.
    let old = tempfile::tempdir().unwrap();
    dtenge_platform::spec::PlatformSpec::load_or_create(old.path(), &Default::default()).unwrap();
    assert_eq!(seal_one_process(old.path()).unwrap(), Sealed::Signed);
    assert_eq!(seal_one_process(old.path()).unwrap(), Sealed::Verified { serial: 1 });
}
