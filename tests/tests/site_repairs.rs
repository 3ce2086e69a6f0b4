//! Booking and following a repair through site's pages, over real HTTP/gRPC on both databases:
//! book with the form (services, safety flag, a slot), the job page and its timeline, the no-login
//! status page (and only that), move and cancel, another client locked out, bad input explained.

use omneuro_tests::*;

fn job_id(location: &str) -> String {
    location
        .trim_start_matches("/garage/jobs/")
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// The first slot radio on the booking page: "date|window|HH:MM".
fn first_slot(body: &str) -> String {
    let at = body.find("name=\"slot\" value=\"").expect("a slot") + "name=\"slot\" value=\"".len();
    body[at..].chars().take_while(|c| *c != '"').collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_book_follow_move_and_cancel_repairs_from_their_phone() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, jdb) = (TestDb::new(backend, "garage"), TestDb::new(backend, "jobs"));
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let j = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
            ],
        )
        .await;
        wait_ready(&g).await;
        wait_ready(&j).await;
        let site = start_site(&[("garage", g.grpc_url()), ("jobs", j.grpc_url())]).await;
        let mut a = signed_in(&site, &sink, "a").await;

        // No vehicle yet: the booking page says to add one first.
        let empty = a.get("/garage/book").await;
        assert!(empty.body.contains("Add the vehicle you're bringing first"));
        let csrf = a.get("/garage/vehicles/new").await.csrf();
        let added = a
            .post(
                "/garage/vehicles",
                &[
                    ("csrf", &csrf),
                    ("category", "electric_unicycle"),
                    ("other_make", "Begode"),
                    ("other_model", "EX30"),
                ],
            )
            .await;
        assert_eq!(added.status, 303);
        let veh_at = a.get("/garage").await.body;
        let vehicle_id: String = veh_at[veh_at.find("data-vehicle=\"").unwrap() + 14..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();

        // The form: services from jobs, slots from the stored rules.
        let form = a.get("/garage/book").await;
        assert_eq!(form.status, 200);
        assert!(
            form.body.contains("value=\"waterproofing\"") && form.body.contains("Safety concern")
        );
        let slot = first_slot(&form.body);
        let csrf = form.csrf();

        // Bad input comes back on the form with the reason; without the token nothing happens.
        let no_slot = a
            .post(
                "/garage/book",
                &[
                    ("csrf", &csrf),
                    ("vehicle_id", &vehicle_id),
                    ("service", "diagnostics"),
                ],
            )
            .await;
        assert_eq!(no_slot.status, 400);
        assert!(no_slot.body.contains("Pick a drop-off time"));
        let monday = a
            .post(
                "/garage/book",
                &[
                    ("csrf", &csrf),
                    ("vehicle_id", &vehicle_id),
                    ("service", "diagnostics"),
                    ("slot", "2020-01-06|morning|10:00"),
                ],
            )
            .await;
        assert_eq!(monday.status, 400);
        assert!(monday.body.contains("already passed"), "{}", monday.body);
        let forged = a
            .post(
                "/garage/book",
                &[
                    ("vehicle_id", &vehicle_id),
                    ("service", "diagnostics"),
                    ("slot", &slot),
                ],
            )
            .await;
        assert_eq!(forged.status, 403);

        // Book: two services, a safety flag, the first slot.
        let booked = a
            .post(
                "/garage/book",
                &[
                    ("csrf", &csrf),
                    ("vehicle_id", &vehicle_id),
                    ("service", "diagnostics"),
                    ("service", "battery"),
                    ("problem", "Pack is puffy on one side."),
                    ("safety_flag", "on"),
                    ("slot", &slot),
                ],
            )
            .await;
        assert_eq!(booked.status, 303, "{}", booked.body);
        let id = job_id(&booked.location);
        let page = a.get(&booked.location).await;
        assert!(page.body.contains("Booked!") && page.body.contains("Booked in"));
        assert!(page.body.contains("diagnostics, battery") && page.body.contains("safety concern"));
        let start = slot.rsplit('|').next().unwrap();
        assert!(page.body.contains(start), "appointment shown");
        let garage = a.get("/garage").await;
        assert!(garage.body.contains(&format!("data-job=\"{id}\"")));

        // The status link works without signing in and shows only the repair.
        let link_at = page.body.find("id=\"status-link\" href=\"").unwrap()
            + "id=\"status-link\" href=\"".len();
        let link: String = page.body[link_at..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        let path = &link[link.find("/status/").unwrap()..];
        let mut anon = Browser::new(&site.url(""));
        let status = anon.get(path).await;
        assert_eq!(status.status, 200);
        assert!(status.body.contains("Begode EX30") && status.body.contains("Booked in"));
        assert!(
            !status.body.contains("puffy") && !status.body.contains("@example.com"),
            "status page leaks nothing else"
        );
        assert_eq!(anon.get("/status/not-a-real-token").await.status, 404);

        // Another client can open none of it.
        let mut b = signed_in(&site, &sink, "b").await;
        assert_eq!(b.get(&format!("/garage/jobs/{id}")).await.status, 404);
        let b_csrf = b.get("/garage").await.csrf();
        assert_eq!(
            b.post(&format!("/garage/jobs/{id}/cancel"), &[("csrf", &b_csrf)])
                .await
                .status,
            404
        );
        assert_eq!(
            b.get(&format!("/garage/jobs/{id}/reschedule")).await.status,
            404
        );
        assert_eq!(
            b.post(
                &format!("/garage/jobs/{id}/status-link"),
                &[("csrf", &b_csrf)]
            )
            .await
            .status,
            404
        );

        // A new status link replaces the old one.
        let csrf = a.get(&format!("/garage/jobs/{id}")).await.csrf();
        let renewed = a
            .post(
                &format!("/garage/jobs/{id}/status-link"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(renewed.status, 303);
        assert_eq!(
            anon.get(path).await.status,
            404,
            "the old link stopped working"
        );

        // Move the drop-off, then cancel.
        let resched = a.get(&format!("/garage/jobs/{id}/reschedule")).await;
        assert!(resched.body.contains("Move drop-off"));
        let moved = a
            .post(
                &format!("/garage/jobs/{id}/reschedule"),
                &[
                    ("csrf", &resched.csrf()),
                    ("slot", &first_slot(&resched.body)),
                ],
            )
            .await;
        assert_eq!(moved.status, 303, "{}", moved.body);
        let csrf = a.get(&format!("/garage/jobs/{id}")).await.csrf();
        let canceled = a
            .post(&format!("/garage/jobs/{id}/cancel"), &[("csrf", &csrf)])
            .await;
        assert_eq!(canceled.status, 303);
        let after = a.get(&format!("/garage/jobs/{id}")).await;
        assert!(after.body.contains("Canceled") && !after.body.contains("Cancel this booking"));

        site.stop().await;
        j.stop().await;
        g.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_answers_an_estimate_once_from_the_emailed_link() {
    use omneuro_platform::auth::{self, Actor, StaffRole};
    use omneuro_proto::jobs::v1 as pb;
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, jdb) = (TestDb::new(backend, "garage"), TestDb::new(backend, "jobs"));
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let j = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
            ],
        )
        .await;
        wait_ready(&g).await;
        wait_ready(&j).await;
        let site = start_site(&[("garage", g.grpc_url()), ("jobs", j.grpc_url())]).await;

        // A walk-in for a client with a vehicle, priced at the bench and sent.
        let mut gc = GarageClient::new(g.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "est", other_vehicle("Onewheel", "GT")).await;
        let staff = Actor::Staff {
            id: "stf_1".into(),
            role: StaffRole::Tech,
        };
        let mut jc = pb::jobs_service_client::JobsServiceClient::new(j.channel());
        let job = jc
            .create_walk_in(auth::request(
                &staff,
                pb::CreateWalkInRequest {
                    client_id: client.id.clone(),
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into()],
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        jc.move_job(auth::request(
            &staff,
            pb::MoveJobRequest {
                id: job.id.clone(),
                to_status: "diagnosing".into(),
                note: String::new(),
            },
        ))
        .await
        .unwrap();
        jc.add_labor(auth::request(
            &staff,
            pb::AddLaborRequest {
                job_id: job.id.clone(),
                description: "Replace footpad sensor".into(),
                hours: "2".into(),
                rate_cents: 8500,
            },
        ))
        .await
        .unwrap();
        let est = jc
            .send_estimate(auth::request(
                &staff,
                pb::SendEstimateRequest {
                    job_id: job.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let path = &est.url[est.url.find("/estimate/").unwrap()..];

        // Anyone holding the link sees the lines and the total; the page is private.
        let mut anon = Browser::new(&site.url(""));
        let page = anon.get(path).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Replace footpad sensor") && page.body.contains("$170.00"));
        assert!(
            page.body.contains("Waiting for your answer") && page.body.contains("approve-estimate")
        );
        assert_eq!(anon.get("/estimate/not-a-token").await.status, 404);

        // A forged answer changes nothing; the real one is taken once.
        let forged = anon
            .post(&format!("{path}/approve"), &[("csrf", "forged")])
            .await;
        assert_eq!(forged.status, 403);
        let ok = anon
            .post(&format!("{path}/approve"), &[("csrf", &page.csrf())])
            .await;
        assert_eq!(
            (ok.status, ok.location.clone()),
            (303, format!("{path}?done=1"))
        );
        let after = anon.get(&ok.location).await;
        assert!(after.body.contains("Approved") && !after.body.contains("approve-estimate"));
        let again = anon
            .post(&format!("{path}/decline"), &[("csrf", &page.csrf())])
            .await;
        assert_eq!(again.status, 409);
        assert!(again.body.contains("already approved"));
        let now = jc
            .get_job(auth::request(
                &staff,
                pb::GetJobRequest { id: job.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now.status, "in_progress");
        assert!(
            now.history
                .iter()
                .any(|e| e.actor == "client:estimate-link" && e.to_status == "in_progress")
        );

        site.stop().await;
        j.stop().await;
        g.stop().await;
    }
}
