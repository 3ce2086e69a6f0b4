//! The custom battery pack calculator through site's pages, over real HTTP and gRPC on both
//! databases: shop prices the pack (the worked 84V / 21700 / regular / 30 miles example), a bad
//! ask gets shop's own sentence with the form refilled, and a signed-in client's "Request this
//! build" becomes an open deposit invoice that billing priced with shop itself — paid from the
//! garage like any other invoice, and nobody else's to see.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::billing::v1 as bpb;
use omneuro_proto::garage::v1 as gpb;
use omneuro_tests::*;
use tonic::Code;

type Billing = bpb::billing_service_client::BillingServiceClient<tonic::transport::Channel>;

const WORKED: &str = "/shop/battery-quote?range_miles=30&voltage_class=84V&cell=21700&bms=regular";
const DEPOSIT_LINE: &str = "65% deposit: custom battery pack 20S3P (84 V, 21700, regular BMS)";
const BAD_CLASS: &str = "Pick a voltage class we build: 36V, 48V, 52V, 60V, 67V, 72V, 84V, 100V, \
                         126V, 134V, 151V, 168V.";

/// The text of the element with `id="…"` (up to its first tag).
fn by_id(body: &str, id: &str) -> String {
    let key = format!("id=\"{id}\">");
    let at = body
        .find(&key)
        .unwrap_or_else(|| panic!("no #{id} in {body}"))
        + key.len();
    body[at..].chars().take_while(|c| *c != '<').collect()
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

/// The client behind a browser's session.
async fn client_of(g: &mut GarageClient, b: &Browser) -> String {
    g.authenticate(auth::request(
        &site_actor(),
        gpb::AuthenticateRequest {
            session_token: b.cookies["jj_session"].clone(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .client
    .unwrap()
    .id
}

/// The worked example as "Request this build" posts it.
fn build_form(csrf: &str) -> Vec<(&str, &str)> {
    vec![
        ("csrf", csrf),
        ("range_miles", "30"),
        ("energy_wh", ""),
        ("voltage_class", "84V"),
        ("cell", "21700"),
        ("bms", "regular"),
        ("wh_per_mile", ""),
    ]
}

fn worked_rpc() -> bpb::CreateQuoteDepositRequest {
    bpb::CreateQuoteDepositRequest {
        range_miles: 30,
        energy_wh: 0,
        voltage_class: "84V".into(),
        cell: "21700".into(),
        bms: "regular".into(),
        wh_per_mile: 0,
    }
}

async fn invoices_of(b: &mut Billing, client: &str) -> Vec<bpb::Invoice> {
    b.list_invoices(auth::request(
        &Actor::Client(client.to_owned()),
        bpb::ListInvoicesRequest::default(),
    ))
    .await
    .unwrap()
    .into_inner()
    .invoices
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_price_a_custom_pack_and_request_it_with_a_deposit_invoice() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let tmp = TempDir::new("battery_quote");
        let (gdb, sdb, bdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "billing"),
        );
        let garage = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let shop = Proc::spawn(
            "shop",
            &[
                ("OMNEURO__DATABASE__URL", sdb.url.clone()),
                ("OMNEURO__DATABASE__HEALTH_INTERVAL_MS", "100".to_owned()),
            ],
            &tmp.0,
        );
        // Stripe stays off: the deposit invoice only has to exist and be open.
        let billing = Proc::spawn(
            "billing",
            &[
                ("OMNEURO__DATABASE__URL", bdb.url.clone()),
                ("OMNEURO__DATABASE__HEALTH_INTERVAL_MS", "100".to_owned()),
                ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", garage.grpc_url()),
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
            ],
            &tmp.0,
        );
        wait_ready(&garage).await;
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
        let site = start_site(&[
            ("garage", garage.grpc_url()),
            ("shop", shop.grpc_url()),
            ("billing", billing.grpc_url()),
        ])
        .await;
        let mut b: Billing = bpb::billing_service_client::BillingServiceClient::new(
            tonic::transport::Endpoint::from_shared(billing.grpc_url())
                .unwrap()
                .timeout(Duration::from_secs(20))
                .connect_lazy(),
        );
        let mut g = GarageClient::new(garage.channel());

        // ---- the calculator, for anyone ------------------------------------------------------
        let mut anon = Browser::new(&site.url(""));
        let shop_page = anon.get("/shop").await;
        assert!(
            shop_page.body.contains("href=\"/shop/battery-quote\""),
            "{}",
            shop_page.body
        );
        let form = anon.get("/shop/battery-quote").await;
        assert_eq!(form.status, 200, "{}", form.body);
        for want in [
            "action=\"/shop/battery-quote\"",
            "method=\"get\"",
            "name=\"range_miles\"",
            "name=\"energy_wh\"",
            "<option value=\"36V\"",
            "<option value=\"168V\"",
            "name=\"cell\" value=\"18650\"",
            "name=\"cell\" value=\"21700\"",
            "name=\"bms\" value=\"smart\"",
            "Get my quote",
        ] {
            assert!(
                form.body.contains(want),
                "{backend:?}: the form lacks {want}"
            );
        }
        assert!(
            !form.body.contains("id=\"quote\""),
            "no quote before asking"
        );

        // The worked example: 30 mi × 25 Wh/mi = 750 Wh at 84V (20S) in 21700s → 20S3P.
        let q = anon.get(WORKED).await;
        assert_eq!(q.status, 200, "{}", q.body);
        assert_eq!(by_id(&q.body, "quote-configuration"), "20S3P");
        assert_eq!(by_id(&q.body, "quote-cells"), "60");
        assert_eq!(by_id(&q.body, "quote-volts"), "72.0");
        assert_eq!(by_id(&q.body, "quote-ah"), "15.0");
        assert_eq!(by_id(&q.body, "quote-wh"), "1080");
        assert_eq!(by_id(&q.body, "quote-range"), "43");
        assert_eq!(by_id(&q.body, "quote-subtotal"), "$631.00");
        assert_eq!(by_id(&q.body, "quote-deposit"), "$410.15");
        assert_eq!(by_id(&q.body, "quote-balance"), "$220.85");
        for want in [
            "60 × 21700 cells (20S3P) at $6.50 each",
            "$390.00",
            "Testing and balancing",
            "(65%)",
            "1-year workmanship warranty: we repair or rebuild the pack for free",
            "Charge only with a lithium-ion charger made for 84.0 V (20S).",
            // The form keeps what was asked.
            "<option value=\"84V\" selected>",
            "name=\"range_miles\" type=\"number\" inputmode=\"numeric\" min=\"5\" max=\"150\" step=\"1\" value=\"30\"",
        ] {
            assert!(q.body.contains(want), "{backend:?}: the quote lacks {want}");
        }
        // Anonymous: asked to sign in, no build form.
        assert!(
            q.body
                .contains("id=\"request-signin\">Sign in to request this build")
        );
        assert!(q.body.contains("href=\"/signin\""));
        assert!(!q.body.contains("action=\"/shop/battery-quote/request\""));
        let anon_post = anon
            .post("/shop/battery-quote/request", &build_form(""))
            .await;
        assert_eq!(
            (anon_post.status, anon_post.location.as_str()),
            (303, "/signin")
        );

        // A bad ask: shop's sentence, 400, the form refilled.
        let bad = anon
            .get("/shop/battery-quote?range_miles=30&voltage_class=90V&cell=21700&bms=regular")
            .await;
        assert_eq!(bad.status, 400, "{}", bad.body);
        assert_eq!(by_id(&bad.body, "quote-error"), BAD_CLASS);
        assert!(bad.body.contains("value=\"30\""));
        assert!(bad.body.contains("name=\"cell\" value=\"21700\" checked"));
        assert!(bad.body.contains("name=\"bms\" value=\"regular\" checked"));
        assert!(!bad.body.contains("id=\"quote\""));
        let both = anon
            .get("/shop/battery-quote?range_miles=30&energy_wh=800&voltage_class=84V&cell=21700&bms=regular")
            .await;
        assert_eq!(both.status, 400);
        assert_eq!(
            by_id(&both.body, "quote-error"),
            "Give either a range in miles or an energy in Wh, not both."
        );
        let words = anon
            .get("/shop/battery-quote?range_miles=far&voltage_class=84V&cell=21700&bms=regular")
            .await;
        assert_eq!(words.status, 400);
        assert_eq!(
            by_id(&words.body, "quote-error"),
            "Range should be a whole number of miles."
        );
        assert!(words.body.contains("value=\"far\""));
        let energy = anon
            .get("/shop/battery-quote?energy_wh=720&voltage_class=84v&cell=21700&bms=smart")
            .await;
        assert_eq!(energy.status, 200);
        assert_eq!(by_id(&energy.body, "quote-configuration"), "20S2P");

        // ---- a signed-in client requests the build --------------------------------------------
        let mut rider = signed_in(&site, &sink, "pack").await;
        let rider_id = client_of(&mut g, &rider).await;
        let mine = rider.get(WORKED).await;
        assert_eq!(mine.status, 200);
        assert!(
            mine.body.contains("action=\"/shop/battery-quote/request\"")
                && mine.body.contains("Request this build")
                && mine.body.contains("name=\"voltage_class\" value=\"84V\""),
            "{}",
            mine.body
        );
        let csrf = mine.csrf();
        // Forged (no token, or from another origin): refused, nothing invoiced.
        let forged = rider
            .post("/shop/battery-quote/request", &build_form(""))
            .await;
        assert_eq!(forged.status, 403);
        let foreign = rider
            .post_with(
                "/shop/battery-quote/request",
                &build_form(&csrf),
                &[("origin", "https://evil.example")],
            )
            .await;
        assert_eq!(foreign.status, 403);
        assert!(invoices_of(&mut b, &rider_id).await.is_empty());
        // A bad ask posted anyway: shop's sentence on the quote page.
        let mut tampered = build_form(&csrf);
        tampered[3] = ("voltage_class", "90V");
        let refused = rider.post("/shop/battery-quote/request", &tampered).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(by_id(&refused.body, "quote-error"), BAD_CLASS);
        assert!(invoices_of(&mut b, &rider_id).await.is_empty());

        let requested = rider
            .post("/shop/battery-quote/request", &build_form(&csrf))
            .await;
        assert_eq!(requested.status, 303, "{}", requested.body);
        assert!(
            requested.location.starts_with("/garage/invoices/inv_"),
            "{}",
            requested.location
        );
        let inv_path = requested.location.clone();
        let inv_page = rider.get(&inv_path).await;
        assert_eq!(inv_page.status, 200, "{}", inv_page.body);
        assert_eq!(
            by_id(&inv_page.body, "invoice-status"),
            "Waiting for payment"
        );
        assert_eq!(by_id(&inv_page.body, "invoice-due"), "$410.15");
        assert_eq!(by_id(&inv_page.body, "invoice-total"), "$410.15");
        assert!(inv_page.body.contains(DEPOSIT_LINE), "{}", inv_page.body);
        assert!(inv_page.body.contains("Pay online"));

        // What billing holds: one open, untaxed deposit invoice from a quote, priced by shop.
        let list = invoices_of(&mut b, &rider_id).await;
        assert_eq!(list.len(), 1);
        let inv = &list[0];
        assert_eq!(inv_path, format!("/garage/invoices/{}", inv.id));
        assert_eq!(
            (inv.source.as_str(), inv.status.as_str()),
            ("quote", "open")
        );
        assert_eq!(inv.client_id, rider_id);
        assert_eq!(inv.lines.len(), 1);
        assert_eq!(inv.lines[0].description, DEPOSIT_LINE);
        assert_eq!(inv.lines[0].quantity, 1);
        assert!(!inv.lines[0].taxable);
        assert_eq!(inv.lines[0].amount.as_ref().unwrap().amount_cents, 41_015);
        assert_eq!(inv.tax.as_ref().unwrap().amount_cents, 0);
        assert_eq!(inv.total.as_ref().unwrap().amount_cents, 41_015);
        // The garage lists it.
        let home = rider.get("/garage").await;
        assert!(
            home.body.contains(&inv.number) && home.body.contains("$410.15"),
            "{}",
            home.body
        );
        // Asking again (a double click) gets the same open invoice, not a second one.
        let again = rider
            .post("/shop/battery-quote/request", &build_form(&csrf))
            .await;
        assert_eq!(
            (again.status, again.location.as_str()),
            (303, inv_path.as_str())
        );
        assert_eq!(invoices_of(&mut b, &rider_id).await.len(), 1);

        // Another client: not theirs.
        let mut other = signed_in(&site, &sink, "other").await;
        assert_eq!(other.get(&inv_path).await.status, 404);
        let other_csrf = other.get("/garage").await.csrf();
        assert_eq!(
            other
                .post(&format!("{inv_path}/pay"), &[("csrf", &other_csrf)])
                .await
                .status,
            404
        );

        // ---- the billing RPC itself -----------------------------------------------------------
        for who in [
            Actor::Staff {
                id: "stf_1".into(),
                role: StaffRole::Owner,
            },
            Actor::System("site".into()),
        ] {
            let e = b
                .create_quote_deposit(auth::request(&who, worked_rpc()))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{who:?}: {e:?}");
        }
        let nobody = b.create_quote_deposit(worked_rpc()).await.unwrap_err();
        assert_eq!(nobody.code(), Code::Unauthenticated);
        let other_id = client_of(&mut g, &other).await;
        let mut bad = worked_rpc();
        bad.voltage_class = "90V".into();
        let e = b
            .create_quote_deposit(auth::request(&Actor::Client(other_id.clone()), bad))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, BAD_CLASS));
        // A smart-BMS 18650 pack for the other client: its own invoice, shop's price.
        let smart = b
            .create_quote_deposit(auth::request(
                &Actor::Client(other_id.clone()),
                bpb::CreateQuoteDepositRequest {
                    range_miles: 0,
                    energy_wh: 500,
                    voltage_class: "48V".into(),
                    cell: "18650".into(),
                    bms: "Smart".into(),
                    wh_per_mile: 0,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(smart.client_id, other_id);
        assert_eq!(
            smart.lines[0].description,
            "65% deposit: custom battery pack 13S4P (54.6 V, 18650, smart BMS)"
        );
        assert_ne!(smart.id, inv.id);
        assert_eq!(invoices_of(&mut b, &rider_id).await.len(), 1);

        site.stop().await;
        drop(billing);
        drop(shop);
        garage.stop().await;
    }
}
