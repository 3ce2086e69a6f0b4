//! Test harness: real services on real sockets (port 0), real databases (SQLite always, PostgreSQL
//! when `OMNEURO_TEST_PG_URL` is set), real peers (nginx, moto, grpcio) when installed.
//!
//! Environment read here (scripts/test sets it):
//! - `OMNEURO_TEST_PG_URL`: server URL such as `postgres://postgres@127.0.0.1:5432`; a fresh database
//!   is created per test service and dropped afterwards.
//! - `OMNEURO_TEST_REQUIRE_PEERS=1` (CI): a missing PostgreSQL, nginx, moto or grpcio fails the test
//!   instead of skipping it.
//! - `OMNEURO_TEST_VENV`: a Python venv with moto and grpcio-health-checking.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::collapsible_if,
    clippy::zombie_processes
)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use omneuro_platform::app::Shutdown;
use omneuro_platform::config::{self, PortalConfig, ServiceConfig, WebConfig};
use omneuro_platform::{App, ids};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn require_peers() -> bool {
    std::env::var("OMNEURO_TEST_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Skips (returns None) or, in CI, fails when a peer is missing.
pub fn peer_or_skip<T>(name: &str, found: Option<T>) -> Option<T> {
    if found.is_none() {
        if require_peers() {
            panic!("{name} is required (OMNEURO_TEST_REQUIRE_PEERS=1) but not available");
        }
        eprintln!("SKIP: {name} not available");
    }
    found
}

pub fn pg_server_url() -> Option<String> {
    std::env::var("OMNEURO_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// The backends this run covers: SQLite always, PostgreSQL when configured (required in CI).
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if peer_or_skip("PostgreSQL (OMNEURO_TEST_PG_URL)", pg_server_url()).is_some() {
        v.push(Backend::Postgres);
    }
    v
}

/// A fresh database for one service in one test; dropped (PostgreSQL) or deleted (SQLite) on drop.
pub struct TestDb {
    pub url: String,
    backend: Backend,
    name: String,
    dir: Option<PathBuf>,
}

impl TestDb {
    pub fn new(backend: Backend, service: &str) -> Self {
        let name = format!("omneuro_t_{service}_{}", &ids::new_id("x")[2..]);
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).unwrap();
                Self {
                    url: format!("sqlite://{}/{service}.db", dir.display()),
                    backend,
                    name,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let server = pg_server_url().expect("OMNEURO_TEST_PG_URL");
                let mut c = diesel::PgConnection::establish(&format!("{server}/postgres"))
                    .expect("PostgreSQL reachable");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .unwrap();
                Self {
                    url: format!("{server}/{name}"),
                    backend,
                    name,
                    dir: None,
                }
            }
        }
    }
}

impl TestDb {
    /// One row of two BIGINT columns the query names `a` and `b`.
    pub fn query_pair(&self, sql: &str) -> (i64, i64) {
        #[derive(diesel::QueryableByName)]
        struct Pair {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            a: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            b: i64,
        }
        let p: Pair = match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut c = diesel::SqliteConnection::establish(path).unwrap();
                diesel::sql_query(sql).get_result(&mut c).unwrap()
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).unwrap();
                diesel::sql_query(sql).get_result(&mut c).unwrap()
            }
        };
        (p.a, p.b)
    }

    /// Runs several `;`-separated statements at once (seeding benchmarks).
    pub fn execute_batch(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                diesel::SqliteConnection::establish(path)
                    .unwrap()
                    .batch_execute(sql)
                    .unwrap();
            }
            Backend::Postgres => {
                diesel::PgConnection::establish(&self.url)
                    .unwrap()
                    .batch_execute(sql)
                    .unwrap();
            }
        }
    }

    /// Runs SQL straight against the service's database (to age a link, count rows, …).
    pub fn execute(&self, sql: &str) -> usize {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut c = diesel::SqliteConnection::establish(path).unwrap();
                diesel::sql_query(sql).execute(&mut c).unwrap()
            }
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.url).unwrap();
                diesel::sql_query(sql).execute(&mut c).unwrap()
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self.backend {
            Backend::Sqlite => {
                if let Some(d) = &self.dir {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
            Backend::Postgres => {
                if let Some(server) = pg_server_url() {
                    if let Ok(mut c) =
                        diesel::PgConnection::establish(&format!("{server}/postgres"))
                    {
                        let _ = diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            self.name
                        ))
                        .execute(&mut c);
                    }
                }
            }
        }
    }
}

/// A service running in this test process; stopped (and drained) on drop or by [`Running::stop`].
pub struct Running {
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub fn start(app: App) -> Self {
        let shutdown = Shutdown::default();
        let http = app.http_addr();
        let grpc = app.grpc_addr();
        let task = tokio::spawn(app.run_until_stopped(shutdown.wait()));
        Self {
            http,
            grpc,
            shutdown,
            task: Some(task),
        }
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc.unwrap())
    }
    /// A lazily connecting gRPC channel to this service (with a request timeout, so a hung
    /// service fails the test instead of stalling it).
    pub fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc_url())
            .unwrap()
            .timeout(Duration::from_secs(10))
            .connect_lazy()
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

type BuildFut = Pin<Box<dyn Future<Output = anyhow::Result<App>>>>;

/// The six domain services by name, with their defaults and build function.
pub fn domain(name: &str) -> (&'static str, fn(ServiceConfig) -> BuildFut) {
    match name {
        "garage" => (garage::DEFAULTS, |c| Box::pin(garage::build(c))),
        "jobs" => (jobs::DEFAULTS, |c| Box::pin(jobs::build(c))),
        "billing" => (billing::DEFAULTS, |c| Box::pin(billing::build(c))),
        "shop" => (shop::DEFAULTS, |c| Box::pin(shop::build(c))),
        "repairbot" => (repairbot::DEFAULTS, |c| Box::pin(repairbot::build(c))),
        "kb" => (kb::DEFAULTS, |c| Box::pin(kb::build(c))),
        other => panic!("no domain service {other}"),
    }
}

pub const DOMAIN_SERVICES: [&str; 6] = ["garage", "jobs", "billing", "shop", "repairbot", "kb"];

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Starts domain service `name` in-process on port 0 against `db_url` (demo data on).
pub async fn start_domain(name: &str, db_url: &str, extra: &[(&str, String)]) -> Running {
    let (defaults, build) = domain(name);
    let mut pairs = vec![
        ("OMNEURO__HTTP__PORT", "0".to_owned()),
        ("OMNEURO__GRPC__PORT", "0".to_owned()),
        ("OMNEURO__DATABASE__URL", db_url.to_owned()),
        ("OMNEURO__DATABASE__HEALTH_INTERVAL_MS", "100".to_owned()),
        ("OMNEURO__DEMO_DATA", "true".to_owned()),
        ("OMNEURO__SHUTDOWN_GRACE_SECS", "2".to_owned()),
    ];
    pairs.extend(extra.iter().cloned());
    let cfg: ServiceConfig = config::load(defaults, None, env(&pairs)).unwrap();
    Running::start(build(cfg).await.unwrap())
}

fn web_env(upstreams: &[(&str, String)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("OMNEURO__HTTP__PORT".to_owned(), "0".to_owned()),
        ("OMNEURO__SHUTDOWN_GRACE_SECS".to_owned(), "2".to_owned()),
    ];
    for (svc, url) in upstreams {
        pairs.push((
            format!("OMNEURO__UPSTREAMS__{}", svc.to_ascii_uppercase()),
            url.clone(),
        ));
    }
    pairs
}

/// Starts site in-process on port 0 with the given upstream gRPC URLs.
pub async fn start_site(upstreams: &[(&str, String)]) -> Running {
    let cfg = config::load::<WebConfig>(&site::defaults(), None, web_env(upstreams)).unwrap();
    Running::start(site::build(cfg).await.unwrap())
}

/// Starts portal in-process on port 0 against `db_url` with the given upstream gRPC URLs (and
/// extra settings such as the mail server).
pub async fn start_portal(
    db_url: &str,
    upstreams: &[(&str, String)],
    extra: &[(&str, String)],
) -> Running {
    let mut pairs = web_env(upstreams);
    pairs.push(("OMNEURO__DATABASE__URL".into(), db_url.to_owned()));
    pairs.push(("OMNEURO__DATABASE__HEALTH_INTERVAL_MS".into(), "100".into()));
    pairs.extend(env(extra));
    let cfg = config::load::<PortalConfig>(&portal::defaults(), None, pairs).unwrap();
    Running::start(portal::build(cfg).await.unwrap())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn http_status(url: &str) -> u16 {
    http()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// gRPC health of `service` ("" = whole server) at `grpc_url`.
pub async fn grpc_health(grpc_url: &str, service: &str) -> Option<i32> {
    let channel = tonic::transport::Endpoint::from_shared(grpc_url.to_owned())
        .ok()?
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let res = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    Some(res.into_inner().status)
}

pub const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
pub const NOT_SERVING: i32 =
    tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;

/// Waits until the service answers `/readyz` 200.
pub async fn wait_ready(r: &Running) {
    let url = r.url("/readyz");
    assert!(
        eventually(Duration::from_secs(20), || async {
            http_status(&url).await == 200
        })
        .await,
        "{url} never became ready"
    );
}

/// Where cargo put the workspace's binaries (the directory of this test binary's parent).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().to_owned()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --bins` first (scripts/test does)",
        p.display()
    );
    p
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cmd))
            .find(|p| p.is_file())
    })
}

pub fn venv_bin(name: &str) -> Option<PathBuf> {
    let v = std::env::var_os("OMNEURO_TEST_VENV")?;
    let p = PathBuf::from(v).join("bin").join(name);
    p.is_file().then_some(p)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A service binary running as its own process (the way scripts/run and production run it).
pub struct Proc {
    pub name: String,
    pub child: std::process::Child,
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `target/debug/<name>` with `env`, ports 0, and waits for its "listening" log line.
    pub fn spawn(name: &str, env: &[(&str, String)], dir: &std::path::Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = std::process::Command::new(bin(name));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OMNEURO__HTTP__PORT", "0")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(std::process::Stdio::null());
        if DOMAIN_SERVICES.contains(&name) {
            cmd.env("OMNEURO__GRPC__PORT", "0");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains("\"message\":\"listening\""))
            {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let http = v["http.addr"].as_str().unwrap().parse().unwrap();
                let grpc = v["grpc.addr"].as_str().map(|a| a.parse().unwrap());
                return Proc {
                    name: name.to_owned(),
                    child,
                    http,
                    grpc,
                    log,
                };
            }
            assert!(Instant::now() < deadline, "{name} did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to 20 s) until `/readyz` answers 200: a service with a database migrates it
    /// after it starts listening.
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.http);
        assert!(
            eventually(Duration::from_secs(20), || async {
                http_status(&url).await == 200
            })
            .await,
            "{} never became ready:\n{}",
            self.name,
            self.logs()
        );
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc.unwrap())
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private temp directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(ids::new_id(tag));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The nginx edge rendered by scripts/render-nginx, running from a private directory.
pub struct Nginx {
    pub port: u16,
    child: std::process::Child,
    pub dir: PathBuf,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The fully qualified gRPC service name of a domain service, as generated from its proto.
pub fn grpc_service_name(name: &str) -> &'static str {
    use omneuro_proto as p;
    match name {
        "garage" => p::garage::v1::garage_service_server::SERVICE_NAME,
        "jobs" => p::jobs::v1::jobs_service_server::SERVICE_NAME,
        "billing" => p::billing::v1::billing_service_server::SERVICE_NAME,
        "shop" => p::shop::v1::shop_service_server::SERVICE_NAME,
        "repairbot" => p::repairbot::v1::repairbot_service_server::SERVICE_NAME,
        "kb" => p::kb::v1::kb_service_server::SERVICE_NAME,
        other => panic!("no domain service {other}"),
    }
}

/// The nginx binary (PATH or /usr/sbin), or a skip (a failure when peers are required).
pub fn nginx_bin() -> Option<PathBuf> {
    peer_or_skip(
        "nginx",
        which("nginx").or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file())),
    )
}

/// `nginx [-t] -p DIR -c DIR/CONF -e DIR/logs/error.log`, the way scripts/run starts the edge.
pub fn nginx_command(
    nginx: &std::path::Path,
    dir: &std::path::Path,
    conf: &str,
    test: bool,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(nginx);
    if test {
        cmd.arg("-t");
    }
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join(conf))
        .arg("-e")
        .arg(dir.join("logs/error.log"));
    cmd
}

/// Runs `nginx -t` on a rendered config and fails the test with nginx's own words if it is wrong.
pub fn nginx_t(nginx: &std::path::Path, dir: &std::path::Path, conf: &str) {
    let out = nginx_command(nginx, dir, conf, true).output().unwrap();
    assert!(
        out.status.success(),
        "nginx -t {}: {}",
        dir.join(conf).display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Nginx {
    pub fn start(dir: &std::path::Path, vars: &[(&str, String)]) -> Option<Nginx> {
        Self::start_on(free_port(), dir, vars)
    }

    /// On a port chosen beforehand (when services must know the public address before the edge
    /// starts, e.g. for links in mail).
    pub fn start_on(port: u16, dir: &std::path::Path, vars: &[(&str, String)]) -> Option<Nginx> {
        let nginx = nginx_bin()?;
        let conf = dir.join("nginx");
        let status = std::process::Command::new(repo_root().join("scripts/render-nginx"))
            .args(["dev", conf.to_str().unwrap()])
            .env("LISTEN", format!("127.0.0.1:{port}"))
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        nginx_t(&nginx, &conf, "nginx.conf");
        let child = nginx_command(&nginx, &conf, "nginx.conf", false)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx {
            port,
            child,
            dir: conf,
        })
    }

    /// A client that resolves `localhost` and `tech.localhost` to this nginx.
    pub fn client(&self) -> reqwest::Client {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        reqwest::Client::builder()
            .resolve("localhost", addr)
            .resolve("tech.localhost", addr)
            .resolve("unknown.example", addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM (not SIGKILL) so the master takes its workers down with it.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real SMTP server (aiosmtpd from the test venv) that keeps every accepted message as JSON,
/// decoded the way a mail client shows it (see tests/peers/smtp_sink.py).
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    dir: TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// SIGTERM, then wait (a peer that traps SIGTERM shuts down cleanly; SIGKILL if it lingers).
pub fn stop_child(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl SmtpSink {
    pub fn start() -> Option<SmtpSink> {
        let python = peer_or_skip(
            "python with aiosmtpd (OMNEURO_TEST_VENV)",
            venv_bin("python"),
        )
        .filter(|p| {
            std::process::Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .status()
                .is_ok_and(|s| s.success())
        });
        let python = peer_or_skip("aiosmtpd", python)?;
        let port = free_port();
        let dir = TempDir::new("smtp");
        let child = std::process::Command::new(python)
            .arg(repo_root().join("tests/peers/smtp_sink.py"))
            .arg(port.to_string())
            .arg(&dir.0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(SmtpSink { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Where the messages are kept (one JSON file each), for a browser test to read links from.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir.0
    }

    /// Every message so far, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir.0)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|s| serde_json::from_str(&s).ok())
            .collect()
    }

    /// Messages to `to`, oldest first.
    pub fn to(&self, to: &str) -> Vec<serde_json::Value> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m["to"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t == to))
            })
            .collect()
    }

    /// Waits until `to` has at least `n` messages and returns the newest.
    /// The newest mail to `to`, past the first `after` of them, whose subject starts with
    /// `subject` (waits up to 15 s): for when other mail to the same address may arrive in any
    /// order (a reminder due at once).
    pub async fn wait_for_subject(
        &self,
        to: &str,
        subject: &str,
        after: usize,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.to(to).into_iter().skip(after).rev().find(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(subject))
            });
            if let Some(m) = found {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail \"{subject}…\" to {to}; have {:#?}",
                self.to(to)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for(&self, to: &str, n: usize) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.to(to);
            if got.len() >= n {
                return got[got.len() - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no mail #{n} to {to}; have {:#?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The token of the first `…/signin/link?token=…` link in a mail's text.
pub fn sign_in_token(mail: &serde_json::Value) -> String {
    let text = mail["text"].as_str().unwrap_or_default();
    let at = text
        .find("/signin/link?token=")
        .unwrap_or_else(|| panic!("no sign-in link in {text}"))
        + "/signin/link?token=".len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// A minimal browser over plain HTTP: keeps cookies per name, does not follow redirects, and
/// pulls the CSRF token out of the last page's forms. Enough to drive the no-JavaScript pages.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    host: Option<String>,
    pub cookies: std::collections::BTreeMap<String, String>,
}

/// One part of a multipart form: a text field (`file: None`) or a file (name, declared type).
pub struct Part<'a> {
    pub name: &'a str,
    pub file: Option<(&'a str, &'a str)>,
    pub data: &'a [u8],
}

/// A `multipart/form-data` body (and its content type), built by hand so a test controls every
/// part, a file's name and declared type included.
pub fn multipart_body(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("----omneuro-{}", ids::new_id("b"));
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let head = match p.file {
            Some((filename, content_type)) => format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                p.name
            ),
            None => format!(
                "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                p.name
            ),
        };
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
    pub set_cookies: Vec<String>,
}

impl Page {
    /// The first `name="csrf" value="…"` on the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body))
            + "name=\"csrf\" value=\"".len();
        self.body[at..].chars().take_while(|c| *c != '"').collect()
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_owned(),
            host: None,
            cookies: Default::default(),
        }
    }

    /// Sends `Host: host` (for going through nginx by name).
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, rb: reqwest::RequestBuilder) -> Page {
        let mut rb = rb.header("cookie", self.cookie_header());
        if let Some(h) = &self.host {
            rb = rb.header("host", h);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let set_cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = first.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Page {
            status,
            location,
            body: r.text().await.unwrap_or_default(),
            set_cookies,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let rb = self.client.get(format!("{}{path}", self.base));
        self.finish(rb).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let rb = self.client.post(format!("{}{path}", self.base)).form(form);
        self.finish(rb).await
    }

    /// A `multipart/form-data` POST ([`multipart_body`]), as a browser sends a file upload.
    pub async fn post_multipart(&mut self, path: &str, parts: &[Part<'_>]) -> Page {
        let (content_type, body) = multipart_body(parts);
        let rb = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        self.finish(rb).await
    }

    /// A POST with extra headers (e.g. a foreign `Origin`).
    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut rb = self.client.post(format!("{}{path}", self.base)).form(form);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.finish(rb).await
    }
}
mod telnyx;
pub use telnyx::*;
mod flows;
pub use flows::*;
mod stripe;
pub use stripe::*;
mod staffing;
pub use staffing::*;
mod fleet;
pub use fleet::*;
mod llm;
pub use llm::*;

/// node, Debian's Chromium and playwright-core (OMNEURO_TEST_NODE_MODULES) for the browser flows.
pub fn browser_peers() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let node = peer_or_skip("node", which("node"))?;
    let chromium = peer_or_skip(
        "chromium",
        which("chromium")
            .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file())),
    )?;
    let modules = peer_or_skip(
        "playwright-core (OMNEURO_TEST_NODE_MODULES)",
        std::env::var_os("OMNEURO_TEST_NODE_MODULES")
            .map(PathBuf::from)
            .filter(|p| p.join("playwright-core").is_dir()),
    )?;
    Some((node, chromium, modules))
}

/// Runs a flow in `tests/browser/` with the given environment (plus the browser peers and a
/// private HOME); screenshots go to `target/browser-artifacts/<name>/`. Returns stdout.
pub async fn run_browser_flow(
    script: &str,
    shots: &std::path::Path,
    vars: &[(&str, String)],
) -> Result<String, String> {
    let Some((node, chromium, modules)) = browser_peers() else {
        return Err("browser peers missing".into());
    };
    let _ = std::fs::remove_dir_all(shots);
    std::fs::create_dir_all(shots).unwrap();
    let home = TempDir::new("browserhome");
    let mut cmd = tokio::process::Command::new(node);
    cmd.arg(repo_root().join("tests/browser").join(script))
        .env("NODE_MODULES", &modules)
        .env("CHROMIUM", &chromium)
        .env("SHOTS", shots)
        .env("HOME", &home.0)
        .env("XDG_CONFIG_HOME", home.0.join(".config"))
        .env("XDG_CACHE_HOME", home.0.join(".cache"));
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .map_err(|_| "the browser run took over 3 minutes".to_owned())?
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
