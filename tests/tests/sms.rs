//! Outgoing SMS against a local fake of Telnyx's Messaging API: a text arrives as sent; a wrong
//! key, a bad number and an unconfigured client fail for good with a clear reason; a rate limit is
//! "try later" and the retry goes through; the same idempotency key never texts twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omneuro_platform::secrets::SecretStore;
use omneuro_platform::sms::{Sms, SmsConfig, SmsError};
use omneuro_tests::*;

const SHOP: &str = "+14105550100";
const RIDER: &str = "+14435550123";

async fn client(fake: &FakeTelnyx) -> Sms {
    let sms = Sms::from_config(&fake.config(SHOP), &fake.secrets()).await;
    assert!(sms.is_on(), "{:?}", sms.off_reason());
    sms
}

#[tokio::test]
async fn a_text_arrives_with_the_right_from_to_and_text() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let cfg = SmsConfig {
        messaging_profile_id: "40017f5a-6c1e-4b0a-9f57-1c2d3e4f5a6b".into(),
        ..fake.config(SHOP)
    };
    let sms = Sms::from_config(&cfg, &fake.secrets()).await;
    let text = "Juice Junkiez: your scooter is ready for pick-up. Reply STOP to opt out.";
    let sent = sms.send(RIDER, text, None).await.unwrap();
    assert_eq!(sent.status, "queued");

    let m = fake.wait_for(RIDER, 1).await;
    assert_eq!(m["from"], SHOP);
    assert_eq!(m["to"], RIDER);
    assert_eq!(m["text"], text);
    assert_eq!(m["id"], sent.id.as_str());
    assert_eq!(
        m["messaging_profile_id"],
        "40017f5a-6c1e-4b0a-9f57-1c2d3e4f5a6b"
    );
    assert!(m["idempotency_key"].is_null());
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_printed() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let wrong = "KEYwrong-and-secret";
    let sms = Sms::from_config(&fake.config(SHOP), &FakeTelnyx::secrets_with_key(wrong)).await;
    assert!(sms.is_on());
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Unauthorized), "{err:?}");
    assert!(err.is_permanent());
    let shown = format!("{err} {err:?} {sms:?}");
    assert!(shown.contains("/omneuro/telnyx/api_key"), "{shown}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn a_bad_number_is_rejected_without_calling_out() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let sms = client(&fake).await;
    // Every call would fail at the fake; a Rejected answer proves none was made.
    fake.fail_next(500, 10).await;
    for bad in ["410-555-0123", "4435550123", "+1 443 555 0123", "+123", ""] {
        let err = sms.send(bad, "hello", None).await.unwrap_err();
        assert!(matches!(err, SmsError::Rejected(_)), "{bad:?}: {err:?}");
        assert!(err.is_permanent());
    }
    assert!(fake.messages().is_empty());
    // The fault budget is untouched: the next real call still meets it.
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn telnyx_refusals_are_permanent_with_telnyx_detail() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let sms = client(&fake).await;
    fake.fail_next(422, 1).await;
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    let SmsError::Rejected(why) = &err else {
        panic!("{err:?}");
    };
    assert!(
        why.contains("not associated with a messaging profile") && why.contains("40013"),
        "{why}"
    );
    assert!(err.is_permanent());

    fake.fail_next(404, 1).await;
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Rejected(_)), "{err:?}");

    fake.fail_next(403, 1).await;
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Unauthorized), "{err:?}");
    assert!(fake.messages().is_empty());

    // The fake itself refuses a non-E.164 `to` the way Telnyx does (our client never sends one).
    let res = http()
        .post(format!("{}/v2/messages", fake.base_url()))
        .bearer_auth(&fake.api_key)
        .json(&serde_json::json!({ "from": SHOP, "to": "12345", "text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "40310");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn rate_limited_is_unavailable_then_the_retry_goes_through() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let sms = client(&fake).await;
    fake.fail_next(429, 1).await;
    let err = sms
        .send(RIDER, "Your estimate is ready.", Some("outbox-7"))
        .await
        .unwrap_err();
    assert!(matches!(err, SmsError::Unavailable(_)), "{err:?}");
    assert!(!err.is_permanent());
    assert!(err.to_string().contains("429"), "{err}");
    assert!(fake.messages().is_empty());

    let sent = sms
        .send(RIDER, "Your estimate is ready.", Some("outbox-7"))
        .await
        .unwrap();
    let m = fake.wait_for(RIDER, 1).await;
    assert_eq!(m["id"], sent.id.as_str());
    assert_eq!(m["idempotency_key"], "outbox-7");

    fake.fail_next(500, 1).await;
    let err = sms.send(RIDER, "again", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Unavailable(_)), "{err:?}");
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_texts_once() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let sms = client(&fake).await;
    let first = sms
        .send(RIDER, "Pick-up at 5pm today.", Some("ntf_abc123"))
        .await
        .unwrap();
    let again = sms
        .send(RIDER, "Pick-up at 5pm today.", Some("ntf_abc123"))
        .await
        .unwrap();
    assert_eq!(first, again);
    let other = sms
        .send(RIDER, "Pick-up at 5pm today.", Some("ntf_def456"))
        .await
        .unwrap();
    assert_ne!(first.id, other.id);
    let got = fake.to(RIDER);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0]["idempotency_key"], "ntf_abc123");
    assert_eq!(got[1]["idempotency_key"], "ntf_def456");
}

#[tokio::test]
async fn no_key_secret_means_off_with_a_clear_reason() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let sms = Sms::from_config(&fake.config(SHOP), &SecretStore::env(Vec::new())).await;
    assert!(!sms.is_on());
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Off(_)), "{err:?}");
    assert!(err.is_permanent());
    assert!(
        err.to_string()
            .starts_with("SMS is off: secret /omneuro/telnyx/api_key is not set"),
        "{err}"
    );

    let no_from = Sms::from_config(&fake.config(""), &fake.secrets()).await;
    let err = no_from.send(RIDER, "hello", None).await.unwrap_err();
    assert_eq!(err.to_string(), "SMS is off: sms.from_number is not set");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn telnyx_down_is_unavailable() {
    let Some(fake) = FakeTelnyx::start() else {
        return;
    };
    let cfg = SmsConfig {
        base_url: format!("http://127.0.0.1:{}", free_port()),
        ..fake.config(SHOP)
    };
    let sms = Sms::from_config(&cfg, &fake.secrets()).await;
    let err = sms.send(RIDER, "hello", None).await.unwrap_err();
    assert!(matches!(err, SmsError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains(&fake.api_key), "{err}");
}
