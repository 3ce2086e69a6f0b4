//! The storefront and the garage invoices through site's pages, over real HTTP and gRPC on both
//! databases, with Stripe's hosted Checkout on the fake peer and its signed webhooks going through
//! billing: the catalog by category and "fits my vehicle", a cookie cart that refuses bad
//! quantities and tells the shopper about new prices, checkout to Stripe's page, payment taking the
//! stock and showing on the no-login order page; an invoice seen, paid online and kept from others.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::billing::v1 as bpb;
use omneuro_proto::garage::v1 as gpb;
use omneuro_proto::jobs::v1 as jpb;
use omneuro_proto::shop::v1 as spb;
use omneuro_tests::*;

type Shop = spb::shop_service_client::ShopServiceClient<tonic::transport::Channel>;

fn staff() -> Actor {
    Actor::Staff {
        id: "stf_1".into(),
        role: StaffRole::Owner,
    }
}

fn channel(grpc_url: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(grpc_url)
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect_lazy()
}

/// `cents` plus Maryland's 6 % sales tax, rounded half up (billing's US-MD rate).
fn with_tax(cents: i64) -> i64 {
    cents + (cents * 600 + 5_000) / 10_000
}

fn usd(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// The text of the element with `id="…"` (up to its first tag).
fn by_id(body: &str, id: &str) -> String {
    let key = format!("id=\"{id}\">");
    let at = body
        .find(&key)
        .unwrap_or_else(|| panic!("no #{id} in {body}"))
        + key.len();
    body[at..].chars().take_while(|c| *c != '<').collect()
}

/// `data-quantity` of the cart line for `product`.
fn line_quantity(body: &str, product: &str) -> Option<String> {
    let key = format!("data-line=\"{product}\" data-quantity=\"");
    let at = body.find(&key)? + key.len();
    Some(body[at..].chars().take_while(|c| *c != '"').collect())
}

async fn stock(s: &mut Shop, id: &str) -> i64 {
    s.get_product(spb::GetProductRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
        .stock
}

async fn signed_in(site: &Running, sink: &SmtpSink, tag: &str) -> Browser {
    let mut b = Browser::new(&site.url(""));
    let email = format!("{}@example.com", omneuro_platform::ids::new_id(tag));
    let form = b.get("/signin").await;
    let sent = b
        .post("/signin", &[("csrf", &form.csrf()), ("email", &email)])
        .await;
    assert_eq!(sent.status, 200);
    let token = sign_in_token(&sink.wait_for(&email, 1).await);
    let landing = b.get(&format!("/signin/link?token={token}")).await;
    let done = b
        .post(
            "/signin/link",
            &[("csrf", &landing.csrf()), ("token", &token)],
        )
        .await;
    assert_eq!(done.status, 303);
    b
}

/// "Add to cart" as the catalog's button posts it.
async fn add_to_cart(b: &mut Browser, csrf: &str, product: &str) -> Page {
    b.post(
        "/shop/cart/items",
        &[
            ("csrf", csrf),
            ("product_id", product),
            ("quantity", "1"),
            ("add", "1"),
        ],
    )
    .await
}

/// The path of an absolute URL on the public site (what Stripe sends the shopper back to).
fn path_of(url: &str, from: &str) -> String {
    url[url
        .find(from)
        .unwrap_or_else(|| panic!("{from} not in {url}"))..]
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_fill_a_cart_and_pay_on_stripe_and_clients_pay_their_invoices() {
    let (Some(sink), Some(stripe)) = (SmtpSink::start(), FakeStripe::start()) else {
        return;
    };
    for backend in backends() {
        let tmp = TempDir::new("site_store");
        let (gdb, jdb, sdb, bdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "billing"),
        );
        let garage = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        // Shop asks billing for the tax rate and billing tells shop about payments: billing's gRPC
        // port is chosen first so each can be given the other's address.
        let billing_grpc = free_port();
        let shop = Proc::spawn(
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
        let jobs = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", garage.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
            ],
        )
        .await;
        let billing = Proc::spawn(
            "billing",
            &[
                ("OMNEURO__DATABASE__URL", bdb.url.clone()),
                ("OMNEURO__GRPC__PORT", billing_grpc.to_string()),
                ("OMNEURO__DATABASE__HEALTH_INTERVAL_MS", "100".to_owned()),
                ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
                ("OMNEURO__UPSTREAMS__JOBS", jobs.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", garage.grpc_url()),
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__STRIPE__BASE_URL", stripe.base_url()),
                ("OMNEURO__STRIPE__RETRY_BASE_MS", "20".to_owned()),
                ("OMNEURO_SECRET_STRIPE_SECRET_KEY", stripe.api_key.clone()),
                (
                    "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET",
                    stripe.webhook_secret.clone(),
                ),
            ],
            &tmp.0,
        );
        wait_ready(&garage).await;
        wait_ready(&jobs).await;
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
        let mut s: Shop =
            spb::shop_service_client::ShopServiceClient::new(channel(shop.grpc_url()));
        assert!(
            eventually(Duration::from_secs(10), || async {
                s.clone()
                    .get_product(spb::GetProductRequest {
                        id: "prd_demo_tube_10".into(),
                    })
                    .await
                    .is_ok()
            })
            .await,
            "demo catalog never appeared"
        );
        let site = start_site(&[
            ("garage", garage.grpc_url()),
            ("jobs", jobs.grpc_url()),
            ("shop", shop.grpc_url()),
            ("billing", billing.grpc_url()),
        ])
        .await;

        // ---- the catalog ---------------------------------------------------------------------
        let mut shopper = Browser::new(&site.url(""));
        let all = shopper.get("/shop").await;
        assert_eq!(all.status, 200);
        for want in [
            "Smart BMS 20S 60A",
            "10 × 2.5 inner tube, bent valve",
            "3D-printed EUC phone mount",
            "$12.99",
            "In stock",
            "Add to cart",
            "href=\"/shop/p/prd_demo_tube_10\"",
            "href=\"/shop?category=tires\"",
        ] {
            assert!(all.body.contains(want), "{backend:?}: catalog lacks {want}");
        }
        let tires = shopper.get("/shop?category=tires").await;
        assert_eq!(tires.status, 200);
        assert!(
            tires.body.contains("10 × 2.5 inner tube")
                && tires.body.contains("16 × 3.0 street tire")
        );
        assert!(!tires.body.contains("Smart BMS 20S 60A") && !tires.body.contains("phone mount"));
        // "Fits my vehicle" needs a signed-in client; anyone else is told so and sees everything.
        let anon_fits = shopper.get("/shop?fits=1").await;
        assert!(anon_fits.body.contains("Sign in and add your vehicle"));
        assert!(anon_fits.body.contains("phone mount"));

        let product = shopper.get("/shop/p/prd_demo_tube_10").await;
        assert_eq!(product.status, 200);
        assert!(product.body.contains("Heavy-duty butyl tube") && product.body.contains("$12.99"));
        assert!(
            product.body.contains("Segway-Ninebot (every model)")
                && product.body.contains("Kaabo (every model)"),
            "fitment in words: {}",
            product.body
        );
        assert!(product.body.contains("name=\"quantity\""));
        assert_eq!(shopper.get("/shop/p/prd_nope").await.status, 404);
        assert_eq!(shopper.get("/shop/p/not%20an%20id").await.status, 404);

        // A client with a Segway-Ninebot scooter: first no catalog vehicle (said so), then the tube
        // fits and the unicycle phone mount does not.
        let mut rider = signed_in(&site, &sink, "fit").await;
        let none_yet = rider.get("/shop?fits=1").await;
        assert!(
            none_yet
                .body
                .contains("None of the vehicles in your garage is from our make and model list"),
            "{}",
            none_yet.body
        );
        let csrf = rider.get("/garage/vehicles/new").await.csrf();
        let added = rider
            .post(
                "/garage/vehicles",
                &[
                    ("csrf", &csrf),
                    ("category", "e_scooter"),
                    ("make_id", "mk_segway_ninebot"),
                    ("model_id", "mdl_segway_ninebot_max_g30p"),
                ],
            )
            .await;
        assert_eq!(added.status, 303, "{}", added.body);
        let fits = rider.get("/shop?fits=1").await;
        assert_eq!(fits.status, 200);
        assert!(
            fits.body.contains("Segway-Ninebot Max G30P"),
            "{}",
            fits.body
        );
        assert!(fits.body.contains("data-product=\"prd_demo_tube_10\""));
        assert!(fits.body.contains("10 × 2.5 inner tube"));
        assert!(
            fits.body.contains("data-product=\"prd_demo_xt90\""),
            "universal parts stay"
        );
        assert!(
            !fits.body.contains("data-product=\"prd_demo_phone_mount\"")
                && !fits.body.contains("EUC phone mount"),
            "{backend:?}: the unicycle mount does not fit a scooter"
        );
        let fits_tires = rider.get("/shop?fits=1&category=tires").await;
        assert!(
            fits_tires.body.contains("prd_demo_tube_10")
                && !fits_tires
                    .body
                    .contains("data-product=\"prd_demo_tire_16x3\"")
        );

        // ---- the cart ------------------------------------------------------------------------
        let csrf = shopper.get("/shop").await.csrf();
        let first = add_to_cart(&mut shopper, &csrf, "prd_demo_tube_10").await;
        assert_eq!((first.status, first.location.as_str()), (303, "/shop/cart"));
        let cookie = first
            .set_cookies
            .iter()
            .find(|c| c.starts_with("jj_cart="))
            .expect("the cart cookie")
            .clone();
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && cookie.contains("Max-Age=2592000"),
            "{cookie}"
        );
        let token = shopper.cookies["jj_cart"].clone();
        assert!(omneuro_platform::ids::is_secret_shaped(&token));
        // "Add to cart" twice on the connector: two of them; the cookie is not replaced.
        for _ in 0..2 {
            let again = add_to_cart(&mut shopper, &csrf, "prd_demo_xt90").await;
            assert_eq!(again.status, 303, "{}", again.body);
            assert!(!again.set_cookies.iter().any(|c| c.starts_with("jj_cart=")));
        }
        let cart = shopper.get("/shop/cart").await;
        assert_eq!(cart.status, 200);
        assert!(cart.body.contains("10 × 2.5 inner tube") && cart.body.contains("XT90"));
        assert_eq!(
            line_quantity(&cart.body, "prd_demo_tube_10").as_deref(),
            Some("1")
        );
        assert_eq!(
            line_quantity(&cart.body, "prd_demo_xt90").as_deref(),
            Some("2")
        );
        let server = s
            .get_cart(spb::GetCartRequest {
                cart_token: token.clone(),
                acknowledge_prices: false,
            })
            .await
            .unwrap()
            .into_inner();
        let server_total = server.total.unwrap().amount_cents;
        assert_eq!(server.subtotal.unwrap().amount_cents, 1299 + 2 * 699);
        assert_eq!(
            server.tax.unwrap().amount_cents,
            162,
            "6 % of $26.97, rounded"
        );
        assert_eq!(server_total, with_tax(1299 + 2 * 699));
        assert_eq!(by_id(&cart.body, "cart-subtotal"), usd(1299 + 2 * 699));
        assert_eq!(by_id(&cart.body, "cart-tax"), usd(162));
        assert!(
            cart.body.contains("Maryland sales tax (6%)"),
            "{}",
            cart.body
        );
        assert_eq!(by_id(&cart.body, "cart-total"), usd(server_total));

        // Amount tampering: a price posted with the form is ignored; the server's price stands.
        let cart_csrf = cart.csrf();
        let tampered = shopper
            .post(
                "/shop/cart/items",
                &[
                    ("csrf", &cart_csrf),
                    ("product_id", "prd_demo_xt90"),
                    ("quantity", "2"),
                    ("price", "1"),
                    ("unit_amount", "1"),
                    ("total", "1"),
                ],
            )
            .await;
        assert_eq!(tampered.status, 303);
        let after = shopper.get("/shop/cart").await;
        assert_eq!(by_id(&after.body, "cart-total"), usd(server_total));

        // Nonsense quantities are refused with the shop's words; the cart stays as it was.
        for qty in ["25", "-1"] {
            let bad = shopper
                .post(
                    "/shop/cart/items",
                    &[
                        ("csrf", &cart_csrf),
                        ("product_id", "prd_demo_xt90"),
                        ("quantity", qty),
                    ],
                )
                .await;
            assert_eq!(bad.status, 400, "{qty}");
            assert!(
                bad.body.contains("Quantity should be between 0 and 20"),
                "{qty}: {}",
                bad.body
            );
            assert_eq!(
                line_quantity(&bad.body, "prd_demo_xt90").as_deref(),
                Some("2")
            );
        }
        let words = shopper
            .post(
                "/shop/cart/items",
                &[
                    ("csrf", &cart_csrf),
                    ("product_id", "prd_demo_xt90"),
                    ("quantity", "lots"),
                ],
            )
            .await;
        assert_eq!(words.status, 400);
        let unsold = shopper
            .post(
                "/shop/cart/items",
                &[
                    ("csrf", &cart_csrf),
                    ("product_id", "prd_nope"),
                    ("quantity", "1"),
                ],
            )
            .await;
        assert_eq!(unsold.status, 400);
        assert!(
            unsold.body.contains("isn&#39;t for sale") || unsold.body.contains("isn't for sale")
        );
        let forged = shopper
            .post(
                "/shop/cart/items",
                &[("product_id", "prd_demo_xt90"), ("quantity", "5")],
            )
            .await;
        assert_eq!(forged.status, 403);
        let foreign = shopper
            .post_with(
                "/shop/cart/items",
                &[
                    ("csrf", &cart_csrf),
                    ("product_id", "prd_demo_xt90"),
                    ("quantity", "5"),
                ],
                &[("origin", "https://evil.example")],
            )
            .await;
        assert_eq!(foreign.status, 403);
        let still = s
            .get_cart(spb::GetCartRequest {
                cart_token: token.clone(),
                acknowledge_prices: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            still.total.unwrap().amount_cents,
            server_total,
            "nothing changed"
        );

        // Remove and put back: quantity 0 takes the line out.
        let removed = shopper
            .post(
                "/shop/cart/items",
                &[
                    ("csrf", &cart_csrf),
                    ("product_id", "prd_demo_tube_10"),
                    ("quantity", "0"),
                ],
            )
            .await;
        assert_eq!(removed.status, 303);
        assert!(line_quantity(&shopper.get("/shop/cart").await.body, "prd_demo_tube_10").is_none());
        let back = add_to_cart(&mut shopper, &csrf, "prd_demo_tube_10").await;
        assert_eq!(back.status, 303);

        // The price changes in the shop's database: the cart says so once, with the new total.
        sdb.execute("UPDATE products SET price_cents = 1499 WHERE id = 'prd_demo_tube_10'");
        let repriced = shopper.get("/shop/cart").await;
        assert!(
            repriced.body.contains(
                "The price of 10 × 2.5 inner tube, bent valve changed from $12.99 to $14.99."
            ),
            "{}",
            repriced.body
        );
        assert_eq!(
            by_id(&repriced.body, "cart-total"),
            usd(with_tax(1499 + 2 * 699))
        );
        let seen = shopper.get("/shop/cart").await;
        assert!(!seen.body.contains("changed from"), "told once");

        // ---- checkout ------------------------------------------------------------------------
        let (tube_before, xt90_before) = (
            stock(&mut s, "prd_demo_tube_10").await,
            stock(&mut s, "prd_demo_xt90").await,
        );
        let csrf = seen.csrf();
        let no_token = shopper
            .post("/shop/checkout", &[("email", "rider@example.com")])
            .await;
        assert_eq!(no_token.status, 403);
        let bad_email = shopper
            .post(
                "/shop/checkout",
                &[("csrf", &csrf), ("email", "not-an-address")],
            )
            .await;
        assert_eq!(bad_email.status, 400);
        assert!(
            bad_email.body.contains("valid email address"),
            "{}",
            bad_email.body
        );
        assert_eq!(stock(&mut s, "prd_demo_tube_10").await, tube_before);
        // A price that changes between the cart and the checkout: refused with the shop's words,
        // and the cart shown again (the email kept) with the new price, so the next try works.
        sdb.execute("UPDATE products SET price_cents = 799 WHERE id = 'prd_demo_xt90'");
        let refused = shopper
            .post(
                "/shop/checkout",
                &[("csrf", &csrf), ("email", "rider@example.com")],
            )
            .await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.body.contains("prices changed"), "{}", refused.body);
        assert!(
            refused.body.contains(
                "The price of XT90 anti-spark connector pair changed from $6.99 to $7.99."
            )
        );
        assert!(refused.body.contains("value=\"rider@example.com\""));
        let new_total = 1499 + 2 * 799;
        assert_eq!(by_id(&refused.body, "cart-total"), usd(with_tax(new_total)));
        assert_eq!(stock(&mut s, "prd_demo_tube_10").await, tube_before);
        let paying = shopper
            .post(
                "/shop/checkout",
                &[("csrf", &csrf), ("email", "rider@example.com")],
            )
            .await;
        assert_eq!(paying.status, 303, "{}", paying.body);
        assert!(
            paying
                .location
                .starts_with(&format!("{}/pay/cs_", stripe.base_url())),
            "{}",
            paying.location
        );
        // The order holds the stock; the cart is empty.
        assert_eq!(stock(&mut s, "prd_demo_tube_10").await, tube_before - 1);
        assert_eq!(stock(&mut s, "prd_demo_xt90").await, xt90_before - 2);
        assert!(
            shopper
                .get("/shop/cart")
                .await
                .body
                .contains("Your cart is empty")
        );
        let empty = shopper
            .post(
                "/shop/checkout",
                &[("csrf", &csrf), ("email", "rider@example.com")],
            )
            .await;
        assert_eq!(empty.status, 400);
        assert!(empty.body.contains("Your cart is empty"));

        // Paid on Stripe's page: back to the order page, which shows it paid once the webhook
        // went billing → shop; the sale left the shelf for good.
        let session = paying.location.rsplit('/').next().unwrap().to_owned();
        let returned = stripe.pay(&session).await;
        assert!(returned.ends_with("?paid=1"), "{returned}");
        let order_path = path_of(&returned, "/shop/orders/");
        let order_url = site.url(&order_path);
        assert!(
            eventually(Duration::from_secs(15), || async {
                let body = http()
                    .get(&order_url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                by_id(&body, "order-status") == "Paid"
            })
            .await,
            "{backend:?}: order never paid\n{}",
            billing.logs()
        );
        assert_eq!(stock(&mut s, "prd_demo_tube_10").await, tube_before - 1);
        assert_eq!(
            sdb.query_pair(
                "SELECT on_hand AS a, reserved AS b FROM products WHERE id = 'prd_demo_tube_10'"
            ),
            (30 - 1, 0),
            "{backend:?}: sold, not just held"
        );
        // The order page needs no sign-in, and is kept out of indexes and Referer headers.
        let bare = order_path.split('?').next().unwrap().to_owned();
        let mut stranger = Browser::new(&site.url(""));
        let order = stranger.get(&bare).await;
        assert_eq!(order.status, 200);
        assert_eq!(by_id(&order.body, "order-status"), "Paid");
        assert_eq!(by_id(&order.body, "order-subtotal"), usd(new_total));
        assert_eq!(
            by_id(&order.body, "order-tax"),
            usd(with_tax(new_total) - new_total)
        );
        assert_eq!(by_id(&order.body, "order-total"), usd(with_tax(new_total)));
        assert!(order.body.contains("10 × 2.5 inner tube") && order.body.contains("$14.99"));
        let r = http().get(site.url(&bare)).send().await.unwrap();
        assert_eq!(r.headers()["x-robots-tag"], "noindex");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert_eq!(stranger.get("/shop/orders/not-a-token").await.status, 404);

        // ---- invoices in the garage ----------------------------------------------------------
        let mut g = GarageClient::new(garage.channel());
        let client = g
            .authenticate(auth::request(
                &site_actor(),
                gpb::AuthenticateRequest {
                    session_token: rider.cookies["jj_session"].clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .client
            .unwrap();
        let me = Actor::Client(client.id.clone());
        let vehicle = g
            .list_vehicles(auth::request(&me, gpb::ListVehiclesRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .vehicles
            .remove(0);
        let mut j = jpb::jobs_service_client::JobsServiceClient::new(jobs.channel());
        let job = j
            .create_walk_in(auth::request(
                &staff(),
                jpb::CreateWalkInRequest {
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
            jpb::AddLaborRequest {
                job_id: job.id.clone(),
                description: "Controller repair".into(),
                hours: "1".into(),
                rate_cents: 9000,
            },
        ))
        .await
        .unwrap();
        j.add_part(auth::request(
            &staff(),
            jpb::AddPartRequest {
                job_id: job.id.clone(),
                product_id: "prd_demo_brake_pads".into(),
                quantity: 1,
            },
        ))
        .await
        .unwrap();
        let mut b =
            bpb::billing_service_client::BillingServiceClient::new(channel(billing.grpc_url()));
        let draft = b
            .create_job_invoice(auth::request(
                &staff(),
                bpb::CreateJobInvoiceRequest {
                    job_id: job.id.clone(),
                    fees: vec![],
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let inv = b
            .issue_invoice(auth::request(
                &staff(),
                bpb::IssueInvoiceRequest {
                    id: draft.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let total = usd(inv.total.as_ref().unwrap().amount_cents);

        let home = rider.get("/garage").await;
        assert!(
            home.body.contains(&format!("data-invoice=\"{}\"", inv.id))
                && home.body.contains(&inv.number)
                && home.body.contains(&total)
                && home.body.contains("Waiting for payment"),
            "{}",
            home.body
        );
        let path = format!("/garage/invoices/{}", inv.id);
        let page = rider.get(&path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Controller repair") && page.body.contains("Sintered"));
        assert_eq!(by_id(&page.body, "invoice-total"), total);
        assert_eq!(by_id(&page.body, "invoice-status"), "Waiting for payment");
        assert!(page.body.contains("Pay online"));
        let pay_path = format!("{path}/pay");
        assert_eq!(rider.post(&pay_path, &[]).await.status, 403);

        // Another client, or nobody: not theirs to see or pay.
        let mut other = signed_in(&site, &sink, "other").await;
        assert_eq!(other.get(&path).await.status, 404);
        let other_csrf = other.get("/garage").await.csrf();
        assert!(!other.get("/garage").await.body.contains(&inv.number));
        assert_eq!(
            other.post(&pay_path, &[("csrf", &other_csrf)]).await.status,
            404
        );
        let nobody = Browser::new(&site.url("")).get(&path).await;
        assert_eq!((nobody.status, nobody.location.as_str()), (303, "/signin"));
        assert_eq!(rider.get("/garage/invoices/inv_nope").await.status, 404);

        // Pay online: Stripe's page, the webhook, and the invoice shows paid.
        let to_stripe = rider.post(&pay_path, &[("csrf", &page.csrf())]).await;
        assert_eq!(to_stripe.status, 303, "{}", to_stripe.body);
        assert!(
            to_stripe
                .location
                .starts_with(&format!("{}/pay/cs_", stripe.base_url())),
            "{}",
            to_stripe.location
        );
        let session = to_stripe.location.rsplit('/').next().unwrap().to_owned();
        let back = stripe.pay(&session).await;
        assert_eq!(
            path_of(&back, "/garage/invoices/"),
            format!("{path}?paid=1")
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let paid_page = loop {
            let p = rider.get(&format!("{path}?paid=1")).await;
            if by_id(&p.body, "invoice-status") == "Paid" {
                break p.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: invoice never paid\n{}",
                billing.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(paid_page.contains("your payment is in"));
        assert_eq!(by_id(&paid_page, "invoice-paid"), total);
        assert!(!paid_page.contains("Pay online"));
        // Paying again is explained on the invoice page.
        let twice = rider.post(&pay_path, &[("csrf", &page.csrf())]).await;
        assert_eq!(twice.status, 409);
        assert!(twice.body.contains("already paid"), "{}", twice.body);

        site.stop().await;
        drop(billing);
        drop(shop);
        jobs.stop().await;
        garage.stop().await;
    }
}
