//! The portal's temporary staff guard and job board, with real garage and jobs on both databases
//! and the portal as its own process (its staff key comes from the process environment, the way
//! the secret store reads it in development): closed without a key, the key sign-in with CSRF and
//! a proper cookie, the board, a job page offering only the legal moves, moves that jobs refuses
//! shown with jobs' reason, forged cookies refused, sign-out, and the board when jobs is down.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_platform::ids::{new_secret, secret_hash};
use omneuro_proto::jobs::v1 as pb;
use omneuro_tests::*;
use pb::jobs_service_client::JobsServiceClient;

const CLOSED: &str = "Staff pages are closed: no staff key is configured (secret /omneuro/portal/staff_key). Staff accounts arrive with the portal release.";
const COOKIE: &str = "jjt_staff";

fn base(p: &Proc) -> String {
    format!("http://{}", p.http)
}

/// The `Set-Cookie` header for the staff session in a response, if any.
fn staff_cookie(p: &Page) -> Option<&String> {
    p.set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{COOKIE}=")))
}

/// The statuses a job page offers buttons for, in page order.
fn moves_offered(body: &str) -> Vec<String> {
    let marker = "name=\"to_status\" value=\"";
    body.match_indices(marker)
        .map(|(i, _)| {
            body[i + marker.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

fn shown_status(body: &str) -> String {
    let marker = "data-status=\"";
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("no status on {body}"))
        + marker.len();
    body[at..].chars().take_while(|c| *c != '"').collect()
}

/// Signs in with the staff key the way a browser does (the form's CSRF token included).
async fn sign_in(b: &mut Browser, key: &str) -> Page {
    let csrf = b.get("/signin").await.csrf();
    b.post("/signin", &[("csrf", &csrf), ("staff_key", key)])
        .await
}

async fn job_status(j: &mut JobsServiceClient<tonic::transport::Channel>, id: &str) -> String {
    let staff = Actor::Staff {
        id: "stf_test".into(),
        role: StaffRole::Owner,
    };
    j.get_job(auth::request(&staff, pb::GetJobRequest { id: id.into() }))
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_stays_closed_without_a_staff_key_and_with_one_moves_jobs_only_along_the_workflow() {
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
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
            ],
        )
        .await;
        wait_ready(&g).await;
        wait_ready(&jsvc).await;
        let mut gc = GarageClient::new(g.channel());
        let mut j = JobsServiceClient::new(jsvc.channel());

        // A client books a drop-off with a safety flag: the job waits in intake.
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "portal", other_vehicle("Begode", "Master")).await;
        let open = j
            .list_availability(pb::ListAvailabilityRequest {})
            .await
            .unwrap()
            .into_inner()
            .windows;
        let slot = open[0].slots[0].clone();
        let job = j
            .create_booking(auth::request(
                &Actor::Client(client.id.clone()),
                pb::CreateBookingRequest {
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into(), "battery".into()],
                    problem: "Battery looks swollen, cuts out at 40%.".into(),
                    safety_flag: true,
                    slot: Some(slot.clone()),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(job.status, "intake");
        let job_path = format!("/jobs/{}", job.id);
        let move_path = format!("/jobs/{}/move", job.id);

        // ---- no staff key: closed, never open -------------------------------------------------
        {
            let dir = TempDir::new("portal-closed");
            let portal = Proc::spawn(
                "portal",
                &[("OMNEURO__UPSTREAMS__JOBS", jsvc.grpc_url())],
                &dir.0,
            );
            let mut b = Browser::new(&base(&portal));
            for path in ["/jobs", "/jobs?all=1", job_path.as_str()] {
                let p = b.get(path).await;
                assert_eq!(p.status, 503, "{path}");
                assert!(p.body.contains(CLOSED), "{path}: {}", p.body);
            }
            let p = b.get("/signin").await;
            assert_eq!(p.status, 200);
            assert!(p.body.contains(CLOSED) && !p.body.contains("name=\"staff_key\""));
            // Whatever key is posted, nobody gets in.
            for key in ["", "anything", "stf_staffkey"] {
                let p = b
                    .post("/signin", &[("csrf", "whatever"), ("staff_key", key)])
                    .await;
                assert_eq!(p.status, 503, "{key:?}");
                assert!(p.body.contains("switched on yet"));
                assert!(staff_cookie(&p).is_none());
            }
            // A cookie made from a guessed (or empty) key opens nothing either.
            for guess in ["", "anything"] {
                b.cookies
                    .insert(COOKIE.into(), secret_hash(&format!("portal-staff:{guess}")));
                let p = b.get("/jobs").await;
                assert_eq!(p.status, 503);
                let p = b
                    .post(&move_path, &[("csrf", "x"), ("to_status", "diagnosing")])
                    .await;
                assert_eq!(p.status, 503);
            }
            assert_eq!(job_status(&mut j, &job.id).await, "intake");
        }

        // ---- with a staff key ------------------------------------------------------------------
        let dir = TempDir::new("portal-open");
        let key = new_secret();
        let portal = Proc::spawn(
            "portal",
            &[
                ("OMNEURO__UPSTREAMS__JOBS", jsvc.grpc_url()),
                ("OMNEURO_SECRET_PORTAL_STAFF_KEY", key.clone()),
            ],
            &dir.0,
        );
        let mut b = Browser::new(&base(&portal));

        // Not signed in: every staff route sends you to sign in.
        for path in ["/jobs", job_path.as_str()] {
            let p = b.get(path).await;
            assert_eq!((p.status, p.location.as_str()), (303, "/signin"), "{path}");
        }
        let p = b
            .post(&move_path, &[("csrf", "x"), ("to_status", "diagnosing")])
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));

        // The sign-in page offers the key (and still the account form).
        let p = b.get("/signin").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("name=\"staff_key\"") && p.body.contains("name=\"email\""));
        let csrf = p.csrf();
        assert!(b.cookies.contains_key("omneuro_csrf"));

        // Empty and wrong keys: 401, the same words, no cookie.
        for wrong in ["", "wrong", &key[..key.len() - 1], &format!("{key} ")] {
            let p = b
                .post("/signin", &[("csrf", &csrf), ("staff_key", wrong)])
                .await;
            assert_eq!(p.status, 401, "{wrong:?}");
            assert!(staff_cookie(&p).is_none() && !b.cookies.contains_key(COOKIE));
            assert!(p.body.contains("That staff key didn"), "{}", p.body);
        }
        assert!(
            !portal.logs().contains(&key),
            "the key must never be logged"
        );
        assert!(portal.logs().contains("staff sign-in refused"));

        // The account form keeps refusing until staff accounts exist.
        let p = b
            .post(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("email", "owner@juicejunkiez.com"),
                    ("password", "hunter2"),
                ],
            )
            .await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("switched on yet") && staff_cookie(&p).is_none());

        // The right key without the CSRF token, with a forged one, or from another site: 403.
        for (form, headers) in [
            (vec![("staff_key", key.as_str())], vec![]),
            (
                vec![("csrf", "forged"), ("staff_key", key.as_str())],
                vec![],
            ),
            (
                vec![("csrf", csrf.as_str()), ("staff_key", key.as_str())],
                vec![("origin", "https://evil.example")],
            ),
        ] {
            let p = b.post_with("/signin", &form, &headers).await;
            assert_eq!(p.status, 403, "{form:?} {headers:?}");
            assert!(staff_cookie(&p).is_none());
        }

        // The right key: a 12-hour, HttpOnly, SameSite=Lax, host-only session, then the board.
        let p = b
            .post("/signin", &[("csrf", &csrf), ("staff_key", &key)])
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/jobs"));
        let set = staff_cookie(&p).unwrap().clone();
        let session = secret_hash(&format!("portal-staff:{key}"));
        assert!(set.starts_with(&format!("{COOKIE}={session};")), "{set}");
        for attr in ["HttpOnly", "SameSite=Lax", "Max-Age=43200", "Path=/"] {
            assert!(set.contains(attr), "{attr} missing: {set}");
        }
        assert!(!set.contains("Domain") && !set.contains("Secure"), "{set}");
        assert_eq!(b.cookies[COOKIE], session);
        // Signed in, the sign-in page sends you on.
        let p = b.get("/signin").await;
        assert_eq!((p.status, p.location.as_str()), (303, "/jobs"));

        // The board: the job as a card in the intake column, with its safety flag.
        let p = b.get("/jobs").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let card = p.body.find(&format!("href=\"{job_path}\"")).unwrap();
        let intake = p.body.find("id=\"col-intake\"").unwrap();
        let diagnosing = p.body.find("id=\"col-diagnosing\"").unwrap();
        assert!(intake < card && card < diagnosing, "{}", p.body);
        let card_html = &p.body[card..diagnosing];
        for want in [
            "Begode Master",
            "⚠ safety",
            "diagnostics, battery",
            &slot.start,
        ] {
            assert!(card_html.contains(want), "{want} missing: {card_html}");
        }
        assert!(!p.body.contains("id=\"col-delivered\""));
        let p = b.get("/jobs?all=1").await;
        assert!(p.body.contains("id=\"col-delivered\"") && p.body.contains("id=\"col-canceled\""));

        // The job page: the details and a button for each legal move only.
        let p = b.get(&job_path).await;
        assert_eq!(p.status, 200);
        for want in [
            "Begode Master",
            "Battery looks swollen, cuts out at 40%.",
            "diagnostics, battery",
            "⚠ safety",
            &slot.start,
        ] {
            assert!(p.body.contains(want), "{want} missing: {}", p.body);
        }
        assert_eq!(moves_offered(&p.body), ["diagnosing", "canceled"]);
        assert_eq!(shown_status(&p.body), "intake");
        let csrf = p.csrf();
        assert_ne!(csrf, session, "the CSRF token is not the session itself");

        // A move without the session's CSRF token, or from another site: 403, nothing moves.
        for (form, headers) in [
            (vec![("to_status", "diagnosing")], vec![]),
            (
                vec![("csrf", "forged"), ("to_status", "diagnosing")],
                vec![],
            ),
            (
                vec![("csrf", csrf.as_str()), ("to_status", "diagnosing")],
                vec![("origin", "https://evil.example")],
            ),
        ] {
            let p = b.post_with(&move_path, &form, &headers).await;
            assert_eq!(p.status, 403, "{form:?} {headers:?}");
        }
        assert_eq!(job_status(&mut j, &job.id).await, "intake");

        // An illegal move posted by hand: jobs' reason on the job page, 409, nothing moves.
        let p = b
            .post(
                &move_path,
                &[("csrf", &csrf), ("to_status", "ready"), ("note", "")],
            )
            .await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(
            p.body.contains("cannot move to ready") && p.body.contains("diagnosing, canceled"),
            "{}",
            p.body
        );
        assert_eq!(shown_status(&p.body), "intake");
        assert_eq!(job_status(&mut j, &job.id).await, "intake");
        // Bad input (an unknown status, an overlong note): 400 with the reason.
        let long = "n".repeat(2001);
        for (to, note) in [("teleported", ""), ("diagnosing", long.as_str())] {
            let p = b
                .post(
                    &move_path,
                    &[("csrf", &csrf), ("to_status", to), ("note", note)],
                )
                .await;
            assert_eq!(p.status, 400, "{to}: {}", p.body);
            assert!(p.body.contains("id=\"error\""));
        }
        assert_eq!(job_status(&mut j, &job.id).await, "intake");

        // Legal moves: intake → diagnosing → ready, each back to the job page.
        for (to, note) in [
            ("diagnosing", "On the bench <b>now</b>"),
            ("ready", "Pack swapped"),
        ] {
            let p = b
                .post(
                    &move_path,
                    &[("csrf", &csrf), ("to_status", to), ("note", note)],
                )
                .await;
            assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
            assert_eq!(job_status(&mut j, &job.id).await, to);
        }
        let p = b.get(&job_path).await;
        assert_eq!(shown_status(&p.body), "ready");
        assert_eq!(moves_offered(&p.body), ["delivered"]);
        let history = &p.body[p.body.find("id=\"history\"").unwrap()..];
        for want in [
            "Intake → Diagnosing",
            "On the bench &#60;b&#62;now",
            "Diagnosing → Ready for pick-up",
            "Pack swapped",
            "stf_staffkey (tech)",
        ] {
            assert!(history.contains(want), "{want} missing: {history}");
        }
        assert!(!history.contains("<b>now"), "notes are escaped");
        let recorded = j
            .get_job(auth::request(
                &Actor::Client(client.id.clone()),
                pb::GetJobRequest { id: job.id.clone() },
            ))
            .await
            .unwrap()
            .into_inner()
            .history;
        assert!(
            recorded
                .iter()
                .filter(|e| e.actor == "staff:stf_staffkey:tech")
                .count()
                == 2,
            "{recorded:?}"
        );
        let p = b.get("/jobs").await;
        let card = p.body.find(&format!("href=\"{job_path}\"")).unwrap();
        assert!(p.body.find("id=\"col-ready\"").unwrap() < card);

        // An unknown job: the friendly 404.
        let p = b.get("/jobs/job_doesnotexist0000").await;
        assert_eq!(p.status, 404);
        assert!(p.body.contains("couldn't find"));

        // A forged or stale cookie value is refused (and removed), however it was made.
        for forged in [
            secret_hash("portal-staff:not-the-key"),
            key.clone(),
            secret_hash(&key),
            format!("{session}x"),
        ] {
            let mut other = Browser::new(&base(&portal));
            other.cookies.insert(COOKIE.into(), forged.clone());
            let p = other.get("/jobs").await;
            assert_eq!(
                (p.status, p.location.as_str()),
                (303, "/signin"),
                "{forged}"
            );
            assert!(staff_cookie(&p).is_some_and(|c| c.contains("Max-Age=0")));
            other.cookies.insert(COOKIE.into(), forged.clone());
            let p = other
                .post(&move_path, &[("csrf", &csrf), ("to_status", "delivered")])
                .await;
            assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        }
        assert_eq!(job_status(&mut j, &job.id).await, "ready");

        // Sign-out needs the CSRF token, then ends access in this browser.
        let p = b.post("/signout", &[("csrf", "forged")]).await;
        assert_eq!(p.status, 403);
        assert_eq!(b.get("/jobs").await.status, 200);
        let p = b.post("/signout", &[("csrf", &csrf)]).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        assert!(staff_cookie(&p).is_some_and(|c| c.contains("Max-Age=0")));
        assert!(!b.cookies.contains_key(COOKIE));
        let p = b.get("/jobs").await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));

        // jobs down: the board says so instead of failing.
        let p = sign_in(&mut b, &key).await;
        assert_eq!(p.status, 303);
        jsvc.stop().await;
        let p = b.get("/jobs").await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("jobs service isn"), "{}", p.body);
        assert!(
            !p.body.contains("id=\"col-intake\""),
            "no empty board that looks real"
        );
        let p = b.get(&job_path).await;
        assert_eq!(p.status, 503);

        g.stop().await;
    }
}
