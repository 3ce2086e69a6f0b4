//! End to end through the real nginx edge, with every service as its own process (the way
//! scripts/run starts them): host routing, blocked probes, webhooks routing, one trace across
//! nginx → site → garage, clean SIGTERM, and `nginx -t` on every rendered config.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use omneuro_tests::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// A minimal OTLP/gRPC collector that keeps every span it receives, tagged with its service.name.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

#[derive(Debug, Clone)]
struct CollectedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut out = self.spans.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(CollectedSpan {
                        service: service.clone(),
                        name: s.name,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_routes_by_host_hides_probes_and_carries_one_trace_across_services() {
    let tmp = TempDir::new("edge");
    let collector = Collector::default();
    let otlp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_addr = otlp.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(otlp)),
    );
    let otel = ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp_addr}"));
    let fast = ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned());

    let mut domain = Vec::new();
    for name in ["garage", "jobs", "shop", "billing", "repairbot"] {
        let url = format!("sqlite://{}/{name}.db", tmp.0.display());
        domain.push(Proc::spawn(
            name,
            &[
                ("OMNEURO__DATABASE__URL", url),
                ("OMNEURO__DEMO_DATA", "true".into()),
                otel.clone(),
                fast.clone(),
            ],
            &tmp.0,
        ));
    }
    let up = |n: &str| domain.iter().find(|p| p.name == n).unwrap().grpc_url();
    let mut site = Proc::spawn(
        "site",
        &[
            ("OMNEURO__UPSTREAMS__GARAGE", up("garage")),
            ("OMNEURO__UPSTREAMS__JOBS", up("jobs")),
            ("OMNEURO__UPSTREAMS__SHOP", up("shop")),
            // Every homepage hit asks the services, so the traced request below reaches garage.
            ("OMNEURO__UPSTREAMS__CATALOG_CACHE_MS", "0".to_owned()),
            otel.clone(),
            fast.clone(),
        ],
        &tmp.0,
    );
    let portal = Proc::spawn(
        "portal",
        &[(
            "OMNEURO__DATABASE__URL",
            format!("sqlite://{}/portal.db", tmp.0.display()),
        )],
        &tmp.0,
    );
    for p in domain.iter() {
        let url = format!("http://{}/readyz", p.http);
        assert!(
            eventually(Duration::from_secs(20), || async {
                http_status(&url).await == 200
            })
            .await,
            "{} not ready:\n{}",
            p.name,
            p.logs()
        );
    }
    let http_of = |n: &str| {
        domain
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .http
            .to_string()
    };
    let Some(nginx) = Nginx::start(
        &tmp.0,
        &[
            ("SITE_ADDR", site.http.to_string()),
            ("PORTAL_ADDR", portal.http.to_string()),
            ("BILLING_ADDR", http_of("billing")),
            ("REPAIRBOT_ADDR", http_of("repairbot")),
        ],
    ) else {
        return;
    };
    let c = nginx.client();

    // Public host → site, with data fetched over gRPC from garage, jobs and shop.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let Ok(r) = c.get(nginx.url("localhost", "/")).send().await else {
                return false;
            };
            r.status() == 200
                && r.text()
                    .await
                    .unwrap_or_default()
                    .contains("Smart BMS 20S 60A")
        })
        .await
    );
    let r = c.get(nginx.url("localhost", "/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = r.text().await.unwrap();
    for want in ["Juice Junkiez", "Begode", "Diagnostics", "409 S Addison St"] {
        assert!(html.contains(want), "homepage through nginx lacks {want}");
    }

    // Tech host → portal sign-in; the homepage never asks for staff credentials.
    let r = c
        .get(nginx.url("tech.localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (303, "/signin")
    );
    let r = c
        .get(nginx.url("tech.localhost", "/signin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Tech portal sign-in"));
    assert!(!html.contains("type=\"password\""));

    // Edge health; service probes and metrics never reachable on either public host.
    let r = c
        .get(nginx.url("localhost", "/nginx-health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap().as_str()),
        (200, "ok\n")
    );
    for host in ["localhost", "tech.localhost"] {
        for path in ["/metrics", "/healthz", "/readyz", "/metrics/"] {
            assert_eq!(
                c.get(nginx.url(host, path)).send().await.unwrap().status(),
                404,
                "{host}{path}"
            );
        }
    }
    // Unknown host: nginx closes the connection without an answer (444).
    assert!(
        c.get(nginx.url("unknown.example", "/"))
            .send()
            .await
            .is_err()
    );

    // Webhooks reach their owners (which refuse what they can't check: no signing secret or key is
    // configured here); not on the tech host.
    let r = c
        .post(nginx.url("localhost", "/webhooks/stripe"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["service"],
        "billing"
    );
    let r = c
        .post(nginx.url("localhost", "/webhooks/telnyx/messaging"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["service"],
        "repairbot"
    );
    assert_eq!(
        c.post(nginx.url("tech.localhost", "/webhooks/stripe"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Unknown page through the edge → the friendly 404; oversized body → 413 at the edge.
    let r = c.get(nginx.url("localhost", "/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("We couldn't find that page")
    );
    let r = c
        .post(nginx.url("tech.localhost", "/signin"))
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await;
    assert!(
        r.map(|r| r.status() == 413).unwrap_or(true),
        "oversized body not refused"
    );

    // SIGTERM: every service drains and exits 0 (flushing its spans on the way out).
    assert!(site.terminate().success(), "site:\n{}", site.logs());
    for p in domain.iter_mut() {
        assert!(p.terminate().success(), "{}:\n{}", p.name, p.logs());
        assert!(p.logs().contains("\"message\":\"stopped\""), "{}", p.name);
    }

    // One trace: nginx's request id is the trace id; site's server span, its client span, and
    // garage's server span (child of site's client span) all carry it.
    let spans = collector.spans.lock().unwrap().clone();
    let in_trace: Vec<&CollectedSpan> = spans.iter().filter(|s| s.trace_id == request_id).collect();
    let site_server = in_trace
        .iter()
        .find(|s| s.service == "site" && s.name == "GET /")
        .unwrap_or_else(|| panic!("no site span in trace {request_id}: {spans:#?}"));
    let client = in_trace
        .iter()
        .find(|s| s.service == "site" && s.name == "GarageService/ListVehicleMakes")
        .unwrap_or_else(|| panic!("no client span: {in_trace:#?}"));
    let garage = in_trace
        .iter()
        .find(|s| s.service == "garage" && s.name.ends_with("GarageService/ListVehicleMakes"))
        .unwrap_or_else(|| panic!("no garage span in trace {request_id}: {in_trace:#?}"));
    assert_eq!(client.parent_span_id, site_server.span_id);
    assert_eq!(garage.parent_span_id, client.span_id);
    assert!(
        in_trace.iter().any(|s| s.service == "jobs")
            && in_trace.iter().any(|s| s.service == "shop")
    );
    // The same trace id is in the services' JSON logs.
    assert!(site.logs().contains(&request_id));
}

#[test]
fn every_rendered_nginx_config_passes_nginx_t() {
    let Some(nginx) = nginx_bin() else {
        return;
    };
    let tmp = TempDir::new("ngt");
    // dev: the standalone config scripts/run uses.
    let dev = tmp.0.join("dev");
    let ok = std::process::Command::new(repo_root().join("scripts/render-nginx"))
        .args(["dev", dev.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ok.status.success());
    nginx_t(&nginx, &dev, "nginx.conf");

    // prod: certbot paths (self-signed stand-ins here), TLS, redirect; included from an http block.
    let prod = tmp.0.join("prod");
    let certs = tmp.0.join("live");
    for host in ["juicejunkiez.com", "tech.juicejunkiez.com"] {
        let d = certs.join(host);
        std::fs::create_dir_all(&d).unwrap();
        let st = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN={host}"),
            ])
            .args(["-addext", &format!("subjectAltName=DNS:{host}")])
            .args([
                "-keyout",
                d.join("privkey.pem").to_str().unwrap(),
                "-out",
                d.join("fullchain.pem").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }
    let ok = std::process::Command::new(repo_root().join("scripts/render-nginx"))
        .args(["prod", prod.to_str().unwrap()])
        .env("CERT_DIR", &certs)
        .env("LOG_DIR", prod.join("logs"))
        .output()
        .unwrap();
    assert!(ok.status.success());
    std::fs::create_dir_all(prod.join("logs")).unwrap();
    let rendered = std::fs::read_to_string(prod.join("prod.conf")).unwrap();
    assert!(
        rendered.contains("return 301 https://$host$request_uri")
            && rendered.contains("/juicejunkiez.com/fullchain.pem")
    );
    std::fs::write(
        prod.join("main.conf"),
        format!(
            "pid {0}/nginx.pid;\nevents {{}}\nhttp {{\n  include {0}/prod.conf;\n}}\n",
            prod.display()
        ),
    )
    .unwrap();
    nginx_t(&nginx, &prod, "main.conf");
}
