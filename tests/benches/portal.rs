//! Figures for the portal issue, printed (not asserted): the job board with 500 open jobs —
//! portal's server time p50/p99 for `GET /jobs` signed in as a tech (portal → jobs over gRPC,
//! session checked in portal's database on every request; goal p99 ≤ 20 ms) and the page's
//! weight, plain and gzipped (what nginx sends).
//!
//! `scripts/bench-portal` (or `cargo bench -p omneuro-tests --bench portal`). SQLite by default;
//! `OMNEURO_TEST_PG_URL=postgres://postgres@127.0.0.1:5432` adds PostgreSQL.

use std::io::Write;
use std::time::{Duration, Instant};

use omneuro_tests::*;

const OPEN: [&str; 7] = [
    "intake",
    "diagnosing",
    "awaiting_approval",
    "awaiting_parts",
    "in_progress",
    "awaiting_payment",
    "ready",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// 500 open jobs spread over the open statuses, a tenth with the safety flag, plus 2,000
/// delivered ones the board leaves out.
fn seed(db: &TestDb) {
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
    let mut sql = String::from("BEGIN;");
    for i in 0..2500i64 {
        let status = if i < 500 {
            OPEN[(i % 7) as usize]
        } else {
            "delivered"
        };
        sql.push_str(&format!(
            "INSERT INTO work_orders (id, client_id, vehicle_id, vehicle_label, status, services, problem, safety_flag, assigned_tech, source, status_token, created_at, updated_at) \
             VALUES ('job_board{i:06}', 'cli_board{}', 'veh_board{i}', 'Begode Master V{}', '{status}', 'diagnostics, battery', 'Cuts out at 40% on hills; charger light stays red.', {}, '', 'walk_in', NULL, '{now}', '{now}');",
            i % 300,
            i % 9,
            if i % 10 == 0 { "TRUE" } else { "FALSE" },
        ));
    }
    sql.push_str("COMMIT;");
    db.execute_batch(&sql);
}

fn gzipped_len(body: &[u8]) -> usize {
    let mut child = std::process::Command::new("gzip")
        .arg("-6")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait_with_output().unwrap().stdout.len()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for backend in backends() {
        let (jdb, pdb) = (TestDb::new(backend, "jobs"), TestDb::new(backend, "portal"));
        let j = start_domain(
            "jobs",
            &jdb.url,
            &[("OMNEURO__WORKER__ENABLED", "false".to_owned())],
        )
        .await;
        wait_ready(&j).await;
        seed(&jdb);
        let portal = start_portal(&pdb.url, &[("jobs", j.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut b = Browser::new(&portal.url(""));
        let p = staff_sign_in(&mut b, &mut staff.tech).await;
        assert_eq!(p.location, "/jobs");

        let first = b.get("/jobs").await;
        assert_eq!(first.status, 200);
        let cards = first.body.matches("class=\"job").count();
        assert_eq!(cards, 500, "the board shows every open job");
        for _ in 0..50 {
            b.get("/jobs").await;
        }
        let mut times = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let t = Instant::now();
            let p = b.get("/jobs").await;
            times.push(t.elapsed());
            assert_eq!(p.status, 200);
        }
        times.sort();
        println!(
            "[{backend:?}] job board, 500 open jobs (GET /jobs as a tech, 1,000 sequential): p50 {:.2} ms, p99 {:.2} ms (goal p99 <= 20 ms)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
        );
        println!(
            "[{backend:?}] page weight: {:.1} KB HTML, {:.1} KB gzipped; no scripts, no images",
            first.body.len() as f64 / 1024.0,
            gzipped_len(first.body.as_bytes()) as f64 / 1024.0,
        );
        portal.stop().await;
        j.stop().await;
    }
}
