//! One service per process (`dtenge node --id ID`): the service listens on its
//! endpoint from `platform.json` and reaches the others over HTTP. The code of
//! the service is exactly the in-process one (see [`crate::services`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dtenge_net::{Bus, Clock, Evidence, HttpBus, SystemClock};

use crate::PlatformError;
use crate::audit_log::AuditLog;
use crate::services::{self, Service, pid};
use crate::spec::{Keys, PlatformSpec};

/// How often background work runs.
pub const TICK: Duration = Duration::from_millis(200);

/// Writes `platform.json` for a multi-process platform: every service
/// participant gets the endpoint `host:base_port+i`; the notary is a group
/// of `notary_replicas` (odd; 1: the single notary).
pub fn init(data: &Path, host: &str, base_port: u16, notary_replicas: u64) -> Result<PlatformSpec, PlatformError> {
    if data.join("platform.json").exists() {
        return Err(PlatformError::Config(format!("{} already holds a platform", data.display())));
    }
    let ids: Vec<String> = PlatformSpec::demo_with(data, &BTreeMap::new(), notary_replicas)?
        .participants
        .iter()
        .filter(|p| p.role != dtenge_net::Role::Provider)
        .map(|p| p.id.to_string())
        .collect();
    let mut endpoints = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let port = base_port
            .checked_add(u16::try_from(i).unwrap_or(u16::MAX))
            .ok_or_else(|| PlatformError::Config("port out of range".into()))?;
        endpoints.insert(id.clone(), format!("{host}:{port}"));
    }
    let spec = PlatformSpec::demo_with(data, &endpoints, notary_replicas)?;
    spec.save(data)?;
    Ok(spec)
}

/// A service running in this process, reachable over HTTP.
pub struct Running {
    /// The service.
    pub service: Service,
    /// Its journal (a notary replica closes its own stores).
    journal: Option<dtenge_store::Journal>,
    audit: Arc<AuditLog>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving and makes the journals durable.
    pub fn stop(self) -> Result<(), PlatformError> {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(journal) = &self.journal {
            journal.close().map_err(|e| PlatformError::service("journal", e))?;
        }
        match &self.service {
            Service::Node(node) => node.close_archive().map_err(|e| PlatformError::service(node.id().as_str(), e))?,
            Service::Replica(replica) => {
                replica.close().map_err(|e| PlatformError::service(replica.id().as_str(), e))?;
            }
            _ => {}
        }
        self.audit.seal()
    }
}

/// Starts participant `id`'s service from `data`: listens on its endpoint,
/// reaches the others over HTTP, bootstraps and ticks in the background.
pub async fn start(data: &Path, id: &str, durable: bool) -> Result<Running, PlatformError> {
    let spec = PlatformSpec::load(data)?;
    let me = pid(id)?;
    let info = spec.participant(id).ok_or_else(|| PlatformError::Config(format!("{id} is not a participant")))?.clone();
    let endpoint = info
        .endpoint
        .clone()
        .ok_or_else(|| PlatformError::Config(format!("{id} has no endpoint in platform.json (use `dtenge init`)")))?;
    let participants = Arc::new(spec.directory());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let key = Arc::new(Keys::at(data).load(id)?);
    let audit = AuditLog::open(&data.join("audit"), id, me.clone(), key.clone())?;
    let evidence: Arc<dyn Evidence> = audit.clone();
    let bus: Arc<dyn Bus> =
        HttpBus::new(me.clone(), key.clone(), Arc::clone(&participants), Arc::clone(&clock), Arc::clone(&evidence));
    let group = spec.notary_group();
    let (service, journal) = if group.values().any(|r| *r == me) {
        let replica = services::open_replica(
            &spec,
            data,
            &me,
            Arc::clone(&bus),
            Arc::clone(&clock),
            Arc::clone(&participants),
            durable,
        )
        .await?;
        (Service::Replica(replica), None)
    } else {
        let (service, journal) =
            services::open(&spec, data, &me, Arc::clone(&bus), Arc::clone(&clock), Arc::clone(&participants), durable)?;
        (service, Some(journal))
    };
    let listener =
        tokio::net::TcpListener::bind(&endpoint).await.map_err(|e| PlatformError::io(Path::new(&endpoint), e))?;
    // A node also answers its own operators (envelopes signed with its key): see `operator`.
    let handler: Arc<dyn dtenge_net::Handler> = match &service {
        Service::Node(node) => crate::operator::OperatorGate::new(Arc::clone(node)),
        _ => service.handler(),
    };
    let server = tokio::spawn(async move {
        if let Err(e) = dtenge_net::serve(listener, participants, vec![(me, key, handler)], clock, evidence).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    tracing::info!(%id, %endpoint, "serving");
    let worker = match &service {
        Service::Node(node) => Worker::Node(Arc::clone(node)),
        Service::Oracle(oracle) => Worker::Oracle(Arc::clone(oracle)),
        Service::Replica(replica) => Worker::Replica(Arc::clone(replica), group),
        Service::Notary(_) | Service::Directory(_) => Worker::None,
    };
    let background = tokio::spawn(background(spec, data.to_path_buf(), worker, bus));
    Ok(Running { service, journal, audit, tasks: vec![server, background] })
}

/// Runs participant `id`'s service from `data` until `shutdown` resolves.
pub async fn run(
    data: &Path,
    id: &str,
    durable: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PlatformError> {
    let running = start(data, id, durable).await?;
    shutdown.await;
    running.stop()
}

enum Worker {
    Node(Arc<dtenge_node::service::NodeService>),
    Oracle(Arc<dtenge_oracle::service::OracleService>),
    /// A notary replica joins its group (see [`dtenge_notary::NotaryReplica::join`]).
    Replica(Arc<dtenge_notary::NotaryReplica>, BTreeMap<u64, dtenge_types::ParticipantId>),
    None,
}

/// Bootstrap (retried until the peers answer), then periodic ticks.
async fn background(spec: PlatformSpec, data: std::path::PathBuf, worker: Worker, bus: Arc<dyn Bus>) {
    if let Worker::Replica(replica, group) = &worker {
        if let Err(e) = replica.join(group).await {
            tracing::error!(error = %e, "the notary replica could not join its group");
        }
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
    loop {
        tokio::time::sleep(TICK).await;
        match &worker {
            Worker::Node(node) => {
                for line in node.tick().await {
                    tracing::debug!(node = %node.id(), "{line}");
                }
            }
            Worker::Oracle(oracle) => {
                if let Err(e) = oracle.tick().await {
                    tracing::warn!(error = %e, "oracle tick");
                }
            }
            Worker::Replica(..) | Worker::None => return,
        }
    }
}
