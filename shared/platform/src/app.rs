//! Service lifecycle. [`App::domain`] / [`App::web`] bind the ports (port 0 works, for tests) and
//! return an [`App`] whose addresses are known; [`App::run_until_stopped`] serves until the stop
//! future resolves, then drains: health goes NOT_SERVING, in-flight requests finish (bounded by
//! `shutdown_grace_secs`), spans are flushed by the telemetry guard. [`main`] is what `main.rs` calls.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::{HttpConfig, PortalConfig, ServiceConfig, TelemetryConfig, WebConfig};
use crate::db::{Database, DbConnection, DbError};
use crate::http::{Configure, HttpContext};
use crate::metrics::Metrics;

/// Whether the service can take traffic, with a short human-readable reason (shown by `/readyz`).
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Mutex<(bool, String)>>,
}

impl Readiness {
    pub fn new(ready: bool, detail: &str) -> Self {
        Self {
            inner: Arc::new(Mutex::new((ready, detail.to_owned()))),
        }
    }
    pub fn set(&self, ready: bool, detail: impl Into<String>) {
        if let Ok(mut g) = self.inner.lock() {
            *g = (ready, detail.into());
        }
    }
    pub fn state(&self) -> (bool, String) {
        self.inner
            .lock()
            .map(|g| g.clone())
            .unwrap_or((false, "poisoned".into()))
    }
}

/// A handle that stops an [`App`]; cloneable, fire once.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
    /// Resolves once [`Shutdown::trigger`] was called.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// Seeds demo data after migrations (only when `demo_data` is on); must be idempotent.
pub type Seeder = fn(&mut DbConnection) -> Result<(), DbError>;

/// What a domain service hands to [`App::domain`].
pub struct DomainSpec {
    pub name: &'static str,
    /// The service's gRPC services (health is added here).
    pub routes: tonic::service::Routes,
    /// Fully qualified gRPC service names whose health follows the database.
    pub grpc_services: Vec<&'static str>,
    /// Extra HTTP routes (webhooks); health and metrics are always there.
    pub http_routes: Option<Configure>,
    pub seed_demo: Option<Seeder>,
}

type GrpcTask = Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;

pub struct App {
    name: &'static str,
    http_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    http: actix_web::dev::Server,
    grpc: Option<GrpcTask>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    health: Option<(HealthReporter, Vec<&'static str>)>,
    stop_inner: Shutdown,
    readiness: Readiness,
    grace: Duration,
    workers: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
    metrics: Metrics,
}

impl App {
    /// Starts a background worker (outbox delivery, reminders). It gets a future that resolves
    /// when the service stops; it should finish its current item and return. Shutdown waits for it
    /// within the drain grace.
    pub fn spawn_worker<F, Fut>(&mut self, name: &'static str, worker: F)
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Box::pin(self.stop_inner.wait());
        self.workers.push((name, tokio::spawn(worker(stop))));
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }
    /// The registry behind `/metrics`, for workers that report gauges (the kb outbox backlog).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// A domain service: its own database, gRPC port with health, HTTP port for probes and metrics.
    pub async fn domain(
        cfg: &ServiceConfig,
        db: Arc<Database>,
        spec: DomainSpec,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(spec.name);
        let readiness = Readiness::new(false, "starting: database not checked yet");
        let (reporter, health_service) = tonic_health::server::health_reporter();
        for name in std::iter::once("").chain(spec.grpc_services.iter().copied()) {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }

        let grpc_listener = tokio::net::TcpListener::bind(cfg.grpc.addr())
            .await
            .with_context(|| format!("cannot bind gRPC port {}", cfg.grpc.addr()))?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_listener = std::net::TcpListener::bind(cfg.http.addr())
            .with_context(|| format!("cannot bind HTTP port {}", cfg.http.addr()))?;
        let http_addr = http_listener.local_addr()?;
        let grace = Duration::from_secs(cfg.shutdown_grace_secs);

        let ctx = HttpContext {
            service: spec.name,
            readiness: readiness.clone(),
            metrics: metrics.clone(),
        };
        let http = crate::http::server(
            &cfg.http,
            http_listener,
            ctx,
            spec.http_routes.unwrap_or_else(|| Arc::new(|_| {})),
            grace,
        )?;

        let stop_inner = Shutdown::default();
        let routes = spec.routes.add_service(health_service);
        let grpc: GrpcTask = Box::pin(crate::grpc::serve(
            grpc_listener,
            routes,
            metrics.clone(),
            stop_inner.wait(),
        ));

        let watcher = tokio::spawn(watch_database(
            db,
            readiness.clone(),
            metrics.clone(),
            Some((reporter.clone(), spec.grpc_services.clone())),
            if cfg.demo_data { spec.seed_demo } else { None },
            Duration::from_millis(cfg.database.health_interval_ms.max(50)),
            stop_inner.wait(),
        ));
        tracing::info!(service = spec.name, http.addr = %http_addr, grpc.addr = %grpc_addr, "listening");
        Ok(Self {
            name: spec.name,
            http_addr,
            grpc_addr: Some(grpc_addr),
            http,
            grpc: Some(grpc),
            watcher: Some(watcher),
            health: Some((reporter, spec.grpc_services)),
            stop_inner,
            readiness: readiness.clone(),
            grace,
            workers: Vec::new(),
            metrics,
        })
    }

    /// A stateless web service (site): HTTP only, ready as soon as it listens.
    pub fn web(name: &'static str, cfg: &WebConfig, routes: Configure) -> anyhow::Result<Self> {
        let readiness = Readiness::new(true, "stateless");
        Self::http_only(
            name,
            &cfg.http,
            cfg.shutdown_grace_secs,
            readiness,
            Metrics::new(name),
            routes,
        )
    }

    /// A web service with its own database (portal: staff accounts): HTTP only, ready while the
    /// database answers and its migrations are applied (they are applied on start, like a domain
    /// service's).
    pub fn web_with_database(
        name: &'static str,
        cfg: &PortalConfig,
        db: Arc<Database>,
        routes: Configure,
    ) -> anyhow::Result<Self> {
        let readiness = Readiness::new(false, "starting: database not checked yet");
        let metrics = Metrics::new(name);
        let mut app = Self::http_only(
            name,
            &cfg.http,
            cfg.shutdown_grace_secs,
            readiness.clone(),
            metrics.clone(),
            routes,
        )?;
        app.watcher = Some(tokio::spawn(watch_database(
            db,
            readiness,
            metrics,
            None,
            None,
            Duration::from_millis(cfg.database.health_interval_ms.max(50)),
            app.stop_inner.wait(),
        )));
        Ok(app)
    }

    fn http_only(
        name: &'static str,
        http_cfg: &HttpConfig,
        grace_secs: u64,
        readiness: Readiness,
        metrics: Metrics,
        routes: Configure,
    ) -> anyhow::Result<Self> {
        let http_listener = std::net::TcpListener::bind(http_cfg.addr())
            .with_context(|| format!("cannot bind HTTP port {}", http_cfg.addr()))?;
        let http_addr = http_listener.local_addr()?;
        let grace = Duration::from_secs(grace_secs);
        let ctx = HttpContext {
            service: name,
            readiness: readiness.clone(),
            metrics: metrics.clone(),
        };
        let http = crate::http::server(http_cfg, http_listener, ctx, routes, grace)?;
        tracing::info!(service = name, http.addr = %http_addr, "listening");
        Ok(Self {
            name,
            http_addr,
            grpc_addr: None,
            http,
            grpc: None,
            watcher: None,
            health: None,
            stop_inner: Shutdown::default(),
            readiness,
            grace,
            workers: Vec::new(),
            metrics,
        })
    }

    /// Serves until `stop` resolves, then drains and returns.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let handle = self.http.handle();
        let mut http = tokio::spawn(self.http);
        let mut grpc = self.grpc.map(tokio::spawn);
        tokio::select! {
            _ = stop => {}
            r = &mut http => {
                r??;
                anyhow::bail!("HTTP server stopped on its own");
            }
            r = async { match grpc.as_mut() { Some(g) => g.await, None => std::future::pending().await } } => {
                r??;
                anyhow::bail!("gRPC server stopped on its own");
            }
        }
        let started = Instant::now();
        tracing::info!(service = self.name, "stopping: draining in-flight requests");
        if let Some(w) = &self.watcher {
            w.abort();
        }
        self.readiness.set(false, "shutting down");
        if let Some((reporter, names)) = &self.health {
            for name in std::iter::once("").chain(names.iter().copied()) {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        }
        self.stop_inner.trigger();
        let drain = async {
            handle.stop(true).await;
            let _ = http.await;
            if let Some(g) = grpc {
                let _ = g.await;
            }
            for (name, w) in self.workers {
                if let Err(e) = w.await {
                    tracing::error!(worker = name, error = %e, "worker ended badly");
                }
            }
        };
        if tokio::time::timeout(self.grace + Duration::from_secs(1), drain)
            .await
            .is_err()
        {
            tracing::warn!(service = self.name, "drain timed out; stopping anyway");
        }
        if let Some(w) = self.watcher {
            w.abort();
        }
        tracing::info!(
            service = self.name,
            duration_ms = started.elapsed().as_millis() as u64,
            "stopped"
        );
        Ok(())
    }
}

/// Keeps readiness, gRPC health and `db_up` in step with the database: applies migrations once
/// reachable (then seeds demo data if asked), and re-checks every `interval` without restarting.
#[allow(clippy::too_many_arguments)]
async fn watch_database(
    db: Arc<Database>,
    readiness: Readiness,
    metrics: Metrics,
    health: Option<(HealthReporter, Vec<&'static str>)>,
    seed: Option<Seeder>,
    interval: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut was_ready: Option<bool> = None;
    let mut seeded = false;
    loop {
        let db2 = db.clone();
        let result = crate::db::blocking(move || -> Result<&'static str, DbError> {
            if !db2.is_migrated() {
                let n = db2.migrate_blocking()?;
                tracing::info!(
                    backend = db2.backend().as_str(),
                    migrations_applied = n,
                    "database migrated"
                );
            }
            db2.ping_blocking()?;
            Ok("database up, migrations applied")
        })
        .await
        .unwrap_or_else(|e| Err(DbError::Unavailable(e.to_string())));
        if let (Ok(_), Some(seed), false) = (&result, seed, seeded) {
            let db3 = db.clone();
            match db3.run(seed).await {
                Ok(()) => seeded = true,
                Err(e) => tracing::error!(error = %e, "demo data seeding failed; will retry"),
            }
        }
        let ready = result.is_ok();
        if was_ready != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if let Some((reporter, names)) = &health {
                for name in std::iter::once("").chain(names.iter().copied()) {
                    reporter.set_service_status(name, status).await;
                }
            }
            match &result {
                Ok(_) => tracing::info!("ready: database reachable"),
                Err(e) => tracing::warn!(error = %e, "not ready"),
            }
            was_ready = Some(ready);
        }
        metrics.set_db_up(ready);
        match result {
            Ok(detail) => readiness.set(true, detail),
            Err(e) => readiness.set(false, e.to_string()),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// What `main` needs from any service's config type.
pub trait HasTelemetry {
    fn telemetry(&self) -> &TelemetryConfig;
}

impl HasTelemetry for ServiceConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

impl HasTelemetry for WebConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

impl HasTelemetry for PortalConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

/// The whole of a service's `main`: load config (one clear line and exit 2 when it is wrong),
/// start telemetry, build, serve until SIGTERM or Ctrl-C, drain, flush.
pub async fn main<C, F, Fut>(name: &'static str, defaults: &str, build: F) -> ExitCode
where
    C: DeserializeOwned + HasTelemetry,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<App>>,
{
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "{name} — Omneuro service\n\nusage: {name} [--config FILE]\n\nSettings come from built-in defaults, then FILE (or $OMNEURO_CONFIG), then OMNEURO__SECTION__KEY env vars."
        );
        return ExitCode::SUCCESS;
    }
    let cfg: C = match crate::config::load_from_process(defaults) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let guard = match crate::telemetry::init(name, cfg.telemetry()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{name}: cannot start telemetry: {e:#}");
            return ExitCode::from(2);
        }
    };
    let code = match build(cfg).await {
        Ok(app) => match app.run_until_stopped(stop_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "service failed");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "service could not start");
            eprintln!("{name}: cannot start: {e:#}");
            ExitCode::FAILURE
        }
    };
    drop(guard);
    code
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
