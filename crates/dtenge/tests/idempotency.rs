//! Crash and retry (TESTING.md, round 2): `kill -9` of `dtenge serve` during
//! a burst of transfers with idempotency keys, a restart, and every request
//! resent with its key: nothing is paid twice, nothing is lost — the payer's
//! balance falls by exactly the sum of the transfers and the payee's history
//! holds each of them once; answers given before the crash are given again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use dtenge_client::{Client, ClientError, ListQuery, Recipient, TransferRequest, TxOutcomeView};
use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;

/// Concurrent keyed transfers in the burst.
const BURST: u64 = 180;

struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
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
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("API:") {
            base = Some(rest.trim().trim_end_matches("/api/v1").to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Serve { child, base: base.expect("serve prints its API address") }
}

fn client(base: &str, data: &Path) -> Client {
    let key = dtenge_platform::spec::Keys::at(data).load("STB1").unwrap();
    let key: Arc<dyn Signer> = Arc::new(key);
    Client::new(base, ParticipantId::new("STB1").unwrap(), key, Arc::new(dtenge_net::SystemClock))
        .unwrap()
        .with_timeout(Duration::from_secs(60))
}

async fn ready(c: &Client) {
    for _ in 0..400 {
        if c.health().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come up");
}

fn request(from: &str, to: &str, i: u64) -> (String, TransferRequest) {
    // Distinct amounts, so the payee's history shows which transfer each line is.
    let body = TransferRequest { from: from.into(), to: vec![Recipient::address(to, 1_000 + i)], memo: None };
    (format!("crash-burst-{i:04}"), body)
}

/// Sends (again) until the answer is final: a transfer interrupted by the
/// crash may still be settling when the first retry arrives.
async fn settle(c: &Client, key: &str, body: &TransferRequest) -> TxOutcomeView {
    let mut last = String::new();
    for _ in 0..200 {
        match c.transfer(body, Some(key)).await {
            Ok(view) if view.status.status == "success" => return view,
            Ok(view) => last = format!("{view:?}"),
            Err(e @ (ClientError::Http { status: 409 | 503, .. } | ClientError::Transport(_))) => last = e.to_string(),
            Err(e) => panic!("{key}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{key} did not settle; last answer: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_then_every_request_resent_pays_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path());
    let c = client(&first.base, dir.path());
    ready(&c).await;
    let accounts = c.list_accounts(&ListQuery { per_page: Some(200), ..ListQuery::default() }).await.unwrap();
    let mut funded = Vec::new();
    for a in accounts.items.iter().filter(|a| a.custody == "custodial") {
        funded.push((a.clone(), c.balance(&a.id).await.unwrap().standard_tiyn));
    }
    let (payer, start_balance) = funded.iter().max_by_key(|(_, b)| *b).cloned().unwrap();
    let payee = funded.iter().map(|(a, _)| a).find(|a| a.id != payer.id).unwrap().clone();
    let total: u64 = (0..BURST).map(|i| 1_000 + i).sum();
    assert!(start_balance >= total, "the payer can pay the burst: {start_balance}");
    let payee_start = c.balance(&payee.id).await.unwrap().standard_tiyn;

    // The burst, and kill -9 once an eighth has been answered: early enough
    // that the rest cannot all be answered before the kill lands, even when
    // one DA pays thousands a second.
    let answered: Arc<std::sync::Mutex<BTreeMap<String, TxOutcomeView>>> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let (c, answered) = (c.clone(), Arc::clone(&answered));
        let (key, body) = request(&payer.id, &payee.address, i);
        tasks.push(tokio::spawn(async move {
            if let Ok(view) = c.transfer(&body, Some(&key)).await {
                answered.lock().unwrap().insert(key, view);
            }
        }));
    }
    for _ in 0..10_000 {
        if answered.lock().unwrap().len() as u64 >= BURST / 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(first); // SIGKILL, with transfers in flight
    for t in tasks {
        let _ = t.await;
    }
    let before_crash = answered.lock().unwrap().clone();
    assert!(!before_crash.is_empty(), "some transfers were acknowledged before the crash");
    assert!((before_crash.len() as u64) < BURST, "the crash interrupted the burst");

    // Restart and resend every request with its key.
    let second = start(dir.path());
    let c = client(&second.base, dir.path());
    ready(&c).await;
    let mut txs = BTreeSet::new();
    for i in 0..BURST {
        let (key, body) = request(&payer.id, &payee.address, i);
        let view = settle(&c, &key, &body).await;
        if let Some(earlier) = before_crash.get(&key) {
            assert_eq!(earlier.tx, view.tx, "{key}: the same transaction as answered before the crash");
        }
        assert!(txs.insert(view.tx.clone()), "{key}: a transaction answered for two keys");
    }

    // Each paid exactly once: balances and the payee's history.
    assert_eq!(c.balance(&payer.id).await.unwrap().standard_tiyn, start_balance - total, "payer paid each once");
    assert_eq!(c.balance(&payee.id).await.unwrap().standard_tiyn, payee_start + total, "payee got each once");
    let history = c.history(&payee.id, &ListQuery { per_page: Some(200), ..ListQuery::default() }).await.unwrap();
    let incoming: Vec<&str> = history
        .items
        .iter()
        .filter(|h| h.incoming_tiyn >= 1_000 && h.incoming_tiyn < 1_000 + BURST)
        .map(|h| h.tx.as_str())
        .collect();
    assert_eq!(incoming.len() as u64, BURST, "one history line per transfer");
    assert_eq!(incoming.iter().copied().collect::<BTreeSet<_>>(), txs.iter().map(String::as_str).collect());
    // And once more: every key answered again, nothing moves.
    for i in 0..BURST {
        let (key, body) = request(&payer.id, &payee.address, i);
        assert!(txs.contains(&c.transfer(&body, Some(&key)).await.unwrap().tx));
    }
    assert_eq!(c.balance(&payer.id).await.unwrap().standard_tiyn, start_balance - total);
}
