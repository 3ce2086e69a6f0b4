//! The shop and invoices end to end in a real browser, through the real nginx, on both databases:
//! "fits my vehicle", two items, Stripe's hosted page (the fake), the signed webhook back through
//! billing, the order paid and the stock gone down; then a work-order invoice paid from the garage
//! (and the job ready). Screenshots land in `target/browser-artifacts/store-<backend>/`.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::{billing::v1 as billing, jobs::v1 as jobs, shop::v1 as shop};
use omneuro_tests::*;

fn staff() -> Actor {
    Actor::Staff {
        id: "stf_1".into(),
        role: StaffRole::Owner,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_buys_parts_that_fit_and_a_client_pays_an_invoice_in_the_browser() {
    if browser_peers().is_none() {
        return;
    }
    let (Some(sink), Some(stripe)) = (SmtpSink::start(), FakeStripe::start()) else {
        return;
    };
    for backend in backends() {
        let tmp = TempDir::new("browserstore");
        let port = free_port();
        let public = format!("http://localhost:{port}");
        let dbs: Vec<TestDb> = ["garage", "jobs", "shop", "billing"]
            .iter()
            .map(|s| TestDb::new(backend, s))
            .collect();
        let g = start_domain(
            "garage",
            &dbs[0].url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__LINKS__PUBLIC_URL", public.clone()),
            ],
        )
        .await;
        wait_ready(&g).await;
        // Shop asks billing for the tax rate at checkout: billing's gRPC port is chosen first.
        let billing_grpc = free_port();
        let shop_p = Proc::spawn(
            "shop",
            &[
                (
                    "OMNEURO__UPSTREAMS__BILLING",
                    format!("http://127.0.0.1:{billing_grpc}"),
                ),
                ("OMNEURO__DATABASE__URL", dbs[2].url.clone()),
                ("OMNEURO__DEMO_DATA", "true".to_owned()),
                ("OMNEURO__STRIPE__BASE_URL", stripe.base_url()),
                ("OMNEURO_SECRET_STRIPE_SECRET_KEY", stripe.api_key.clone()),
            ],
            &tmp.0,
        );
        let j = start_domain(
            "jobs",
            &dbs[1].url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", shop_p.grpc_url()),
            ],
        )
        .await;
        wait_ready(&j).await;
        let billing_p = Proc::spawn(
            "billing",
            &[
                ("OMNEURO__DATABASE__URL", dbs[3].url.clone()),
                ("OMNEURO__GRPC__PORT", billing_grpc.to_string()),
                ("OMNEURO__UPSTREAMS__SHOP", shop_p.grpc_url()),
                ("OMNEURO__UPSTREAMS__JOBS", j.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__STRIPE__BASE_URL", stripe.base_url()),
                ("OMNEURO_SECRET_STRIPE_SECRET_KEY", stripe.api_key.clone()),
                (
                    "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET",
                    stripe.webhook_secret.clone(),
                ),
            ],
            &tmp.0,
        );
        for p in [&shop_p, &billing_p] {
            let ready = format!("http://{}/readyz", p.http);
            assert!(
                eventually(Duration::from_secs(20), || async {
                    http_status(&ready).await == 200
                })
                .await
            );
        }
        stripe
            .register_webhook(&format!("http://{}/webhooks/stripe", billing_p.http))
            .await;
        let site = Proc::spawn(
            "site",
            &[
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__JOBS", j.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", shop_p.grpc_url()),
                ("OMNEURO__UPSTREAMS__BILLING", billing_p.grpc_url()),
                ("OMNEURO__LINKS__PUBLIC_URL", public.clone()),
            ],
            &tmp.0,
        );
        let closed = format!("127.0.0.1:{}", free_port());
        let Some(_nginx) = Nginx::start_on(
            port,
            &tmp.0,
            &[
                ("SITE_ADDR", site.http.to_string()),
                ("PORTAL_ADDR", closed.clone()),
                ("BILLING_ADDR", billing_p.http.to_string()),
                ("REPAIRBOT_ADDR", closed),
            ],
        ) else {
            return;
        };

        // A client with a Segway-Ninebot, and a job of theirs waiting for payment, invoiced.
        let mut gc = GarageClient::new(g.channel());
        let makes = gc
            .list_vehicle_makes(omneuro_proto::garage::v1::ListVehicleMakesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .makes;
        let segway = makes.iter().find(|m| m.id == "mk_segway_ninebot").unwrap();
        let (client, vehicle) = client_with_vehicle(
            &mut gc,
            &sink,
            "buyer",
            omneuro_proto::garage::v1::VehicleInput {
                category: omneuro_proto::garage::v1::VehicleCategory::EScooter.into(),
                model_id: segway.models[0].id.clone(),
                ..Default::default()
            },
        )
        .await;
        let mut jc = jobs::jobs_service_client::JobsServiceClient::new(j.channel());
        let job = jc
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
        jc.add_labor(auth::request(
            &staff(),
            jobs::AddLaborRequest {
                job_id: job.id.clone(),
                description: "Brake bleed".into(),
                hours: "0.5".into(),
                rate_cents: 9000,
            },
        ))
        .await
        .unwrap();
        for to in ["diagnosing", "in_progress", "awaiting_payment"] {
            jc.move_job(auth::request(
                &staff(),
                jobs::MoveJobRequest {
                    id: job.id.clone(),
                    to_status: to.into(),
                    note: String::new(),
                },
            ))
            .await
            .unwrap();
        }
        let mut bc = billing::billing_service_client::BillingServiceClient::new(
            tonic::transport::Endpoint::from_shared(billing_p.grpc_url())
                .unwrap()
                .connect_lazy(),
        );
        let inv = bc
            .create_job_invoice(auth::request(
                &staff(),
                billing::CreateJobInvoiceRequest {
                    job_id: job.id.clone(),
                    fees: vec![],
                },
            ))
            .await
            .unwrap()
            .into_inner();
        bc.issue_invoice(auth::request(
            &staff(),
            billing::IssueInvoiceRequest { id: inv.id.clone() },
        ))
        .await
        .unwrap();

        let sc = shop::shop_service_client::ShopServiceClient::new(
            tonic::transport::Endpoint::from_shared(shop_p.grpc_url())
                .unwrap()
                .connect_lazy(),
        );
        let stock = |id: &'static str| {
            let mut sc = sc.clone();
            async move {
                sc.get_product(shop::GetProductRequest { id: id.into() })
                    .await
                    .unwrap()
                    .into_inner()
                    .product
                    .unwrap()
                    .stock
            }
        };
        let (tube_before, xt90_before) = (
            stock("prd_demo_tube_10").await,
            stock("prd_demo_xt90").await,
        );

        let shots = repo_root()
            .join("target/browser-artifacts")
            .join(format!("store-{backend:?}").to_lowercase());
        let out = run_browser_flow(
            "store_flow.cjs",
            &shots,
            &[
                ("PUBLIC_URL", public.clone()),
                ("MAIL_DIR", sink.dir().display().to_string()),
                ("EMAIL", client.email.clone()),
                ("INVOICE_ID", inv.id.clone()),
            ],
        )
        .await;
        if let Err(e) = &out {
            panic!(
                "{backend:?}: store flow failed (screenshots in {}):\n{e}\n--- site ---\n{}\n--- billing ---\n{}",
                shots.display(),
                site.logs(),
                billing_p.logs()
            );
        }

        // Stock went down by what was bought; the job is ready; the invoice is paid.
        assert_eq!(stock("prd_demo_tube_10").await, tube_before - 1);
        assert_eq!(stock("prd_demo_xt90").await, xt90_before - 1);
        let paid = bc
            .get_invoice(auth::request(
                &staff(),
                billing::GetInvoiceRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(paid.status, "paid");
        assert!(
            eventually(Duration::from_secs(15), || async {
                jc.clone()
                    .get_job(auth::request(
                        &staff(),
                        jobs::GetJobRequest { id: job.id.clone() },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .status
                    == "ready"
            })
            .await
        );
        assert!(std::fs::read_dir(&shots).unwrap().count() >= 7);
        drop(site);
        drop(billing_p);
        drop(shop_p);
        j.stop().await;
        g.stop().await;
    }
}
