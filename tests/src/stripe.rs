//! Stripe peers: localstripe (payments: customers, payment methods, PaymentIntents, refunds,
//! events, signed webhooks) run by tests/peers/localstripe_server.py; a fake of what localstripe
//! lacks (Products, Prices, Checkout Sessions with a hosted page, signed webhooks) in
//! tests/peers/fake_stripe.py; and the official `stripe` library's webhook signing as a
//! cross-check (tests/peers/stripe_sign.py). See tests/tests/stripe_peers.rs for the request shapes
//! that work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use omneuro_platform::ids;

use crate::{TempDir, free_port, peer_or_skip, repo_root, stop_child, venv_bin, which};

/// The test venv's python when it can `import module`.
fn venv_python_with(module: &str) -> Option<PathBuf> {
    venv_bin("python").filter(|p| {
        std::process::Command::new(p)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Starts `python tests/peers/<script> args…` with stdout/stderr in `dir`, and waits (20 s) for
/// its "listening PORT" line; fails the test with the peer's own output if it does not come.
fn spawn_peer(
    python: &Path,
    script: &str,
    args: &[&str],
    dir: &Path,
    port: u16,
) -> std::process::Child {
    let out_path = dir.join(format!("{script}.out"));
    let err_path = dir.join(format!("{script}.log"));
    let mut child = std::process::Command::new(python)
        .arg(repo_root().join("tests/peers").join(script))
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let ready = format!("listening {port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        if out.lines().any(|l| l.trim() == ready) {
            return child;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            stop_child(&mut child);
            panic!(
                "{script} did not start on {port} ({exited:?}):\n{out}\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn secret_key() -> String {
    // `sk_test_` + 16 lowercase letters/digits: localstripe only accepts keys starting `sk_`.
    format!("sk_{}", ids::new_id("test"))
}

/// localstripe (from the test venv) on 127.0.0.1:`port`, state in memory only; stopped on drop.
///
/// Authenticate with `Authorization: Bearer {api_key}` (any key starting `sk_` works; `pk_` keys
/// are refused with 401 except on the few endpoints a browser calls). Bodies are form-encoded
/// with bracket notation, as Stripe's.
pub struct LocalStripe {
    pub port: u16,
    pub api_key: String,
    child: std::process::Child,
    dir: TempDir,
    hooks: std::sync::atomic::AtomicU32,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl LocalStripe {
    /// Starts localstripe, or skips the test when the venv has no localstripe (a failure when
    /// peers are required).
    pub fn start() -> Option<LocalStripe> {
        let python = peer_or_skip(
            "localstripe (pip install localstripe in OMNEURO_TEST_VENV)",
            venv_python_with("localstripe"),
        )?;
        let port = free_port();
        let dir = TempDir::new("localstripe");
        let child = spawn_peer(
            &python,
            "localstripe_server.py",
            &[&port.to_string()],
            &dir.0,
            port,
        );
        Some(LocalStripe {
            port,
            api_key: secret_key(),
            child,
            dir,
            hooks: Default::default(),
        })
    }

    /// What a Stripe client's base URL should be (`…/v1/customers` and so on hang off it).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What Stripe.js does in the client's browser: a card payment method from the test card
    /// `number`, attached to the PaymentIntent, then confirmed. Returns the confirm response.
    pub async fn pay_with_card(&self, payment_intent: &str, number: &str) -> reqwest::Response {
        let (api, url, key) = (reqwest::Client::new(), self.base_url(), &self.api_key);
        let pm: serde_json::Value = api
            .post(format!("{url}/v1/payment_methods"))
            .bearer_auth(key)
            .form(&[
                ("type", "card"),
                ("card[number]", number),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2030"),
                ("card[cvc]", "123"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pm = pm["id"].as_str().unwrap_or_default();
        let attached = api
            .post(format!("{url}/v1/payment_intents/{payment_intent}"))
            .bearer_auth(key)
            .form(&[("payment_method", pm)])
            .send()
            .await
            .unwrap();
        assert_eq!(attached.status().as_u16(), 200, "attach {pm}");
        api.post(format!("{url}/v1/payment_intents/{payment_intent}/confirm"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// Sends every event to `url`, signed with `secret` (a `Stripe-Signature` header), about a
    /// second after it happens.
    pub async fn register_webhook(&self, url: &str, secret: &str) {
        self.register_webhook_for(url, secret, &[]).await;
    }

    /// As [`Self::register_webhook`], only for the given event types (all when empty).
    pub async fn register_webhook_for(&self, url: &str, secret: &str, events: &[&str]) {
        let n = self
            .hooks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut form = vec![("url", url), ("secret", secret)];
        form.extend(events.iter().map(|e| ("events[]", *e)));
        let res = crate::http()
            .post(format!("{}/_config/webhooks/hook{n}", self.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "localstripe refused the webhook: {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// Forgets every object (webhooks stay registered).
    pub async fn wipe(&self) {
        let res = crate::http()
            .delete(format!("{}/_config/data", self.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "localstripe refused the wipe");
    }

    /// localstripe's log (access log and webhook outcomes).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("localstripe_server.py.log")).unwrap_or_default()
    }
}

/// The fake of Stripe's Products, Prices and Checkout Sessions (tests/peers/fake_stripe.py,
/// Python standard library only) on 127.0.0.1:`port`, accepting only `api_key` and signing its
/// webhooks with `webhook_secret`; stopped on drop. Its module docs list every endpoint.
pub struct FakeStripe {
    pub port: u16,
    pub api_key: String,
    pub webhook_secret: String,
    child: std::process::Child,
    dir: TempDir,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl FakeStripe {
    /// Starts the fake (the test venv's python, else `python3` on PATH), or skips the test when
    /// there is no Python (a failure when peers are required).
    pub fn start() -> Option<FakeStripe> {
        let python = peer_or_skip(
            "python3 (for tests/peers/fake_stripe.py)",
            venv_bin("python").or_else(|| which("python3")),
        )?;
        let port = free_port();
        let dir = TempDir::new("fakestripe");
        let api_key = secret_key();
        let webhook_secret = format!("whsec_{}", ids::new_secret());
        let objects = dir.0.join("objects");
        let child = spawn_peer(
            &python,
            "fake_stripe.py",
            &[
                &port.to_string(),
                objects.to_str().unwrap(),
                &api_key,
                &webhook_secret,
            ],
            &dir.0,
            port,
        );
        Some(FakeStripe {
            port,
            api_key,
            webhook_secret,
            child,
            dir,
        })
    }

    /// What a Stripe client's base URL should be.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends every later event to `url` as Stripe does (JSON, `Stripe-Signature` with
    /// `webhook_secret`); returns the endpoint's id.
    pub async fn register_webhook(&self, url: &str) -> String {
        self.register_webhook_for(url, &[]).await
    }

    /// As [`Self::register_webhook`], only for the given event types (all when empty).
    pub async fn register_webhook_for(&self, url: &str, events: &[&str]) -> String {
        let mut form = vec![("url", url)];
        form.extend(events.iter().map(|e| ("enabled_events[]", *e)));
        let res = crate::http()
            .post(format!("{}/_config/webhooks", self.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "fake_stripe refused the webhook"
        );
        let v: serde_json::Value = res.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// `{"counts": {"products", "prices", "checkout_sessions", "payment_intents", "events"},
    /// "requests": authenticated /v1 calls, "replays": idempotent replays, "deliveries":
    /// [{"event", "type", "url", "status"}] (status 0 = could not connect), "webhooks": […]}`.
    pub async fn state(&self) -> serde_json::Value {
        crate::http()
            .get(format!("{}/_fake/state", self.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (15 s) until `n` deliveries of `event_type` have been answered (any status) and
    /// returns them, oldest first.
    pub async fn wait_for_deliveries(&self, event_type: &str, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let state = self.state().await;
            let got: Vec<serde_json::Value> = state["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["type"] == event_type)
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "no {n} deliveries of {event_type}; state {state:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the next `count` authenticated /v1 calls answer `status` (429 as a
    /// `rate_limit_error`, 5xx as an `api_error`) without doing anything.
    pub async fn fail_next(&self, status: u16, count: u32) {
        let res = crate::http()
            .post(format!("{}/_fake/fail", self.base_url()))
            .json(&serde_json::json!({ "status": status, "count": count }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "fake_stripe refused /_fake/fail"
        );
    }

    /// Delivers event `event_id` to the webhooks again (as `stripe events resend`).
    pub async fn resend(&self, event_id: &str) {
        let res = crate::http()
            .post(format!("{}/_fake/resend", self.base_url()))
            .json(&serde_json::json!({ "event": event_id }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "fake_stripe refused /_fake/resend"
        );
    }

    /// Presses "Pay" on the session's hosted page: `(status, Location)` without following the
    /// redirect (303 to the success URL when the session was open, else 410).
    pub async fn pay_response(&self, session_id: &str) -> (u16, String) {
        let res = crate::http()
            .post(format!("{}/pay/{session_id}", self.base_url()))
            .form(&[("pay", "1")])
            .send()
            .await
            .unwrap();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (res.status().as_u16(), location)
    }

    /// Pays an open session on its hosted page and returns where the customer is sent (the
    /// success URL with `{CHECKOUT_SESSION_ID}` filled in).
    pub async fn pay(&self, session_id: &str) -> String {
        let (status, location) = self.pay_response(session_id).await;
        assert_eq!(status, 303, "paying {session_id} did not redirect");
        location
    }

    /// Where the fake writes each object as `<kind>/<id>.json` (products, prices,
    /// checkout_sessions, payment_intents, events).
    pub fn objects_dir(&self) -> PathBuf {
        self.dir.0.join("objects")
    }

    /// The fake's request and webhook log.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("fake_stripe.py.log")).unwrap_or_default()
    }
}

/// The test venv's python with the official `stripe` library, or a skip (a failure when peers
/// are required). Call it before [`stripe_sign`] / [`stripe_verify`] to skip cleanly.
pub fn stripe_python() -> Option<PathBuf> {
    peer_or_skip(
        "the stripe library (pip install stripe in OMNEURO_TEST_VENV)",
        venv_python_with("stripe"),
    )
}

fn run_stripe_sign(args: &[&str], payload: &[u8]) -> String {
    use std::io::Write;
    let python = venv_python_with("stripe")
        .expect("the stripe library in OMNEURO_TEST_VENV (check stripe_python() first)");
    let mut child = std::process::Command::new(python)
        .arg(repo_root().join("tests/peers/stripe_sign.py"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "stripe_sign.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `Stripe-Signature` for `payload` as the official library computes it:
/// `t={timestamp},v1={hex HMAC-SHA256(secret, "{timestamp}.{payload}")}`.
pub fn stripe_sign(secret: &str, timestamp: i64, payload: impl AsRef<[u8]>) -> String {
    run_stripe_sign(&[secret, &timestamp.to_string()], payload.as_ref())
}

/// What the official library's `stripe.Webhook.construct_event(payload, header, secret)` makes of
/// a webhook: "ok", or the class name of the error (e.g. "SignatureVerificationError" for a wrong
/// secret, a changed body or a timestamp older than 300 s).
pub fn stripe_verify(secret: &str, header: &str, payload: impl AsRef<[u8]>) -> String {
    run_stripe_sign(&["--verify", secret, header], payload.as_ref())
}
