//! Money for shop orders, over real gRPC and HTTP on both databases with Stripe's Checkout on the
//! fake peer: Maryland sales tax (billing's rate) added at checkout and charged as its own line on
//! Stripe's page, one paid `order` invoice per order recorded with the payment, one HTML receipt
//! to the buyer, nothing twice when Stripe delivers the event again, and no checkout (and no stock
//! held) while billing is down.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor};
use omneuro_platform::ids;
use omneuro_proto::shop::v1 as pb;
use omneuro_tests::*;
use pb::shop_service_client::ShopServiceClient;
use tonic::Code;

type Shop = ShopServiceClient<tonic::transport::Channel>;

async fn set(s: &mut Shop, cart: &str, product: &str, qty: i32) -> pb::Cart {
    s.set_cart_item(pb::SetCartItemRequest {
        cart_token: cart.into(),
        product_id: product.into(),
        quantity: qty,
    })
    .await
    .unwrap()
    .into_inner()
}

async fn checkout(s: &mut Shop, cart: &str, email: &str) -> Result<pb::Order, tonic::Status> {
    s.checkout(auth::request(
        &Actor::System("site".into()),
        pb::CheckoutRequest {
            cart_token: cart.into(),
            email: email.into(),
            success_url: "http://localhost:8080/shop/orders/{ORDER_TOKEN}".into(),
            cancel_url: "http://localhost:8080/shop/cart".into(),
        },
    ))
    .await
    .map(|r| r.into_inner())
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

fn cents(m: &Option<omneuro_proto::common::v1::Money>) -> i64 {
    m.as_ref().unwrap().amount_cents
}

async fn stripe_get(stripe: &FakeStripe, path: &str) -> serde_json::Value {
    http()
        .get(format!("{}{path}", stripe.base_url()))
        .bearer_auth(&stripe.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// (invoices of the order, payments on them)
fn invoice_and_payment_counts(bdb: &TestDb, order: &str) -> (i64, i64) {
    bdb.query_pair(&format!(
        "SELECT CAST((SELECT COUNT(*) FROM invoices WHERE source = 'order' AND source_id = '{order}') AS BIGINT) AS a, \
         CAST((SELECT COUNT(*) FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE i.source = 'order' AND i.source_id = '{order}') AS BIGINT) AS b"
    ))
}

fn receipts_to(sink: &SmtpSink, email: &str) -> Vec<serde_json::Value> {
    sink.to(email)
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Receipt for invoice")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_is_taxed_invoiced_once_and_receipted_once() {
    let (Some(sink), Some(stripe)) = (SmtpSink::start(), FakeStripe::start()) else {
        return;
    };
    for backend in backends() {
        let tmp = TempDir::new("order_invoices");
        let (sdb, bdb) = (
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "billing"),
        );
        // Shop asks billing for the tax rate and billing tells shop about payments: billing's gRPC
        // port is chosen first so each can be given the other's address.
        let billing_grpc = free_port();
        let shop = Proc::spawn(
            "shop",
            &[
                ("OMNEURO__DATABASE__URL", sdb.url.clone()),
                ("OMNEURO__DEMO_DATA", "true".to_owned()),
                (
                    "OMNEURO__UPSTREAMS__BILLING",
                    format!("http://127.0.0.1:{billing_grpc}"),
                ),
                ("OMNEURO__STRIPE__BASE_URL", stripe.base_url()),
                ("OMNEURO__STRIPE__RETRY_BASE_MS", "20".to_owned()),
                ("OMNEURO_SECRET_STRIPE_SECRET_KEY", stripe.api_key.clone()),
            ],
            &tmp.0,
        );
        let mut billing = Proc::spawn(
            "billing",
            &[
                ("OMNEURO__DATABASE__URL", bdb.url.clone()),
                ("OMNEURO__GRPC__PORT", billing_grpc.to_string()),
                ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                (
                    "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET",
                    stripe.webhook_secret.clone(),
                ),
            ],
            &tmp.0,
        );
        for p in [&shop, &billing] {
            let ready = format!("http://{}/readyz", p.http);
            assert!(
                eventually(Duration::from_secs(20), || async {
                    http_status(&ready).await == 200
                })
                .await,
                "{} never became ready:\n{}",
                p.name,
                p.logs()
            );
        }
        stripe
            .register_webhook(&format!("http://{}/webhooks/stripe", billing.http))
            .await;
        let mut s: Shop = ShopServiceClient::new(
            tonic::transport::Endpoint::from_shared(shop.grpc_url())
                .unwrap()
                .timeout(Duration::from_secs(30))
                .connect_lazy(),
        );
        assert!(
            eventually(Duration::from_secs(10), || async {
                s.clone()
                    .get_product(pb::GetProductRequest {
                        id: "prd_demo_tube_10".into(),
                    })
                    .await
                    .is_ok()
            })
            .await,
            "demo catalog never appeared"
        );

        // A cart of $26.97 (a $12.99 tube and two $6.99 connectors): 6 % is $1.6182 → $1.62.
        let email = format!("{}@example.com", ids::new_id("buyer"));
        let cart = ids::new_secret();
        set(&mut s, &cart, "prd_demo_tube_10", 1).await;
        let c = set(&mut s, &cart, "prd_demo_xt90", 2).await;
        let subtotal = 1299 + 2 * 699;
        let tax = 162;
        assert_eq!(cents(&c.subtotal), subtotal);
        assert_eq!(cents(&c.tax), tax);
        assert_eq!(cents(&c.total), subtotal + tax);
        let order = checkout(&mut s, &cart, &email).await.unwrap();
        assert_eq!(cents(&order.subtotal), subtotal, "{backend:?}");
        assert_eq!(cents(&order.tax), tax, "{backend:?}");
        assert_eq!(order.tax_rate_bps, 600);
        assert_eq!(cents(&order.total), subtotal + tax);
        assert_eq!(
            sdb.query_pair(&format!(
                "SELECT tax_cents AS a, total_cents AS b FROM orders WHERE id = '{}'",
                order.id
            )),
            (tax, subtotal + tax)
        );

        // Stripe's page charges the items and the tax as its own line: the order's total.
        let sid = order.checkout_url.rsplit('/').next().unwrap().to_owned();
        let items = stripe_get(&stripe, &format!("/v1/checkout/sessions/{sid}/line_items")).await;
        let items = items["data"].as_array().unwrap().clone();
        assert_eq!(items.len(), 3, "two products and the tax: {items:#?}");
        let tax_line = items
            .iter()
            .find(|i| i["description"] == "Maryland sales tax (6%)")
            .unwrap_or_else(|| panic!("no tax line in {items:#?}"));
        assert_eq!(tax_line["amount_total"].as_i64(), Some(tax));
        assert_eq!(tax_line["quantity"].as_i64(), Some(1));
        let session = stripe_get(&stripe, &format!("/v1/checkout/sessions/{sid}")).await;
        assert_eq!(session["amount_total"].as_i64(), Some(subtotal + tax));

        // Paid: the order is paid in shop, one paid `order` invoice with the items, the tax and
        // the total, one payment, and one HTML receipt to the buyer.
        stripe.pay(&sid).await;
        let token = order.status_token.clone();
        assert!(
            eventually(Duration::from_secs(15), || async {
                s.clone()
                    .get_order(pb::GetOrderRequest {
                        id: String::new(),
                        status_token: token.clone(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .status
                    == "paid"
            })
            .await,
            "{backend:?}: order never paid\n{}",
            billing.logs()
        );
        let receipt = sink.wait_for(&email, 1).await;
        assert_eq!(
            invoice_and_payment_counts(&bdb, &order.id),
            (1, 1),
            "{backend:?}"
        );
        let inv = format!("source = 'order' AND source_id = '{}'", order.id);
        assert_eq!(
            bdb.query_pair(&format!(
                "SELECT subtotal_cents AS a, tax_cents AS b FROM invoices WHERE {inv}"
            )),
            (subtotal, tax)
        );
        assert_eq!(
            bdb.query_pair(&format!(
                "SELECT total_cents AS a, paid_cents AS b FROM invoices WHERE {inv}"
            )),
            (subtotal + tax, subtotal + tax)
        );
        assert_eq!(
            bdb.query_pair(&format!(
                "SELECT CAST(tax_rate_bps AS BIGINT) AS a, \
                 CAST(CASE WHEN status = 'paid' AND email = '{email}' THEN 1 ELSE 0 END AS BIGINT) AS b \
                 FROM invoices WHERE {inv}"
            )),
            (600, 1),
            "{backend:?}: paid, at 6 %, with the buyer's email"
        );
        assert_eq!(
            bdb.query_pair(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS a, CAST(SUM(l.amount_cents) AS BIGINT) AS b \
                 FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
                 WHERE i.{} AND l.kind = 'part' AND l.taxable",
                inv.replace(" AND source_id", " AND i.source_id")
            )),
            (2, subtotal),
            "{backend:?}: the two items as taxable parts"
        );
        // The payment is the session's PaymentIntent, for what Stripe charged.
        let pi =
            stripe_get(&stripe, &format!("/v1/checkout/sessions/{sid}")).await["payment_intent"]
                .as_str()
                .unwrap()
                .to_owned();
        assert_eq!(
            bdb.query_pair(&format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS a, CAST(SUM(amount_cents) AS BIGINT) AS b \
                 FROM payments WHERE payment_intent_id = '{pi}'"
            )),
            (1, subtotal + tax)
        );
        let text = receipt["text"].as_str().unwrap_or_default();
        assert!(
            receipt["subject"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Receipt for invoice JJ-"),
            "{receipt:#}"
        );
        for want in [
            "10 × 2.5 inner tube",
            "XT90",
            "Maryland sales tax $1.62",
            "Total $28.59",
        ] {
            assert!(
                text.contains(want),
                "{backend:?}: receipt lacks {want}: {text}"
            );
        }
        // (The sink keeps the text body only; the HTML alternative is the same invoices::receipt.)
        assert_eq!(receipts_to(&sink, &email).len(), 1);

        // Stripe delivers the same event again: still one invoice, one payment, one receipt.
        let hook = format!("http://{}/webhooks/stripe", billing.http);
        let delivered = || async {
            stripe.state().await["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["type"] == "checkout.session.completed"
                        && d["url"] == hook.as_str()
                        && d["status"] == 200
                })
                .map(|d| d["event"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        assert!(
            eventually(Duration::from_secs(15), || async {
                delivered().await.len() == 1
            })
            .await,
            "{backend:?}: the payment event was not acknowledged\n{}",
            billing.logs()
        );
        let event = delivered().await.remove(0);
        stripe.resend(&event).await;
        assert!(
            eventually(Duration::from_secs(15), || async {
                delivered().await.iter().filter(|e| **e == event).count() == 2
            })
            .await,
            "{backend:?}: the resent event was not acknowledged\n{}",
            billing.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(invoice_and_payment_counts(&bdb, &order.id), (1, 1));
        assert_eq!(
            bdb.query_pair(&format!(
                "SELECT paid_cents AS a, total_cents AS b FROM invoices WHERE {inv}"
            )),
            (subtotal + tax, subtotal + tax)
        );
        assert_eq!(
            receipts_to(&sink, &email).len(),
            1,
            "{backend:?}: one receipt"
        );

        // Billing down: no tax rate, so no checkout, and nothing is held.
        billing.terminate();
        let lone = ids::new_secret();
        set(&mut s, &lone, "prd_demo_xt90", 1).await;
        let before = available(&mut s, "prd_demo_xt90").await;
        let reserved = sdb.query_pair(
            "SELECT reserved AS a, on_hand AS b FROM products WHERE id = 'prd_demo_xt90'",
        );
        let down = checkout(&mut s, &lone, &email).await.unwrap_err();
        assert_eq!(down.code(), Code::Unavailable, "{backend:?}: {down:?}");
        assert!(down.message().contains("try again"), "{}", down.message());
        assert_eq!(available(&mut s, "prd_demo_xt90").await, before);
        assert_eq!(
            sdb.query_pair(
                "SELECT reserved AS a, on_hand AS b FROM products WHERE id = 'prd_demo_xt90'"
            ),
            reserved,
            "{backend:?}: the stock is not held"
        );
        // The cart is still there to check out once billing is back.
        let kept = s
            .get_cart(pb::GetCartRequest {
                cart_token: lone.clone(),
                acknowledge_prices: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(kept.lines.len(), 1);
        assert!(kept.tax.is_none(), "no tax guessed without billing");
        drop(billing);
        drop(shop);
    }
}
