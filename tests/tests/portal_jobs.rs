//! Staff sign-in and the job board, with real garage and jobs on both databases and the portal as
//! its own process: nobody gets in before an owner exists, sign-in with an account (the same
//! answer for an unknown address and a wrong password, CSRF, a proper cookie, a planted cookie
//! replaced), the board, a job page offering only the legal moves, moves that jobs refuses shown
//! with jobs' reason, forged cookies refused, sign-out, and the board when jobs is down.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_platform::ids::{new_secret, secret_hash};
use omneuro_proto::jobs::v1 as pb;
use omneuro_tests::*;
use pb::jobs_service_client::JobsServiceClient;

const COOKIE: &str = "jjt_session";

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
async fn staff_sign_in_with_accounts_and_the_board_moves_jobs_only_along_the_workflow() {
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

        // ---- no staff accounts yet: nobody gets in -------------------------------------------
        let pdb = TestDb::new(backend, "portal");
        let dir = TempDir::new("portal-accounts");
        let portal = Proc::spawn(
            "portal",
            &[
                ("OMNEURO__UPSTREAMS__JOBS", jsvc.grpc_url()),
                ("OMNEURO__DATABASE__URL", pdb.url.clone()),
            ],
            &dir.0,
        );
        portal.wait_ready().await;
        let mut b = Browser::new(&base(&portal));
        for path in ["/jobs", "/jobs?all=1", job_path.as_str()] {
            let p = b.get(path).await;
            assert_eq!((p.status, p.location.as_str()), (303, "/signin"), "{path}");
        }
        let p = b.get("/signin").await;
        assert_eq!(p.status, 200);
        let csrf = p.csrf();
        for (email, pw) in [("owner@juicejunkiez.test", ""), ("admin", "admin")] {
            let p = b
                .post(
                    "/signin",
                    &[("csrf", &csrf), ("email", email), ("password", pw)],
                )
                .await;
            assert_eq!(p.status, 401, "{email}");
            assert!(staff_cookie(&p).is_none());
        }
        // A made-up session cookie opens nothing either.
        b.cookies.insert(COOKIE.into(), new_secret());
        let p = b
            .post(&move_path, &[("csrf", "x"), ("to_status", "diagnosing")])
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        assert_eq!(job_status(&mut j, &job.id).await, "intake");

        // ---- staff accounts ----------------------------------------------------------------------
        let mut staff = seed_staff(&pdb.url).await;
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

        let p = b.get("/signin").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("name=\"email\"") && p.body.contains("name=\"password\""));
        let csrf = p.csrf();
        assert!(b.cookies.contains_key("omneuro_csrf"));

        // Wrong password and unknown address: 401, the same words, no cookie.
        let tech = staff.tech.clone();
        let mut answers = Vec::new();
        for (email, pw) in [
            (tech.email.as_str(), ""),
            (tech.email.as_str(), "wrong-password-1"),
            ("nobody@juicejunkiez.test", tech.password.as_str()),
        ] {
            let p = b
                .post(
                    "/signin",
                    &[("csrf", &csrf), ("email", email), ("password", pw)],
                )
                .await;
            assert_eq!(p.status, 401, "{email} {pw:?}");
            assert!(staff_cookie(&p).is_none() && !b.cookies.contains_key(COOKIE));
            let msg = &p.body[p.body.find("id=\"message\"").unwrap()..];
            answers.push(msg[..msg.find("</p>").unwrap()].to_owned());
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
        assert!(
            !portal.logs().contains(&tech.password),
            "passwords are never logged"
        );
        assert!(portal.logs().contains("staff sign-in refused"));

        // The right password without the CSRF token, with a forged one, or from another site: 403.
        for (form, headers) in [
            (
                vec![
                    ("email", tech.email.as_str()),
                    ("password", tech.password.as_str()),
                ],
                vec![],
            ),
            (
                vec![
                    ("csrf", "forged"),
                    ("email", tech.email.as_str()),
                    ("password", tech.password.as_str()),
                ],
                vec![],
            ),
            (
                vec![
                    ("csrf", csrf.as_str()),
                    ("email", tech.email.as_str()),
                    ("password", tech.password.as_str()),
                ],
                vec![("origin", "https://evil.example")],
            ),
        ] {
            let p = b.post_with("/signin", &form, &headers).await;
            assert_eq!(p.status, 403, "{headers:?}");
            assert!(staff_cookie(&p).is_none());
        }

        // A cookie planted before sign-in is replaced by a new session (session fixation).
        let planted = new_secret();
        b.cookies.insert(COOKIE.into(), planted.clone());
        // The tech (no authenticator app) signs in: an HttpOnly, SameSite=Lax, host-only cookie.
        let p = staff_sign_in(&mut b, &mut staff.tech).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/jobs"),
            "{}",
            p.body
        );
        let set = staff_cookie(&p).unwrap().clone();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(set.contains(attr), "{attr} missing: {set}");
        }
        assert!(!set.contains("Domain") && !set.contains("Secure"), "{set}");
        let session = b.cookies[COOKIE].clone();
        assert_ne!(session, planted);
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
            "Marcus Tech (tech)",
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
                .filter(|e| e.actor.starts_with("staff:stf_") && e.actor.ends_with(":tech"))
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

        // A forged or stale cookie value is refused (and removed).
        for forged in [new_secret(), format!("{session}x"), secret_hash(&session)] {
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
        let p = staff_sign_in(&mut b, &mut staff.tech).await;
        assert_eq!(p.status, 303);
        // The signed-out session stays dead even if its cookie is replayed.
        let mut replay = Browser::new(&base(&portal));
        replay.cookies.insert(COOKIE.into(), session.clone());
        assert_eq!(replay.get("/jobs").await.location, "/signin");
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
