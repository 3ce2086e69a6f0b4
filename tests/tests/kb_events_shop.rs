//! shop's products and orders into kb through shop's `kb_outbox` (ADR 0020), on both databases,
//! over real gRPC: shop runs as its own process (Stripe's Checkout on the fake peer, billing for
//! the tax rate, garage for the make and model names), kb starts late.
//!
//! Proves: a product created while kb is down waits in the outbox and is found by clients and staff
//! once kb starts (the backlog, in the database and on shop's `/metrics`, → 0), linked to the models it fits; a change replaces its document (one
//! per source ref); an unlisted product is gone from search; an order placed is a staff-only
//! document (items and totals, no email or status link) that neither its client nor another can
//! find; its payment re-renders it; a repeated delivery leaves one document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use kpb::kb_service_client::KbServiceClient;
use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_platform::ids;
use omneuro_proto::common::v1::Money;
use omneuro_proto::kb::v1 as kpb;
use omneuro_proto::shop::v1 as pb;
use omneuro_tests::*;
use pb::shop_service_client::ShopServiceClient;

type Shop = ShopServiceClient<tonic::transport::Channel>;
type Kb = KbServiceClient<tonic::transport::Channel>;

fn owner() -> Actor {
    Actor::Staff {
        id: "stf_owner".into(),
        role: StaffRole::Owner,
    }
}

fn tech() -> Actor {
    Actor::Staff {
        id: "stf_tech".into(),
        role: StaffRole::Tech,
    }
}

fn kb_client(url: &str) -> Kb {
    KbServiceClient::new(
        tonic::transport::Endpoint::from_shared(url.to_owned())
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect_lazy(),
    )
}

/// Hits for `query` as `who` (empty while kb is not there).
async fn hits(kb_url: &str, who: &Actor, query: &str) -> Vec<kpb::SearchHit> {
    kb_client(kb_url)
        .search(auth::request(
            who,
            kpb::SearchRequest {
                query: query.into(),
                limit: 50,
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner().hits)
        .unwrap_or_default()
}

/// The documents among `who`'s hits for `query` that come from `source`.
async fn docs_of(kb_url: &str, who: &Actor, query: &str, source: &str) -> BTreeSet<String> {
    hits(kb_url, who, query)
        .await
        .into_iter()
        .filter(|h| h.source_ref == source)
        .map(|h| h.document_id)
        .collect()
}

async fn body(kb_url: &str, doc_id: &str) -> String {
    kb_client(kb_url)
        .get_document(auth::request(
            &tech(),
            kpb::GetDocumentRequest {
                id: doc_id.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap()
        .body
}

/// (edge kind, outgoing, `kind:key`) around an entity.
async fn neighbours(kb_url: &str, of: (&str, &str), kinds: &[&str]) -> Vec<(String, bool, String)> {
    kb_client(kb_url)
        .neighbours(auth::request(
            &tech(),
            kpb::NeighboursRequest {
                entity: Some(kpb::EntityRef {
                    kind: of.0.into(),
                    key: of.1.into(),
                }),
                edge_kinds: kinds.iter().map(|k| k.to_string()).collect(),
                limit: 0,
            },
        ))
        .await
        .map(|r| r.into_inner().neighbours)
        .unwrap_or_default()
        .into_iter()
        .map(|n| {
            let e = n.entity.unwrap();
            (n.edge_kind, n.outgoing, format!("{}:{}", e.kind, e.key))
        })
        .collect()
}

/// Rows of shop's `kb_outbox` still waiting (all, or one source ref's).
fn pending(sdb: &TestDb, source: Option<&str>) -> i64 {
    let only = source
        .map(|s| format!(" AND source_ref = '{s}'"))
        .unwrap_or_default();
    sdb.query_pair(&format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b FROM kb_outbox \
         WHERE state = 'pending'{only}"
    ))
    .0
}

/// shop's `omneuro_kb_outbox_pending` on `/metrics`.
async fn backlog_metric(metrics_url: &str) -> Option<i64> {
    let text = http()
        .get(metrics_url)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("omneuro_kb_outbox_pending "))
        .and_then(|n| n.trim().parse().ok())
}

async fn within(secs: u64, what: &str, check: impl AsyncFn() -> bool) {
    let mut ok = false;
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if check().await {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(ok, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_and_orders_reach_kb_after_it_starts_and_orders_stay_with_staff() {
    let Some(stripe) = FakeStripe::start() else {
        return;
    };
    for backend in backends() {
        let tmp = TempDir::new("kbshop");
        let (gdb, bdb, sdb, kdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "billing"),
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "kb"),
        );
        let garage = start_domain("garage", &gdb.url, &[]).await;
        let billing = start_domain("billing", &bdb.url, &[]).await;
        for r in [&garage, &billing] {
            wait_ready(r).await;
        }
        let kb_port = free_port();
        let kb_url = format!("http://127.0.0.1:{kb_port}");
        let shop_proc = Proc::spawn(
            "shop",
            &[
                ("OMNEURO__DATABASE__URL", sdb.url.clone()),
                ("OMNEURO__DEMO_DATA", "true".to_owned()),
                ("OMNEURO__UPSTREAMS__BILLING", billing.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", garage.grpc_url()),
                ("OMNEURO__UPSTREAMS__KB", kb_url.clone()),
                ("OMNEURO__UPSTREAMS__CONNECT_TIMEOUT_MS", "300".to_owned()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__WORKER__RETRY_BASE_MS", "200".to_owned()),
                ("OMNEURO__STRIPE__BASE_URL", stripe.base_url()),
                ("OMNEURO__STRIPE__RETRY_BASE_MS", "20".to_owned()),
                ("OMNEURO_SECRET_STRIPE_SECRET_KEY", stripe.api_key.clone()),
            ],
            &tmp.0,
        );
        shop_proc.wait_ready().await;
        let mut s: Shop = ShopServiceClient::new(
            tonic::transport::Endpoint::from_shared(shop_proc.grpc_url())
                .unwrap()
                .timeout(Duration::from_secs(30))
                .connect_lazy(),
        );

        // kb is down: a new product is sold as ever, its document waits.
        let product = s
            .create_product(auth::request(
                &owner(),
                pb::CreateProductRequest {
                    slug: "zephyr-kickstand-spring".into(),
                    name: "Zephyr kickstand spring".into(),
                    description: "Stainless helical spring that stops the kickstand rattling."
                        .into(),
                    category: "parts".into(),
                    price: Some(Money {
                        amount_cents: 1_450,
                        currency: "USD".into(),
                    }),
                    active: true,
                    opening_stock: 10,
                    fitment: vec![pb::Fitment {
                        make_id: "mk_kaabo".into(),
                        model_id: "mdl_kaabo_mantis_10".into(),
                    }],
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
            .product
            .unwrap();
        let pref = format!("product:{}", product.id);
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            pending(&sdb, Some(pref.as_str())),
            1,
            "{backend:?}: it waits for kb"
        );
        assert!(
            pending(&sdb, None) > 1,
            "{backend:?}: the demo catalog waits too"
        );
        let metrics_url = format!("http://{}/metrics", shop_proc.http);
        let waiting = pending(&sdb, None);
        within(5, "the backlog shows in shop's metrics", async || {
            backlog_metric(&metrics_url).await == Some(waiting)
        })
        .await;

        // kb starts on the port shop was told about: the backlog drains.
        let k = start_domain(
            "kb",
            &kdb.url,
            &[("OMNEURO__GRPC__PORT", kb_port.to_string())],
        )
        .await;
        wait_ready(&k).await;
        let rider = Actor::Client(ids::new_id("cli"));
        within(15, "the product is searchable by a client", async || {
            docs_of(&kb_url, &rider, "rattling kickstand spring", &pref)
                .await
                .len()
                == 1
        })
        .await;
        within(10, "the backlog drains", async || pending(&sdb, None) == 0).await;
        within(5, "shop's metrics say so", async || {
            backlog_metric(&metrics_url).await == Some(0)
        })
        .await;
        let staff_hits = hits(&kb_url, &tech(), "zephyr kickstand").await;
        let hit = staff_hits
            .iter()
            .find(|h| h.source_ref == pref)
            .expect("staff find it too");
        assert_eq!(hit.title, "Zephyr kickstand spring");
        let text = body(&kb_url, &hit.document_id).await;
        assert!(
            text.contains("$14.50") && text.contains("Kaabo Mantis 10"),
            "{text}"
        );
        assert_eq!(
            neighbours(&kb_url, ("product", &product.id), &["fits"]).await,
            vec![("fits".into(), true, "model:kaabo mantis 10".into())],
            "{backend:?}"
        );

        // A change replaces the document: one per product.
        s.update_product(auth::request(
            &owner(),
            pb::UpdateProductRequest {
                id: product.id.clone(),
                description: Some(
                    "Titanium helical spring that stops the kickstand rattling.".into(),
                ),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        within(10, "the change reached kb", async || {
            !docs_of(&kb_url, &tech(), "titanium", &pref)
                .await
                .is_empty()
        })
        .await;
        assert_eq!(
            docs_of(&kb_url, &tech(), "kickstand spring rattling", &pref)
                .await
                .len(),
            1,
            "{backend:?}: one document per product"
        );

        // Unlisted: gone from search, for staff too.
        s.update_product(auth::request(
            &owner(),
            pb::UpdateProductRequest {
                id: product.id.clone(),
                active: Some(false),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        within(10, "the unlisted product left kb", async || {
            docs_of(&kb_url, &tech(), "kickstand spring rattling", &pref)
                .await
                .is_empty()
        })
        .await;
        within(5, "the delete is marked done", async || {
            pending(&sdb, None) == 0
        })
        .await;

        // An order: a staff-only document, owned by its client, no email or status link.
        let buyer = ids::new_id("cli");
        let cart = ids::new_secret();
        s.set_cart_item(pb::SetCartItemRequest {
            cart_token: cart.clone(),
            product_id: "prd_demo_brake_pads".into(),
            quantity: 2,
        })
        .await
        .unwrap();
        let order = s
            .checkout(auth::request(
                &Actor::Client(buyer.clone()),
                pb::CheckoutRequest {
                    cart_token: cart,
                    email: "rider@example.com".into(),
                    success_url: "http://localhost:8080/shop/orders/{ORDER_TOKEN}".into(),
                    cancel_url: "http://localhost:8080/shop/cart".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let oref = format!("order:{}", order.id);
        let query = "sintered brake pads pair order";
        within(10, "the order reached kb", async || {
            docs_of(&kb_url, &tech(), query, &oref).await.len() == 1
        })
        .await;
        for who in [Actor::Client(buyer.clone()), rider.clone()] {
            let seen = hits(&kb_url, &who, query).await;
            assert!(
                seen.iter().all(|h| h.source_ref != oref),
                "{backend:?}: {who:?} must not find the order: {seen:?}"
            );
            assert!(
                seen.iter()
                    .any(|h| h.source_ref == "product:prd_demo_brake_pads"),
                "{backend:?}: clients still find the product: {seen:?}"
            );
        }
        let doc = docs_of(&kb_url, &tech(), query, &oref)
            .await
            .pop_first()
            .unwrap();
        let text = body(&kb_url, &doc).await;
        assert!(
            text.contains("2 × Sintered disc brake pads (pair)")
                && text.contains("pending payment")
                && text.contains("$42.38"),
            "{text}"
        );
        for secret in ["rider@example.com", order.status_token.as_str()] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let around = neighbours(&kb_url, ("client", &buyer), &["owns"]).await;
        assert_eq!(
            around,
            vec![("owns".into(), true, format!("document:{oref}"))],
            "{backend:?}"
        );

        // Paid (as billing reports it): the same document, re-rendered.
        s.order_paid(auth::request(
            &Actor::System("billing".into()),
            pb::OrderPaymentRequest {
                order_id: order.id.clone(),
                checkout_session_id: String::new(),
            },
        ))
        .await
        .unwrap();
        within(10, "the payment reached kb", async || {
            let Some(doc) = docs_of(&kb_url, &tech(), query, &oref).await.pop_first() else {
                return false;
            };
            body(&kb_url, &doc).await.contains("- Status: paid")
        })
        .await;

        // A repeated delivery (the same row again, as after a crash mid-delivery) is harmless.
        let now = (chrono::Utc::now() - chrono::Duration::seconds(1))
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S");
        sdb.execute(&format!(
            "INSERT INTO kb_outbox (id, source_ref, event, state, attempts, next_attempt_at, \
             last_error, created_at) VALUES ('kbe_again', '{oref}', 'paid', 'pending', 0, \
             '{now}', '', '{now}')"
        ));
        within(10, "the repeat is delivered", async || {
            pending(&sdb, None) == 0
        })
        .await;
        let again = docs_of(&kb_url, &tech(), query, &oref).await;
        assert_eq!(
            again,
            BTreeSet::from([doc]),
            "{backend:?}: still one document"
        );

        k.stop().await;
        drop(shop_proc);
        billing.stop().await;
        garage.stop().await;
    }
}
