//! jobs over real gRPC on both databases, with garage beside it and mail read back from a real
//! SMTP server: availability from the stored rules, booking (with the .ics confirmation), the race
//! for the last place, every illegal status move, bad input, one client never reaching another's
//! jobs, the status link, and the outbox surviving a kill -9.

use std::time::Duration;

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::jobs::v1 as pb;
use omneuro_tests::*;
use pb::jobs_service_client::JobsServiceClient;
use tonic::Code;
use tonic::transport::Channel;

type Jobs = JobsServiceClient<Channel>;

fn owner() -> Actor {
    Actor::Staff {
        id: "stf_owner".into(),
        role: StaffRole::Owner,
    }
}

fn tech() -> Actor {
    Actor::Staff {
        id: "stf_tech".into(),
        role: StaffRole::Tech,
    }
}

fn client(id: &str) -> Actor {
    Actor::Client(id.into())
}

async fn availability(j: &mut Jobs) -> Vec<pb::WindowAvailability> {
    j.list_availability(pb::ListAvailabilityRequest {})
        .await
        .unwrap()
        .into_inner()
        .windows
}

fn booking(vehicle_id: &str, slot: &pb::Slot) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        vehicle_id: vehicle_id.into(),
        services: vec!["diagnostics".into(), "battery".into()],
        problem: "Battery looks swollen, cuts out at 40%.".into(),
        safety_flag: true,
        slot: Some(slot.clone()),
    }
}

async fn book(
    j: &mut Jobs,
    who: &str,
    req: pb::CreateBookingRequest,
) -> Result<pb::WorkOrder, tonic::Status> {
    j.create_booking(auth::request(&client(who), req))
        .await
        .map(|r| r.into_inner())
}

async fn move_job(j: &mut Jobs, id: &str, to: &str) -> Result<pb::WorkOrder, tonic::Status> {
    j.move_job(auth::request(
        &tech(),
        pb::MoveJobRequest {
            id: id.into(),
            to_status: to.into(),
            note: format!("to {to}"),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

const ALL: [&str; 9] = [
    "intake",
    "diagnosing",
    "awaiting_approval",
    "awaiting_parts",
    "in_progress",
    "awaiting_payment",
    "ready",
    "delivered",
    "canceled",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_book_by_the_rules_and_jobs_move_only_along_the_workflow() {
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
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__LINKS__PUBLIC_URL", "http://jj.test".to_owned()),
            ],
        )
        .await;
        wait_ready(&g).await;
        wait_ready(&jsvc).await;
        let mut gc = GarageClient::new(g.channel());
        let mut j = Jobs::new(jsvc.channel());

        // The rules are data: defaults from the migration, changeable by the owner only.
        let rules = j
            .get_booking_rules(pb::GetBookingRulesRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(rules.timezone, "America/New_York");
        assert_eq!(rules.dropoff_days, ["sun", "tue", "thu", "sat"]);
        assert_eq!(
            rules
                .windows
                .iter()
                .map(|w| (w.code.as_str(), w.start.as_str(), w.end.as_str()))
                .collect::<Vec<_>>(),
            [
                ("morning", "10:00", "12:00"),
                ("afternoon", "12:00", "15:00"),
                ("evening", "15:00", "18:00")
            ]
        );
        let denied = j
            .update_booking_rules(auth::request(
                &tech(),
                pb::UpdateBookingRulesRequest {
                    rules: Some(rules.clone()),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let mut broken = rules.clone();
        broken.windows[2].end = "14:00".into();
        let invalid = j
            .update_booking_rules(auth::request(
                &owner(),
                pb::UpdateBookingRulesRequest {
                    rules: Some(broken),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert!(
            invalid.message().contains("evening"),
            "{}",
            invalid.message()
        );

        // Availability: only drop-off days, from the stored rules, nothing in the past.
        let open = availability(&mut j).await;
        assert!(!open.is_empty());
        for w in &open {
            let d = chrono::NaiveDate::parse_from_str(&w.date, "%Y-%m-%d").unwrap();
            use chrono::Datelike;
            assert!(
                matches!(
                    d.weekday(),
                    chrono::Weekday::Sun
                        | chrono::Weekday::Tue
                        | chrono::Weekday::Thu
                        | chrono::Weekday::Sat
                ),
                "{w:?}"
            );
            assert!(
                w.slots
                    .iter()
                    .all(|s| s.starts_at.as_ref().unwrap().unix_micros
                        > chrono::Utc::now().timestamp_micros())
            );
        }

        let (a, va) =
            client_with_vehicle(&mut gc, &sink, "a", other_vehicle("Begode", "Master")).await;
        let (b, vb) =
            client_with_vehicle(&mut gc, &sink, "b", other_vehicle("Inmotion", "V13")).await;
        let slot = open[0].slots[0].clone();

        // Bad input: each with a clear message, nothing booked.
        let closed_monday = {
            let mut d = chrono::Utc::now().date_naive() + chrono::Days::new(1);
            while chrono::Datelike::weekday(&d) != chrono::Weekday::Mon {
                d = d.succ_opt().unwrap();
            }
            d.to_string()
        };
        let cases: Vec<(pb::CreateBookingRequest, &str)> = vec![
            (
                pb::CreateBookingRequest {
                    slot: Some(pb::Slot {
                        date: "2020-01-05".into(),
                        ..slot.clone()
                    }),
                    ..booking(&va.id, &slot)
                },
                "already passed",
            ),
            (
                pb::CreateBookingRequest {
                    slot: Some(pb::Slot {
                        date: closed_monday,
                        ..slot.clone()
                    }),
                    ..booking(&va.id, &slot)
                },
                "Monday",
            ),
            (
                pb::CreateBookingRequest {
                    slot: Some(pb::Slot {
                        window_code: "midnight".into(),
                        ..slot.clone()
                    }),
                    ..booking(&va.id, &slot)
                },
                "window",
            ),
            (
                pb::CreateBookingRequest {
                    slot: Some(pb::Slot {
                        start: "10:30".into(),
                        ..slot.clone()
                    }),
                    ..booking(&va.id, &slot)
                },
                "start",
            ),
            (
                pb::CreateBookingRequest {
                    slot: Some(pb::Slot {
                        date: "next tuesday".into(),
                        ..slot.clone()
                    }),
                    ..booking(&va.id, &slot)
                },
                "date",
            ),
            (booking(&vb.id, &slot), "isn't in your garage"),
            (
                pb::CreateBookingRequest {
                    problem: "x".repeat(2001),
                    ..booking(&va.id, &slot)
                },
                "too long",
            ),
            (
                pb::CreateBookingRequest {
                    services: vec![],
                    ..booking(&va.id, &slot)
                },
                "at least one service",
            ),
            (
                pb::CreateBookingRequest {
                    services: vec!["teleport".into()],
                    ..booking(&va.id, &slot)
                },
                "teleport",
            ),
        ];
        for (req, want) in cases {
            let e = book(&mut j, &a.id, req).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{want}: {}", e.message());
            assert!(
                e.message().to_lowercase().contains(&want.to_lowercase()),
                "{want}: {}",
                e.message()
            );
        }
        assert!(
            j.list_jobs(auth::request(
                &client(&a.id),
                pb::ListJobsRequest::default()
            ))
            .await
            .unwrap()
            .into_inner()
            .jobs
            .is_empty()
        );

        // A books: the job is in intake with its appointment; the confirmation mail carries an .ics.
        let job = book(&mut j, &a.id, booking(&va.id, &slot)).await.unwrap();
        assert_eq!(job.status, "intake");
        assert_eq!(job.vehicle_label, "Begode Master");
        assert!(job.safety_flag);
        let appt = job.appointment.clone().unwrap();
        assert_eq!(
            (appt.date.as_str(), appt.start.as_str()),
            (slot.date.as_str(), slot.start.as_str())
        );
        assert!(job.status_url.starts_with("http://jj.test/status/"));
        // (When the slot is tomorrow, the day-before reminder may arrive first.)
        let mail = sink.wait_for_subject(&a.email, "Drop-off booked", 0).await;
        assert!(mail["text"].as_str().unwrap().contains(&job.status_url));
        let ics = &mail["attachments"][0];
        assert_eq!(ics["content_type"], "text/calendar");
        assert!(ics["content"].as_str().unwrap().contains("BEGIN:VEVENT"));

        // B cannot reach A's job by any RPC.
        let bq = client(&b.id);
        assert_eq!(
            j.get_job(auth::request(&bq, pb::GetJobRequest { id: job.id.clone() }))
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(
            j.cancel_booking(auth::request(
                &bq,
                pb::CancelBookingRequest {
                    job_id: job.id.clone()
                }
            ))
            .await
            .unwrap_err()
            .code(),
            Code::NotFound
        );
        assert_eq!(
            j.reschedule_booking(auth::request(
                &bq,
                pb::RescheduleBookingRequest {
                    job_id: job.id.clone(),
                    slot: Some(slot.clone())
                }
            ))
            .await
            .unwrap_err()
            .code(),
            Code::NotFound
        );
        for rpc in ["renew", "revoke"] {
            let req = auth::request(
                &bq,
                pb::StatusLinkRequest {
                    job_id: job.id.clone(),
                },
            );
            let e = if rpc == "renew" {
                j.renew_status_link(req).await
            } else {
                j.revoke_status_link(req).await
            };
            assert_eq!(e.unwrap_err().code(), Code::NotFound, "{rpc}");
        }
        assert!(
            j.list_jobs(auth::request(&bq, pb::ListJobsRequest::default()))
                .await
                .unwrap()
                .into_inner()
                .jobs
                .is_empty()
        );
        // A client cannot move a job; staff can.
        let e = j
            .move_job(auth::request(
                &client(&a.id),
                pb::MoveJobRequest {
                    id: job.id.clone(),
                    to_status: "ready".into(),
                    note: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);

        // The status link shows vehicle, status and timeline, and nothing else; revoke ends it.
        let token = job.status_url.rsplit('/').next().unwrap().to_owned();
        let page = j
            .get_status_page(auth::request(
                &Actor::System("site".into()),
                pb::GetStatusPageRequest {
                    token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (page.vehicle_label.as_str(), page.status.as_str()),
            ("Begode Master", "intake")
        );
        assert_eq!(page.timeline.len(), 1);

        // Every illegal move from every status is refused; the legal path goes through.
        let path = [
            "diagnosing",
            "awaiting_approval",
            "awaiting_parts",
            "in_progress",
            "awaiting_payment",
            "ready",
            "delivered",
        ];
        let mut current = job.clone();
        for next in path.iter().copied().map(Some).chain([None]) {
            for to in ALL {
                if current.next_statuses.iter().any(|s| s == to) {
                    continue;
                }
                let e = move_job(&mut j, &job.id, to).await.unwrap_err();
                assert_eq!(
                    e.code(),
                    Code::FailedPrecondition,
                    "{} → {to}",
                    current.status
                );
                assert!(e.message().contains("cannot move"), "{}", e.message());
            }
            if let Some(n) = next {
                current = move_job(&mut j, &job.id, n).await.unwrap();
                assert_eq!(current.status, n);
            }
        }
        assert_eq!(current.status, "delivered");
        assert_eq!(current.history.len(), 1 + path.len());
        let last = current.history.last().unwrap();
        assert_eq!(
            (
                last.from_status.as_str(),
                last.to_status.as_str(),
                last.actor.as_str()
            ),
            ("ready", "delivered", "staff:stf_tech:tech")
        );
        let page = j
            .get_status_page(auth::request(
                &Actor::System("site".into()),
                pb::GetStatusPageRequest {
                    token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.status, "delivered");
        j.revoke_status_link(auth::request(
            &client(&a.id),
            pb::StatusLinkRequest {
                job_id: job.id.clone(),
            },
        ))
        .await
        .unwrap();
        let gone = j
            .get_status_page(auth::request(
                &Actor::System("site".into()),
                pb::GetStatusPageRequest { token },
            ))
            .await
            .unwrap_err();
        assert_eq!(gone.code(), Code::NotFound);
        // Status mail went out for each move (ready gets its own words).
        let ready = || {
            sink.to(&a.email).into_iter().any(|m| {
                m["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Ready for pick-up")
            })
        };
        assert!(
            eventually(std::time::Duration::from_secs(15), || async { ready() }).await,
            "{:#?}",
            sink.to(&a.email)
        );

        // Cancel frees the place; a canceled job cannot move again.
        let second = book(&mut j, &a.id, booking(&va.id, &slot)).await.unwrap();
        let canceled = j
            .cancel_booking(auth::request(
                &client(&a.id),
                pb::CancelBookingRequest {
                    job_id: second.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(canceled.status, "canceled");
        assert!(!canceled.appointment.unwrap().booked);
        for to in ALL {
            assert_eq!(
                move_job(&mut j, &second.id, to).await.unwrap_err().code(),
                Code::FailedPrecondition
            );
        }

        // The race for the last place: capacity 1, two clients, exactly one wins.
        let mut one = rules.clone();
        for w in &mut one.windows {
            w.capacity = 1;
        }
        j.update_booking_rules(auth::request(
            &owner(),
            pb::UpdateBookingRulesRequest { rules: Some(one) },
        ))
        .await
        .unwrap();
        let open = availability(&mut j).await;
        let target = open.iter().find(|w| w.remaining == 1).unwrap().slots[0].clone();
        let (mut j1, mut j2) = (j.clone(), j.clone());
        let (ra, rb) = tokio::join!(
            book(&mut j1, &a.id, booking(&va.id, &target)),
            book(&mut j2, &b.id, booking(&vb.id, &target))
        );
        let (won, lost) = match (ra, rb) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("{backend:?}: both or neither booked: {other:?}"),
        };
        assert_eq!(lost.code(), Code::FailedPrecondition);
        assert!(lost.message().contains("filled up"));
        assert_eq!(won.appointment.unwrap().date, target.date);
        let after = availability(&mut j).await;
        assert!(
            !after
                .iter()
                .any(|w| w.date == target.date && w.window_code == target.window_code)
        );

        jsvc.stop().await;
        g.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_jobs_loses_no_notification_and_sends_none_twice() {
    let (Some(sink), Some(telnyx)) = (SmtpSink::start(), FakeTelnyx::start()) else {
        return;
    };
    for (n, backend) in backends().into_iter().enumerate() {
        // The fake keeps every text of the run: one number per backend.
        let phone = format!("+1410555{:04}", 199 + n);
        let tmp = TempDir::new("kill9");
        let (gdb, jdb) = (TestDb::new(backend, "garage"), TestDb::new(backend, "jobs"));
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        wait_ready(&g).await;
        let mut gc = GarageClient::new(g.channel());
        let (a, va) =
            client_with_vehicle(&mut gc, &sink, "k", other_vehicle("Segway-Ninebot", "GT2")).await;
        allow_sms(&mut gc, &a.id, &phone).await;

        let env = |worker: bool| {
            vec![
                ("OMNEURO__DATABASE__URL", jdb.url.clone()),
                ("OMNEURO__DATABASE__HEALTH_INTERVAL_MS", "100".to_owned()),
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__WORKER__ENABLED", worker.to_string()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__WORKER__RETRY_BASE_MS", "200".to_owned()),
                ("OMNEURO__SMS__BASE_URL", telnyx.base_url()),
                ("OMNEURO__SMS__FROM_NUMBER", "+14105550100".to_owned()),
                ("OMNEURO_SECRET_TELNYX_API_KEY", telnyx.api_key.clone()),
            ]
        };
        // Booked while the worker is off: the confirmation is committed to the outbox only.
        let mut jobs = Proc::spawn("jobs", &env(false), &tmp.0);
        // Ready means migrated: an RPC can answer while the last migrations still run.
        jobs.wait_ready().await;
        let url = jobs.grpc_url();
        let mut j = Jobs::new(
            tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect_lazy(),
        );
        assert!(
            eventually(Duration::from_secs(20), || async {
                j.clone()
                    .get_booking_rules(pb::GetBookingRulesRequest {})
                    .await
                    .is_ok()
            })
            .await
        );
        let slot = availability(&mut j).await[0].slots[0].clone();
        let job = book(&mut j, &a.id, booking(&va.id, &slot)).await.unwrap();
        // What reached the client so far, by kind (a reminder may join when the slot is tomorrow).
        let booked_mails = || {
            sink.to(&a.email)
                .iter()
                .filter(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("Drop-off booked")
                })
                .count()
        };
        let booked_texts = || {
            telnyx
                .to(&phone)
                .iter()
                .filter(|m| {
                    m["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("drop-off booked")
                })
                .count()
        };
        let texts_with = |needle: &str| {
            telnyx
                .to(&phone)
                .iter()
                .filter(|m| m["text"].as_str().unwrap_or_default().contains(needle))
                .count()
        };

        // kill -9 between the outbox write and delivery.
        jobs.child.kill().unwrap();
        jobs.child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(booked_mails(), 0, "nothing was sent before the crash");
        assert!(telnyx.to(&phone).is_empty());

        // Restarted with the worker: exactly one confirmation email and one text.
        let mut jobs = Proc::spawn("jobs", &env(true), &tmp.0);
        assert!(
            eventually(Duration::from_secs(15), || async {
                booked_mails() == 1 && booked_texts() == 1
            })
            .await
        );
        let confirmation = sink
            .to(&a.email)
            .into_iter()
            .find(|m| {
                m["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("Drop-off booked")
            })
            .unwrap();
        assert!(
            confirmation["text"]
                .as_str()
                .unwrap()
                .contains(&job.status_url)
        );
        let sms = telnyx
            .to(&phone)
            .into_iter()
            .find(|m| {
                m["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("drop-off booked")
            })
            .unwrap();
        assert!(sms["idempotency_key"].as_str().unwrap().starts_with("ntf_"));
        assert!(jobs.terminate().success());

        // Another restart sends nothing again.
        let mut jobs = Proc::spawn("jobs", &env(true), &tmp.0);
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!((booked_mails(), booked_texts()), (1, 1));

        // Telnyx fails once: the worker backs off and retries; the text arrives exactly once.
        let mut j = Jobs::new(
            tonic::transport::Endpoint::from_shared(jobs.grpc_url())
                .unwrap()
                .connect_lazy(),
        );
        telnyx.fail_next(500, 1).await;
        move_job(&mut j, &job.id, "diagnosing").await.unwrap();
        assert!(
            eventually(Duration::from_secs(15), || async {
                texts_with("is now diagnosing") == 1
            })
            .await,
            "{:#?}",
            telnyx.to(&phone)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            texts_with("is now diagnosing"),
            1,
            "retried once, sent once"
        );

        // STOP is honoured at sending time: the next move mails but does not text.
        gc.record_sms_opt_out(auth::request(
            &Actor::System("repairbot".into()),
            omneuro_proto::garage::v1::RecordSmsOptOutRequest {
                phone: phone.clone(),
            },
        ))
        .await
        .unwrap();
        move_job(&mut j, &job.id, "awaiting_parts").await.unwrap();
        assert!(
            eventually(Duration::from_secs(15), || async {
                sink.to(&a.email).iter().any(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("Waiting for parts")
                })
            })
            .await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(texts_with("waiting for parts"), 0, "no text after STOP");
        assert!(jobs.terminate().success());
        g.stop().await;
    }
}

async fn bench(
    j: &mut Jobs,
    who: &Actor,
    step: BenchStep,
    job: &str,
) -> Result<pb::JobWorkbench, tonic::Status> {
    let r = match step {
        BenchStep::Note(body) => {
            j.add_note(auth::request(
                who,
                pb::AddNoteRequest {
                    job_id: job.into(),
                    body,
                },
            ))
            .await
        }
        BenchStep::Labor(description, hours, rate_cents) => {
            j.add_labor(auth::request(
                who,
                pb::AddLaborRequest {
                    job_id: job.into(),
                    description,
                    hours,
                    rate_cents,
                },
            ))
            .await
        }
        BenchStep::Part(product_id, quantity) => {
            j.add_part(auth::request(
                who,
                pb::AddPartRequest {
                    job_id: job.into(),
                    product_id,
                    quantity,
                },
            ))
            .await
        }
    };
    r.map(|r| r.into_inner())
}

enum BenchStep {
    Note(String),
    Labor(String, String, i64),
    Part(String, i32),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_prices_from_the_server_and_the_client_decides_an_estimate_once() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, jdb, sdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "shop"),
        );
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let s = start_domain("shop", &sdb.url, &[]).await;
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__LINKS__PUBLIC_URL", "http://jj.test".to_owned()),
            ],
        )
        .await;
        for r in [&g, &s, &jsvc] {
            wait_ready(r).await;
        }
        let mut gc = GarageClient::new(g.channel());
        let mut j = Jobs::new(jsvc.channel());
        let (a, va) =
            client_with_vehicle(&mut gc, &sink, "est", other_vehicle("King Song", "S22")).await;
        let (b, vb) =
            client_with_vehicle(&mut gc, &sink, "other", other_vehicle("Veteran", "Sherman")).await;

        // A walk-in opened by staff; the vehicle must be that client's.
        let walk_in = j
            .create_walk_in(auth::request(
                &tech(),
                pb::CreateWalkInRequest {
                    client_id: a.id.clone(),
                    vehicle_id: va.id.clone(),
                    services: vec!["diagnostics".into()],
                    problem: "Won't power on after rain.".into(),
                    safety_flag: false,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (walk_in.status.as_str(), walk_in.vehicle_label.as_str()),
            ("intake", "King Song S22")
        );
        let wrong = j
            .create_walk_in(auth::request(
                &tech(),
                pb::CreateWalkInRequest {
                    client_id: a.id.clone(),
                    vehicle_id: vb.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::InvalidArgument);
        assert_eq!(
            j.create_walk_in(auth::request(
                &client(&a.id),
                pb::CreateWalkInRequest::default()
            ))
            .await
            .unwrap_err()
            .code(),
            Code::PermissionDenied
        );
        let job = walk_in.id.clone();
        move_job(&mut j, &job, "diagnosing").await.unwrap();

        // The bench: notes, labor at hours × rate, parts at the catalog's price.
        let product =
            omneuro_proto::shop::v1::shop_service_client::ShopServiceClient::new(s.channel())
                .list_products(omneuro_proto::shop::v1::ListProductsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .products[0]
                .clone();
        let price = product.price.clone().unwrap().amount_cents;
        bench(
            &mut j,
            &tech(),
            BenchStep::Note("Water in the charge port; controller smells burnt.".into()),
            &job,
        )
        .await
        .unwrap();
        let w = bench(
            &mut j,
            &tech(),
            BenchStep::Labor("Controller diagnosis".into(), "1.5".into(), 9000),
            &job,
        )
        .await
        .unwrap();
        assert_eq!(w.lines[0].amount.as_ref().unwrap().amount_cents, 13500);
        assert_eq!(w.lines[0].hours, "1.50");
        let w = bench(
            &mut j,
            &tech(),
            BenchStep::Part(product.id.clone(), 2),
            &job,
        )
        .await
        .unwrap();
        assert_eq!(w.lines[1].description, product.name);
        assert_eq!(w.lines[1].amount.as_ref().unwrap().amount_cents, 2 * price);
        assert_eq!(
            w.lines_total.as_ref().unwrap().amount_cents,
            13500 + 2 * price
        );
        // Parts on a job come off the shop's shelf through the same ledger, and go back when
        // the line is removed.
        let stock_of = || {
            let mut sc =
                omneuro_proto::shop::v1::shop_service_client::ShopServiceClient::new(s.channel());
            let id = product.id.clone();
            async move {
                sc.get_product(omneuro_proto::shop::v1::GetProductRequest { id })
                    .await
                    .unwrap()
                    .into_inner()
                    .product
                    .unwrap()
                    .stock
            }
        };
        assert_eq!(stock_of().await, product.stock - 2);
        let extra = bench(
            &mut j,
            &tech(),
            BenchStep::Part(product.id.clone(), 1),
            &job,
        )
        .await
        .unwrap();
        assert_eq!(stock_of().await, product.stock - 3);
        let extra_line = extra.lines.last().unwrap().id.clone();
        j.remove_line(auth::request(
            &tech(),
            pb::RemoveLineRequest {
                job_id: job.clone(),
                line_id: extra_line,
            },
        ))
        .await
        .unwrap();
        assert_eq!(stock_of().await, product.stock - 2);
        let too_many = bench(
            &mut j,
            &tech(),
            BenchStep::Part(product.id.clone(), 99),
            &job,
        )
        .await
        .unwrap_err();
        assert_eq!(too_many.code(), Code::FailedPrecondition);
        assert!(
            too_many.message().contains("in stock"),
            "{}",
            too_many.message()
        );
        assert_eq!(w.notes.len(), 1);
        for (step, want) in [
            (BenchStep::Labor("x".into(), "abc".into(), 9000), "Hours"),
            (BenchStep::Labor("x".into(), "1".into(), -5), "rate"),
            (BenchStep::Part("prd_nope".into(), 1), "No such part"),
            (BenchStep::Part(product.id.clone(), 0), "Quantity"),
            (BenchStep::Note("  ".into()), "Write something"),
        ] {
            let e = bench(&mut j, &tech(), step, &job).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{want}");
            assert!(e.message().contains(want), "{want}: {}", e.message());
        }
        let e = bench(
            &mut j,
            &client(&a.id),
            BenchStep::Labor("free work".into(), "9".into(), 1),
            &job,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        j.assign_tech(auth::request(
            &tech(),
            pb::AssignTechRequest {
                job_id: job.clone(),
                tech: "Marcus".into(),
            },
        ))
        .await
        .unwrap();

        // Send: snapshot, job → awaiting_approval, the client is mailed the link.
        let est = j
            .send_estimate(auth::request(
                &tech(),
                pb::SendEstimateRequest {
                    job_id: job.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(est.status, "sent");
        assert_eq!(est.total.as_ref().unwrap().amount_cents, 13500 + 2 * price);
        assert!(est.url.starts_with("http://jj.test/estimate/"));
        let token = est.url.rsplit('/').next().unwrap().to_owned();
        let job_now = j
            .get_job(auth::request(
                &tech(),
                pb::GetJobRequest { id: job.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (job_now.status.as_str(), job_now.assigned_tech.as_str()),
            ("awaiting_approval", "Marcus")
        );
        assert!(
            eventually(std::time::Duration::from_secs(15), || async {
                sink.to(&a.email).iter().any(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("Your estimate")
                        && m["text"].as_str().unwrap_or_default().contains(&est.url)
                })
            })
            .await
        );

        // Client B reaches none of it; A sees it by job; anyone with the link by token.
        let e = j
            .get_estimate(auth::request(
                &client(&b.id),
                pb::GetEstimateRequest {
                    token: String::new(),
                    job_id: job.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = j
            .decide_estimate(auth::request(
                &client(&b.id),
                pb::DecideEstimateRequest {
                    token: String::new(),
                    job_id: job.clone(),
                    approve: true,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let mine = j
            .get_estimate(auth::request(
                &client(&a.id),
                pb::GetEstimateRequest {
                    token: String::new(),
                    job_id: job.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mine.id, est.id);
        let by_link = j
            .get_estimate(auth::request(
                &Actor::System("site".into()),
                pb::GetEstimateRequest {
                    token: token.clone(),
                    job_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_link.lines.len(), 2);

        // A second estimate supersedes the first; the old link can no longer decide.
        bench(
            &mut j,
            &tech(),
            BenchStep::Labor("Seal charge port".into(), "0.5".into(), 9000),
            &job,
        )
        .await
        .unwrap();
        let est2 = j
            .send_estimate(auth::request(
                &tech(),
                pb::SendEstimateRequest {
                    job_id: job.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let old = j
            .decide_estimate(auth::request(
                &Actor::System("site".into()),
                pb::DecideEstimateRequest {
                    token: token.clone(),
                    job_id: String::new(),
                    approve: true,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(old.code(), Code::FailedPrecondition);
        assert!(old.message().contains("replaced"), "{}", old.message());

        // Approve once (by the signed-in client): the repair starts; twice is refused.
        let ok = j
            .decide_estimate(auth::request(
                &client(&a.id),
                pb::DecideEstimateRequest {
                    token: String::new(),
                    job_id: job.clone(),
                    approve: true,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (ok.id.as_str(), ok.status.as_str()),
            (est2.id.as_str(), "approved")
        );
        let started = j
            .get_job(auth::request(
                &client(&a.id),
                pb::GetJobRequest { id: job.clone() },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(started.status, "in_progress");
        let twice = j
            .decide_estimate(auth::request(
                &client(&a.id),
                pb::DecideEstimateRequest {
                    token: String::new(),
                    job_id: job.clone(),
                    approve: false,
                },
            ))
            .await
            .unwrap_err();
        assert!(twice.message().contains("already approved"));

        jsvc.stop().await;
        s.stop().await;
        g.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_before_a_drop_off_the_client_is_reminded_once() {
    use omneuro_platform::config::DatabaseConfig;
    use omneuro_platform::db::Database;
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
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
            ],
        )
        .await;
        wait_ready(&g).await;
        wait_ready(&jsvc).await;
        let mut gc = GarageClient::new(g.channel());
        let mut j = Jobs::new(jsvc.channel());
        let (a, va) = client_with_vehicle(
            &mut gc,
            &sink,
            "remind",
            other_vehicle("Kaabo", "Wolf King"),
        )
        .await;
        let slot = availability(&mut j).await.last().unwrap().slots[0].clone();
        book(&mut j, &a.id, booking(&va.id, &slot)).await.unwrap();

        // The worker's reminder pass, run as of noon (shop time) the day before that drop-off.
        let day = chrono::NaiveDate::parse_from_str(&slot.date, "%Y-%m-%d").unwrap();
        let eve = day
            .pred_opt()
            .unwrap()
            .and_hms_opt(17, 0, 0)
            .unwrap()
            .and_utc();
        let db = Database::new(
            &DatabaseConfig {
                url: jdb.url.clone(),
                pool_size: 1,
                connect_timeout_ms: 2000,
                health_interval_ms: 1000,
            },
            jobs::migrations(),
        )
        .unwrap();
        let first = db
            .run(move |c| jobs::notify::queue_reminders(c, eve))
            .await
            .unwrap();
        let again = db
            .run(move |c| jobs::notify::queue_reminders(c, eve))
            .await
            .unwrap();
        assert_eq!(
            (first, again),
            (1, 0),
            "{backend:?}: one reminder per appointment"
        );
        // Queued "as of" that evening: make it due now so the running worker delivers it.
        jdb.execute(
            "UPDATE outbox SET next_attempt_at = '2000-01-01 00:00:00' WHERE kind = 'reminder'",
        );
        assert!(
            eventually(std::time::Duration::from_secs(15), || async {
                sink.to(&a.email).iter().any(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("Reminder: drop-off tomorrow")
                })
            })
            .await
        );
        jsvc.stop().await;
        g.stop().await;
    }
}
