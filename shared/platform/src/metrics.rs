//! The Prometheus registry behind every service's `GET /metrics` (text exposition format).
//! Metric names follow Prometheus conventions: `_total` for counters, `_seconds` for durations.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, String); 3];
type Labels2 = [(&'static str, String); 2];
type Labels1 = [(&'static str, String); 1];
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Counters and histograms for one service; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    http_requests: Family<Labels, Counter>,
    http_duration: Histograms<Labels2>,
    grpc_requests: Family<Labels2, Counter>,
    grpc_duration: Histograms<Labels1>,
    db_up: Gauge,
    kb_outbox_pending: Gauge,
    kb_outbox_oldest: Gauge,
}

impl Metrics {
    pub fn new(service: &'static str) -> Self {
        let mut registry = Registry::with_prefix("omneuro");
        let http_requests = Family::<Labels, Counter>::default();
        let http_duration =
            Family::<Labels2, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let grpc_requests = Family::<Labels2, Counter>::default();
        let grpc_duration = Family::<[(&'static str, String); 1], Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let db_up = Gauge::default();
        let kb_outbox_pending = Gauge::default();
        let kb_outbox_oldest = Gauge::default();
        let info = Family::<[(&'static str, String); 2], Gauge>::default();
        info.get_or_create(&[
            ("service", service.to_owned()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ])
        .set(1);
        registry.register("build_info", "Service name and version", info);
        registry.register(
            "http_requests",
            "HTTP requests by method, route pattern and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route",
            http_duration.clone(),
        );
        registry.register(
            "grpc_requests",
            "gRPC requests by method and grpc-status code",
            grpc_requests.clone(),
        );
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC request latency by method",
            grpc_duration.clone(),
        );
        registry.register(
            "db_up",
            "1 when the service's database answered its last readiness check",
            db_up.clone(),
        );
        registry.register(
            "kb_outbox_pending",
            "Rows of the service's kb_outbox waiting for kb (services that put records into kb)",
            kb_outbox_pending.clone(),
        );
        registry.register(
            "kb_outbox_oldest_pending_seconds",
            "Age of the oldest row waiting in the service's kb_outbox; 0 when none waits",
            kb_outbox_oldest.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                http_requests,
                http_duration,
                grpc_requests,
                grpc_duration,
                db_up,
                kb_outbox_pending,
                kb_outbox_oldest,
            }),
        }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let i = &self.inner;
        i.http_requests
            .get_or_create(&[
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
        i.http_duration
            .get_or_create(&[("method", method.to_owned()), ("route", route.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_grpc(&self, method: &str, code: &str, elapsed: Duration) {
        let i = &self.inner;
        i.grpc_requests
            .get_or_create(&[("method", method.to_owned()), ("code", code.to_owned())])
            .inc();
        i.grpc_duration
            .get_or_create(&[("method", method.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    pub fn set_db_up(&self, up: bool) {
        self.inner.db_up.set(i64::from(up));
    }

    /// The kb outbox backlog: rows waiting, and the age of the oldest in seconds (0 when none).
    pub fn set_kb_outbox(&self, pending: i64, oldest_seconds: i64) {
        self.inner.kb_outbox_pending.set(pending);
        self.inner.kb_outbox_oldest.set(oldest_seconds.max(0));
    }

    /// The Prometheus text exposition of every metric, plus the process's resident memory.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.inner.registry)
            .is_err()
        {
            out.clear();
        }
        if let Some(rss) = resident_memory_bytes() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
            out.push_str("# TYPE process_resident_memory_bytes gauge\n");
            out.push_str(&format!("process_resident_memory_bytes {rss}\n"));
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new("garage");
        m.observe_http("GET", "/healthz", 200, Duration::from_millis(3));
        m.observe_grpc(
            "/omneuro.garage.v1.GarageService/ListVehicleMakes",
            "0",
            Duration::from_millis(2),
        );
        m.set_db_up(true);
        m.set_kb_outbox(3, 42);
        let text = m.render();
        assert!(text.contains("omneuro_kb_outbox_pending 3"), "{text}");
        assert!(
            text.contains("omneuro_kb_outbox_oldest_pending_seconds 42"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"omneuro_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("omneuro_db_up 1"), "{text}");
        assert!(
            text.contains(r#"omneuro_build_info{service="garage""#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
