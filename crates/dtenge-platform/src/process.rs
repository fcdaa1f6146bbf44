//! One service per process (`dtenge node`): the service checks the signed
//! participant registry, listens on its endpoint (over mutually
//! authenticated TLS when the registry lists its TLS key) and reaches the
//! others the same way. The code of the service is exactly the in-process
//! one (see [`crate::services`]).
//!
//! ```text
//!  start_with(options)
//!    registry.json ── verify against registry.pub / registry_key ── refused if unsigned or badly signed
//!    keys/<ID>.key ── must be the key the registry lists (else: rotated? revoked?)
//!    keys/<ID>.tls.key ── when the registry lists a TLS key for <ID>
//!    serve: POST /rpc, GET /health, GET /metrics, GET /registry   (+ a plain /metrics listener if asked)
//!    background: bootstrap, ticks, registry updates (own file, then GET /registry of the sources)
//! ```
//!
//! Invariant: a service runs with the newest registry it has verified, and
//! the newest is on disk before it is used (see [`crate::registry`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::routing::get;
use dtenge_crypto::PublicKey;
use dtenge_net::{Bus, Clock, Evidence, HttpBus, HttpBusConfig, ServerConfig, SystemClock, TlsIdentity};
use dtenge_types::ParticipantId;

use crate::PlatformError;
use crate::audit_log::AuditLog;
use crate::ceremony::tls_key_path;
use crate::registry::{self, LiveRegistry, Offered, SignedRegistry};
use crate::services::{self, Service, pid};
use crate::spec::{Keys, PlatformSpec, ids};

/// How often background work runs.
pub const TICK: Duration = Duration::from_millis(200);
/// How often a service looks for a newer registry unless configured otherwise.
pub const REGISTRY_POLL: Duration = Duration::from_secs(5);

/// How `dtenge init` prepares a one-machine platform of separate services.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The host every service listens on.
    pub host: String,
    /// The first port; each service gets the next one.
    pub base_port: u16,
    /// Replicas of the notary group (odd; 1: the single notary `NOTARY`).
    pub notary_replicas: u64,
    /// Give every service a TLS key (mutual TLS between them).
    pub tls: bool,
}

/// Prepares `data` for a multi-process platform on one machine, without TLS:
/// see [`init_with`].
pub fn init(data: &Path, host: &str, base_port: u16, notary_replicas: u64) -> Result<PlatformSpec, PlatformError> {
    init_with(data, &InitOptions { host: host.into(), base_port, notary_replicas, tls: false })
}

/// The one-machine shortcut of the key ceremony: every participant's keys in
/// `data/keys/`, every service participant (each notary replica too) the
/// endpoint `host:base_port+i`, the registry signed (serial 1) with a
/// registry key made here (`keys/REGISTRY.key`, trust anchor in `registry.pub`).
pub fn init_with(data: &Path, options: &InitOptions) -> Result<PlatformSpec, PlatformError> {
    if data.join(registry::REGISTRY_FILE).exists() || data.join("platform.json").exists() {
        return Err(PlatformError::Config(format!("{} already holds a platform", data.display())));
    }
    let ids: Vec<String> = PlatformSpec::demo_with(data, &BTreeMap::new(), options.notary_replicas)?
        .participants
        .iter()
        .filter(|p| p.role != dtenge_net::Role::Provider)
        .map(|p| p.id.to_string())
        .collect();
    let mut endpoints = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let port = options
            .base_port
            .checked_add(u16::try_from(i).unwrap_or(u16::MAX))
            .ok_or_else(|| PlatformError::Config("port out of range".into()))?;
        endpoints.insert(id.clone(), format!("{}:{port}", options.host));
    }
    let mut spec = PlatformSpec::demo_with(data, &endpoints, options.notary_replicas)?;
    if options.tls {
        for participant in spec.participants.iter_mut().filter(|p| p.endpoint.is_some()) {
            let (identity, pem) = TlsIdentity::generate().map_err(|e| PlatformError::Config(e.to_string()))?;
            crate::spec::write_private(&tls_key_path(data, participant.id.as_str()), &pem)?;
            participant.tls_key = Some(identity.public_key());
        }
    }
    let body =
        registry::RegistryBody { serial: 1, issued_at_ms: now_ms(), platform: spec.clone(), revoked: Vec::new() };
    let signing = Keys::at(data).get_or_create(registry::SIGNING_KEY)?;
    SignedRegistry::sign(&body, &signing)?.save(&data.join(registry::REGISTRY_FILE))?;
    registry::save_anchor(&data.join(registry::ANCHOR_FILE), &signing.public_key())?;
    Ok(spec)
}

/// What [`seal_one_process`] found in a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// A signed registry was there and verifies.
    Verified {
        /// Its serial.
        serial: u64,
    },
    /// A fresh directory: the demo platform, signed now (serial 1).
    Created,
    /// A `platform.json` of an earlier release, without a registry: signed
    /// now as it is (serial 1).
    Signed,
}

/// The registry of `dtenge serve` (every service in one process): the
/// platform it runs is read from a signed registry, verified at every start
/// against `registry.pub` — a registry that was changed after signing, or
/// signed by another key, stops the start. A fresh directory (or one of an
/// earlier release, with only `platform.json`) is signed here with
/// `keys/REGISTRY.key`, as `dtenge init` does: on one machine the signing
/// key lives in the same directory, the one-machine shortcut of the key
/// ceremony, so this guards against a changed or damaged file, not against
/// whoever holds the directory.
pub fn seal_one_process(data: &Path) -> Result<Sealed, PlatformError> {
    let registry_file = data.join(registry::REGISTRY_FILE);
    let anchor_file = data.join(registry::ANCHOR_FILE);
    if registry_file.exists() {
        let (_, body) = registry::load_verified(data, None)?;
        metrics::gauge!("dtenge_registry_serial").set(body.serial as f64);
        return Ok(Sealed::Verified { serial: body.serial });
    }
    let signing = Keys::at(data).get_or_create(registry::SIGNING_KEY)?;
    if anchor_file.exists() {
        let anchor = registry::load_anchor(&anchor_file)?;
        if anchor != signing.public_key() {
            return Err(PlatformError::Config(format!(
                "{} is missing, and {} trusts another key than keys/{}.key: restore the signed registry",
                registry_file.display(),
                anchor_file.display(),
                registry::SIGNING_KEY
            )));
        }
    }
    let existed = data.join("platform.json").exists();
    let spec = PlatformSpec::load_or_create(data, &BTreeMap::new())?;
    let body = registry::RegistryBody { serial: 1, issued_at_ms: now_ms(), platform: spec, revoked: Vec::new() };
    // The anchor first: a crash before the registry is written leaves a
    // directory that is signed again at the next start, with the same key.
    registry::save_anchor(&anchor_file, &signing.public_key())?;
    SignedRegistry::sign(&body, &signing)?.save(&registry_file)?;
    metrics::gauge!("dtenge_registry_serial").set(1.0);
    Ok(if existed { Sealed::Signed } else { Sealed::Created })
}

fn now_ms() -> u64 {
    SystemClock.now().millis()
}

/// How one service process runs (a config file and flags fill it in).
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Its data directory: journals, `keys/`, `registry.json`.
    pub data: PathBuf,
    /// Whose service.
    pub id: String,
    /// fsync before answering (always, outside tests).
    pub durable: bool,
    /// Where to listen (default: its endpoint in the registry).
    pub listen: Option<String>,
    /// The trust anchor (default: `registry.pub` in the data directory).
    pub registry_key: Option<PublicKey>,
    /// Its TLS key (default: `keys/<ID>.tls.key`, used when the registry lists one).
    pub tls_key: Option<PathBuf>,
    /// A plain-HTTP listener for Prometheus (`GET /metrics`, `GET /health`), if any.
    pub metrics_listen: Option<String>,
    /// Whose `GET /registry` to poll for updates (default: NBK).
    pub registry_sources: Vec<String>,
    /// How often to look for a newer registry.
    pub registry_poll: Duration,
    /// How long a call to another service may take.
    pub call_timeout: Duration,
    /// The transport's fault layer, for tests only: a file of links this
    /// service's calls must not cross (`dtenge chaos` partitions replicas
    /// with it; [`dtenge_net::CutLinks`]). From [`CUT_LINKS_ENV`].
    pub cut_links: Option<PathBuf>,
}

/// The environment variable naming a service's cut-links file (tests only).
pub const CUT_LINKS_ENV: &str = "DTENGE_CUT_LINKS";

impl NodeOptions {
    /// The defaults for participant `id`'s service in `data`.
    pub fn new(data: &Path, id: &str) -> NodeOptions {
        NodeOptions {
            data: data.to_path_buf(),
            id: id.to_string(),
            durable: true,
            listen: None,
            registry_key: None,
            tls_key: None,
            metrics_listen: None,
            registry_sources: vec![ids::NBK.to_string()],
            registry_poll: REGISTRY_POLL,
            cut_links: std::env::var_os(CUT_LINKS_ENV).map(PathBuf::from),
            call_timeout: dtenge_net::DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// A service running in this process, reachable over HTTP.
pub struct Running {
    /// The service.
    pub service: Service,
    /// The registry it runs with (updated live).
    pub registry: Arc<LiveRegistry>,
    /// Its journal (a notary replica closes its own stores).
    journal: Option<dtenge_store::Journal>,
    audit: Arc<AuditLog>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving (a notary replica's Raft too) and makes the journals durable.
    pub async fn stop(self) -> Result<(), PlatformError> {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(journal) = &self.journal {
            journal.close().map_err(|e| PlatformError::service("journal", e))?;
        }
        match &self.service {
            Service::Node(node) => node.close_archive().map_err(|e| PlatformError::service(node.id().as_str(), e))?,
            Service::Replica(replica) => {
                replica.shutdown().await.map_err(|e| PlatformError::service(replica.id().as_str(), e))?;
            }
            _ => {}
        }
        self.audit.seal()
    }
}

/// Starts participant `id`'s service from `data` with the default options.
pub async fn start(data: &Path, id: &str, durable: bool) -> Result<Running, PlatformError> {
    start_with(&NodeOptions { durable, ..NodeOptions::new(data, id) }).await
}

/// Starts a service: checks the registry and its own keys against it,
/// listens, reaches the others over HTTP(S), bootstraps, ticks and follows
/// registry updates in the background.
pub async fn start_with(options: &NodeOptions) -> Result<Running, PlatformError> {
    let data = options.data.as_path();
    let id = options.id.as_str();
    let anchor = match options.registry_key {
        Some(key) => key,
        None => registry::load_anchor(&data.join(registry::ANCHOR_FILE))?,
    };
    let (live, body) = LiveRegistry::open(data, anchor)?;
    let spec = body.platform;
    let me = pid(id)?;
    let info = spec
        .participant(id)
        .ok_or_else(|| PlatformError::Config(format!("{id} is not in the signed registry (serial {})", body.serial)))?
        .clone();
    let listen = match &options.listen {
        Some(listen) => listen.clone(),
        None => info.endpoint.clone().ok_or_else(|| {
            PlatformError::Config(format!("{id} has no endpoint in the registry and no listen address is configured"))
        })?,
    };
    let key = Arc::new(Keys::at(data).load(id)?);
    if key.public_key() != info.public_key {
        return Err(PlatformError::Config(format!(
            "keys/{id}.key is not the key the registry (serial {}) lists for {id}: after a rotation, start with the new \
             key once NBK has published it",
            body.serial
        )));
    }
    let tls = match info.tls_key {
        None => None,
        Some(registered) => {
            let path = options.tls_key.clone().unwrap_or_else(|| tls_key_path(data, id));
            let identity = TlsIdentity::load(&path).map_err(|e| PlatformError::Config(e.to_string()))?;
            if identity.public_key() != registered {
                return Err(PlatformError::Config(format!(
                    "{} is not the TLS key the registry (serial {}) lists for {id}",
                    path.display(),
                    body.serial
                )));
            }
            Some(Arc::new(identity))
        }
    };
    let participants = live.participants();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = AuditLog::open(&data.join("audit"), id, me.clone(), key.clone())?;
    let evidence: Arc<dyn Evidence> = audit.clone();
    let cuts = options.cut_links.as_deref().map(|path| {
        tracing::warn!(file = %path.display(), "calls across the links this file lists are refused (a test's fault layer)");
        Arc::new(dtenge_net::CutLinks::new(path))
    });
    let config = HttpBusConfig { timeout: options.call_timeout, tls: tls.clone(), cuts, ..HttpBusConfig::default() };
    let http_bus = HttpBus::with_config(
        me.clone(),
        key.clone(),
        Arc::clone(&participants),
        Arc::clone(&clock),
        Arc::clone(&evidence),
        config,
    );
    let bus: Arc<dyn Bus> = http_bus.clone();
    let group = spec.notary_group();
    let (service, journal) = if group.values().any(|r| *r == me) {
        let replica = services::open_replica(
            &spec,
            data,
            &me,
            Arc::clone(&bus),
            Arc::clone(&clock),
            Arc::clone(&participants),
            options.durable,
        )
        .await?;
        (Service::Replica(replica), None)
    } else {
        let (service, journal) = services::open(
            &spec,
            data,
            &me,
            Arc::clone(&bus),
            Arc::clone(&clock),
            Arc::clone(&participants),
            options.durable,
        )?;
        (service, Some(journal))
    };
    // A node also answers its own operators (envelopes signed with its key): see `operator`.
    let handler: Arc<dyn dtenge_net::Handler> = match &service {
        Service::Node(node) => crate::operator::OperatorGate::new(Arc::clone(node)),
        _ => service.handler(),
    };
    let server_tls = match &tls {
        Some(identity) => {
            Some(identity.server_config(Arc::clone(&participants)).map_err(|e| PlatformError::Config(e.to_string()))?)
        }
        None => None,
    };
    let registry_route = {
        let live = Arc::clone(&live);
        move |headers: axum::http::HeaderMap| {
            let live = Arc::clone(&live);
            async move {
                dtenge_net::versioned_resource(
                    dtenge_net::ProtocolRange::CURRENT,
                    &headers,
                    live.current_bytes().as_ref().clone(),
                )
            }
        }
    };
    // Without it a restart would accept again an envelope captured before it (dtenge_net::horizon).
    let horizon = dtenge_net::ReplayHorizon::open(data, &me, clock.now())
        .map_err(|e| PlatformError::Config(format!("cannot open {id}'s replay horizon: {e}")))?;
    let server_config = ServerConfig {
        replay_horizons: [(me.clone(), Arc::new(horizon))].into_iter().collect(),
        ..ServerConfig::default()
    };
    let app = dtenge_net::router(participants, vec![(me.clone(), key, handler)], clock, evidence, server_config)
        .route("/metrics", get(dtenge_net::telemetry::metrics_route))
        .route("/registry", get(registry_route));
    let listener =
        tokio::net::TcpListener::bind(&listen).await.map_err(|e| PlatformError::io(Path::new(&listen), e))?;
    let server = tokio::spawn(async move {
        if let Err(e) = dtenge_net::serve_router(listener, app, server_tls).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    let mut tasks = vec![server];
    if let Some(address) = &options.metrics_listen {
        tasks.push(serve_metrics(address).await?);
    }
    tracing::info!(%id, %listen, tls = tls.is_some(), registry = body.serial, "serving");
    let worker = match &service {
        Service::Node(node) => Worker::Node(Arc::clone(node)),
        Service::Oracle(oracle) => Worker::Oracle(Arc::clone(oracle)),
        Service::Replica(replica) => Worker::Replica(Arc::clone(replica), group),
        Service::Notary(notary) => Worker::Notary(Arc::clone(notary)),
        Service::Directory(_) => Worker::None,
    };
    tasks.push(tokio::spawn(background(spec, data.to_path_buf(), worker, bus)));
    let sources =
        options.registry_sources.iter().filter(|s| s.as_str() != id).map(|s| pid(s)).collect::<Result<_, _>>()?;
    tasks.push(tokio::spawn(follow_registry(
        Arc::clone(&live),
        data.to_path_buf(),
        http_bus,
        sources,
        options.registry_poll,
    )));
    Ok(Running { service, registry: live, journal, audit, tasks })
}

/// A plain-HTTP listener with only `GET /metrics` and `GET /health`, for Prometheus.
async fn serve_metrics(address: &str) -> Result<tokio::task::JoinHandle<()>, PlatformError> {
    let listener =
        tokio::net::TcpListener::bind(address).await.map_err(|e| PlatformError::io(Path::new(address), e))?;
    let app = axum::Router::new()
        .route("/metrics", get(dtenge_net::telemetry::metrics_route))
        .route("/health", get(|| async { "ok" }));
    Ok(tokio::spawn(async move {
        if let Err(e) = dtenge_net::serve_router(listener, app, None).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    }))
}

/// Runs participant `id`'s service from `data` until `shutdown` resolves.
pub async fn run(
    data: &Path,
    id: &str,
    durable: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PlatformError> {
    run_with(&NodeOptions { durable, ..NodeOptions::new(data, id) }, shutdown).await
}

/// Runs a service with `options` until `shutdown` resolves.
pub async fn run_with(options: &NodeOptions, shutdown: impl Future<Output = ()>) -> Result<(), PlatformError> {
    let running = start_with(options).await?;
    shutdown.await;
    running.stop().await
}

enum Worker {
    Node(Arc<dtenge_node::service::NodeService>),
    Oracle(Arc<dtenge_oracle::service::OracleService>),
    /// A notary replica joins its group (see [`dtenge_notary::NotaryReplica::join`]).
    Replica(Arc<dtenge_notary::NotaryReplica>, BTreeMap<u64, dtenge_types::ParticipantId>),
    Notary(Arc<dtenge_notary::NotaryService>),
    None,
}

/// Bootstrap (retried until the peers answer), then periodic ticks.
async fn background(spec: PlatformSpec, data: std::path::PathBuf, worker: Worker, bus: Arc<dyn Bus>) {
    if let Worker::Replica(replica, group) = &worker
        && let Err(e) = replica.join(group).await
    {
        tracing::error!(error = %e, "the notary replica could not join its group");
        return;
    }
    if let Worker::Node(node) = &worker {
        loop {
            match services::bootstrap_node(&spec, &data, node, &bus).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::info!(error = %e, "bootstrap waits for peers");
                    tokio::time::sleep(TICK).await;
                }
            }
        }
    }
    let mut sampled = std::time::Instant::now();
    loop {
        tokio::time::sleep(TICK).await;
        let sample = sampled.elapsed() >= crate::gauges::GAUGE_EVERY;
        if sample {
            sampled = std::time::Instant::now();
        }
        match &worker {
            Worker::Node(node) => {
                for line in dtenge_net::telemetry::in_background_trace(node.tick()).await {
                    tracing::debug!(node = %node.id(), "{line}");
                }
                if sample {
                    crate::gauges::record_node(node);
                }
            }
            Worker::Oracle(oracle) => {
                if let Err(e) = dtenge_net::telemetry::in_background_trace(oracle.tick()).await {
                    tracing::warn!(error = %e, "oracle tick");
                }
            }
            Worker::Notary(notary) => {
                if sample {
                    crate::gauges::record_notary(notary);
                }
            }
            Worker::Replica(replica, _) => {
                if sample {
                    crate::gauges::record_replica(replica);
                }
            }
            Worker::None => return,
        }
    }
}

/// Follows registry updates: its own file (an operator or NBK's tooling
/// replaced it), then each source's `GET /registry`. Every candidate is
/// verified; only a newer one is applied.
async fn follow_registry(
    live: Arc<LiveRegistry>,
    data: PathBuf,
    bus: Arc<HttpBus>,
    sources: Vec<ParticipantId>,
    every: Duration,
) {
    let file = data.join(registry::REGISTRY_FILE);
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(&file);
    loop {
        tokio::time::sleep(every).await;
        let now = modified(&file);
        if now != seen {
            seen = now;
            match std::fs::read(&file) {
                Ok(bytes) => report(live.offer(&bytes, &file.display().to_string()), "file"),
                Err(error) => tracing::warn!(%error, file = %file.display(), "cannot read the registry file"),
            }
        }
        for source in &sources {
            match bus.get(source, "/registry", registry::MAX_REGISTRY_BYTES).await {
                Ok(bytes) => report(live.offer(&bytes, source.as_str()), source.as_str()),
                Err(error) => tracing::debug!(%source, %error, "registry source did not answer"),
            }
        }
    }
}

fn report(result: Result<Offered, registry::RegistryError>, origin: &str) {
    match result {
        Ok(Offered::Applied { serial }) => tracing::info!(serial, %origin, "registry update applied"),
        Ok(Offered::Current) | Err(registry::RegistryError::Older { .. }) => {}
        Err(error) => tracing::warn!(%error, %origin, "registry update refused"),
    }
}
