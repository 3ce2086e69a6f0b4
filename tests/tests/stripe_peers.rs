//! The Stripe test peers behave as Stripe does, shown with plain HTTP (there is no Rust Stripe
//! client yet): localstripe takes card payments, declines the decline test card, refunds, and
//! sends webhooks whose signature the official library accepts; the fake takes prices and
//! Checkout Sessions the way Stripe's API reference describes, honours idempotency keys, pays on
//! its hosted page, and signs its webhooks; the official library reproduces PEERS.md's vector.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use omneuro_tests::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- a webhook endpoint ------------------------------------------------------------------------

/// One request a webhook endpoint received: lower-cased header names, the raw body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers every POST 200 and keeps what it got.
struct WebhookSink {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(Received {
        path,
        headers,
        body,
    })
}

impl WebhookSink {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/stripe/webhook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = got.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    while let Some(req) = read_request(&mut conn).await {
                        sink.lock().unwrap().push(req);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if conn.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, got, task }
    }

    /// Waits (15 s) for a request whose JSON `type` is `event_type`.
    async fn wait_for(&self, event_type: &str) -> Received {
        let found = eventually(Duration::from_secs(15), || async {
            self.find(event_type).is_some()
        })
        .await;
        assert!(
            found,
            "no {event_type} webhook; got {:?}",
            self.got
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.json()["type"].clone())
                .collect::<Vec<_>>()
        );
        self.find(event_type).unwrap()
    }

    fn find(&self, event_type: &str) -> Option<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .find(|r| {
                serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v["type"] == event_type)
            })
            .cloned()
    }
}

// ---- plain-HTTP Stripe calls -------------------------------------------------------------------

/// `method base+path` with the secret key, form-encoded `form`, an optional `Idempotency-Key`;
/// returns the status and the JSON body.
async fn stripe(
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let url = format!("{base}{path}");
    let mut rb = match method {
        "GET" => http().get(reqwest::Url::parse_with_params(&url, form).unwrap()),
        "POST" => http().post(url).form(form),
        "DELETE" => http().delete(url),
        other => panic!("no method {other}"),
    };
    rb = rb.bearer_auth(key);
    if let Some(k) = idempotency_key {
        rb = rb.header("Idempotency-Key", k);
    }
    let res = rb.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path} answered {status} non-JSON ({e}): {text}"));
    (status, body)
}

async fn ls(ls: &LocalStripe, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    stripe(&ls.base_url(), &ls.api_key, method, path, form, None).await
}

async fn fake(
    f: &FakeStripe,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    stripe(
        &f.base_url(),
        &f.api_key,
        method,
        path,
        form,
        idempotency_key,
    )
    .await
}

fn ok(answer: (u16, Value)) -> Value {
    assert_eq!(answer.0, 200, "{:#}", answer.1);
    answer.1
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v:#}"))
        .to_owned()
}

/// A customer and a confirmed PaymentIntent of `amount` cents on test card 4242… (`pm_card_visa`).
async fn paid_intent(s: &LocalStripe, amount: &str) -> Value {
    let customer = ok(ls(
        s,
        "POST",
        "/v1/customers",
        &[("email", "rider@example.com"), ("name", "Dee Rider")],
    )
    .await);
    ok(ls(
        s,
        "POST",
        "/v1/payment_intents",
        &[
            ("amount", amount),
            ("currency", "usd"),
            ("customer", &id(&customer)),
            ("payment_method", "pm_card_visa"),
            ("confirm", "true"),
            ("metadata[order_id]", "ord_1"),
        ],
    )
    .await)
}

// ---- localstripe -------------------------------------------------------------------------------

#[tokio::test]
async fn localstripe_charges_the_visa_test_card_and_the_payment_intent_succeeds() {
    let Some(s) = LocalStripe::start() else {
        return;
    };
    let pi = paid_intent(&s, "12500").await;
    assert!(id(&pi).starts_with("pi_"), "{pi:#}");
    assert_eq!(pi["object"], "payment_intent");
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["amount"], 12500);
    assert_eq!(pi["currency"], "usd");
    assert_eq!(pi["metadata"]["order_id"], "ord_1");
    assert_eq!(pi["livemode"], false);
    // localstripe embeds the charge (Stripe's old shape), not just its id.
    let charge = &pi["latest_charge"];
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["paid"], true);
    assert_eq!(charge["amount"], 12500);
    assert_eq!(pi["charges"]["data"][0]["id"], charge["id"]);

    let again = ok(ls(&s, "GET", &format!("/v1/payment_intents/{}", id(&pi)), &[]).await);
    assert_eq!(again["status"], "succeeded");
}

#[tokio::test]
async fn localstripe_declines_card_4000000000000341_with_402_card_declined() {
    let Some(s) = LocalStripe::start() else {
        return;
    };
    // localstripe wants exactly these four card fields (no more), and a 16-digit number.
    let pm = ok(ls(
        &s,
        "POST",
        "/v1/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", "4000000000000341"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ],
    )
    .await);
    assert_eq!(pm["card"]["last4"], "0341");

    let (status, err) = ls(
        &s,
        "POST",
        "/v1/payment_intents",
        &[
            ("amount", "4000"),
            ("currency", "usd"),
            ("payment_method", &id(&pm)),
            ("confirm", "true"),
        ],
    )
    .await;
    assert_eq!(status, 402, "{err:#}");
    assert_eq!(err["error"]["code"], "card_declined");
    assert_eq!(err["error"]["message"], "Your card was declined.");
    assert!(
        err["error"]["charge"].as_str().unwrap().starts_with("ch_"),
        "{err:#}"
    );

    // The failed charge is kept, as on Stripe.
    let charge = ok(ls(
        &s,
        "GET",
        &format!("/v1/charges/{}", err["error"]["charge"].as_str().unwrap()),
        &[],
    )
    .await);
    assert_eq!(charge["status"], "failed");
    assert_eq!(charge["failure_code"], "card_declined");
}

#[tokio::test]
async fn localstripe_refunds_part_then_the_rest_and_the_charge_shows_it() {
    let Some(s) = LocalStripe::start() else {
        return;
    };
    let pi = paid_intent(&s, "5000").await;
    let refund = ok(ls(
        &s,
        "POST",
        "/v1/refunds",
        &[("payment_intent", &id(&pi)), ("amount", "2000")],
    )
    .await);
    assert!(id(&refund).starts_with("re_"));
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["amount"], 2000);
    let charge_id = pi["latest_charge"]["id"].as_str().unwrap().to_owned();
    assert_eq!(refund["charge"], charge_id.as_str());

    let charge = ok(ls(&s, "GET", &format!("/v1/charges/{charge_id}"), &[]).await);
    assert_eq!(charge["amount_refunded"], 2000);
    assert_eq!(charge["refunded"], false);

    ok(ls(
        &s,
        "POST",
        "/v1/refunds",
        &[("charge", &charge_id), ("amount", "3000")],
    )
    .await);
    let charge = ok(ls(&s, "GET", &format!("/v1/charges/{charge_id}"), &[]).await);
    assert_eq!(charge["amount_refunded"], 5000);
    assert_eq!(charge["refunded"], true);
    let refunds = ok(ls(&s, "GET", "/v1/refunds", &[("payment_intent", &id(&pi))]).await);
    assert_eq!(refunds["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn localstripe_webhook_carries_a_signature_the_stripe_library_accepts() {
    let Some(s) = LocalStripe::start() else {
        return;
    };
    if stripe_python().is_none() {
        return;
    }
    let sink = WebhookSink::start().await;
    let secret = "whsec_localstripe_test";
    s.register_webhook_for(&sink.url, secret, &["payment_intent.succeeded"])
        .await;
    let pi = paid_intent(&s, "2500").await;

    let hook = sink.wait_for("payment_intent.succeeded").await;
    assert_eq!(hook.path, "/stripe/webhook");
    let event = hook.json();
    assert!(id(&event).starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["data"]["object"]["id"], id(&pi).as_str());
    let signature = hook.header("stripe-signature").expect("Stripe-Signature");
    assert!(signature.starts_with("t=") && signature.contains(",v1="));
    assert_eq!(stripe_verify(secret, signature, &hook.body), "ok");
    assert_eq!(
        stripe_verify("whsec_another", signature, &hook.body),
        "SignatureVerificationError"
    );
    // The only subscribed type: customer.created was not sent.
    assert!(sink.find("customer.created").is_none());

    // The event is also in the API.
    let listed = ok(ls(
        &s,
        "GET",
        "/v1/events",
        &[("type", "payment_intent.succeeded")],
    )
    .await);
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event["id"]),
        "{listed:#}"
    );
}

#[tokio::test]
async fn localstripe_refuses_publishable_keys_and_wipe_forgets_everything() {
    let Some(s) = LocalStripe::start() else {
        return;
    };
    let (status, _) = stripe(
        &s.base_url(),
        "pk_test_123456",
        "GET",
        "/v1/customers",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 401);

    paid_intent(&s, "1000").await;
    let before = ok(ls(&s, "GET", "/v1/customers", &[]).await);
    assert_eq!(before["data"].as_array().unwrap().len(), 1);
    s.wipe().await;
    let after = ok(ls(&s, "GET", "/v1/customers", &[]).await);
    assert_eq!(after["data"].as_array().unwrap().len(), 0, "{after:#}");
}

// ---- the fake: prices and products -------------------------------------------------------------

async fn product_and_price(f: &FakeStripe, name: &str, cents: &str) -> (String, String) {
    let product = ok(fake(
        f,
        "POST",
        "/v1/products",
        &[("name", name), ("metadata[sku]", "sku-1")],
        None,
    )
    .await);
    assert!(id(&product).starts_with("prod_"));
    let price = ok(fake(
        f,
        "POST",
        "/v1/prices",
        &[
            ("product", &id(&product)),
            ("unit_amount", cents),
            ("currency", "usd"),
        ],
        None,
    )
    .await);
    (id(&product), id(&price))
}

#[tokio::test]
async fn fake_price_replayed_with_the_same_idempotency_key_is_created_once() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    let product = ok(fake(&f, "POST", "/v1/products", &[("name", "Tune-up")], None).await);
    let form = [
        ("product", id(&product)),
        ("unit_amount", "8900".to_owned()),
        ("currency", "usd".to_owned()),
        ("metadata[catalog_id]", "svc_tuneup".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = ok(fake(&f, "POST", "/v1/prices", &form, Some("price-tuneup-1")).await);
    assert!(id(&first).starts_with("price_"), "{first:#}");
    assert_eq!(first["object"], "price");
    assert_eq!(first["unit_amount"], 8900);
    assert_eq!(first["currency"], "usd");
    assert_eq!(first["product"], id(&product).as_str());
    assert_eq!(first["active"], true);
    assert_eq!(first["type"], "one_time");
    assert_eq!(first["livemode"], false);
    assert_eq!(first["metadata"]["catalog_id"], "svc_tuneup");

    let replay = ok(fake(&f, "POST", "/v1/prices", &form, Some("price-tuneup-1")).await);
    assert_eq!(replay, first, "a replay answers exactly the first answer");

    // The same key for other parameters is refused, as on Stripe.
    let (status, err) = fake(
        &f,
        "POST",
        "/v1/prices",
        &[
            ("product", &id(&product)),
            ("unit_amount", "1"),
            ("currency", "usd"),
        ],
        Some("price-tuneup-1"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "idempotency_error");

    let state = f.state().await;
    assert_eq!(state["counts"]["prices"], 1, "{state:#}");
    assert_eq!(state["counts"]["products"], 1);
    assert_eq!(state["replays"], 1);
    let listed = ok(fake(&f, "GET", "/v1/prices", &[("product", &id(&product))], None).await);
    assert_eq!(listed["object"], "list");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(
        f.objects_dir()
            .join(format!("prices/{}.json", id(&first)))
            .is_file()
    );
}

#[tokio::test]
async fn fake_price_amount_is_immutable_but_a_price_can_be_archived() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    let (product, price) = product_and_price(&f, "Flat repair", "3500").await;
    let (status, err) = fake(
        &f,
        "POST",
        &format!("/v1/prices/{price}"),
        &[("unit_amount", "4000")],
        None,
    )
    .await;
    assert_eq!(status, 400, "{err:#}");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["param"], "unit_amount");

    let archived = ok(fake(
        &f,
        "POST",
        &format!("/v1/prices/{price}"),
        &[("active", "false"), ("metadata[replaced_by]", "price_next")],
        None,
    )
    .await);
    assert_eq!(archived["active"], false);
    assert_eq!(archived["unit_amount"], 3500);
    assert_eq!(archived["metadata"]["replaced_by"], "price_next");
    let active = ok(fake(
        &f,
        "GET",
        "/v1/prices",
        &[("product", &product), ("active", "true")],
        None,
    )
    .await);
    assert_eq!(active["data"].as_array().unwrap().len(), 0);

    let renamed = ok(fake(
        &f,
        "POST",
        &format!("/v1/products/{product}"),
        &[("name", "Flat tire repair")],
        None,
    )
    .await);
    assert_eq!(renamed["name"], "Flat tire repair");
    assert_eq!(renamed["metadata"]["sku"], "sku-1", "metadata merges");
    let (status, err) = fake(&f, "GET", "/v1/prices/price_missing", &[], None).await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn fake_refuses_a_missing_or_wrong_api_key_with_401() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    let res = http()
        .get(format!("{}/v1/prices", f.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (status, err) = stripe(
        &f.base_url(),
        "sk_test_wrong_key",
        "GET",
        "/v1/prices",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(f.state().await["requests"], 0);
}

#[tokio::test]
async fn fake_injected_429_and_500_do_nothing_and_the_retry_with_the_same_key_creates_once() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    let form = [("name", "Chain lube")];
    f.fail_next(429, 1).await;
    let (status, err) = fake(&f, "POST", "/v1/products", &form, Some("prod-lube")).await;
    assert_eq!(status, 429);
    assert_eq!(err["error"]["type"], "rate_limit_error");
    f.fail_next(500, 1).await;
    let (status, err) = fake(&f, "POST", "/v1/products", &form, Some("prod-lube")).await;
    assert_eq!(status, 500);
    assert_eq!(err["error"]["type"], "api_error");
    assert_eq!(f.state().await["counts"]["products"], 0);

    let made = ok(fake(&f, "POST", "/v1/products", &form, Some("prod-lube")).await);
    let again = ok(fake(&f, "POST", "/v1/products", &form, Some("prod-lube")).await);
    assert_eq!(id(&made), id(&again));
    let state = f.state().await;
    assert_eq!(state["counts"]["products"], 1, "{state:#}");
    assert_eq!(state["requests"], 4);
}

// ---- the fake: Checkout ------------------------------------------------------------------------

/// A session for 2 × `price` plus a $15 labour line given inline (`price_data`).
async fn open_session(f: &FakeStripe, price: &str, idempotency_key: Option<&str>) -> Value {
    ok(fake(
        f,
        "POST",
        "/v1/checkout/sessions",
        &[
            ("mode", "payment"),
            ("line_items[0][price]", price),
            ("line_items[0][quantity]", "2"),
            ("line_items[1][price_data][currency]", "usd"),
            ("line_items[1][price_data][unit_amount]", "1500"),
            ("line_items[1][price_data][product_data][name]", "Labour"),
            ("line_items[1][quantity]", "1"),
            (
                "success_url",
                "http://127.0.0.1:9/shop/paid?session_id={CHECKOUT_SESSION_ID}",
            ),
            ("cancel_url", "http://127.0.0.1:9/shop/cart"),
            ("client_reference_id", "order_42"),
            ("customer_email", "rider@example.com"),
            ("metadata[order_id]", "order_42"),
        ],
        idempotency_key,
    )
    .await)
}

#[tokio::test]
async fn fake_checkout_session_paid_on_the_hosted_page_completes_and_sends_a_signed_webhook() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    if stripe_python().is_none() {
        return;
    }
    let sink = WebhookSink::start().await;
    f.register_webhook_for(&sink.url, &["checkout.session.completed"])
        .await;
    let (_, price) = product_and_price(&f, "Brake pads", "4500").await;

    let session = open_session(&f, &price, Some("checkout-order_42")).await;
    let sid = id(&session);
    assert!(sid.starts_with("cs_test_"), "{session:#}");
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["status"], "open");
    assert_eq!(session["payment_status"], "unpaid");
    assert_eq!(session["amount_total"], 2 * 4500 + 1500);
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["client_reference_id"], "order_42");
    assert_eq!(session["metadata"]["order_id"], "order_42");
    assert_eq!(session["payment_intent"], Value::Null);
    let url = session["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/pay/{sid}", f.base_url()));

    // A retried create returns the same session.
    let retried = open_session(&f, &price, Some("checkout-order_42")).await;
    assert_eq!(id(&retried), sid);
    assert_eq!(f.state().await["counts"]["checkout_sessions"], 1);

    let items = ok(fake(
        &f,
        "GET",
        &format!("/v1/checkout/sessions/{sid}/line_items"),
        &[],
        None,
    )
    .await);
    let items = items["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["description"], "Brake pads");
    assert_eq!(items[1]["amount_total"], 1500);

    let page = http().get(url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("action=\"/pay/{sid}\"")), "{page}");
    assert!(page.contains(">Pay<") && page.contains("http://127.0.0.1:9/shop/cart"));
    assert!(page.contains("105.00 USD"), "{page}");

    let location = f.pay(&sid).await;
    assert_eq!(
        location,
        format!("http://127.0.0.1:9/shop/paid?session_id={sid}")
    );
    let paid = ok(fake(
        &f,
        "GET",
        &format!("/v1/checkout/sessions/{sid}"),
        &[],
        None,
    )
    .await);
    assert_eq!(paid["status"], "complete");
    assert_eq!(paid["payment_status"], "paid");
    let pi = paid["payment_intent"].as_str().unwrap();
    assert!(pi.starts_with("pi_"));
    let intent = ok(fake(&f, "GET", &format!("/v1/payment_intents/{pi}"), &[], None).await);
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount_received"], 10500);
    // Paying twice is not possible.
    assert_eq!(f.pay_response(&sid).await.0, 410);

    let hook = sink.wait_for("checkout.session.completed").await;
    let event = hook.json();
    assert!(id(&event).starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["data"]["object"]["id"], sid.as_str());
    assert_eq!(event["data"]["object"]["payment_status"], "paid");
    assert_eq!(event["data"]["object"]["client_reference_id"], "order_42");
    let signature = hook.header("stripe-signature").expect("Stripe-Signature");
    assert_eq!(
        stripe_verify(&f.webhook_secret, signature, &hook.body),
        "ok"
    );
    assert_eq!(
        stripe_verify(&f.webhook_secret, signature, b"{\"tampered\":true}"),
        "SignatureVerificationError"
    );

    let deliveries = f.wait_for_deliveries("checkout.session.completed", 1).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["status"], 200);
    assert_eq!(deliveries[0]["event"], event["id"]);
    let state = f.state().await;
    assert_eq!(state["counts"]["payment_intents"], 1, "{state:#}");
}

#[tokio::test]
async fn fake_checkout_session_refuses_unknown_or_archived_prices_and_zero_quantities() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    let (_, price) = product_and_price(&f, "Brake pads", "4500").await;
    let session = |price: String, quantity: &'static str| {
        let f = &f;
        async move {
            fake(
                f,
                "POST",
                "/v1/checkout/sessions",
                &[
                    ("mode", "payment"),
                    ("line_items[0][price]", &price),
                    ("line_items[0][quantity]", quantity),
                    ("success_url", "http://127.0.0.1:9/ok"),
                ],
                None,
            )
            .await
        }
    };

    let (status, err) = session("price_unknown".into(), "1").await;
    assert_eq!(status, 400, "{err:#}");
    assert_eq!(err["error"]["param"], "line_items[0][price]");
    assert_eq!(err["error"]["code"], "resource_missing");

    let (status, err) = session(price.clone(), "0").await;
    assert_eq!(status, 400, "{err:#}");
    assert_eq!(err["error"]["param"], "line_items[0][quantity]");

    ok(fake(
        &f,
        "POST",
        &format!("/v1/prices/{price}"),
        &[("active", "false")],
        None,
    )
    .await);
    let (status, err) = session(price.clone(), "1").await;
    assert_eq!(status, 400, "{err:#}");
    assert_eq!(err["error"]["param"], "line_items[0][price]");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("inactive"),
        "{err:#}"
    );
    assert_eq!(f.state().await["counts"]["checkout_sessions"], 0);
}

#[tokio::test]
async fn fake_expiring_an_open_session_sends_checkout_session_expired_and_only_once() {
    let Some(f) = FakeStripe::start() else {
        return;
    };
    let sink = WebhookSink::start().await;
    f.register_webhook(&sink.url).await;
    let (_, price) = product_and_price(&f, "Brake pads", "4500").await;
    let sid = id(&open_session(&f, &price, None).await);

    let expired = ok(fake(
        &f,
        "POST",
        &format!("/v1/checkout/sessions/{sid}/expire"),
        &[],
        None,
    )
    .await);
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["url"], Value::Null);
    let (status, err) = fake(
        &f,
        "POST",
        &format!("/v1/checkout/sessions/{sid}/expire"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 400, "{err:#}");
    assert_eq!(
        f.pay_response(&sid).await.0,
        410,
        "an expired session cannot be paid"
    );

    let hook = sink.wait_for("checkout.session.expired").await;
    assert_eq!(hook.json()["data"]["object"]["id"], sid.as_str());
    let deliveries = f.wait_for_deliveries("checkout.session.expired", 1).await;
    assert_eq!(deliveries.len(), 1);
    // Registered for everything: the product and price events came too.
    sink.wait_for("price.created").await;
}

// ---- the official library ----------------------------------------------------------------------

#[test]
fn stripe_library_reproduces_the_peers_md_signature_vector() {
    if stripe_python().is_none() {
        return;
    }
    let payload = r#"{"id":"evt_test","type":"payment_intent.succeeded"}"#;
    assert_eq!(
        stripe_sign("whsec_test_secret", 1_700_000_000, payload),
        "t=1700000000,v1=1fa069bafb0fb0ec61ca8e80964ba68904130b9623f205d87d85ad75d5de7d02"
    );
    // Verification has a 300 s tolerance: the vector's own timestamp is too old today…
    let old = "t=1700000000,v1=1fa069bafb0fb0ec61ca8e80964ba68904130b9623f205d87d85ad75d5de7d02";
    assert_eq!(
        stripe_verify("whsec_test_secret", old, payload),
        "SignatureVerificationError"
    );
    // …while a fresh one verifies, and not for another body or secret.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = stripe_sign("whsec_test_secret", now, payload);
    assert_eq!(stripe_verify("whsec_test_secret", &header, payload), "ok");
    assert_eq!(
        stripe_verify("whsec_other", &header, payload),
        "SignatureVerificationError"
    );
    assert_eq!(
        stripe_verify(
            "whsec_test_secret",
            &header,
            payload.replace("evt_test", "evt_x")
        ),
        "SignatureVerificationError"
    );
}
