//! Telnyx's inbound SMS webhook on repairbot, over real HTTP with real garage, on both databases:
//! a client texts STOP and garage records the opt-out; Telnyx's redelivery of the same event
//! changes nothing twice; forged, stale and unsigned deliveries are refused and change nothing;
//! other texts are acknowledged; without the public key configured every delivery is refused
//! with 503 (Telnyx retries later), and garage down is 503 too — the event is handled in full on
//! the retry.

use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use omneuro_platform::auth::{self, Actor};
use omneuro_proto::garage::v1 as pb;
use omneuro_tests::*;

fn event(id: &str, kind: &str, from: &str, text: &str) -> String {
    serde_json::json!({
        "data": {
            "id": id,
            "event_type": kind,
            "record_type": "event",
            "payload": {"from": {"phone_number": from}, "text": text, "direction": "inbound"}
        }
    })
    .to_string()
}

async fn deliver(
    url: &str,
    body: &str,
    headers: Option<(&Ed25519KeyPair, i64)>,
) -> (u16, serde_json::Value) {
    let mut rb = http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some((kp, ts)) = headers {
        let sig = kp.sign(format!("{ts}|{body}").as_bytes());
        rb = rb
            .header("telnyx-timestamp", ts.to_string())
            .header("telnyx-signature-ed25519", B64.encode(sig.as_ref()));
    }
    let res = rb.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_texts_stop_once_and_forged_deliveries_change_nothing() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let kp = Ed25519KeyPair::generate().unwrap();
    let public_key = B64.encode(kp.public_key().as_ref());
    for backend in backends() {
        let (gdb, rdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "repairbot"),
        );
        let garage = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        wait_ready(&garage).await;
        let mut g = pb::garage_service_client::GarageServiceClient::new(garage.channel());
        let (client, _) =
            client_with_vehicle(&mut g, &sink, "stop", other_vehicle("Begode", "T4")).await;
        allow_sms(&mut g, &client.id, "+14105550177").await;
        let opted_out = |g: &pb::garage_service_client::GarageServiceClient<_>| {
            let (mut g, id) = (g.clone(), client.id.clone());
            async move {
                g.get_client(auth::request(
                    &Actor::Client(id.clone()),
                    pb::GetClientRequest { client_id: id },
                ))
                .await
                .unwrap()
                .into_inner()
                .sms_opted_out
            }
        };
        assert!(!opted_out(&g).await);

        let tmp = TempDir::new("repairbot");
        let start = |key: Option<&str>, garage_url: String| {
            let mut env = vec![
                ("OMNEURO__DATABASE__URL", rdb.url.clone()),
                ("OMNEURO__UPSTREAMS__GARAGE", garage_url),
            ];
            if let Some(k) = key {
                env.push(("OMNEURO_SECRET_TELNYX_PUBLIC_KEY", k.to_owned()));
            }
            Proc::spawn("repairbot", &env, &tmp.0)
        };

        // Without the public key: refused with 503, nothing recorded.
        let mut bot = start(None, garage.grpc_url());
        bot.wait_ready().await;
        let url = format!("http://{}/webhooks/telnyx/sms", bot.http);
        let now = chrono::Utc::now().timestamp();
        let stop = event("evt_stop_1", "message.received", "+14105550177", "Stop");
        let (status, _) = deliver(&url, &stop, Some((&kp, now))).await;
        assert_eq!(status, 503);
        assert!(!opted_out(&g).await);
        bot.terminate();

        let mut bot = start(Some(&public_key), garage.grpc_url());
        bot.wait_ready().await;
        let url = format!("http://{}/webhooks/telnyx/sms", bot.http);

        // Forged (another key), stale, unsigned, tampered: 400 and nothing happens.
        let other = Ed25519KeyPair::generate().unwrap();
        let signed_then_changed = {
            let sig = kp.sign(format!("{now}|{stop}").as_bytes());
            http()
                .post(&url)
                .header("telnyx-timestamp", now.to_string())
                .header("telnyx-signature-ed25519", B64.encode(sig.as_ref()))
                .body(stop.replace("Stop", "STOP "))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(signed_then_changed, 400);
        for (headers, why) in [
            (Some((&other, now)), "another key"),
            (Some((&kp, now - 3600)), "an hour old"),
            (None, "unsigned"),
        ] {
            let (status, _) = deliver(&url, &stop, headers).await;
            assert_eq!(status, 400, "{why}");
        }
        assert!(!opted_out(&g).await, "nothing acted on");

        // garage away: 503, not recorded — the retry later is handled in full.
        garage.stop().await;
        let (status, _) = deliver(&url, &stop, Some((&kp, now))).await;
        assert_eq!(status, 503);
        let garage = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        wait_ready(&garage).await;
        bot.terminate();
        let bot = start(Some(&public_key), garage.grpc_url());
        bot.wait_ready().await;
        let url = format!("http://{}/webhooks/telnyx/sms", bot.http);
        let g = pb::garage_service_client::GarageServiceClient::new(garage.channel());

        // The genuine STOP: the opt-out is in garage; Telnyx's redelivery is a duplicate.
        let (status, body) = deliver(&url, &stop, Some((&kp, now))).await;
        assert_eq!(
            (status, body["result"].as_str()),
            (200, Some("opted out")),
            "{body}"
        );
        assert!(opted_out(&g).await);
        let (status, body) = deliver(&url, &stop, Some((&kp, now + 5))).await;
        assert_eq!(status, 200);
        assert!(
            body["result"].as_str().unwrap().starts_with("duplicate"),
            "{body}"
        );
        let (events, _) = rdb.query_pair(
            "SELECT COUNT(*) AS a, CAST(0 AS BIGINT) AS b FROM telnyx_events WHERE id = 'evt_stop_1'",
        );
        assert_eq!(events, 1);

        // Any other text, and other events: acknowledged, nothing else changes.
        let hello = event(
            "evt_hi",
            "message.received",
            "+14105550188",
            "is my scooter ready?",
        );
        let (status, body) = deliver(&url, &hello, Some((&kp, now))).await;
        assert_eq!(status, 200, "{body}");
        let sent = event("evt_sent", "message.sent", "+14105550100", "");
        assert_eq!(deliver(&url, &sent, Some((&kp, now))).await.0, 200);
        let (status, _) = deliver(&url, "not json", Some((&kp, now))).await;
        assert_eq!(status, 400);
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(bot);
        garage.stop().await;
    }
}
