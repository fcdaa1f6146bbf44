//! What an operator sees of `dtenge serve`: after payments, `GET /metrics`
//! holds every metric family docs/deploy.md lists, with values that agree
//! with what was done; `--log-format json` puts one trace id on every log
//! line of one payment, in every service it touches (payer's node, notary,
//! payee's node); and with `--tls-cert/--tls-key` the API speaks only TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtenge_client::{Client, ListQuery, Recipient, TransferRequest};
use dtenge_crypto::Signer;
use dtenge_types::ParticipantId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Cross-bank payments the test makes.
const PAYMENTS: u64 = 5;

struct Serve {
    child: Child,
    /// `host:port`.
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dtenge serve` with `extra` flags, its log lines (stderr) into `log`.
fn start(data: &Path, extra: &[&str], log: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dtenge"))
        .args(["serve", "--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn,dtenge_net=info,dtenge_node=debug,dtenge_notary=debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("API:") {
            let url = rest.trim().trim_end_matches("/api/v1");
            addr = Some(url.split_once("://").map_or(url, |(_, a)| a).to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Serve { child, addr: addr.expect("serve prints its API address") }
}

fn client(addr: &str, data: &Path, id: &str) -> Client {
    let key: Arc<dyn Signer> = Arc::new(dtenge_platform::spec::Keys::at(data).load(id).unwrap());
    Client::new(&format!("http://{addr}"), ParticipantId::new(id).unwrap(), key, Arc::new(dtenge_net::SystemClock))
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

/// A plain-HTTP GET: (status, body).
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    split_response(&response)
}

fn split_response(response: &str) -> (u16, String) {
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_string())
}

/// The Prometheus text as `name{labels}` → value (labels as rendered).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the one series named `name` whose labels include every one of `labels`.
fn value(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> Option<f64> {
    samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name && labels.iter().all(|l| rest.contains(l))
        })
        .map(|(_, v)| *v)
        .reduce(|a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_every_family_and_json_logs_carry_one_trace_per_payment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let serve = start(&data, &["--log-format", "json"], &log);
    let stb1 = client(&serve.addr, &data, "STB1");
    let stb2 = client(&serve.addr, &data, "STB2");
    ready(&stb1).await;

    // The richest custodial DA at STB1 pays a DA at STB2 (a delivery between nodes).
    let all = ListQuery { per_page: Some(200), ..ListQuery::default() };
    let mut payer = None;
    for a in stb1.list_accounts(&all).await.unwrap().items.into_iter().filter(|a| a.custody == "custodial") {
        let balance = stb1.balance(&a.id).await.unwrap().standard_tiyn;
        if payer.as_ref().is_none_or(|(_, b)| balance > *b) {
            payer = Some((a, balance));
        }
    }
    let (payer, funds) = payer.unwrap();
    assert!(funds >= PAYMENTS * 1_000, "the payer can pay: {funds}");
    let payee = stb2.list_accounts(&all).await.unwrap().items.into_iter().next().expect("STB2 hosts DAs");
    let mut txs = Vec::new();
    for i in 0..PAYMENTS {
        let body = TransferRequest {
            from: payer.id.clone(),
            to: vec![Recipient::address(&payee.address, 1_000 + i)],
            memo: None,
        };
        let view = stb1.transfer(&body, None).await.unwrap();
        assert_eq!(view.status.status, "success", "{view:?}");
        txs.push(view.tx);
    }

    // Metrics: the gauges are sampled every 5 s, so wait for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, text) = get(&serve.addr, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        let metrics = samples(&text);
        if value(&metrics, "dtenge_notary_committed", &[]).unwrap_or(0.0) >= PAYMENTS as f64 {
            break metrics;
        }
        assert!(Instant::now() < deadline, "the gauges were never sampled: {text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let at_least = |name: &str, labels: &[&str], min: f64| {
        let v = value(&metrics, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in /metrics"));
        assert!(v >= min, "{name} {labels:?} = {v}, expected at least {min}");
        v
    };
    let n = PAYMENTS as f64;
    // Payments by outcome (the payer's node), batch sizes and queue depths.
    at_least("dtenge_node_payments_total", &[r#"node="STB1""#, r#"outcome="committed""#], n);
    at_least("dtenge_node_batch_size_count", &[r#"node="STB1""#, r#"to="notary""#], 1.0);
    at_least("dtenge_node_batch_size_sum", &[r#"node="STB1""#, r#"to="notary""#], n);
    at_least("dtenge_node_batch_size_sum", &[r#"node="STB1""#, r#"to="STB2""#], n);
    at_least("dtenge_node_queue_depth", &[r#"node="STB1""#, r#"to="notary""#], 0.0);
    at_least("dtenge_node_deliveries_received_total", &[r#"node="STB2""#], n);
    // The first payment to a DA at STB2 asked for a lease.
    at_least("dtenge_node_pre_checks_total", &[r#"node="STB1""#, r#"by="lease_request""#], 1.0);
    // Notary decisions (conflicts are the `conflict` outcome; none here), batch sizes.
    at_least("dtenge_notary_decisions_total", &[r#"outcome="committed""#], n);
    assert_eq!(value(&metrics, "dtenge_notary_decisions_total", &[r#"outcome="conflict""#]), None, "no double spend");
    at_least("dtenge_notary_batch_size_count", &[], 1.0);
    // Journal sync latency is a histogram with buckets.
    at_least("dtenge_journal_sync_seconds_count", &[], 1.0);
    at_least("dtenge_journal_sync_seconds_bucket", &[r#"le="+Inf""#], 1.0);
    // Supply and live set.
    at_least("dtenge_notary_unspent", &[], 1.0);
    let committed = at_least("dtenge_notary_committed", &[], n);
    at_least("dtenge_notary_spent", &[], n);
    let supply = at_least("dtenge_node_vault_tiyn", &[r#"currency="DT""#], 1.0);
    let stb1_holds = at_least("dtenge_node_vault_tiyn", &[r#"node="STB1""#, r#"currency="DT""#], 0.0);
    assert!(stb1_holds < supply, "STB1's vault is a part of the supply");
    assert!(value(&metrics, "dtenge_node_unsettled", &[r#"node="STB1""#, r#"kind="undelivered""#]).is_some());
    // HTTP requests by route template and status.
    at_least("dtenge_http_requests_total", &[r#"route="/api/v1/transfers""#, r#"status="200""#], n);
    at_least("dtenge_http_request_seconds_count", &[r#"route="/api/v1/transfers""#], n);
    assert!(
        !metrics.keys().any(|k| k.contains(&payer.id)),
        "no series is labelled with an account (label sets stay bounded)"
    );

    // Logs: every line naming one of the payments carries that payment's trace and only it.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    // Every line naming a payment carries one trace id. A node's tick (every
    // 200 ms) retries what is unsettled — it may notarise or deliver a
    // payment again while the request's own call is under way — so such a
    // line is in the request's trace or in a tick's.
    let trace_of = |line: &serde_json::Value, span: &str| -> Option<String> {
        line["spans"].as_array()?.iter().find(|s| s["name"] == span)?["trace"].as_str().map(str::to_string)
    };
    let mut traces_seen = BTreeSet::new();
    let mut whole_in_request_trace = 0;
    for tx in &txs {
        let of_tx: Vec<&serde_json::Value> = lines.iter().filter(|l| l.to_string().contains(tx.as_str())).collect();
        let message = |l: &serde_json::Value| l["fields"]["message"].as_str().unwrap_or("").to_string();
        let settled: Vec<&&serde_json::Value> = of_tx.iter().filter(|l| message(l) == "transaction settled").collect();
        assert_eq!(settled.len(), 1, "{tx}: one 'transaction settled' line: {of_tx:?}");
        // The payer's line is in the API request's span and trace.
        let request = trace_of(settled[0], "http").unwrap_or_else(|| panic!("{tx}: settled outside the request"));
        assert_ne!(request, "0000000000000000", "{tx}: no trace");
        assert!(traces_seen.insert(request.clone()), "two payments share trace {request}");
        let in_request = |l: &serde_json::Value| {
            l["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().all(|s| s["trace"].as_str().is_none_or(|t| t == request)))
                && l["spans"].as_array().is_some_and(|spans| spans.iter().any(|s| s["trace"] == request.as_str()))
        };
        for line in &of_tx {
            let traces: BTreeSet<&str> =
                line["spans"].as_array().into_iter().flatten().filter_map(|s| s["trace"].as_str()).collect();
            assert_eq!(traces.len(), 1, "{tx}: a line without one trace id: {line}");
            assert!(!traces.contains("0000000000000000"), "{tx}: a line outside any trace: {line}");
        }
        let mut steps = BTreeSet::new();
        for line in of_tx.iter().filter(|l| in_request(l)) {
            steps.insert(message(line));
        }
        if ["transaction settled", "notary decision", "transaction received"].iter().all(|m| steps.contains(*m)) {
            whole_in_request_trace += 1;
        }
    }
    // The request's trace reaches the notary and the payee's node (through
    // the batchers and the envelopes), unless a tick got there first.
    assert!(whole_in_request_trace >= 1, "no payment's notary and payee lines carry its request's trace");
    assert!(committed >= n);
}

/// A self-signed certificate for 127.0.0.1 (standing in for the operator's CA).
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, rustls::pki_types::CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("api.crt"), dir.join("api.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.der().clone())
}

/// An HTTPS GET trusting only `root`: (status, body).
async fn get_tls(addr: &str, path: &str, root: &rustls::pki_types::CertificateDer<'static>) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    // A peer may close without close_notify after `Connection: close`; what arrived is the answer.
    let _ = stream.read_to_end(&mut response).await;
    split_response(&String::from_utf8_lossy(&response))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_tls_answers_only_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(dir.path());
    let serve = start(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
        &dir.path().join("serve.log"),
    );
    let mut health = (0, String::new());
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(&serve.addr).await.is_ok() {
            health = get_tls(&serve.addr, "/api/v1/health", &root).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health.0, 200, "health over TLS: {health:?}");
    assert!(health.1.contains("\"status\":\"ok\""), "{health:?}");
    let (status, text) = get_tls(&serve.addr, "/metrics", &root).await;
    assert_eq!(status, 200);
    assert!(text.contains(r#"dtenge_http_requests_total{route="/api/v1/health",status="200"}"#), "{text}");

    // Plain HTTP to the same port: refused, naming why, and nothing served.
    let (status, body) = get(&serve.addr, "/api/v1/health").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("speaks only TLS"), "{body}");
    assert!(!body.contains("\"status\":\"ok\""));

    // A client that does not trust the certificate gets no answer either.
    let (_, other_root) = {
        let other = tempfile::tempdir().unwrap();
        let (_, _, r) = certificate(other.path());
        (other, r)
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other_root).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&serve.addr).await.unwrap();
    let refused = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await;
    assert!(refused.is_err(), "a certificate the client does not trust is refused");
}

/// Every `"dtenge_…"` name in `text` (a metric name, as written in code, docs or queries).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("dtenge_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        let before = rest[..at].chars().next_back();
        // Crate paths (`dtenge_net::…`) and longer identifiers are not metric names.
        if !tail[end..].starts_with("::") && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// A histogram's series, or a family written as `name`, `_a`, `_b` in the docs, as the base names.
fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

fn rust_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_dashboard_and_the_docs_name_only_metrics_the_code_records() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // What the code records: names inside `counter!`/`gauge!`/`histogram!` calls.
    let mut code = String::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut code);
        }
    }
    let mut recorded = BTreeSet::new();
    for macro_name in ["counter!(", "gauge!(", "histogram!("] {
        for (at, _) in code.match_indices(macro_name) {
            // The metric's name is the macro's first argument.
            let argument = code[at + macro_name.len()..].trim_start();
            if let Some(quoted) = argument.strip_prefix('"') {
                recorded.insert(quoted.split('"').next().unwrap().to_string());
            }
        }
    }
    assert!(recorded.len() >= 15, "the scan found the recorded metrics: {recorded:?}");

    let dashboard = std::fs::read_to_string(root.join("deploy/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queried
                .extend(metric_names(target["expr"].as_str().unwrap_or("")).iter().map(|n| base_name(n).to_string()));
        }
    }
    let docs = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let section = docs.split("## 7. Metrics and logs").nth(1).unwrap().split("\n## ").next().unwrap();
    // The table writes a family as `dtenge_notary_unspent`, `_spent`: expand the short forms.
    let mut documented = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `dtenge_")) {
        let first = row.split('|').nth(1).unwrap();
        let names: Vec<&str> = first.split('`').filter(|s| s.starts_with("dtenge_") || s.starts_with('_')).collect();
        let head = names[0];
        for name in &names {
            if let Some(suffix) = name.strip_prefix('_') {
                let stem = head.rsplit_once('_').map_or(head, |(s, _)| s);
                // `_replica_applied_index` after `dtenge_notary_replica_leader` → dtenge_notary_replica_applied_index
                let stem = stem.strip_suffix("_replica").unwrap_or(stem);
                documented.insert(format!("{stem}_{suffix}"));
            } else {
                documented.insert((*name).to_string());
            }
        }
    }

    for name in &queried {
        assert!(recorded.contains(name), "the dashboard queries {name}, which nothing records");
    }
    for name in &documented {
        assert!(recorded.contains(name), "docs/deploy.md lists {name}, which nothing records");
    }
    for name in &recorded {
        assert!(documented.contains(name), "{name} is recorded but docs/deploy.md does not list it");
        assert!(queried.contains(name), "{name} is recorded but no dashboard panel shows it");
    }
}
