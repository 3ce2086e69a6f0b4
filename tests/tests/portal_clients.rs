//! Client search at the counter, with real garage and portal on both databases: found by name,
//! by phone however it is typed, by make/model and by battery serial, each with their vehicles and
//! a walk-in button; a too-short query gets garage's reason on the same page with the query kept;
//! garage down gets a notice, not an empty list.

use omneuro_platform::auth::{self, Actor};
use omneuro_proto::garage::v1 as pb;
use omneuro_tests::*;

fn found(body: &str) -> Vec<String> {
    body.match_indices("data-client=\"")
        .map(|(i, _)| body[i + 13..].chars().take_while(|c| *c != '"').collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_finds_clients_by_name_phone_vehicle_and_serial() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, pdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "portal"),
        );
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        wait_ready(&g).await;
        let mut gc = pb::garage_service_client::GarageServiceClient::new(g.channel());
        let mut kingsong = other_vehicle("KingSong", "S22 Pro");
        kingsong.battery_serial = "KS22-BAT-00917".into();
        kingsong.voltage_class = 126;
        let (ada, _) = client_with_vehicle(&mut gc, &sink, "ada", kingsong).await;
        gc.update_profile(auth::request(
            &Actor::Client(ada.id.clone()),
            pb::UpdateProfileRequest {
                name: "Ada Wheeler".into(),
                phone: "+14105550187".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        let (bo, _) =
            client_with_vehicle(&mut gc, &sink, "bo", other_vehicle("Segway", "GT2")).await;

        let portal = start_portal(&pdb.url, &[("garage", g.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut desk = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut desk, &mut staff.desk).await.location,
            "/jobs"
        );

        // No query yet: just the form.
        let p = desk.get("/clients").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("name=\"q\"") && found(&p.body).is_empty());

        for (q, want) in [
            ("wheeler", vec![ada.id.clone()]),
            ("(410)%20555-0187", vec![ada.id.clone()]),
            ("s22%20pro", vec![ada.id.clone()]),
            ("ks22-bat", vec![ada.id.clone()]),
            ("segway", vec![bo.id.clone()]),
            ("nobody-like-this", vec![]),
        ] {
            let p = desk.get(&format!("/clients?q={q}")).await;
            assert_eq!(p.status, 200, "{q}: {}", p.body);
            assert_eq!(found(&p.body), want, "{q}");
        }
        let p = desk.get("/clients?q=wheeler").await;
        for shown in [
            "Ada Wheeler",
            "+14105550187",
            "KingSong S22 Pro",
            "126 V",
            "battery KS22-BAT-00917",
            &format!("href=\"/walkin?client={}\"", ada.id),
        ] {
            assert!(p.body.contains(shown), "{shown} missing: {}", p.body);
        }

        // Too short: garage's reason on the same page, the query kept.
        let p = desk.get("/clients?q=x").await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("id=\"message\"") && p.body.contains("value=\"x\""));

        // garage down: a notice, not "0 clients".
        g.stop().await;
        let p = desk.get("/clients?q=wheeler").await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("aren&#39;t answering") || p.body.contains("answering right now"));
        assert!(!p.body.contains("id=\"count\""));
        portal.stop().await;
    }
}
