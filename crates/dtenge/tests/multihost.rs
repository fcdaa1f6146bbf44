//! Every service on its own host: each `dtenge node` runs in its own Linux
//! network namespace with its own IP address (veth pairs on a bridge in a
//! hub namespace), holding only its own data directory and private keys,
//! talking mutual TLS. The test performs docs/deploy.md step by step:
//!
//! 1. key ceremony: `dtenge keygen` per service, `dtenge registry init` at NBK;
//! 2. payments across banks (operators drive their own nodes from their own namespace);
//! 3. one bank's link cut: the others keep paying, its deliveries complete after healing;
//! 4. a fourth bank joins the running platform through a signed registry update and is paid;
//! 5. a bank's key is rotated: messages signed with the old key are refused everywhere.
//!
//! Traffic goes only between the namespaces this test creates. It needs root
//! (`ip netns`); elsewhere it says so and skips. Namespaces, links and
//! processes are removed at the end, also on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dtenge");
/// The test hosts' network (inside the test's own namespaces only).
const NET: &str = "10.231.0";
const PORT: u16 = 7100;
/// How long any step may take before the test fails.
const STEP: Duration = Duration::from_secs(90);

fn am_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn has_ip() -> bool {
    Command::new("ip").arg("-V").output().map(|o| o.status.success()).unwrap_or(false)
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The namespaces, links and processes of one run; all removed on drop.
struct Lab {
    prefix: String,
    hub: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    root: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A service host: its namespace, address, data directory.
#[derive(Clone)]
struct Host {
    id: String,
    ns: String,
    veth_hub: String,
    address: String,
    data: PathBuf,
}

impl Lab {
    fn new(root: &Path) -> Lab {
        let prefix = format!("dt{}", std::process::id() % 100_000);
        let hub = format!("{prefix}-hub");
        ip(&["netns", "add", &hub]);
        let lab = Lab { prefix, hub, namespaces: Vec::new(), children: Vec::new(), root: root.to_path_buf() };
        ip(&["-n", &lab.hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lab.hub, "link", "set", "br0", "up"]);
        lab
    }

    /// A namespace for `id` with address `NET.<10+n>`, linked to the hub's bridge.
    fn host(&mut self, id: &str, n: u8) -> Host {
        let ns = format!("{}-{}", self.prefix, id.to_lowercase());
        let (veth_hub, veth_host) = (format!("{}h{n}", self.prefix), format!("{}s{n}", self.prefix));
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &self.hub, "link", "add", &veth_hub, "type", "veth", "peer", "name", &veth_host, "netns", &ns]);
        ip(&["-n", &self.hub, "link", "set", &veth_hub, "master", "br0", "up"]);
        let address = format!("{NET}.{}", 10 + u16::from(n));
        ip(&["-n", &ns, "addr", "add", &format!("{address}/24"), "dev", &veth_host]);
        ip(&["-n", &ns, "link", "set", &veth_host, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let data = self.root.join(id);
        Host { id: id.to_string(), ns, veth_hub, address, data }
    }

    fn cut(&self, host: &Host) {
        ip(&["-n", &self.hub, "link", "set", &host.veth_hub, "down"]);
    }

    fn heal(&self, host: &Host) {
        ip(&["-n", &self.hub, "link", "set", &host.veth_hub, "up"]);
    }

    fn start(&mut self, host: &Host) {
        let log = std::fs::File::create(self.root.join(format!("{}.log", host.id))).unwrap();
        let config = host.data.join("service.toml");
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns, BIN, "node", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push(child);
    }
}

fn dtenge(args: &[&str]) -> String {
    let out = run(BIN, args);
    assert!(out.status.success(), "dtenge {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// NBK's registry key (hex), as every service's configuration names it.
static ANCHOR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `dtenge operator` from `host`'s namespace with its data directory; Ok(answer JSON) or Err(stderr).
fn operator(host: &Host, to: Option<&str>, action: &[&str]) -> Result<Value, String> {
    let anchor = ANCHOR.get().expect("the registry is signed before operators run");
    let mut args = vec![
        "netns",
        "exec",
        &host.ns,
        BIN,
        "operator",
        "--data",
        host.data.to_str().unwrap(),
        "--id",
        &host.id,
        "--registry-key",
        anchor,
    ];
    if let Some(to) = to {
        args.extend(["--to", to]);
    }
    args.extend(action);
    let out = run("ip", &args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A node's own DA: (account id, address), once its bootstrap opened it.
fn own_da(host: &Host) -> (String, String) {
    let request: Value =
        serde_json::from_str(&std::fs::read_to_string(host.data.join(format!("{}.request.json", host.id))).unwrap())
            .unwrap();
    let address = request["institutions"][0]["address"].as_str().unwrap().to_string();
    let answer = until(&format!("{}'s own DA", host.id), || {
        operator(host, None, &["account", "--address", &address]).ok().filter(|a| a.get("Account").is_some())
    });
    (answer["Account"]["id"].as_str().unwrap().to_string(), address)
}

fn balance(host: &Host, account: &str) -> u64 {
    let answer = operator(host, None, &["balance", "--account", account]).unwrap();
    answer["Amount"].as_u64().unwrap_or_else(|| panic!("{answer}"))
}

fn pay(host: &Host, from: &str, to: &str, amount: &str) {
    let answer = operator(host, None, &["pay", "--from", from, "--to", to, "--amount", amount]).unwrap();
    assert!(answer.get("Committed").is_some(), "{} paying {amount} to {to}: {answer}", host.id);
}

fn undelivered(host: &Host) -> u64 {
    operator(host, None, &["pending"]).unwrap()["Pending"]["undelivered"].as_u64().unwrap()
}

/// `GET /metrics` from the plain metrics listener of `host`'s service, inside its namespace.
fn scrape(host: &Host) -> Option<String> {
    let script =
        "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /metrics HTTP/1.0\\r\\nHost: m\\r\\n\\r\\n' >&3 && cat <&3";
    let out = run("ip", &["netns", "exec", &host.ns, "bash", "-c", script]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The value of a series (name and labels exactly as rendered) in a scrape.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn dt(amount: u64) -> u64 {
    amount * 100
}

/// keygen on the host's own data directory; returns the request file.
fn keygen(host: &Host, role: &str, bin: Option<String>) -> PathBuf {
    let endpoint = format!("{}:{PORT}", host.address);
    let mut args = vec![
        "keygen",
        "--id",
        &host.id,
        "--data",
        host.data.to_str().unwrap(),
        "--role",
        role,
        "--endpoint",
        &endpoint,
    ];
    let bin_text;
    if let Some(bin) = bin {
        bin_text = bin;
        args.extend(["--bin", &bin_text]);
    }
    dtenge(&args);
    host.data.join(format!("{}.request.json", host.id))
}

fn configure(host: &Host, anchor: &str) {
    let config = format!(
        "id = \"{id}\"\ndata = \"{data}\"\nlisten = \"{address}:{PORT}\"\nregistry_key = \"{anchor}\"\n\
         registry_sources = [\"NBK\"]\nregistry_poll_ms = 300\n[metrics]\nlisten = \"127.0.0.1:9100\"\n\
         [limits]\ncall_timeout_ms = 2000\n",
        id = host.id,
        data = host.data.display(),
        address = host.address,
    );
    std::fs::write(host.data.join("service.toml"), config).unwrap();
}

/// NBK's tooling publishes a registry: into NBK's data directory, which NBK's
/// service follows; every other service follows NBK.
fn publish(registry: &Path, nbk: &Host) {
    let staged = nbk.data.join("registry.json.new");
    std::fs::copy(registry, &staged).unwrap();
    std::fs::rename(&staged, nbk.data.join("registry.json")).unwrap();
}

#[test]
fn services_on_separate_hosts_pay_survive_a_cut_link_admit_a_bank_and_refuse_a_revoked_key() {
    if !am_root() || !has_ip() {
        eprintln!("skipped: the multi-host test needs root and iproute2 (ip netns) — CI runs it as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::new(dir.path());
    let roles = [
        ("NOTARY", "notary"),
        ("DIRECTORY", "directory"),
        ("ORACLE", "oracle"),
        ("NBK", "nbk"),
        ("STB1", "stb"),
        ("STB2", "stb"),
        ("STB3", "stb"),
    ];
    let hosts: Vec<Host> = roles.iter().enumerate().map(|(n, (id, _))| lab.host(id, n as u8)).collect();
    let host = |id: &str| hosts.iter().find(|h| h.id == id).unwrap().clone();

    // 1. Key ceremony: each host makes its own keys; NBK signs the registry from the requests.
    let tooling = dir.path().join("nbk-tooling");
    std::fs::create_dir_all(&tooling).unwrap();
    let mut requests = Vec::new();
    for (n, (h, (_, role))) in hosts.iter().zip(roles).enumerate() {
        let bin =
            matches!(role, "nbk" | "stb").then(|| dtenge_platform::spec::institution_bin(60 + n as u8).to_string());
        requests.push(keygen(h, role, bin));
    }
    let registry = tooling.join("registry.json");
    let key = tooling.join("REGISTRY.key");
    let mut args =
        vec!["registry", "init", "--key", key.to_str().unwrap(), "--out", registry.to_str().unwrap(), "--request"];
    args.extend(requests.iter().map(|r| r.to_str().unwrap()));
    let printed = dtenge(&args);
    let anchor = printed
        .lines()
        .find_map(|l| l.strip_prefix("trust anchor (registry_key of every service): "))
        .unwrap()
        .trim()
        .to_string();
    ANCHOR.set(anchor.clone()).unwrap();
    for h in &hosts {
        std::fs::copy(&registry, h.data.join("registry.json")).unwrap();
        configure(h, &anchor);
        let keys: Vec<String> = std::fs::read_dir(h.data.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            keys.iter().all(|k| k.starts_with(&format!("{}.", h.id)) || k.starts_with(&format!("{}-DA.", h.id))),
            "{}: {keys:?}",
            h.id
        );
    }
    for h in &hosts {
        lab.start(h);
    }

    // 2. Payments across banks.
    let (nbk, stb1, stb2, stb3) = (host("NBK"), host("STB1"), host("STB2"), host("STB3"));
    let (nbk_da, _) = own_da(&nbk);
    let das: Vec<(String, String)> = [&stb1, &stb2, &stb3].iter().map(|h| own_da(h)).collect();
    for (n, (_, address)) in das.iter().enumerate() {
        let reference = format!("CBS-MH-{n}");
        let answer = operator(
            &nbk,
            None,
            &["issue", "--issuer", &nbk_da, "--to", address, "--amount", "10000", "--cbs-reference", &reference],
        )
        .unwrap();
        assert!(answer.get("Committed").is_some(), "{answer}");
    }
    let [(a1, d1), (a2, d2), (a3, d3)] = [das[0].clone(), das[1].clone(), das[2].clone()];
    until("issued DT delivered", || {
        (balance(&stb1, &a1) == dt(10_000) && balance(&stb3, &a3) == dt(10_000)).then_some(())
    });
    pay(&stb1, &a1, &d2, "100");
    pay(&stb2, &a2, &d3, "50");
    pay(&stb3, &a3, &d1, "25");
    until("cross-bank payments delivered", || {
        (balance(&stb1, &a1) == dt(9_925) && balance(&stb2, &a2) == dt(10_050) && balance(&stb3, &a3) == dt(10_025))
            .then_some(())
    });

    // 3. STB3's link is cut: the others keep paying; a payment to STB3 commits and waits.
    lab.cut(&stb3);
    pay(&stb1, &a1, &d2, "10");
    pay(&stb1, &a1, &d3, "7");
    assert!(undelivered(&stb1) >= 1, "the delivery to the cut bank waits");
    until("payment between the others delivered", || (balance(&stb2, &a2) == dt(10_060)).then_some(()));
    lab.heal(&stb3);
    until("the cut bank's delivery completed after healing", || {
        (undelivered(&stb1) == 0 && balance(&stb3, &a3) == dt(10_032)).then_some(())
    });

    // 4. A fourth bank joins the running platform through a signed registry update.
    let stb4 = lab.host("STB4", 7);
    let request = keygen(&stb4, "stb", Some(dtenge_platform::spec::institution_bin(77).to_string()));
    dtenge(&[
        "registry",
        "add",
        "--registry",
        registry.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--request",
        request.to_str().unwrap(),
    ]);
    publish(&registry, &nbk);
    std::fs::copy(&registry, stb4.data.join("registry.json")).unwrap();
    configure(&stb4, &anchor);
    lab.start(&stb4);
    let (a4, d4) = own_da(&stb4);
    until("STB1 pays the new bank", || {
        operator(&stb1, None, &["pay", "--from", &a1, "--to", &d4, "--amount", "42"])
            .ok()
            .filter(|a| a.get("Committed").is_some())
    });
    until("the new bank received it", || (balance(&stb4, &a4) == dt(42)).then_some(()));

    // 5. STB3's service key is rotated: its old key is refused everywhere, naming the revocation.
    let rotated = Host { data: dir.path().join("STB3-rotated"), ..stb3.clone() };
    dtenge(&[
        "keygen",
        "--id",
        "STB3",
        "--data",
        rotated.data.to_str().unwrap(),
        "--role",
        "stb",
        "--no-tls",
        "--endpoint",
        &format!("{}:{PORT}", stb3.address),
    ]);
    let request = rotated.data.join("STB3.request.json");
    dtenge(&[
        "registry",
        "rotate",
        "--registry",
        registry.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--request",
        request.to_str().unwrap(),
    ]);
    publish(&registry, &nbk);
    for target in ["NBK", "NOTARY", "STB1", "DIRECTORY"] {
        let refusal = until(&format!("{target} refuses STB3's old key"), || {
            operator(&stb3, Some(target), &["pending"]).err().filter(|e| e.contains("revoked"))
        });
        assert!(refusal.contains("STB3's key") && refusal.contains("rotated"), "{target}: {refusal}");
    }

    // 6. Every service's own metrics listener (for Prometheus, in its own
    // namespace): the registry in force is the rotation's (serial 3: genesis,
    // STB4 added, STB3 rotated) everywhere, applied without a restart, and
    // each service counts what it did.
    let mut all = hosts.iter().filter(|h| h.id != "STB3").cloned().collect::<Vec<_>>();
    all.push(stb4.clone());
    for h in &all {
        until(&format!("{}'s /metrics shows registry serial 3", h.id), || {
            scrape(h).filter(|text| series(text, "dtenge_registry_serial") == Some(3.0))
        });
    }
    let notary = scrape(&host("NOTARY")).unwrap();
    let decided = series(&notary, r#"dtenge_notary_decisions_total{outcome="committed"}"#).unwrap_or(0.0);
    assert!(decided >= 9.0, "the notary decided every issue and payment: {decided}\n{notary}");
    let paid = scrape(&stb1).unwrap();
    let committed = series(&paid, r#"dtenge_node_payments_total{node="STB1",outcome="committed"}"#).unwrap_or(0.0);
    assert!(committed >= 4.0, "STB1's payments: {committed}\n{paid}");
    assert!(series(&paid, r#"dtenge_rpc_calls_total{to="STB2",outcome="ok"}"#).unwrap_or(0.0) >= 1.0, "{paid}");
    assert!(paid.contains("dtenge_journal_sync_seconds_bucket"), "{paid}");
}
