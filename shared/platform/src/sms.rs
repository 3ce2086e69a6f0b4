//! Outgoing SMS through Telnyx's Messaging API (`POST {base_url}/v2/messages`), written once.
//!
//! Config (`[sms]`): `base_url`, `from_number` (E.164, a number on the Telnyx account),
//! `messaging_profile_id` (optional), `timeout_ms`, `enabled`. The API key comes from the secret
//! `/omneuro/telnyx/api_key`, never from the file, and is never printed.
//!
//! Building the client never fails start-up: when SMS is disabled, has no sender number or has no
//! API key, the client is *off* — it says why once at start (a warning) and every
//! [`Sms::send`] answers [`SmsError::Off`], a permanent error naming what is missing, so an
//! outbox records the reason instead of retrying for ever.
//!
//! Errors follow Telnyx's API reference (`{"errors": [{"code", "title", "detail"}]}`):
//! 401/403 are [`SmsError::Unauthorized`], other refusals (400, 404, 422, …) are
//! [`SmsError::Rejected`] — both permanent — while 408, 409, 429, 5xx, time-outs and connection
//! failures are [`SmsError::Unavailable`]: retry later, with the same idempotency key, so a retry
//! after a lost answer is not a second text.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::secrets::{Secret, SecretError, SecretStore, names};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Telnyx's API root; tests point it at a local fake.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The sending number in E.164 (`+14105550100`); empty keeps SMS off.
    #[serde(default, deserialize_with = "phone_number")]
    pub from_number: String,
    /// Sent with every message when set (the number's own profile applies otherwise).
    #[serde(default)]
    pub messaging_profile_id: String,
    /// Whole-request timeout (connect, send, answer).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Off: nothing is texted; every send answers [`SmsError::Off`].
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_base_url() -> String {
    "https://api.telnyx.com".into()
}
fn default_timeout() -> u64 {
    10_000
}
fn yes() -> bool {
    true
}

/// `OMNEURO__SMS__FROM_NUMBER=+14105550100` arrives as a TOML integer (the env layer reads
/// scalars as TOML); take it back as the E.164 string it was.
fn phone_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(s) => s,
        Raw::Number(n) => format!("+{n}"),
    })
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            base_url: default_base_url(),
            from_number: String::new(),
            messaging_profile_id: String::new(),
            timeout_ms: default_timeout(),
            enabled: true,
        }
    }
}

/// What Telnyx said about an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// Telnyx's message id (a UUID); delivery receipts name it.
    pub id: String,
    /// The recipient's status at acceptance, normally `queued`.
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// SMS is not configured here (disabled, no sender number, no API key); permanent.
    #[error("SMS is off: {0}")]
    Off(String),
    /// Telnyx refused the API key (401/403); permanent until the secret is fixed.
    #[error(
        "Telnyx refused the API key (secret {}): check that it is current and allowed to send messages",
        names::TELNYX_API_KEY
    )]
    Unauthorized,
    /// Telnyx (or the check before calling it) refused this message for good: a bad number, an
    /// empty text, a number not on the account, …
    #[error("the text message was refused: {0}")]
    Rejected(String),
    /// Rate limit, Telnyx trouble, time-out or no connection: worth retrying later.
    #[error("Telnyx is unavailable: {0}")]
    Unavailable(String),
}

impl SmsError {
    /// True when retrying the same message will not help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, SmsError::Unavailable(_))
    }
}

/// Whether `number` looks like E.164: `+`, then 8 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// Telnyx's idempotency key format: 1 to 255 letters, digits, `-`, `_` or `:`.
fn is_idempotency_key(key: &str) -> bool {
    (1..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

#[derive(Debug, Clone)]
struct On {
    http: reqwest::Client,
    url: String,
    from: String,
    messaging_profile_id: Option<String>,
    key: Secret,
}

#[derive(Debug, Clone)]
enum State {
    On(On),
    Off(String),
}

/// The Telnyx client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Sms {
    state: State,
}

impl Sms {
    /// Builds the client from config, reading the API key secret. Never fails: a missing piece
    /// turns SMS off (logged once here) and every send says why.
    pub async fn from_config(cfg: &SmsConfig, secrets: &SecretStore) -> Sms {
        let state = match Self::on(cfg, secrets).await {
            Ok(on) => {
                tracing::info!(from = %on.from, url = %on.url, "SMS through Telnyx is on");
                State::On(on)
            }
            Err(reason) => {
                tracing::warn!(reason = %reason, "SMS is off: texts will not be sent");
                State::Off(reason)
            }
        };
        Sms { state }
    }

    async fn on(cfg: &SmsConfig, secrets: &SecretStore) -> Result<On, String> {
        if !cfg.enabled {
            return Err("sms.enabled is false".into());
        }
        let from = cfg.from_number.trim();
        if from.is_empty() {
            return Err("sms.from_number is not set".into());
        }
        if !is_e164(from) {
            return Err(format!(
                "sms.from_number {from:?} is not an E.164 number such as +14105550100"
            ));
        }
        let base = cfg.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(format!(
                "sms.base_url {base:?} is not an http(s) URL such as https://api.telnyx.com"
            ));
        }
        let key = match secrets.get(names::TELNYX_API_KEY).await {
            Ok(key) => key,
            Err(SecretError::Missing { name, hint }) => {
                return Err(format!("secret {name} is not set ({hint})"));
            }
            Err(SecretError::Unavailable {
                name,
                source_name,
                message,
            }) => {
                return Err(format!(
                    "secret {name} could not be read from {source_name} at start-up: {message}"
                ));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.timeout_ms.min(5_000)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
        let profile = cfg.messaging_profile_id.trim();
        Ok(On {
            http,
            url: format!("{base}/v2/messages"),
            from: from.to_owned(),
            messaging_profile_id: (!profile.is_empty()).then(|| profile.to_owned()),
            key,
        })
    }

    /// Whether texts can go out (false: every send answers [`SmsError::Off`]).
    pub fn is_on(&self) -> bool {
        matches!(self.state, State::On(_))
    }

    /// Why SMS is off (`None` when on).
    pub fn off_reason(&self) -> Option<&str> {
        match &self.state {
            State::On(_) => None,
            State::Off(reason) => Some(reason),
        }
    }

    /// Texts `text` to `to` (E.164). Give the same `idempotency_key` when retrying the same
    /// message (e.g. its outbox row id): Telnyx then answers the first send's result instead of
    /// sending again.
    pub async fn send(
        &self,
        to: &str,
        text: &str,
        idempotency_key: Option<&str>,
    ) -> Result<SentSms, SmsError> {
        let on = match &self.state {
            State::On(on) => on,
            State::Off(reason) => return Err(SmsError::Off(reason.clone())),
        };
        if !is_e164(to) {
            return Err(SmsError::Rejected(format!(
                "{to:?} is not a phone number in E.164 form such as +14105550100"
            )));
        }
        if text.trim().is_empty() {
            return Err(SmsError::Rejected("the text is empty".into()));
        }
        if let Some(k) = idempotency_key
            && !is_idempotency_key(k)
        {
            return Err(SmsError::Rejected(format!(
                "idempotency key {k:?} is not 1 to 255 letters, digits, '-', '_' or ':'"
            )));
        }

        let mut body = serde_json::json!({ "from": on.from, "to": to, "text": text });
        if let Some(p) = &on.messaging_profile_id {
            body["messaging_profile_id"] = serde_json::Value::String(p.clone());
        }
        let mut req = on
            .http
            .post(&on.url)
            .bearer_auth(on.key.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }

        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => return Err(on.redact(SmsError::Unavailable(describe(&e)))),
        };
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(e) if status.is_success() => {
                // Accepted, but the answer was lost: a retry (same key) is the safe way to learn more.
                return Err(on.redact(SmsError::Unavailable(format!(
                    "Telnyx answered {status} but the body could not be read: {}",
                    describe(&e)
                ))));
            }
            Err(_) => Default::default(),
        };

        if status.is_success() {
            let sent = parse_sent(&bytes);
            if sent.id.is_empty() {
                tracing::warn!(to = %crate::telemetry::masked_phone(to), http.status = status.as_u16(), "Telnyx accepted the message but its answer has no message id");
            }
            tracing::info!(to = %crate::telemetry::masked_phone(to), sms.id = %sent.id, sms.status = %sent.status, "text message accepted by Telnyx");
            return Ok(sent);
        }

        let why = telnyx_error(&bytes).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no error description")
                .to_owned()
        });
        let err = match status.as_u16() {
            401 | 403 => SmsError::Unauthorized,
            408 | 409 | 425 | 429 | 500..=599 => {
                let mut msg = format!("Telnyx answered {}: {why}", status.as_u16());
                if let Some(after) = retry_after {
                    msg.push_str(&format!(" (retry after {after})"));
                }
                SmsError::Unavailable(msg)
            }
            _ => SmsError::Rejected(why),
        };
        let err = on.redact(err);
        tracing::warn!(to = %crate::telemetry::masked_phone(to), http.status = status.as_u16(), error = %err, "Telnyx did not accept the text message");
        Err(err)
    }
}

impl On {
    /// Belt and braces: no error text ever carries the API key, whatever a peer echoes.
    fn redact(&self, err: SmsError) -> SmsError {
        let key = self.key.expose();
        let clean = |s: String| {
            if key.is_empty() {
                s
            } else {
                s.replace(key, "[redacted]")
            }
        };
        match err {
            SmsError::Rejected(s) => SmsError::Rejected(clean(s)),
            SmsError::Unavailable(s) => SmsError::Unavailable(clean(s)),
            SmsError::Off(s) => SmsError::Off(clean(s)),
            SmsError::Unauthorized => SmsError::Unauthorized,
        }
    }
}

/// A transport error with its causes (reqwest's own text is terse: "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        format!("timed out: {e}")
    } else if e.is_connect() {
        format!("could not connect: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !msg.contains(&s_text) {
            msg.push_str(": ");
            msg.push_str(&s_text);
        }
        source = s.source();
    }
    msg
}

/// `{"data": {"id": "...", "to": [{"phone_number": "...", "status": "queued"}], ...}}`.
fn parse_sent(body: &[u8]) -> SentSms {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let data = &v["data"];
    SentSms {
        id: data["id"].as_str().unwrap_or_default().to_owned(),
        status: data["to"][0]["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
    }
}

/// The first of Telnyx's `errors`: its detail (or title), with its code.
fn telnyx_error(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = v["errors"].get(0)?;
    let text = [&first["detail"], &first["title"]]
        .into_iter()
        .filter_map(|t| t.as_str())
        .find(|t| !t.trim().is_empty())?
        .to_owned();
    Some(match &first["code"] {
        serde_json::Value::String(c) if !c.is_empty() => format!("{text} (Telnyx code {c})"),
        serde_json::Value::Number(c) => format!("{text} (Telnyx code {c})"),
        _ => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(key: Option<&str>) -> SecretStore {
        SecretStore::env(key.map(|k| {
            (
                SecretStore::env_var_name(names::TELNYX_API_KEY),
                k.to_owned(),
            )
        }))
    }

    fn cfg(from: &str) -> SmsConfig {
        SmsConfig {
            from_number: from.into(),
            ..SmsConfig::default()
        }
    }

    #[test]
    fn config_defaults_and_strict_keys() {
        let d = SmsConfig::default();
        assert_eq!(d.base_url, "https://api.telnyx.com");
        assert_eq!(d.from_number, "");
        assert_eq!(d.messaging_profile_id, "");
        assert_eq!(d.timeout_ms, 10_000);
        assert!(d.enabled);

        let parsed: SmsConfig = toml::from_str("").unwrap();
        assert_eq!(parsed.base_url, d.base_url);
        assert_eq!(parsed.timeout_ms, d.timeout_ms);
        assert!(parsed.enabled);
        assert!(toml::from_str::<SmsConfig>("from = \"+14105550100\"").is_err());
        // What `OMNEURO__SMS__FROM_NUMBER=+14105550100` becomes after the env layer.
        let n: SmsConfig = toml::from_str("from_number = +14105550100").unwrap();
        assert_eq!(n.from_number, "+14105550100");
        let s: SmsConfig = toml::from_str("from_number = \"+14105550100\"").unwrap();
        assert_eq!(s.from_number, "+14105550100");

        #[derive(Deserialize)]
        struct Service {
            #[serde(default)]
            sms: SmsConfig,
        }
        let env = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let svc: Service = crate::config::load(
            "",
            None,
            [
                env("OMNEURO__SMS__FROM_NUMBER", "+14105550100"),
                env("OMNEURO__SMS__TIMEOUT_MS", "2500"),
            ],
        )
        .unwrap();
        assert_eq!(svc.sms.from_number, "+14105550100");
        assert_eq!(svc.sms.timeout_ms, 2500);
        assert!(svc.sms.enabled);
    }

    #[test]
    fn e164_check() {
        for good in [
            "+14105550100",
            "+442071838750",
            "+12345678",
            "+123456789012345",
        ] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "",
            "+",
            "14105550100",
            "+1 410 555 0100",
            "+1-410-555-0100",
            "+1234567",
            "+1234567890123456",
            "+04105550100",
            "+1410555010a",
            "++14105550100",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert!(is_idempotency_key("outbox:42-a_b"));
        assert!(!is_idempotency_key(""));
        assert!(!is_idempotency_key("has space"));
        assert!(!is_idempotency_key(&"k".repeat(256)));
    }

    #[tokio::test]
    async fn off_states_say_what_is_missing() {
        async fn off(s: &Sms) -> Result<SentSms, SmsError> {
            s.send("+14105550100", "hi", None).await
        }

        let disabled = Sms::from_config(
            &SmsConfig {
                enabled: false,
                ..cfg("+14105550101")
            },
            &store(Some("KEY")),
        )
        .await;
        assert!(!disabled.is_on());
        let e = off(&disabled).await.unwrap_err();
        assert!(e.is_permanent());
        assert_eq!(e.to_string(), "SMS is off: sms.enabled is false");

        let no_from = Sms::from_config(&cfg(""), &store(Some("KEY"))).await;
        assert!(!no_from.is_on());
        let e = off(&no_from).await.unwrap_err();
        assert!(matches!(e, SmsError::Off(_)) && e.is_permanent());
        assert_eq!(e.to_string(), "SMS is off: sms.from_number is not set");

        let bad_from = Sms::from_config(&cfg("410-555-0101"), &store(Some("KEY"))).await;
        let e = off(&bad_from).await.unwrap_err().to_string();
        assert!(e.contains("sms.from_number") && e.contains("E.164"), "{e}");

        let no_key = Sms::from_config(&cfg("+14105550101"), &store(None)).await;
        assert!(!no_key.is_on());
        let e = off(&no_key).await.unwrap_err();
        assert!(e.is_permanent());
        let e = e.to_string();
        assert!(
            e.starts_with("SMS is off: secret /omneuro/telnyx/api_key is not set")
                && e.contains("OMNEURO_SECRET_TELNYX_API_KEY"),
            "{e}"
        );
        assert_eq!(no_key.off_reason(), Some(&e["SMS is off: ".len()..]));

        let on = Sms::from_config(&cfg("+14105550101"), &store(Some("KEY-123"))).await;
        assert!(on.is_on() && on.off_reason().is_none());
        assert!(!format!("{on:?}").contains("KEY-123"));
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_calling_out() {
        // Nothing listens at this address: reaching the network would be Unavailable, not Rejected.
        let sms = Sms::from_config(
            &SmsConfig {
                base_url: "http://127.0.0.1:9".into(),
                ..cfg("+14105550101")
            },
            &store(Some("KEY")),
        )
        .await;
        for (to, text, key) in [
            ("4105550100", "hi", None),
            ("+14105550100", "  ", None),
            ("+14105550100", "hi", Some("not a key")),
        ] {
            let e = sms.send(to, text, key).await.unwrap_err();
            assert!(
                matches!(e, SmsError::Rejected(_)) && e.is_permanent(),
                "{e}"
            );
        }
    }

    #[test]
    fn telnyx_errors_and_answers_are_read() {
        let body = br#"{"errors":[{"code":"40310","title":"Invalid 'to' address","detail":"The 'to' address is not valid."}]}"#;
        assert_eq!(
            telnyx_error(body).unwrap(),
            "The 'to' address is not valid. (Telnyx code 40310)"
        );
        let title_only = br#"{"errors":[{"code":"10011","title":"Too many requests"}]}"#;
        assert_eq!(
            telnyx_error(title_only).unwrap(),
            "Too many requests (Telnyx code 10011)"
        );
        assert!(telnyx_error(b"<html>bad gateway</html>").is_none());
        let ok = br#"{"data":{"id":"4031-abc","to":[{"phone_number":"+14105550100","status":"queued"}]}}"#;
        assert_eq!(
            parse_sent(ok),
            SentSms {
                id: "4031-abc".into(),
                status: "queued".into()
            }
        );
        assert!(!SmsError::Unavailable("x".into()).is_permanent());
        assert!(SmsError::Unauthorized.is_permanent());
    }
}
