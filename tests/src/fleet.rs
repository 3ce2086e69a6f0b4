//! The shop around billing, started the way the billing and portal tests need it: garage, shop
//! and jobs in-process, billing as a process whose secrets come from the environment; and a job
//! invoice made the way the bench makes one.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::billing::v1 as pb;
use omneuro_proto::jobs::v1 as jobs;
use pb::billing_service_client::BillingServiceClient;

use crate::*;

/// The webhook signing secret billing is started with (unless a test gives another).
pub const WEBHOOK_SECRET: &str = "whsec_omneuro_test";

/// Billing's Stripe settings for a Stripe peer at `base_url`.
pub fn stripe_env(base_url: String, api_key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OMNEURO__STRIPE__BASE_URL", base_url),
        ("OMNEURO__STRIPE__RETRY_BASE_MS", "50".to_owned()),
        ("OMNEURO_SECRET_STRIPE_SECRET_KEY", api_key.to_owned()),
    ]
}

fn owner() -> Actor {
    Actor::Staff {
        id: "stf_1".into(),
        role: StaffRole::Owner,
    }
}

/// The shop around billing: garage, shop, jobs in-process; billing as a process (its secrets
/// come from the environment).
pub struct BillingFleet {
    _dbs: Vec<TestDb>,
    pub garage: Running,
    pub jobs: Running,
    pub shop: Running,
    pub billing: Proc,
    _tmp: TempDir,
}

pub async fn billing_fleet(
    backend: Backend,
    sink: &SmtpSink,
    stripe_env: &[(&str, String)],
) -> BillingFleet {
    billing_fleet_with_secret(backend, sink, stripe_env, WEBHOOK_SECRET).await
}

pub async fn billing_fleet_with_secret(
    backend: Backend,
    sink: &SmtpSink,
    stripe_env: &[(&str, String)],
    webhook_secret: &str,
) -> BillingFleet {
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
        ("OMNEURO__UPSTREAMS__GARAGE", garage.grpc_url()),
        ("OMNEURO__MAIL__SMTP_URL", sink.url()),
        (
            "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET",
            webhook_secret.to_owned(),
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
    BillingFleet {
        _dbs: dbs,
        garage,
        jobs,
        shop,
        billing,
        _tmp: tmp,
    }
}

impl BillingFleet {
    pub fn billing_client(&self) -> BillingServiceClient<tonic::transport::Channel> {
        BillingServiceClient::new(
            tonic::transport::Endpoint::from_shared(self.billing.grpc_url())
                .unwrap()
                .timeout(Duration::from_secs(20))
                .connect_lazy(),
        )
    }

    /// A client with a job priced at the bench (labor + one part), invoiced and issued.
    pub async fn open_invoice(
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
                &owner(),
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
            &owner(),
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
            &owner(),
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
                &owner(),
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
                &owner(),
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

impl BillingFleet {
    /// Has `stripe` send its signed webhooks to this billing (once per fleet).
    pub async fn listen_to(&self, stripe: &LocalStripe) {
        stripe
            .register_webhook(
                &format!("http://{}/webhooks/stripe", self.billing.http),
                WEBHOOK_SECRET,
            )
            .await;
    }

    /// An invoice (as [`BillingFleet::open_invoice`]) the client paid by card through Stripe:
    /// the PaymentIntent confirmed with a good test card, and billing told by Stripe's signed
    /// webhook (see [`BillingFleet::listen_to`]). Returns the client's id and the paid invoice.
    pub async fn paid_invoice(
        &self,
        sink: &SmtpSink,
        stripe: &LocalStripe,
        tag: &str,
        labor_cents: i64,
    ) -> (String, pb::Invoice) {
        let (client, inv) = self.open_invoice(sink, tag, labor_cents).await;
        let mut b = self.billing_client();
        let pi = b
            .create_payment_intent(auth::request(
                &Actor::Client(client.clone()),
                pb::CreatePaymentIntentRequest { id: inv.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        let paid = stripe
            .pay_with_card(&pi.payment_intent_id, "4242424242424242")
            .await;
        assert_eq!(paid.status().as_u16(), 200);
        let get = pb::GetInvoiceRequest { id: inv.id.clone() };
        let mut now = inv;
        let settled = eventually(Duration::from_secs(20), || {
            let (mut b, get) = (b.clone(), get.clone());
            async move {
                b.get_invoice(auth::request(&owner(), get))
                    .await
                    .is_ok_and(|r| r.get_ref().status == "paid")
            }
        })
        .await;
        assert!(settled, "invoice {} never became paid", now.id);
        now = b
            .get_invoice(auth::request(&owner(), get))
            .await
            .unwrap()
            .into_inner();
        (client, now)
    }
}
