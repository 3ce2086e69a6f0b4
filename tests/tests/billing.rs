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

fn staff() -> Actor {
    Actor::Staff {
        id: "stf_1".into(),
        role: StaffRole::Owner,
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
        let f = billing_fleet(backend, &sink, &[]).await;
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
        // Every client's invoices, by status: for those who invoice; not a tech, not a status
        // that doesn't exist.
        let everyone = |actor: Actor, status: &str| {
            let (mut b, status) = (b.clone(), status.to_owned());
            async move {
                b.list_invoices(auth::request(
                    &actor,
                    pb::ListInvoicesRequest {
                        client_id: String::new(),
                        status,
                    },
                ))
                .await
                .map(|r| r.into_inner().invoices)
            }
        };
        let open = everyone(staff(), "open").await.unwrap();
        assert!(open.iter().all(|i| i.status == "open"));
        assert!(open.iter().any(|i| i.id == second.id));
        let tech = Actor::Staff {
            id: "stf_tech".into(),
            role: StaffRole::Tech,
        };
        assert_eq!(
            everyone(tech, "").await.unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            everyone(staff(), "lost").await.unwrap_err().code(),
            Code::InvalidArgument
        );
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
        let f = billing_fleet(backend, &sink, &[]).await;
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

async fn invoice_now(
    b: &mut BillingServiceClient<tonic::transport::Channel>,
    id: &str,
) -> pb::Invoice {
    b.get_invoice(auth::request(
        &staff(),
        pb::GetInvoiceRequest { id: id.to_owned() },
    ))
    .await
    .unwrap()
    .into_inner()
}

async fn wait_status(
    b: &mut BillingServiceClient<tonic::transport::Channel>,
    id: &str,
    status: &str,
) -> pb::Invoice {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let inv = invoice_now(b, id).await;
        if inv.status == status {
            return inv;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "invoice stayed {} (wanted {status})",
            inv.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_payments_declines_3ds_and_refunds_through_localstripe_and_its_signed_webhooks() {
    let (Some(sink), Some(stripe)) = (SmtpSink::start(), LocalStripe::start()) else {
        return;
    };
    for backend in backends() {
        stripe.wipe().await;
        let f = billing_fleet(
            backend,
            &sink,
            &stripe_env(stripe.base_url(), &stripe.api_key),
        )
        .await;
        f.listen_to(&stripe).await;
        let mut b = f.billing_client();
        let api = reqwest::Client::new();

        // A good card: the client's PaymentIntent is confirmed (as Stripe.js would), Stripe's
        // signed webhook marks the invoice paid.
        let (client, inv) = f.open_invoice(&sink, "card", 8000).await;
        let me = Actor::Client(client.clone());
        let pi = b
            .create_payment_intent(auth::request(
                &me,
                pb::CreatePaymentIntentRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            pi.amount.as_ref().unwrap().amount_cents,
            inv.total.as_ref().unwrap().amount_cents
        );
        // The PaymentIntent belongs to the client's Stripe Customer (made once, from garage).
        let pi_obj: serde_json::Value = api
            .get(format!(
                "{}/v1/payment_intents/{}",
                stripe.base_url(),
                pi.payment_intent_id
            ))
            .bearer_auth(&stripe.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let customer = pi_obj["customer"].as_str().unwrap_or_default().to_owned();
        assert!(customer.starts_with("cus_"), "{pi_obj}");
        let cus: serde_json::Value = api
            .get(format!("{}/v1/customers/{customer}", stripe.base_url()))
            .bearer_auth(&stripe.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cus["metadata"]["client_id"], client.as_str(), "{cus}");
        let ok = stripe
            .pay_with_card(&pi.payment_intent_id, "4242424242424242")
            .await;
        assert_eq!(ok.status().as_u16(), 200, "{}", ok.text().await.unwrap());
        let paid = wait_status(&mut b, &inv.id, "paid").await;
        assert_eq!(paid.paid, paid.total);

        // A second PaymentIntent for a paid invoice is refused (nothing to pay).
        let twice = b
            .create_payment_intent(auth::request(
                &me,
                pb::CreatePaymentIntentRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap_err();
        assert!(twice.message().contains("already paid"));

        // Staff refund part of it: Stripe refunds, billing records it, the charge.refunded
        // webhook that follows changes nothing twice.
        let refunded = b
            .refund(auth::request(
                &staff(),
                pb::RefundRequest {
                    invoice_id: inv.id.clone(),
                    amount_cents: 1500,
                    reason: "loaner returned early".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                refunded.status.as_str(),
                refunded.refunded.as_ref().unwrap().amount_cents
            ),
            ("partially_refunded", 1500)
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = invoice_now(&mut b, &inv.id).await;
        assert_eq!(after.refunded.as_ref().unwrap().amount_cents, 1500);
        let too_much = b
            .refund(auth::request(
                &staff(),
                pb::RefundRequest {
                    invoice_id: inv.id.clone(),
                    amount_cents: 10_000_000,
                    reason: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(too_much.code(), Code::InvalidArgument);

        // A declined card and a card that needs 3-D Secure leave the invoice open.
        let (client2, inv2) = f.open_invoice(&sink, "decline", 3000).await;
        let pi2 = b
            .create_payment_intent(auth::request(
                &Actor::Client(client2.clone()),
                pb::CreatePaymentIntentRequest {
                    id: inv2.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let declined = stripe
            .pay_with_card(&pi2.payment_intent_id, "4000000000000341")
            .await;
        assert_eq!(declined.status().as_u16(), 402);
        let (client3, inv3) = f.open_invoice(&sink, "threeds", 3500).await;
        let pi3 = b
            .create_payment_intent(auth::request(
                &Actor::Client(client3.clone()),
                pb::CreatePaymentIntentRequest {
                    id: inv3.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let secure = stripe
            .pay_with_card(&pi3.payment_intent_id, "4000000000003220")
            .await;
        let body: serde_json::Value = secure.json().await.unwrap();
        assert_eq!(body["status"], "requires_action", "{body}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(invoice_now(&mut b, &inv2.id).await.status, "open");
        assert_eq!(invoice_now(&mut b, &inv3.id).await.status, "open");

        f.jobs.stop().await;
        f.shop.stop().await;
        f.garage.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pays_an_invoice_on_the_hosted_checkout_page() {
    let (Some(sink), Some(stripe)) = (SmtpSink::start(), FakeStripe::start()) else {
        return;
    };
    for backend in backends() {
        let mut env = stripe_env(stripe.base_url(), &stripe.api_key);
        env.retain(|(k, _)| *k != "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET");
        let f = billing_fleet_with_secret(backend, &sink, &env, &stripe.webhook_secret).await;
        stripe
            .register_webhook(&format!("http://{}/webhooks/stripe", f.billing.http))
            .await;
        let mut b = f.billing_client();
        let (client, inv) = f.open_invoice(&sink, "checkout", 6000).await;
        let me = Actor::Client(client.clone());
        let pay = |id: String| {
            let mut b = b.clone();
            let me = me.clone();
            async move {
                b.pay_invoice(auth::request(
                    &me,
                    pb::PayInvoiceRequest {
                        id,
                        success_url:
                            "http://localhost:8080/garage/invoices/ok?session={CHECKOUT_SESSION_ID}"
                                .into(),
                        cancel_url: "http://localhost:8080/garage".into(),
                    },
                ))
                .await
            }
        };
        // A double click opens the same session (idempotency key); Stripe retries are absorbed.
        let sessions_before = stripe.state().await["counts"]["checkout_sessions"]
            .as_i64()
            .unwrap_or(0);
        stripe.fail_next(500, 1).await;
        let first = pay(inv.id.clone()).await.unwrap().into_inner();
        let second = pay(inv.id.clone()).await.unwrap().into_inner();
        assert_eq!(first.checkout_session_id, second.checkout_session_id);
        assert!(first.checkout_url.contains("/pay/"));
        let state = stripe.state().await;
        assert_eq!(
            state["counts"]["checkout_sessions"].as_i64(),
            Some(sessions_before + 1),
            "{state}"
        );

        // The job waits for payment; paying moves it to ready and mails an HTML receipt.
        let mut j = jobs::jobs_service_client::JobsServiceClient::new(f.jobs.channel());
        for to in ["diagnosing", "in_progress", "awaiting_payment"] {
            j.move_job(auth::request(
                &staff(),
                jobs::MoveJobRequest {
                    id: inv.source_id.clone(),
                    to_status: to.into(),
                    note: String::new(),
                },
            ))
            .await
            .unwrap();
        }
        let receipts = || {
            sink.messages()
                .into_iter()
                .filter(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with(&format!("Receipt for invoice {}", inv.number))
                })
                .collect::<Vec<_>>()
        };
        let receipts_before = receipts().len();
        let location = stripe.pay(&first.checkout_session_id).await;
        assert!(location.contains(&first.checkout_session_id), "{location}");
        let paid = wait_status(&mut b, &inv.id, "paid").await;
        assert_eq!(paid.paid, paid.total);
        assert!(
            eventually(Duration::from_secs(15), || async {
                let job = j
                    .clone()
                    .get_job(auth::request(
                        &staff(),
                        jobs::GetJobRequest {
                            id: inv.source_id.clone(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                job.status == "ready"
                    && job
                        .history
                        .iter()
                        .any(|e| e.actor == "system:billing" && e.note.contains(&inv.number))
            })
            .await,
            "the paid job did not move to ready"
        );

        // (The sink keeps mail from the other backend's run too: count from here.)
        assert!(
            eventually(Duration::from_secs(15), || async {
                receipts().len() == receipts_before + 1
            })
            .await
        );
        // The same event again (Stripe retries): no second receipt, nothing moves twice.
        let delivered = stripe.state().await["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == "checkout.session.completed")
            .unwrap()["event"]
            .as_str()
            .unwrap()
            .to_owned();
        stripe.resend(&delivered).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(receipts().len(), receipts_before + 1);
        // Another client cannot pay (or see) it.
        let other = b
            .pay_invoice(auth::request(
                &Actor::Client("cli_stranger".into()),
                pb::PayInvoiceRequest {
                    id: inv.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(other.code(), Code::NotFound);

        // The signature billing checks is Stripe's own: a header made by the official library
        // is accepted, and the library accepts ours.
        let body = event(
            "evt_crosscheck",
            "customer.created",
            serde_json::json!({"id": "cus_x"}),
        );
        let t = chrono::Utc::now().timestamp();
        let header = stripe_sign(&stripe.webhook_secret, t, &body);
        let r = http()
            .post(format!("http://{}/webhooks/stripe", f.billing.http))
            .header("stripe-signature", header)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ours = format!(
            "t={t},v1={}",
            webhook_signature(&stripe.webhook_secret, t, body.as_bytes())
        );
        assert_eq!(stripe_verify(&stripe.webhook_secret, &ours, &body), "ok");

        f.jobs.stop().await;
        f.shop.stop().await;
        f.garage.stop().await;
    }
}
