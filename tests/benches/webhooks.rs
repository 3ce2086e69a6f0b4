//! Stripe webhook throughput with de-duplication, printed (not asserted): signed deliveries to the
//! release billing binary over HTTP, half of them duplicates, 16 at a time; then a check that
//! each invoice was paid exactly once.
//!
//! `scripts/bench-billing` (or `cargo bench -p omneuro-tests --bench webhooks` after
//! `cargo build --release --bins`). SQLite; `OMNEURO_TEST_PG_URL=…` adds PostgreSQL.

use std::time::{Duration, Instant};

use omneuro_platform::stripe::webhook_signature;
use omneuro_tests::*;

const SECRET: &str = "whsec_bench";
const INVOICES: usize = 1000;

fn seed(db: &TestDb) {
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
    let mut sql = String::from("BEGIN;");
    for i in 0..INVOICES {
        // Receipts already sent, source "order": the bench measures the event path itself.
        sql.push_str(&format!(
            "INSERT INTO invoices (id, number, source, source_id, client_id, status, subtotal_cents, tax_rate_bps, tax_cents, total_cents, created_at, updated_at, receipt_sent_at) \
             VALUES ('inv_bench{i:05}', 'JJ-BENCH-{i:05}', 'order', 'ord_bench{i}', 'cli_bench', 'open', 5000, 600, 300, 5300, '{now}', '{now}', '{now}');"
        ));
    }
    sql.push_str("COMMIT;");
    db.execute_batch(&sql);
}

fn delivery(i: usize) -> (String, String) {
    let body = serde_json::json!({
        "id": format!("evt_bench_{i:05}"),
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_700_000_000,
        "data": {"object": {"id": format!("pi_bench_{i:05}"), "object": "payment_intent", "amount": 5300, "amount_received": 5300, "currency": "usd", "metadata": {"invoice_id": format!("inv_bench{i:05}")}}}
    })
    .to_string();
    let t = chrono::Utc::now().timestamp();
    let header = format!("t={t},v1={}", webhook_signature(SECRET, t, body.as_bytes()));
    (body, header)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for backend in backends() {
        let db = TestDb::new(backend, "billing");
        let tmp = TempDir::new("benchhooks");
        let billing = Proc::spawn(
            "billing",
            &[
                ("OMNEURO__DATABASE__URL", db.url.clone()),
                ("OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET", SECRET.to_owned()),
            ],
            &tmp.0,
        );
        let ready = format!("http://{}/readyz", billing.http);
        assert!(
            eventually(Duration::from_secs(20), || async {
                http_status(&ready).await == 200
            })
            .await
        );
        seed(&db);
        // Every invoice's event once, and again for half of them (Stripe's retries).
        let mut all: Vec<(String, String)> = (0..INVOICES).map(delivery).collect();
        all.extend((0..INVOICES).step_by(2).map(delivery));
        let total = all.len();
        let url = format!("http://{}/webhooks/stripe", billing.http);
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for chunk in all.chunks(total.div_ceil(16)) {
            let (chunk, url, client) = (chunk.to_vec(), url.clone(), client.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = 0;
                for (body, header) in chunk {
                    let r = client
                        .post(&url)
                        .header("stripe-signature", header)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    ok += usize::from(r.status().as_u16() == 200);
                }
                ok
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let (paid, payments) = db.query_pair(
            "SELECT CAST(COUNT(*) AS BIGINT) AS a, CAST((SELECT COUNT(*) FROM payments) AS BIGINT) AS b FROM invoices WHERE status = 'paid'",
        );
        println!(
            "[{backend:?}] {total} signed deliveries ({INVOICES} distinct, {} duplicates), 16 concurrent: {:.0} events/s; {ok} answered 200; {paid} invoices paid, {payments} payments (exactly once: {})",
            total - INVOICES,
            total as f64 / secs,
            paid as usize == INVOICES && payments as usize == INVOICES
        );
    }
}
