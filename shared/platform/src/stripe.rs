//! Stripe, written once: an API client (form-encoded requests, an idempotency key on every
//! create, retries on 429/5xx with backoff, base URL from config so tests use localstripe or a
//! fake) and webhook signature verification (`Stripe-Signature`, HMAC-SHA256 over `t.payload`,
//! 300 s tolerance).
//!
//! Config (`[stripe]`): `base_url`, `timeout_ms`, `max_retries`, `enabled`. The secret key comes
//! from `/omneuro/stripe/secret_key`; without it the client is off and says why: payments are
//! refused, never faked.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::secrets::{Secret, SecretStore, names};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeConfig {
    pub base_url: String,
    pub timeout_ms: u64,
    /// Retries after a 429, a 5xx or a connection failure (same idempotency key).
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub enabled: bool,
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.stripe.com".into(),
            timeout_ms: 15_000,
            max_retries: 3,
            retry_base_ms: 250,
            enabled: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error("Stripe is off: {0}")]
    Off(String),
    /// Stripe refused the request (4xx other than 429): it will not work if retried.
    #[error("Stripe refused the request ({status} {kind}): {message}")]
    Refused {
        status: u16,
        kind: String,
        code: String,
        message: String,
    },
    /// Rate limited, 5xx, timeout or connection failure after every retry.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
}

impl StripeError {
    /// The typed status a caller sees; `when_off` says what to do instead while Stripe is off
    /// (e.g. "please pay at the counter").
    pub fn into_status(self, when_off: &str) -> tonic::Status {
        match self {
            StripeError::Off(why) => tonic::Status::failed_precondition(format!(
                "Online payment is switched off ({why}); {when_off}."
            )),
            StripeError::Refused { message, .. } => {
                tonic::Status::failed_precondition(format!("The card processor refused: {message}"))
            }
            StripeError::Unavailable(_) => tonic::Status::unavailable(
                "The card processor is unavailable; please try again in a minute.",
            ),
        }
    }

    pub fn is_permanent(&self) -> bool {
        !matches!(self, StripeError::Unavailable(_))
    }
}

#[derive(Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: String,
    key: Option<Secret>,
    off: Option<String>,
    max_retries: u32,
    retry_base: Duration,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("base", &self.base)
            .field("off", &self.off)
            .finish_non_exhaustive()
    }
}

impl Stripe {
    /// Never fails start-up: a missing key turns payments off with a clear reason.
    pub async fn from_config(cfg: &StripeConfig, secrets: &SecretStore) -> Self {
        let key = if cfg.enabled {
            secrets.get(names::STRIPE_SECRET_KEY).await.ok()
        } else {
            None
        };
        let off = if !cfg.enabled {
            Some("stripe.enabled is false".to_owned())
        } else if key.is_none() {
            Some(format!("secret {} is not set", names::STRIPE_SECRET_KEY))
        } else {
            None
        };
        match &off {
            Some(why) => tracing::warn!(reason = %why, "Stripe is off: payments are refused"),
            None => tracing::info!(base_url = %cfg.base_url, "Stripe is on"),
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: cfg.base_url.trim_end_matches('/').to_owned(),
            key,
            off,
            max_retries: cfg.max_retries,
            retry_base: Duration::from_millis(cfg.retry_base_ms),
        }
    }

    pub fn is_on(&self) -> bool {
        self.off.is_none()
    }

    pub fn off_reason(&self) -> Option<&str> {
        self.off.as_deref()
    }

    /// `POST /v1/...` with form fields; `idempotency_key` makes a retried create a no-op.
    pub async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<serde_json::Value, StripeError> {
        self.send(
            reqwest::Method::POST,
            path,
            Some(form),
            Some(idempotency_key),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Result<serde_json::Value, StripeError> {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        form: Option<&[(String, String)]>,
        idempotency_key: Option<&str>,
    ) -> Result<serde_json::Value, StripeError> {
        let key = match (&self.off, &self.key) {
            (None, Some(k)) => k,
            (Some(why), _) => return Err(StripeError::Off(why.clone())),
            (None, None) => return Err(StripeError::Off("no secret key".into())),
        };
        let url = format!("{}{path}", self.base);
        let mut last = String::new();
        for attempt in 0..=self.max_retries {
            if attempt > 0 {
                tokio::time::sleep(self.retry_base * 2u32.saturating_pow(attempt - 1)).await;
            }
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(key.expose());
            if let Some(k) = idempotency_key {
                rb = rb.header("Idempotency-Key", k);
            }
            if let Some(f) = form {
                rb = rb
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(encode_form(f));
            }
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = redact(&e.to_string(), key.expose());
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let err = &body["error"];
            let message = err["message"].as_str().unwrap_or("no message").to_owned();
            if status == 429 || status >= 500 {
                last = format!("HTTP {status}: {message}");
                tracing::warn!(http.status = status, attempt, "Stripe asked us to retry");
                continue;
            }
            return Err(StripeError::Refused {
                status,
                kind: err["type"].as_str().unwrap_or_default().to_owned(),
                code: err["code"]
                    .as_str()
                    .or_else(|| err["decline_code"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                message: redact(&message, key.expose()),
            });
        }
        Err(StripeError::Unavailable(last))
    }
}

/// `application/x-www-form-urlencoded`, Stripe's request format (bracket keys stay as given).
pub fn encode_form(fields: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn redact(text: &str, key: &str) -> String {
    if key.is_empty() {
        text.to_owned()
    } else {
        text.replace(key, "[redacted]")
    }
}

/// Stripe's default tolerance for webhook timestamps.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing or malformed Stripe-Signature header")]
    Malformed,
    #[error("no signature matches the payload")]
    BadSignature,
    #[error("signature timestamp is outside the {WEBHOOK_TOLERANCE_SECS} s tolerance")]
    Stale,
}

/// `v1` signature of `payload` at `timestamp`, as Stripe computes it (hex HMAC-SHA256 of `t.payload`).
pub fn webhook_signature(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) against the raw body: any `v1` may
/// match (secret rotation), compared in constant time; the timestamp must be within `tolerance`
/// seconds of `now`.
pub fn verify_webhook(
    payload: &[u8],
    header: &str,
    secret: &str,
    now: i64,
    tolerance: i64,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_owned()),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, sigs.is_empty()) else {
        return Err(WebhookError::Malformed);
    };
    let expected = webhook_signature(secret, t, payload);
    let matches = sigs.iter().any(|s| {
        s.len() == expected.len()
            && s.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    if (now - t).abs() > tolerance {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = br#"{"id":"evt_test","type":"payment_intent.succeeded"}"#;
    const VECTOR: &str = "1fa069bafb0fb0ec61ca8e80964ba68904130b9623f205d87d85ad75d5de7d02";

    #[test]
    fn the_published_test_vector_verifies() {
        assert_eq!(
            webhook_signature("whsec_test_secret", 1_700_000_000, PAYLOAD),
            VECTOR
        );
        let header = format!("t=1700000000,v1={VECTOR}");
        assert_eq!(
            verify_webhook(PAYLOAD, &header, "whsec_test_secret", 1_700_000_100, 300),
            Ok(())
        );
    }

    #[test]
    fn forged_stale_and_malformed_signatures_are_refused() {
        let header = format!("t=1700000000,v1={VECTOR}");
        assert_eq!(
            verify_webhook(PAYLOAD, &header, "whsec_other", 1_700_000_000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(b"{}", &header, "whsec_test_secret", 1_700_000_000, 300),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(PAYLOAD, &header, "whsec_test_secret", 1_700_000_301, 300),
            Err(WebhookError::Stale)
        );
        for bad in ["", "t=abc,v1=00", "v1=00", "t=1700000000"] {
            assert_eq!(
                verify_webhook(PAYLOAD, bad, "whsec_test_secret", 1_700_000_000, 300),
                Err(WebhookError::Malformed),
                "{bad}"
            );
        }
        // Rotation: a second v1 that matches is enough; v0 is ignored.
        let rotated = format!("t=1700000000,v0=abc,v1=deadbeef,v1={VECTOR}");
        assert!(verify_webhook(PAYLOAD, &rotated, "whsec_test_secret", 1_700_000_000, 300).is_ok());
    }

    #[test]
    fn forms_are_encoded_as_stripe_expects() {
        let f = vec![
            ("line_items[0][price]".to_owned(), "price_1".to_owned()),
            ("metadata[note]".to_owned(), "a b&c".to_owned()),
        ];
        assert_eq!(
            encode_form(&f),
            "line_items%5B0%5D%5Bprice%5D=price_1&metadata%5Bnote%5D=a+b%26c"
        );
    }
}
