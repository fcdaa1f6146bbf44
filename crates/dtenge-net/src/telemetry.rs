//! Metrics and traces shared by every service.
//!
//! Metrics: the `metrics` facade, recorded into one process-wide Prometheus
//! recorder ([`metrics_handle`]) that every service's `GET /metrics` renders
//! ([`metrics_route`]). The metric names are listed in docs/deploy.md, with
//! the dashboard in deploy/grafana-dashboard.json. Latency histograms are in
//! seconds with fixed buckets ([`LATENCY_BUCKETS_SECONDS`]).
//!
//! Traces: a trace id ties together the log lines of one payment in every
//! service it touches. The API (or whoever starts the work) opens one with
//! [`in_trace`]; [`HttpBus`](crate::HttpBus) and the in-process bus copy the
//! current one into every envelope they send; the receiving server runs the
//! handler in the envelope's trace, inside a `rpc{trace=…}` span, so
//! `--log-format json` prints it on every line.
//!
//! Invariant: label values are bounded sets — participant ids (bounded by the
//! registry), route templates (never raw paths), status codes, fixed outcome
//! names — so the number of series is bounded.

use std::sync::OnceLock;
use std::time::Duration;

use dtenge_types::ParticipantId;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::NetError;

/// Buckets of every `*_seconds` histogram: 100 µs to 10 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 15] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Buckets of every `*_size` histogram (batch sizes).
pub const SIZE_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0];
/// How often histograms are drained into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder, installed on first use (also as the
/// `metrics` facade's global recorder, so `metrics::counter!` anywhere in the
/// process lands here).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS_SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), &SIZE_BUCKETS));
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            // Only non-empty bucket lists can fail, and ours are constants.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first: /metrics will be empty");
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the metrics upkeep thread: histograms drain only when scraped");
        }
        describe();
        handle
    })
}

/// The text exposition of every metric recorded in this process.
pub fn render_metrics() -> String {
    let handle = metrics_handle();
    handle.run_upkeep();
    handle.render()
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics_route() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics())
}

fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!("dtenge_http_requests_total", "HTTP requests served, by route template and status");
    describe_histogram!("dtenge_http_request_seconds", metrics::Unit::Seconds, "HTTP request handling time, by route");
    describe_counter!("dtenge_rpc_calls_total", "Calls to other services, by callee and outcome");
    describe_histogram!("dtenge_rpc_call_seconds", metrics::Unit::Seconds, "Time until a call's answer, by callee");
}

/// Records one served HTTP request (`route` is the route template).
pub fn http_request(route: &'static str, status: u16, took: Duration) {
    metrics::counter!("dtenge_http_requests_total", "route" => route, "status" => status_label(status)).increment(1);
    metrics::histogram!("dtenge_http_request_seconds", "route" => route).record(took.as_secs_f64());
}

/// Records one call to another service.
pub(crate) fn rpc_call(to: &ParticipantId, result: &Result<Vec<u8>, NetError>, took: Duration) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(NetError::Refused(_)) => "refused",
        Err(NetError::Unreachable { .. }) => "unreachable",
        Err(NetError::Timeout { .. }) => "timeout",
        Err(NetError::ProtocolMismatch { .. }) => "protocol_mismatch",
        Err(_) => "rejected",
    };
    let to = to.to_string();
    metrics::counter!("dtenge_rpc_calls_total", "to" => to.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("dtenge_rpc_call_seconds", "to" => to).record(took.as_secs_f64());
}

/// A status code as a label without allocating for the common ones.
pub fn status_label(status: u16) -> metrics::SharedString {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        409 => "409".into(),
        413 => "413".into(),
        422 => "422".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}

tokio::task_local! {
    static TRACE: u64;
}

/// A trace id as it appears in logs: 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId(pub u64);

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A fresh random trace id (never 0, which means "none").
pub fn new_trace() -> u64 {
    let mut bytes = [0u8; 8];
    // Without OS randomness a trace id is only less unique; logs still work.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes).max(1)
}

/// Runs `work` with `trace` as the current trace id (what outgoing envelopes carry).
pub async fn in_trace<F: std::future::Future>(trace: u64, work: F) -> F::Output {
    TRACE.scope(trace, work).await
}

/// Runs background work (a service's periodic tick: retries, deliveries,
/// recovery) in a fresh trace, inside a `tick{trace}` span, so its log lines
/// and the envelopes it sends carry an id like a request's do.
pub async fn in_background_trace<F: std::future::Future>(work: F) -> F::Output {
    let trace = new_trace();
    let span = tracing::info_span!("tick", trace = %TraceId(trace));
    tracing::Instrument::instrument(in_trace(trace, work), span).await
}

/// The current trace id, 0 outside any.
pub fn current_trace() -> u64 {
    TRACE.try_with(|trace| *trace).unwrap_or(0)
}

/// Wraps every route of `router` so each request is counted by route
/// template and status (`dtenge_http_requests_total`, `…_seconds`) and runs
/// in a fresh trace with an `http{trace, method, route}` span, so every log
/// line of one API request — and every envelope it causes — carries its id.
pub fn http_layer(router: axum::Router) -> axum::Router {
    metrics_handle();
    router.layer(axum::middleware::from_fn(observe_request))
}

async fn observe_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| metrics::SharedString::from(path.as_str().to_string()))
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let trace = new_trace();
    let span = tracing::info_span!("http", trace = %TraceId(trace), %method, route = %route);
    let started = std::time::Instant::now();
    let response = tracing::Instrument::instrument(in_trace(trace, next.run(request)), span).await;
    let status = response.status().as_u16();
    metrics::counter!("dtenge_http_requests_total", "route" => route.clone(), "status" => status_label(status))
        .increment(1);
    metrics::histogram!("dtenge_http_request_seconds", "route" => route).record(started.elapsed().as_secs_f64());
    response
}
