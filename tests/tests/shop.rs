//! The shop over real gRPC and HTTP on both databases, with Stripe's Checkout on the fake peer and
//! its signed webhooks going through billing: "fits my vehicle", a server-side cart that refuses
//! bad quantities and tells the shopper about new prices, 20 buyers for 3 units (exactly 3 orders),
//! payment taking stock and an expired checkout giving it back, the ledger agreeing throughout.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_platform::ids;
use omneuro_proto::shop::v1 as pb;
use omneuro_tests::*;
use pb::shop_service_client::ShopServiceClient;
use tonic::Code;

type Shop = ShopServiceClient<tonic::transport::Channel>;

/// `cents` plus Maryland's 6 % sales tax, rounded half up (billing's US-MD rate).
fn with_tax(cents: i64) -> i64 {
    cents + (cents * 600 + 5_000) / 10_000
}

fn client_for(p: &Proc) -> Shop {
    ShopServiceClient::new(
        tonic::transport::Endpoint::from_shared(p.grpc_url())
            .unwrap()
            .timeout(Duration::from_secs(30))
            .connect_lazy(),
    )
}

async fn available(s: &mut Shop, id: &str) -> i64 {
    s.get_product(pb::GetProductRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .stock
}

async fn set(s: &mut Shop, cart: &str, product: &str, qty: i32) -> Result<pb::Cart, tonic::Status> {
    s.set_cart_item(pb::SetCartItemRequest {
        cart_token: cart.into(),
        product_id: product.into(),
        quantity: qty,
    })
    .await
    .map(|r| r.into_inner())
}

async fn checkout(s: &mut Shop, cart: &str) -> Result<pb::Order, tonic::Status> {
    s.checkout(auth::request(
        &Actor::System("site".into()),
        pb::CheckoutRequest {
            cart_token: cart.into(),
            email: "rider@example.com".into(),
            success_url: "http://localhost:8080/shop/orders/{ORDER_TOKEN}".into(),
            cancel_url: "http://localhost:8080/shop/cart".into(),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_buyers_for_three_units_make_three_orders_and_payment_or_expiry_settles_the_stock() {
    let Some(stripe) = FakeStripe::start() else {
        return;
    };
    for backend in backends() {
        let tmp = TempDir::new("shop");
        let (sdb, bdb) = (
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "billing"),
        );
        // Shop asks billing for the tax rate and billing tells shop about payments: billing's gRPC
        // port is chosen first so each can be given the other's address.
        let billing_grpc = free_port();
        let shop_proc = Proc::spawn(
            "shop",
            &[
                (
                    "OMNEURO__UPSTREAMS__BILLING",
                    format!("http://127.0.0.1:{billing_grpc}"),
                ),
                ("OMNEURO__DATABASE__URL", sdb.url.clone()),
                ("OMNEURO__DEMO_DATA", "true".to_owned()),
                ("OMNEURO__STRIPE__BASE_URL", stripe.base_url()),
                ("OMNEURO__STRIPE__RETRY_BASE_MS", "20".to_owned()),
                ("OMNEURO_SECRET_STRIPE_SECRET_KEY", stripe.api_key.clone()),
            ],
            &tmp.0,
        );
        let billing = Proc::spawn(
            "billing",
            &[
                ("OMNEURO__DATABASE__URL", bdb.url.clone()),
                ("OMNEURO__GRPC__PORT", billing_grpc.to_string()),
                ("OMNEURO__UPSTREAMS__SHOP", shop_proc.grpc_url()),
                (
                    "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET",
                    stripe.webhook_secret.clone(),
                ),
            ],
            &tmp.0,
        );
        for p in [&shop_proc, &billing] {
            let ready = format!("http://{}/readyz", p.http);
            assert!(
                eventually(Duration::from_secs(20), || async {
                    http_status(&ready).await == 200
                })
                .await
            );
        }
        stripe
            .register_webhook(&format!("http://{}/webhooks/stripe", billing.http))
            .await;
        let mut s = client_for(&shop_proc);
        assert!(
            eventually(Duration::from_secs(10), || async {
                s.clone()
                    .get_product(pb::GetProductRequest {
                        id: "prd_demo_bms_20s".into(),
                    })
                    .await
                    .is_ok()
            })
            .await
        );

        // "Fits my vehicle": a Segway-Ninebot scooter gets its tube and universal parts only.
        let fits = s
            .list_products(pb::ListProductsRequest {
                fits: vec![pb::Fitment {
                    make_id: "mk_segway_ninebot".into(),
                    model_id: "mdl_whatever".into(),
                }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .products;
        let ids_of: Vec<&str> = fits.iter().map(|p| p.id.as_str()).collect();
        assert!(
            ids_of.contains(&"prd_demo_tube_10") && ids_of.contains(&"prd_demo_xt90"),
            "{ids_of:?}"
        );
        assert!(
            !ids_of.contains(&"prd_demo_phone_mount") && !ids_of.contains(&"prd_demo_tire_16x3"),
            "{ids_of:?}"
        );

        // The cart refuses nonsense with clear words.
        let cart = ids::new_secret();
        for (product, qty, want) in [
            ("prd_demo_xt90", 21, "between 0 and 20"),
            ("prd_demo_xt90", -1, "between 0 and 20"),
            ("prd_nope", 1, "isn't for sale"),
        ] {
            let e = set(&mut s, &cart, product, qty).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{want}");
            assert!(e.message().contains(want), "{want}: {}", e.message());
        }
        assert_eq!(
            set(&mut s, "not-a-cart", "prd_demo_xt90", 1)
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        // A product withdrawn from sale, or priced in another currency, can't go in a cart.
        sdb.execute("UPDATE products SET active = (1 = 0) WHERE id = 'prd_demo_brake_pads'");
        let gone = set(&mut s, &cart, "prd_demo_brake_pads", 1)
            .await
            .unwrap_err();
        assert!(
            gone.message().contains("isn't for sale"),
            "{}",
            gone.message()
        );
        sdb.execute("UPDATE products SET active = (1 = 1) WHERE id = 'prd_demo_brake_pads'");
        sdb.execute("UPDATE products SET currency = 'EUR' WHERE id = 'prd_demo_tube_10'");
        let euros = set(&mut s, &cart, "prd_demo_tube_10", 1).await.unwrap_err();
        assert!(
            euros.message().contains("can't be sold online"),
            "{}",
            euros.message()
        );
        sdb.execute("UPDATE products SET currency = 'USD' WHERE id = 'prd_demo_tube_10'");
        let empty = checkout(&mut s, &ids::new_secret()).await.unwrap_err();
        assert!(empty.message().contains("empty"));

        // A price change between adding and paying: the shopper is told and must look again.
        let c = set(&mut s, &cart, "prd_demo_xt90", 2).await.unwrap();
        assert_eq!(c.subtotal.unwrap().amount_cents, 2 * 699);
        assert_eq!(c.tax.unwrap().amount_cents, 84, "6 % of $13.98, rounded");
        assert_eq!(c.total.unwrap().amount_cents, with_tax(2 * 699));
        sdb.execute("UPDATE products SET price_cents = 799 WHERE id = 'prd_demo_xt90'");
        let seen = s
            .get_cart(pb::GetCartRequest {
                cart_token: cart.clone(),
                acknowledge_prices: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            seen.lines[0].repriced_from.as_ref().unwrap().amount_cents,
            699
        );
        assert_eq!(seen.total.unwrap().amount_cents, with_tax(2 * 799));
        let changed = checkout(&mut s, &cart).await.unwrap_err();
        assert_eq!(changed.code(), Code::FailedPrecondition);
        assert!(
            changed.message().contains("prices changed"),
            "{}",
            changed.message()
        );
        // The shopper looks at the cart (the new price is acknowledged) and checks out again.
        s.get_cart(pb::GetCartRequest {
            cart_token: cart.clone(),
            acknowledge_prices: true,
        })
        .await
        .unwrap();
        let order = checkout(&mut s, &cart).await.unwrap();
        assert_eq!(order.subtotal.as_ref().unwrap().amount_cents, 2 * 799);
        assert_eq!(
            order.tax.as_ref().unwrap().amount_cents,
            96,
            "6 % of $15.98"
        );
        assert_eq!(order.tax_rate_bps, 600);
        assert_eq!(
            order.total.as_ref().unwrap().amount_cents,
            with_tax(2 * 799)
        );
        assert!(order.checkout_url.contains("/pay/"));

        // Once the catalog is synced to Stripe, checkout charges the product's Stripe Price.
        let staff = Actor::Staff {
            id: "stf_1".into(),
            role: StaffRole::Owner,
        };
        s.sync_catalog(auth::request(&staff, pb::SyncCatalogRequest {}))
            .await
            .unwrap();
        let synced = ids::new_secret();
        set(&mut s, &synced, "prd_demo_brake_pads", 1)
            .await
            .unwrap();
        let paid_with_price = checkout(&mut s, &synced).await.unwrap();
        let sid = paid_with_price
            .checkout_url
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let session: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/v1/checkout/sessions/{sid}/line_items",
                stripe.base_url()
            ))
            .bearer_auth(&stripe.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let price_id = session["data"][0]["price"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(price_id.starts_with("price_"), "{session}");
        let catalog = s
            .list_catalog(auth::request(&staff, pb::ListCatalogRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .products;
        let pads = catalog
            .iter()
            .find(|c| {
                c.product
                    .as_ref()
                    .is_some_and(|p| p.id == "prd_demo_brake_pads")
            })
            .unwrap();
        assert_eq!(pads.stripe.as_ref().unwrap().stripe_price_id, price_id);

        // 3 units left; 20 shoppers check out 1 each at the same time: exactly 3 orders.
        let staff = Actor::Staff {
            id: "stf_1".into(),
            role: StaffRole::Owner,
        };
        let start = available(&mut s, "prd_demo_bms_20s").await;
        let left = s
            .adjust_stock(auth::request(
                &staff,
                pb::AdjustStockRequest {
                    product_id: "prd_demo_bms_20s".into(),
                    delta: 3 - start,
                    reason: "count after audit".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .available;
        assert_eq!(left, 3);
        let mut carts = Vec::new();
        for _ in 0..20 {
            let t = ids::new_secret();
            set(&mut s, &t, "prd_demo_bms_20s", 1).await.unwrap();
            carts.push(t);
        }
        let mut tasks = Vec::new();
        for t in carts {
            let mut s = s.clone();
            tasks.push(tokio::spawn(async move { checkout(&mut s, &t).await }));
        }
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(o) => won.push(o),
                Err(e) => {
                    assert_eq!(e.code(), Code::FailedPrecondition, "{backend:?}: {e:?}");
                    assert!(
                        e.message().contains("sold out") || e.message().contains("left"),
                        "{}",
                        e.message()
                    );
                }
            }
        }
        assert_eq!(won.len(), 3, "{backend:?}: exactly three orders");
        assert_eq!(available(&mut s, "prd_demo_bms_20s").await, 0);

        // Two pay on Stripe's page (webhook → billing → shop): the stock leaves the shelf.
        // The third session expires: its unit goes back.
        for o in &won[..2] {
            let sid = o.checkout_url.rsplit('/').next().unwrap();
            stripe.pay(sid).await;
        }
        let status_of = |token: String| {
            let mut sc = s.clone();
            async move {
                sc.get_order(pb::GetOrderRequest {
                    id: String::new(),
                    status_token: token,
                })
                .await
                .unwrap()
                .into_inner()
                .status
            }
        };
        for o in &won[..2] {
            let t = o.status_token.clone();
            assert!(
                eventually(Duration::from_secs(15), || async {
                    status_of(t.clone()).await == "paid"
                })
                .await,
                "{backend:?}: order not paid\n{}",
                billing.logs()
            );
        }
        let third = won[2].checkout_url.rsplit('/').next().unwrap().to_owned();
        let r = reqwest::Client::new()
            .post(format!(
                "{}/v1/checkout/sessions/{third}/expire",
                stripe.base_url()
            ))
            .bearer_auth(&stripe.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let t = won[2].status_token.clone();
        assert!(
            eventually(Duration::from_secs(15), || async {
                status_of(t.clone()).await == "expired"
            })
            .await
        );
        assert_eq!(available(&mut s, "prd_demo_bms_20s").await, 1);

        // Stripe unreachable at checkout: a clear error, and the reservation is returned.
        let lone = ids::new_secret();
        set(&mut s, &lone, "prd_demo_bms_20s", 1).await.unwrap();
        stripe.fail_next(500, 4).await;
        let down = checkout(&mut s, &lone).await.unwrap_err();
        assert_eq!(down.code(), Code::Unavailable);
        assert_eq!(available(&mut s, "prd_demo_bms_20s").await, 1);

        // The ledger explains the counters exactly.
        let (on_hand, reserved) = sdb_query_counters(&sdb, "prd_demo_bms_20s");
        assert_eq!(
            (on_hand, reserved),
            (1, 0),
            "{backend:?}: 3 set, 2 sold, 1 released"
        );
        drop(billing);
        drop(shop_proc);
    }
}

/// (on_hand, reserved) as the ledger sums them, checked against the counters.
fn sdb_query_counters(db: &TestDb, product: &str) -> (i64, i64) {
    let ledger = db.query_pair(&format!(
        "SELECT CAST(COALESCE(SUM(on_hand_delta), 0) AS BIGINT) AS a, CAST(COALESCE(SUM(reserved_delta), 0) AS BIGINT) AS b FROM inventory_ledger WHERE product_id = '{product}'"
    ));
    let counters = db.query_pair(&format!(
        "SELECT on_hand AS a, reserved AS b FROM products WHERE id = '{product}'"
    ));
    assert_eq!(ledger, counters, "ledger and counters disagree");
    counters
}
