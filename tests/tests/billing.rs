//! billing over real gRPC and HTTP on both databases: invoices from a job's bench (tax on parts),
//! who sees what, and Stripe webhooks counted exactly once — 200 deliveries with duplicates,
//! shuffled order and forgeries leave one payment per invoice, lose none, and reject every forgery.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_platform::stripe::webhook_signature;
use omneuro_proto::billing::v1 as pb;
use omneuro_proto::jobs::v1 as jobs;
use omneuro_tests::*;
use pb::billing_service_client::BillingServiceClient;
use rand::seq::SliceRandom;
use tonic::Code;

const WEBHOOK_SECRET: &str = "whsec_omneuro_test";

fn staff() -> Actor {
    Actor::Staff {
        id: "stf_1".into(),
        role: StaffRole::Owner,
    }
}

/// The shop around billing: garage, shop, jobs in-process; billing as a process (its secrets
/// come from the environment).
struct Fleet {
    _dbs: Vec<TestDb>,
    garage: Running,
    jobs: Running,
    shop: Running,
    billing: Proc,
    _tmp: TempDir,
}

async fn fleet(backend: Backend, sink: &SmtpSink, stripe_env: &[(&str, String)]) -> Fleet {
    let dbs: Vec<TestDb> = ["garage", "jobs", "shop", "billing"]
        .iter()
        .map(|s| TestDb::new(backend, s))
        .collect();
    let garage = start_domain(
        "garage",
        &dbs[0].url,
        &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
    )
    .await;
    let shop = start_domain("shop", &dbs[2].url, &[]).await;
    let jobs = start_domain(
        "jobs",
        &dbs[1].url,
        &[
            ("OMNEURO__MAIL__SMTP_URL", sink.url()),
            ("OMNEURO__UPSTREAMS__GARAGE", garage.grpc_url()),
            ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
        ],
    )
    .await;
    for r in [&garage, &shop, &jobs] {
        wait_ready(r).await;
    }
    let tmp = TempDir::new("billing");
    let mut env = vec![
        ("OMNEURO__DATABASE__URL", dbs[3].url.clone()),
        ("OMNEURO__DATABASE__HEALTH_INTERVAL_MS", "100".to_owned()),
        ("OMNEURO__UPSTREAMS__JOBS", jobs.grpc_url()),
        (
            "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET",
            WEBHOOK_SECRET.to_owned(),
        ),
    ];
    env.extend(stripe_env.iter().cloned());
    let billing = Proc::spawn("billing", &env, &tmp.0);
    let ready = format!("http://{}/readyz", billing.http);
    assert!(
        eventually(Duration::from_secs(20), || async {
            http_status(&ready).await == 200
        })
        .await
    );
    Fleet {
        _dbs: dbs,
        garage,
        jobs,
        shop,
        billing,
        _tmp: tmp,
    }
}

impl Fleet {
    fn billing_client(&self) -> BillingServiceClient<tonic::transport::Channel> {
        BillingServiceClient::new(
            tonic::transport::Endpoint::from_shared(self.billing.grpc_url())
                .unwrap()
                .timeout(Duration::from_secs(20))
                .connect_lazy(),
        )
    }

    /// A client with a job priced at the bench (labor + one part), invoiced and issued.
    async fn open_invoice(
        &self,
        sink: &SmtpSink,
        tag: &str,
        labor_cents: i64,
    ) -> (String, pb::Invoice) {
        let mut gc = GarageClient::new(self.garage.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, sink, tag, other_vehicle("Begode", "T4")).await;
        let mut j = jobs::jobs_service_client::JobsServiceClient::new(self.jobs.channel());
        let job = j
            .create_walk_in(auth::request(
                &staff(),
                jobs::CreateWalkInRequest {
                    client_id: client.id.clone(),
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into()],
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        j.add_labor(auth::request(
            &staff(),
            jobs::AddLaborRequest {
                job_id: job.id.clone(),
                description: "Controller repair".into(),
                hours: "1".into(),
                rate_cents: labor_cents,
            },
        ))
        .await
        .unwrap();
        let product = omneuro_proto::shop::v1::shop_service_client::ShopServiceClient::new(
            self.shop.channel(),
        )
        .list_products(omneuro_proto::shop::v1::ListProductsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .products[0]
            .clone();
        j.add_part(auth::request(
            &staff(),
            jobs::AddPartRequest {
                job_id: job.id.clone(),
                product_id: product.id,
                quantity: 1,
            },
        ))
        .await
        .unwrap();
        let mut b = self.billing_client();
        let draft = b
            .create_job_invoice(auth::request(
                &staff(),
                pb::CreateJobInvoiceRequest {
                    job_id: job.id.clone(),
                    fees: vec![],
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let open = b
            .issue_invoice(auth::request(
                &staff(),
                pb::IssueInvoiceRequest {
                    id: draft.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        (client.id, open)
    }
}

fn signed(payload: &str, secret: &str) -> String {
    let t = chrono::Utc::now().timestamp();
    format!(
        "t={t},v1={}",
        webhook_signature(secret, t, payload.as_bytes())
    )
}

fn event(id: &str, kind: &str, object: serde_json::Value) -> String {
    serde_json::json!({"id": id, "object": "event", "type": kind, "created": 1_700_000_000, "data": {"object": object}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_invoices_tax_parts_number_in_sequence_and_stay_with_their_client() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let f = fleet(backend, &sink, &[]).await;
        let (client, inv) = f.open_invoice(&sink, "inv", 9000).await;
        assert!(
            inv.number.starts_with("JJ-20") && inv.number.ends_with("-0001"),
            "{}",
            inv.number
        );
        assert_eq!(inv.status, "open");
        let part = inv.lines.iter().find(|l| l.kind == "part").unwrap();
        let labor = inv.lines.iter().find(|l| l.kind == "labor").unwrap();
        assert!(part.taxable && !labor.taxable);
        let part_cents = part.amount.as_ref().unwrap().amount_cents;
        assert_eq!(inv.tax_rate_bps, 600);
        assert_eq!(
            inv.tax.as_ref().unwrap().amount_cents,
            (part_cents * 600 + 5_000) / 10_000
        );
        assert_eq!(
            inv.total.as_ref().unwrap().amount_cents,
            9000 + part_cents + inv.tax.as_ref().unwrap().amount_cents
        );
        let (_, second) = f.open_invoice(&sink, "inv2", 5000).await;
        assert!(second.number.ends_with("-0002"), "{}", second.number);

        let mut b = f.billing_client();
        // The client sees their own invoice; another client and anonymous callers do not.
        let mine = b
            .get_invoice(auth::request(
                &Actor::Client(client.clone()),
                pb::GetInvoiceRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.number, inv.number);
        let other = b
            .get_invoice(auth::request(
                &Actor::Client("cli_someoneelse".into()),
                pb::GetInvoiceRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap_err();
        assert_eq!(other.code(), Code::NotFound);
        assert_eq!(
            b.get_invoice(pb::GetInvoiceRequest { id: inv.id.clone() })
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        // Only staff invoice, issue, void and refund; a second invoice for the same job is refused.
        let denied = b
            .issue_invoice(auth::request(
                &Actor::Client(client.clone()),
                pb::IssueInvoiceRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let again = b
            .create_job_invoice(auth::request(
                &staff(),
                pb::CreateJobInvoiceRequest {
                    job_id: inv.source_id.clone(),
                    fees: vec![],
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition);
        // Without Stripe configured, paying is refused with a clear reason (never faked).
        let pay = b
            .pay_invoice(auth::request(
                &Actor::Client(client.clone()),
                pb::PayInvoiceRequest {
                    id: inv.id.clone(),
                    success_url: "http://x/ok".into(),
                    cancel_url: "http://x/no".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(pay.code(), Code::FailedPrecondition);
        assert!(pay.message().contains("switched off"), "{}", pay.message());
        f.jobs.stop().await;
        f.shop.stop().await;
        f.garage.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_shuffled_duplicated_and_forged_deliveries_pay_each_invoice_exactly_once() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let f = fleet(backend, &sink, &[]).await;
        let mut invoices = Vec::new();
        for i in 0..5 {
            invoices.push(
                f.open_invoice(&sink, &format!("replay{i}"), 4000 + i * 1000)
                    .await
                    .1,
            );
        }
        // The genuine events: each invoice paid (PaymentIntent and Checkout both report the same
        // payment), invoices 0 and 1 refunded in part then (for 0) in full.
        let mut genuine = Vec::new();
        for (i, inv) in invoices.iter().enumerate() {
            let total = inv.total.as_ref().unwrap().amount_cents;
            let pi = format!("pi_replay_{i}_{}", inv.id);
            genuine.push(event(
                &format!("evt_pi_{i}"),
                "payment_intent.succeeded",
                serde_json::json!({"id": pi, "object": "payment_intent", "amount": total, "amount_received": total, "currency": "usd", "metadata": {"invoice_id": inv.id}}),
            ));
            genuine.push(event(
                &format!("evt_cs_{i}"),
                "checkout.session.completed",
                serde_json::json!({"id": format!("cs_{i}"), "object": "checkout.session", "payment_status": "paid", "payment_intent": pi, "amount_total": total, "currency": "usd", "metadata": {"invoice_id": inv.id}}),
            ));
            if i < 2 {
                genuine.push(event(
                    &format!("evt_rf1_{i}"),
                    "charge.refunded",
                    serde_json::json!({"id": format!("ch_{i}"), "object": "charge", "payment_intent": pi, "amount_refunded": 1000, "currency": "usd"}),
                ));
            }
            if i == 0 {
                genuine.push(event(
                    "evt_rf2_0",
                    "charge.refunded",
                    serde_json::json!({"id": "ch_0", "object": "charge", "payment_intent": pi, "amount_refunded": total, "currency": "usd"}),
                ));
            }
        }
        let distinct = genuine.len();
        // 200 deliveries: each genuine event several times, plus forgeries (wrong secret,
        // tampered body, stale timestamp), all shuffled.
        let mut deliveries: Vec<(String, String, bool)> = Vec::new();
        let mut k = 0;
        while deliveries.len() < 160 {
            let e = &genuine[k % distinct];
            deliveries.push((e.clone(), signed(e, WEBHOOK_SECRET), true));
            k += 1;
        }
        for n in 0..40 {
            let e = &genuine[n % distinct];
            let forged = match n % 3 {
                0 => (e.clone(), signed(e, "whsec_attacker")),
                1 => {
                    let header = signed(e, WEBHOOK_SECRET);
                    (
                        e.replace("\"currency\":\"usd\"", "\"currency\":\"usd\",\"x\":1"),
                        header,
                    )
                }
                _ => {
                    let t = chrono::Utc::now().timestamp() - 3600;
                    (
                        e.clone(),
                        format!(
                            "t={t},v1={}",
                            webhook_signature(WEBHOOK_SECRET, t, e.as_bytes())
                        ),
                    )
                }
            };
            deliveries.push((forged.0, forged.1, false));
        }
        deliveries.shuffle(&mut rand::rng());
        assert_eq!(deliveries.len(), 200);

        let url = format!("http://{}/webhooks/stripe", f.billing.http);
        let client = http();
        let deliver = |batch: Vec<(String, String, bool)>| {
            let (url, client) = (url.clone(), client.clone());
            async move {
                let mut tasks = Vec::new();
                for chunk in batch.chunks(25) {
                    let (chunk, url, client) = (chunk.to_vec(), url.clone(), client.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut out = Vec::new();
                        for (body, header, genuine) in chunk {
                            let r = client
                                .post(&url)
                                .header("stripe-signature", &header)
                                .header("content-type", "application/json")
                                .body(body.clone())
                                .send()
                                .await
                                .unwrap();
                            out.push((r.status().as_u16(), (body, header, genuine)));
                        }
                        out
                    }));
                }
                let mut results = Vec::new();
                for t in tasks {
                    results.extend(t.await.unwrap());
                }
                results
            }
        };
        // Like Stripe: whatever was answered 503 (a refund before its payment) is delivered
        // again later, with a fresh signature.
        let mut pending = deliveries;
        for round in 0..10 {
            let mut retry = Vec::new();
            for (status, (body, _, genuine)) in deliver(pending).await {
                match (genuine, status) {
                    (true, 200) => {}
                    (true, 503) => {
                        let header = signed(&body, WEBHOOK_SECRET);
                        retry.push((body, header, true));
                    }
                    (true, s) => panic!("{backend:?}: a genuine delivery got {s}"),
                    (false, s) => {
                        assert_eq!(s, 400, "{backend:?}: a forged delivery was not rejected")
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            assert!(
                round < 9,
                "{backend:?}: deliveries still refused after 10 rounds"
            );
            pending = retry;
        }

        let mut b = f.billing_client();
        for (i, inv) in invoices.iter().enumerate() {
            let now = b
                .get_invoice(auth::request(
                    &staff(),
                    pb::GetInvoiceRequest { id: inv.id.clone() },
                ))
                .await
                .unwrap()
                .into_inner();
            let total = inv.total.as_ref().unwrap().amount_cents;
            assert_eq!(
                now.paid.as_ref().unwrap().amount_cents,
                total,
                "{backend:?} invoice {i}: exactly one payment"
            );
            let (status, refunded) = match i {
                0 => ("refunded", total),
                1 => ("partially_refunded", 1000),
                _ => ("paid", 0),
            };
            assert_eq!(
                (
                    now.status.as_str(),
                    now.refunded.as_ref().unwrap().amount_cents
                ),
                (status, refunded),
                "{backend:?} invoice {i}"
            );
        }
        f.jobs.stop().await;
        f.shop.stop().await;
        f.garage.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_webhook_secret_events_are_refused_not_dropped() {
    for backend in backends() {
        let db = TestDb::new(backend, "billing");
        let tmp = TempDir::new("nosecret");
        let billing = Proc::spawn(
            "billing",
            &[("OMNEURO__DATABASE__URL", db.url.clone())],
            &tmp.0,
        );
        let body = event("evt_x", "payment_intent.succeeded", serde_json::json!({}));
        let r = http()
            .post(format!("http://{}/webhooks/stripe", billing.http))
            .header("stripe-signature", signed(&body, WEBHOOK_SECRET))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("/omneuro/stripe/webhook_secret")
        );
    }
}
