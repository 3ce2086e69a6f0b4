//! The client garage pages in site, over real HTTP and gRPC, on both databases, with mail read
//! from a real SMTP server: sign in by magic link (a GET never spends it), cookies as promised,
//! vehicles added with the catalog dropdowns or "other", another client's vehicle unreachable,
//! forged forms refused, sign-out.

use omneuro_proto::garage::v1 as pb;
use omneuro_tests::*;

async fn sign_in(b: &mut Browser, sink: &SmtpSink, email: &str) -> Page {
    let form = b.get("/signin").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let before = sink.to(email).len();
    let sent = b
        .post("/signin", &[("csrf", &csrf), ("email", email)])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("Check your email"));
    let token = sign_in_token(
        &sink
            .wait_for_subject(email, "Your Juice Junkiez sign-in link", before)
            .await,
    );
    // Opening the link (or a mail scanner previewing it) only shows a button.
    let landing = b.get(&format!("/signin/link?token={token}")).await;
    assert_eq!(landing.status, 200);
    assert!(landing.body.contains("finish-sign-in"));
    let again = b.get(&format!("/signin/link?token={token}")).await;
    let done = b
        .post(
            "/signin/link",
            &[("csrf", &again.csrf()), ("token", &token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    done
}

fn vehicle_ids(body: &str) -> Vec<String> {
    body.match_indices("data-vehicle=\"")
        .map(|(i, m)| {
            body[i + m.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sign_in_and_keep_their_vehicles_through_the_site() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let db = TestDb::new(backend, "garage");
        let g = start_domain(
            "garage",
            &db.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                (
                    "OMNEURO__LINKS__PUBLIC_URL",
                    "http://localhost:8080".to_owned(),
                ),
            ],
        )
        .await;
        wait_ready(&g).await;
        let site = start_site(&[("garage", g.grpc_url())]).await;
        let mut a = Browser::new(&site.url(""));

        // Signed out: the public garage page, and the private pages send you to sign in.
        let public = a.get("/garage").await;
        assert_eq!(public.status, 200);
        assert!(public.body.contains("Sign in or create your garage"));
        let new = a.get("/garage/vehicles/new").await;
        assert_eq!((new.status, new.location.as_str()), (303, "/signin"));

        // Forms without the CSRF token, or from another site, change nothing.
        let form = a.get("/signin").await;
        assert!(
            form.set_cookies
                .iter()
                .any(|c| c.starts_with("omneuro_csrf=") && c.contains("SameSite=Strict"))
        );
        let forged = a.post("/signin", &[("email", "x@example.com")]).await;
        assert_eq!(forged.status, 403);
        let csrf = form.csrf();
        let cross = a
            .post_with(
                "/signin",
                &[("csrf", &csrf), ("email", "x@example.com")],
                &[("origin", "https://evil.example")],
            )
            .await;
        assert_eq!(cross.status, 403);
        let bad = a
            .post("/signin", &[("csrf", &csrf), ("email", "nope")])
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("valid email"));
        assert!(sink.to("x@example.com").is_empty());

        // Magic link: the first sign-in creates the client and goes to the profile.
        let email_a = format!("{}@example.com", omneuro_platform::ids::new_id("a"));
        let done = sign_in(&mut a, &sink, &email_a).await;
        assert_eq!(done.location, "/garage/profile?welcome=1");
        let session = done
            .set_cookies
            .iter()
            .find(|c| c.starts_with("jj_session="))
            .expect("session cookie");
        assert!(
            session.contains("HttpOnly")
                && session.contains("SameSite=Lax")
                && session.contains("Max-Age=")
                && !session.contains("Domain"),
            "{session}"
        );
        let token = sign_in_token(&sink.wait_for(&email_a, 1).await);
        let reuse = a.get(&format!("/signin/link?token={token}")).await;
        let spent = a
            .post(
                "/signin/link",
                &[("csrf", &reuse.csrf()), ("token", &token)],
            )
            .await;
        assert_eq!(spent.status, 409);
        assert!(spent.body.contains("expired or was already used"));

        let home = a.get("/garage").await;
        assert_eq!(home.status, 200);
        assert!(home.body.contains(&email_a) && home.body.contains("Sign out"));

        // Add a Begode from the dropdowns and an "other" make typed in.
        let form = a.get("/garage/vehicles/new").await;
        assert!(form.body.contains("<optgroup label=\"Begode\">"));
        let mut gc = pb::garage_service_client::GarageServiceClient::new(g.channel());
        let makes = gc
            .list_vehicle_makes(pb::ListVehicleMakesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .makes;
        let begode = makes.iter().find(|m| m.name == "Begode").unwrap();
        let model = begode.models[0].clone();
        let csrf = form.csrf();
        let saved = a
            .post(
                "/garage/vehicles",
                &[
                    ("csrf", &csrf),
                    ("category", "electric_unicycle"),
                    ("model_id", &model.id),
                    ("nickname", "Big Wheel"),
                    ("battery_format", "21700"),
                    ("voltage_class", "134 V"),
                    ("battery_serial", "BG-0042"),
                ],
            )
            .await;
        assert_eq!(
            (saved.status, saved.location.as_str()),
            (303, "/garage?saved=vehicle"),
            "{}",
            saved.body
        );
        let other = a
            .post(
                "/garage/vehicles",
                &[
                    ("csrf", &csrf),
                    ("category", "e_scooter"),
                    ("other_make", "Wolf Warrior"),
                    ("other_model", "King GT"),
                ],
            )
            .await;
        assert_eq!(other.status, 303, "{}", other.body);
        for (fields, want) in [
            (vec![("category", "e_bike")], "make and model"),
            (
                vec![
                    ("category", "e_bike"),
                    ("other_make", "Trek"),
                    ("other_model", "Allant"),
                    ("voltage_class", "lots"),
                ],
                "number of volts",
            ),
        ] {
            let mut f = vec![("csrf", csrf.as_str())];
            f.extend(fields);
            let r = a.post("/garage/vehicles", &f).await;
            assert_eq!(r.status, 400, "{want}");
            assert!(r.body.contains(want), "{want}: {}", r.body);
            assert!(
                r.body.contains("Add a vehicle"),
                "the form comes back filled in"
            );
        }
        let home = a.get("/garage?saved=vehicle").await;
        assert!(home.body.contains("Vehicle saved."));
        assert!(
            home.body
                .contains(&format!("Big Wheel (Begode {})", model.name))
        );
        assert!(home.body.contains("Wolf Warrior King GT"));
        assert!(home.body.contains("134 V 21700"));
        let ids = vehicle_ids(&home.body);
        assert_eq!(ids.len(), 2);
        let big_wheel = ids
            .iter()
            .find(|id| {
                home.body
                    .split(&format!("data-vehicle=\"{id}\""))
                    .nth(1)
                    .is_some_and(|rest| {
                        rest.trim_start_matches('>')
                            .starts_with("<strong>Big Wheel")
                    })
            })
            .unwrap()
            .clone();

        // Edit keeps what was there.
        let edit = a.get(&format!("/garage/vehicles/{big_wheel}/edit")).await;
        assert_eq!(edit.status, 200);
        assert!(edit.body.contains("value=\"BG-0042\"") && edit.body.contains("value=\"134\""));
        let updated = a
            .post(
                &format!("/garage/vehicles/{big_wheel}"),
                &[
                    ("csrf", &edit.csrf()),
                    ("category", "electric_unicycle"),
                    ("model_id", &model.id),
                    ("nickname", "Commuter"),
                ],
            )
            .await;
        assert_eq!(updated.status, 303, "{}", updated.body);

        // Client B can open none of A's vehicles.
        let mut b = Browser::new(&site.url(""));
        sign_in(
            &mut b,
            &sink,
            &format!("{}@example.com", omneuro_platform::ids::new_id("b")),
        )
        .await;
        let b_home = b.get("/garage").await;
        assert!(vehicle_ids(&b_home.body).is_empty());
        let b_csrf = b_home.csrf();
        assert_eq!(
            b.get(&format!("/garage/vehicles/{big_wheel}/edit"))
                .await
                .status,
            404
        );
        let hijack = b
            .post(
                &format!("/garage/vehicles/{big_wheel}"),
                &[
                    ("csrf", &b_csrf),
                    ("category", "other"),
                    ("other_make", "Mine"),
                    ("other_model", "Now"),
                ],
            )
            .await;
        assert_eq!(hijack.status, 404);
        let archive = b
            .post(
                &format!("/garage/vehicles/{big_wheel}/archive"),
                &[("csrf", &b_csrf)],
            )
            .await;
        assert_eq!(archive.status, 404);
        // A's CSRF token is worthless in B's session.
        let a_token = a.get("/garage").await.csrf();
        let cross_token = b
            .post(
                &format!("/garage/vehicles/{big_wheel}/archive"),
                &[("csrf", &a_token)],
            )
            .await;
        assert_eq!(cross_token.status, 403);
        assert!(a.get("/garage").await.body.contains("Commuter ("));

        // Profile: a clear error for a bad phone, then saved.
        let profile = a.get("/garage/profile").await;
        let pcsrf = profile.csrf();
        let bad_phone = a
            .post(
                "/garage/profile",
                &[
                    ("csrf", &pcsrf),
                    ("name", "Ada"),
                    ("phone", "call me"),
                    ("sms_consent", "on"),
                ],
            )
            .await;
        assert_eq!(bad_phone.status, 400);
        assert!(bad_phone.body.contains("phone number"));
        let ok = a
            .post(
                "/garage/profile",
                &[
                    ("csrf", &pcsrf),
                    ("name", "Ada"),
                    ("phone", "410 555 0123"),
                    ("contact_preference", "sms"),
                    ("email_consent", "on"),
                    ("sms_consent", "on"),
                ],
            )
            .await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        assert!(a.get("/garage/profile").await.body.contains("+14105550123"));

        // Archive, then sign out: the cookie goes and the garage is public again.
        let csrf = a.get("/garage").await.csrf();
        let archived = a
            .post(
                &format!("/garage/vehicles/{big_wheel}/archive"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(archived.location, "/garage?saved=archived");
        assert_eq!(vehicle_ids(&a.get("/garage").await.body).len(), 1);
        let out = a.post("/signout", &[("csrf", &csrf)]).await;
        assert_eq!((out.status, out.location.as_str()), (303, "/"));
        assert!(!a.cookies.contains_key("jj_session"));
        assert!(
            a.get("/garage")
                .await
                .body
                .contains("Sign in or create your garage")
        );

        site.stop().await;
        g.stop().await;
    }
}
