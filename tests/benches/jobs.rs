//! Figures for the garage/jobs issue, printed (not asserted):
//! - availability for the next 14 days with 5,000 existing appointments: p50/p99 of
//!   `JobsService/ListAvailability` over real gRPC (goal p99 ≤ 5 ms);
//! - the no-login status page and the shop's catalog page through nginx vs the homepage, same wrk
//!   settings, same run.
//!
//! `scripts/bench-jobs` (or `cargo bench -p omneuro-tests --bench jobs`). SQLite by default;
//! `OMNEURO_TEST_PG_URL=postgres://postgres@127.0.0.1:5432` adds PostgreSQL.

use std::time::{Duration, Instant};

use omneuro_platform::ids;
use omneuro_proto::jobs::v1 as pb;
use omneuro_tests::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// 5,000 appointments: most in the past two years, some ahead, with their work orders and the
/// window counters they hold; plus one live job whose status link the page benchmark opens.
fn seed(db: &TestDb) -> String {
    let today = chrono::Utc::now().date_naive();
    let mut sql = String::from("BEGIN;");
    let windows = ["morning", "afternoon", "evening"];
    let mut load = std::collections::BTreeMap::new();
    for i in 0..5000i64 {
        let day = today - chrono::Days::new(730) + chrono::Days::new((i % 750) as u64);
        let window = windows[(i % 3) as usize];
        let job = format!("job_bench{i:06}");
        sql.push_str(&format!(
            "INSERT INTO work_orders (id, client_id, vehicle_id, vehicle_label, status, services, problem, safety_flag, assigned_tech, source, status_token, created_at, updated_at) \
             VALUES ('{job}', 'cli_bench{}', 'veh_bench{i}', 'Begode Master', 'delivered', 'diagnostics', '', FALSE, '', 'booking', NULL, '{day} 12:00:00', '{day} 12:00:00');\
             INSERT INTO appointments (id, job_id, client_id, day, window_code, start_local, starts_at, status, created_at, updated_at) \
             VALUES ('apt_bench{i:06}', '{job}', 'cli_bench{}', '{day}', '{window}', '10:00', '{day} 15:00:00', 'booked', '{day} 12:00:00', '{day} 12:00:00');",
            i % 400,
            i % 400
        ));
        *load.entry((day, window)).or_insert(0) += 1;
    }
    for ((day, window), n) in load {
        sql.push_str(&format!(
            "INSERT INTO window_load (day, window_code, booked) VALUES ('{day}', '{window}', {});",
            n.min(2)
        ));
    }
    let token = ids::new_secret();
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
    sql.push_str(&format!(
        "INSERT INTO work_orders (id, client_id, vehicle_id, vehicle_label, status, services, problem, safety_flag, assigned_tech, source, status_token, created_at, updated_at) \
         VALUES ('job_benchlive', 'cli_live', 'veh_live', 'Inmotion V13', 'diagnosing', 'diagnostics', 'secret words', FALSE, '', 'booking', '{token}', '{now}', '{now}');\
         INSERT INTO work_order_events (id, job_id, at, actor, from_status, to_status, note) VALUES ('evt_b1', 'job_benchlive', '{now}', 'client:cli_live', NULL, 'intake', '');\
         INSERT INTO work_order_events (id, job_id, at, actor, from_status, to_status, note) VALUES ('evt_b2', 'job_benchlive', '{now}', 'staff:stf_1:tech', 'intake', 'diagnosing', '');\
         COMMIT;"
    ));
    db.execute_batch(&sql);
    token
}

fn wrk(url: &str, host: &str) -> String {
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            "-c32",
            "-d5s",
            "--latency",
            "-H",
            &format!("Host: {host}"),
            url,
        ])
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .map(|l| l.trim_start_matches("Requests/sec:").trim().to_owned())
        .unwrap_or_default();
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .map(|l| l.trim().trim_start_matches("99%").trim().to_owned())
        .unwrap_or_default();
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(|l| format!(", {}", l.trim()))
        .unwrap_or_default();
    format!("{rps} req/s, p99 {p99}{non2xx}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for backend in backends() {
        let (jdb, sdb, gdb) = (
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "garage"),
        );
        let j = start_domain(
            "jobs",
            &jdb.url,
            &[("OMNEURO__WORKER__ENABLED", "false".to_owned())],
        )
        .await;
        let s = start_domain("shop", &sdb.url, &[]).await;
        let g = start_domain("garage", &gdb.url, &[]).await;
        for r in [&j, &s, &g] {
            wait_ready(r).await;
        }
        let token = seed(&jdb);

        // Availability: sequential calls, as a phone would make them.
        let mut client = pb::jobs_service_client::JobsServiceClient::new(j.channel());
        for _ in 0..100 {
            client
                .list_availability(pb::ListAvailabilityRequest {})
                .await
                .unwrap();
        }
        let mut times = Vec::with_capacity(2000);
        let mut windows = 0;
        for _ in 0..2000 {
            let t = Instant::now();
            let r = client
                .list_availability(pb::ListAvailabilityRequest {})
                .await
                .unwrap();
            times.push(t.elapsed());
            windows = r.into_inner().windows.len();
        }
        times.sort();
        println!(
            "[{backend:?}] availability, 14 days, 5,000 appointments in the database ({windows} open windows): p50 {:.2} ms, p99 {:.2} ms (goal p99 <= 5 ms)",
            percentile(&times, 0.50).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0
        );

        // Status page vs homepage through nginx.
        let site = start_site(&[
            ("garage", g.grpc_url()),
            ("jobs", j.grpc_url()),
            ("shop", s.grpc_url()),
        ])
        .await;
        let tmp = TempDir::new("benchjobs");
        let closed = format!("127.0.0.1:{}", free_port());
        let nginx = Nginx::start(
            &tmp.0,
            &[
                ("SITE_ADDR", site.http.to_string()),
                ("PORTAL_ADDR", closed.clone()),
                ("BILLING_ADDR", closed.clone()),
                ("REPAIRBOT_ADDR", closed),
            ],
        )
        .expect("nginx");
        let status_url = format!("http://127.0.0.1:{}/status/{token}", nginx.port);
        let home_url = format!("http://127.0.0.1:{}/", nginx.port);
        assert_eq!(
            nginx
                .client()
                .get(nginx.url("localhost", &format!("/status/{token}")))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        println!("[{backend:?}] wrk -t2 -c32 -d5s through nginx (same run):");
        println!("  homepage:     {}", wrk(&home_url, "localhost"));
        println!("  status page:  {}", wrk(&status_url, "localhost"));
        let catalog_url = format!("http://127.0.0.1:{}/shop", nginx.port);
        println!("  catalog page: {}", wrk(&catalog_url, "localhost"));
        drop(nginx);
        site.stop().await;
        j.stop().await;
        s.stop().await;
        g.stop().await;
    }
}
