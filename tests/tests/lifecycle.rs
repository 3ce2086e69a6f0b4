//! Readiness follows the database without restarts; bad config stops a service with one clear line;
//! secrets come from SSM (moto) and never print; a third-party gRPC client sees SERVING.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use omneuro_platform::secrets::{SecretStore, names};
use omneuro_tests::*;

/// A TCP proxy to PostgreSQL that can be cut (closing every connection) and restored.
struct Switch {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Switch {
    async fn start(target: std::net::SocketAddr) -> Switch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (u, g) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused-ish (closed at once)
                }
                let born = g.load(Ordering::SeqCst);
                let g2 = g.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let cut = async {
                        while g2.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Switch {
            port,
            up,
            generation,
        }
    }
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_gone_means_not_ready_and_back_without_restart() {
    let Some(server) = peer_or_skip("PostgreSQL (OMNEURO_TEST_PG_URL)", pg_server_url()) else {
        return;
    };
    let db = TestDb::new(Backend::Postgres, "garage");
    let hostport = server
        .rsplit('@')
        .next()
        .unwrap()
        .trim_start_matches("postgres://")
        .to_owned();
    let target: std::net::SocketAddr = tokio::net::lookup_host(hostport)
        .await
        .unwrap()
        .next()
        .unwrap();
    let switch = Switch::start(target).await;
    let dbname = db.url.rsplit('/').next().unwrap();
    let user = server
        .trim_start_matches("postgres://")
        .split('@')
        .next()
        .unwrap();
    let url = format!("postgres://{user}@127.0.0.1:{}/{dbname}", switch.port);

    // Starts while the database is down: alive, not ready, NOT_SERVING.
    switch.cut();
    let svc = start_domain(
        "garage",
        &url,
        &[("OMNEURO__DATABASE__CONNECT_TIMEOUT_MS", "500".into())],
    )
    .await;
    assert_eq!(http_status(&svc.url("/healthz")).await, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(http_status(&svc.url("/readyz")).await, 503);
    assert_eq!(
        grpc_health(&svc.grpc_url(), grpc_service_name("garage")).await,
        Some(NOT_SERVING)
    );
    let ch = tonic::transport::Endpoint::from_shared(svc.grpc_url())
        .unwrap()
        .connect_lazy();
    let mut client = omneuro_proto::garage::v1::garage_service_client::GarageServiceClient::new(ch);
    let e = client
        .list_vehicle_makes(omneuro_proto::garage::v1::ListVehicleMakesRequest { category: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");

    // The database comes: migrations run, ready, SERVING — no restart.
    switch.restore();
    wait_ready(&svc).await;
    assert_eq!(
        grpc_health(&svc.grpc_url(), grpc_service_name("garage")).await,
        Some(SERVING)
    );
    assert!(
        client
            .list_vehicle_makes(omneuro_proto::garage::v1::ListVehicleMakesRequest { category: 0 })
            .await
            .is_ok()
    );

    // It goes away again (every connection cut): 503 and NOT_SERVING; then back once more.
    switch.cut();
    let url503 = svc.url("/readyz");
    assert!(
        eventually(Duration::from_secs(10), || async {
            http_status(&url503).await == 503
        })
        .await
    );
    assert_eq!(grpc_health(&svc.grpc_url(), "").await, Some(NOT_SERVING));
    let body: serde_json::Value = http()
        .get(svc.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "not_ready");
    switch.restore();
    wait_ready(&svc).await;
    assert_eq!(grpc_health(&svc.grpc_url(), "").await, Some(SERVING));
    svc.stop().await;
}

fn run_with(bin_name: &str, env: &[(&str, &str)]) -> (i32, String) {
    let out = std::process::Command::new(bin(bin_name))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

#[test]
fn bad_config_exits_non_zero_with_one_line_naming_the_key() {
    let cases: [(&str, &[(&str, &str)], &str); 7] = [
        (
            "garage",
            &[
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
                ("OMNEURO__HTTP__PROT", "1"),
            ],
            "`http.prot`",
        ),
        (
            "shop",
            &[
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
                ("OMNEURO__GRPC__PORT", "seventy"),
            ],
            "`grpc.port`",
        ),
        ("jobs", &[], "`database.url`"),
        (
            "site",
            &[
                ("OMNEURO__UPSTREAMS__GARAGE", "http://x"),
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
            ],
            "`database`",
        ),
        (
            "portal",
            &[
                ("OMNEURO__HTTP__WORKERS", "many"),
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
            ],
            "`http.workers`",
        ),
        ("portal", &[], "`database.url`"),
        (
            "portal",
            &[
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
                ("OMNEURO__STAFF__IDLE_MINUTES", "soon"),
            ],
            "`staff.idle_minutes`",
        ),
    ];
    for (svc, env, key) in cases {
        let (code, stderr) = run_with(svc, env);
        assert_eq!(code, 2, "{svc}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{svc}: {stderr}");
        assert!(stderr.contains(key), "{svc}: `{stderr}` should name {key}");
    }
    let tmp = TempDir::new("cfg");
    let file = tmp.0.join("kb.toml");
    std::fs::write(&file, "[http\nport = 1").unwrap();
    let out = std::process::Command::new(bin("kb"))
        .arg("--config")
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kb.toml"));
}

/// moto's SSM server from the test venv, on a free port.
struct Moto(std::process::Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn moto() -> Option<Moto> {
    let exe = peer_or_skip("moto_server (OMNEURO_TEST_VENV)", venv_bin("moto_server"))?;
    let port = free_port();
    let child = std::process::Command::new(exe)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/moto-api/");
    assert!(
        eventually(Duration::from_secs(30), || async {
            http_status(&url).await == 200
        })
        .await,
        "moto did not start"
    );
    Some(Moto(child, port))
}

fn ssm_client(port: u16) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_ssm_securestrings_and_missing_ones_fail_clearly() {
    let Some(m) = moto().await else { return };
    let ssm = ssm_client(m.1);
    for (name, value) in [
        (names::OPENAI_API_KEY, "sk-test-openai-0123456789"),
        (names::STRIPE_SECRET_KEY, "sk_test_stripe"),
        (names::STRIPE_WEBHOOK_SECRET, "whsec_test"),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
    let store = SecretStore::ssm(ssm_client(m.1));
    let key = store.get(names::OPENAI_API_KEY).await.unwrap();
    assert_eq!(key.expose(), "sk-test-openai-0123456789");
    assert_eq!(format!("{key:?}"), "Secret(len=25)");
    let stripe = store.get_by_path("/omneuro/stripe").await.unwrap();
    assert_eq!(stripe.len(), 2);
    assert_eq!(stripe[names::STRIPE_WEBHOOK_SECRET].expose(), "whsec_test");
    let e = store
        .get(names::TELNYX_API_KEY)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/omneuro/telnyx/api_key")
            && e.contains("no such SSM parameter")
            && e.contains("stays off"),
        "{e}"
    );

    // SSM down: a clear "could not be read" error, never a value.
    drop(m);
    let e = SecretStore::ssm(ssm_client(free_port()))
        .get(names::OPENAI_API_KEY)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("could not be read from AWS SSM"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_health_client_sees_serving_from_every_domain_service() {
    let Some(python) = peer_or_skip(
        "python with grpcio-health-checking (OMNEURO_TEST_VENV)",
        venv_bin("python"),
    ) else {
        return;
    };
    let script = repo_root().join("tests/peers/check_grpc_health.py");
    for name in DOMAIN_SERVICES {
        let db = TestDb::new(Backend::Sqlite, name);
        let svc = start_domain(name, &db.url, &[]).await;
        wait_ready(&svc).await;
        let full = grpc_service_name(name);
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(svc.grpc.unwrap().to_string())
            .arg(full)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), "SERVING SERVING", "{name}");
        svc.stop().await;
    }
}
