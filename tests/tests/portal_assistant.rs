//! The techs' assistant in the portal, on both databases: real garage, jobs, shop, kb and repairbot
//! (offline assistant: no model), portal in-process on a known port (its CSRF origin).
//!
//! Proves: a signed-in staff member asks about a job by its id and gets its real status with a
//! link to the job's portal page, without JavaScript (303 back) and streamed (server-sent events);
//! the staff-only knowledge-base note reaches staff, linked to `/kb/<doc>`; CSRF is required; the
//! conversation is this staff member's (another one's cookie is not reused); a client session or
//! nobody cannot open it; and in Chromium a tech asks and the streamed answer appears with its
//! link. Screenshots land in `target/browser-artifacts/portal-assistant-<backend>/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omneuro_platform::auth::{self, Actor};
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::kb::v1 as kb;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_tests::*;

/// Posts a question with the page's CSRF token; the 303 lands back on the assistant.
async fn ask(b: &mut Browser, text: &str) -> Page {
    let csrf = b.get("/assistant").await.csrf();
    let p = b
        .post("/assistant", &[("csrf", &csrf), ("text", text)])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, "/assistant#latest");
    b.get("/assistant").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn techs_ask_the_assistant_about_jobs_in_the_portal() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let dbs: Vec<TestDb> = ["garage", "jobs", "shop", "kb", "repairbot", "portal"]
            .iter()
            .map(|s| TestDb::new(backend, s))
            .collect();
        let g = start_domain(
            "garage",
            &dbs[0].url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let s = start_domain("shop", &dbs[2].url, &[]).await;
        let k = start_domain("kb", &dbs[3].url, &[]).await;
        let j = start_domain(
            "jobs",
            &dbs[1].url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
            ],
        )
        .await;
        let r = start_domain(
            "repairbot",
            &dbs[4].url,
            &[
                ("OMNEURO__UPSTREAMS__JOBS", j.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
                ("OMNEURO__UPSTREAMS__KB", k.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
            ],
        )
        .await;
        for x in [&g, &s, &k, &j, &r] {
            wait_ready(x).await;
        }

        // A client with a Segway booked in, and a session on the public site.
        let mut gc = GarageClient::new(g.channel());
        let mut jc = JobsServiceClient::new(j.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "passt", other_vehicle("Segway", "Max G30")).await;
        let slot = jc
            .list_availability(jobs::ListAvailabilityRequest {})
            .await
            .unwrap()
            .into_inner()
            .windows
            .iter()
            .filter(|w| w.remaining > 0)
            .find_map(|w| w.slots.first().cloned())
            .unwrap();
        let job = jc
            .create_booking(auth::request(
                &Actor::Client(client.id.clone()),
                jobs::CreateBookingRequest {
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into()],
                    problem: "Cuts out under load.".into(),
                    safety_flag: false,
                    slot: Some(slot),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let grant = sign_in_rpc(&mut gc, &sink, &client.email).await;
        let job_link = format!("<a href=\"/jobs/{}\">", job.id);

        // A staff-only bench note in the knowledge base.
        let mut kc = KbServiceClient::new(k.channel());
        let note = kc
            .put_document(auth::request(
                &Actor::System("test".into()),
                kb::PutDocumentRequest {
                    title: "Controller reset at the bench".into(),
                    body: "Staff only: hold the zygomorph button for ten seconds to reset the controller.".into(),
                    visibility: kb::Visibility::Staff.into(),
                    format: kb::Format::Text.into(),
                    source_ref: "test/controller-reset".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .document
            .unwrap()
            .id;

        let port = free_port();
        let tech_url = format!("http://127.0.0.1:{port}");
        let portal = start_portal(
            &dbs[5].url,
            &[("repairbot", r.grpc_url()), ("jobs", j.grpc_url())],
            &[
                ("OMNEURO__HTTP__PORT", port.to_string()),
                ("OMNEURO__LINKS__TECH_URL", tech_url.clone()),
            ],
        )
        .await;
        wait_ready(&portal).await;
        assert_eq!(portal.url(""), tech_url);
        let mut staff = seed_staff(&dbs[5].url).await;
        let mut tech = Browser::new(&tech_url);
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );

        // Nobody, or a client's site session, cannot open it.
        let mut nobody = Browser::new(&tech_url);
        let p = nobody.get("/assistant").await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        let mut client_b = Browser::new(&tech_url);
        client_b
            .cookies
            .insert("jj_session".into(), grant.session_token.clone());
        let p = client_b.get("/assistant").await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        let p = client_b
            .post("/assistant/stream", &[("csrf", "x"), ("text", "hi")])
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));

        // The page, linked from the bar; CSRF on both posts.
        let empty = tech.get("/assistant").await;
        assert_eq!(empty.status, 200, "{}", empty.body);
        assert!(empty.body.contains("href=\"/assistant\""));
        assert!(empty.body.contains("id=\"chat-form\""));
        assert_eq!(
            tech.post("/assistant", &[("text", "status of the job")])
                .await
                .status,
            403
        );
        let csrf = empty.csrf();
        assert_eq!(
            tech.post_with(
                "/assistant/stream",
                &[("csrf", &csrf), ("text", "hi")],
                &[("origin", "https://evil.example")]
            )
            .await
            .status,
            403
        );
        let blank = tech
            .post("/assistant", &[("csrf", &csrf), ("text", "  ")])
            .await;
        assert_eq!(blank.status, 400);
        assert!(blank.body.contains("Type a question"), "{}", blank.body);

        // A job by its id: its real status, linked to the job's portal page.
        let page = ask(&mut tech, &format!("what's the status of {}?", job.id)).await;
        assert!(tech.cookies.contains_key("jjt_chat"));
        assert!(page.body.contains(&job.status_label), "{}", page.body);
        assert!(page.body.contains(&job_link), "{}", page.body);

        // Streamed: token events, then done with the same link.
        let csrf = page.csrf();
        let sse = tech
            .post(
                "/assistant/stream",
                &[("csrf", &csrf), ("text", &format!("is {} ready?", job.id))],
            )
            .await;
        assert_eq!(sse.status, 200);
        let (tok, done) = (
            sse.body.find("event: token").expect("a token event"),
            sse.body.find("event: done").expect("a done event"),
        );
        assert!(tok < done, "{}", sse.body);
        assert!(
            sse.body.contains(&format!("\"url\":\"/jobs/{}\"", job.id)),
            "{}",
            sse.body
        );
        assert!(
            !sse.body.contains("\"result\""),
            "tool results stay on the server"
        );

        // The staff-only note reaches staff, linked to its portal page.
        let page = ask(&mut tech, "how do I reset with the zygomorph button?").await;
        assert!(
            page.body.contains("Controller reset at the bench"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(&format!("<a href=\"/kb/{note}\">")),
            "{}",
            page.body
        );

        // Another staff member's cookie is not their conversation.
        let mut desk = Browser::new(&tech_url);
        staff_sign_in(&mut desk, &mut staff.desk).await;
        desk.cookies
            .insert("jjt_chat".into(), tech.cookies["jjt_chat"].clone());
        let theirs = desk.get("/assistant").await;
        assert_eq!(theirs.status, 200);
        assert!(!theirs.body.contains("zygomorph"), "{}", theirs.body);

        // Starting afresh empties the page.
        let csrf = tech.get("/assistant").await.csrf();
        let p = tech.post("/assistant/new", &[("csrf", &csrf)]).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/assistant"));
        let fresh = tech.get("/assistant").await;
        assert!(!fresh.body.contains("zygomorph"), "{}", fresh.body);

        // --- in Chromium: the tech asks and the answer streams in ---
        if browser_peers().is_some() {
            let shots = repo_root()
                .join("target/browser-artifacts")
                .join(format!("portal-assistant-{backend:?}").to_lowercase());
            let out = run_browser_flow(
                "portal_assistant_flow.cjs",
                &shots,
                &[
                    ("TECH_URL", tech_url.clone()),
                    ("STAFF_SESSION", tech.cookies["jjt_session"].clone()),
                    ("JOB_ID", job.id.clone()),
                    ("STATUS_LABEL", job.status_label.clone()),
                ],
            )
            .await;
            if let Err(e) = &out {
                panic!(
                    "{backend:?}: portal assistant flow failed (screenshots in {}):\n{e}",
                    shots.display()
                );
            }
        }

        portal.stop().await;
        for x in [r, j, k, s, g] {
            x.stop().await;
        }
    }
}

/// The model's script for the bench: trigger words (kiwi, tapir) never appear in the system prompt.
const BENCH_RULES: &str = r#"
version: 1
rules:
  - name: kiwi_parts
    when: { messages_contain: "kiwi", turn: 1 }
    respond:
      tool_calls: [{ name: parts_for_symptom, arguments: { model: "King Song S22", symptom: "cuts out" } }]
  - name: kiwi_answer
    when: { messages_contain: "kiwi", tool_result_contains: "36V controller" }
    respond: { content: "Past jobs on the S22 that cut out got a new 36V controller." }
  - name: kiwi_refused
    when: { messages_contain: "kiwi" }
    respond: { content: "I can't look that up." }
"#;

fn link(kind: &str, from: (&str, &str), to: (&str, &str), to_label: &str) -> kb::Link {
    kb::Link {
        kind: kind.into(),
        from: Some(kb::EntityRef {
            kind: from.0.into(),
            key: from.1.into(),
        }),
        to: Some(kb::EntityRef {
            kind: to.0.into(),
            key: to.1.into(),
        }),
        from_label: String::new(),
        to_label: to_label.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn techs_get_parts_that_fixed_a_symptom_from_the_graph_and_clients_do_not() {
    if peer_or_skip("fakellm", venv_bin("fakellm")).is_none() {
        return;
    }
    for backend in backends() {
        let dbs: Vec<TestDb> = ["kb", "repairbot", "portal"]
            .iter()
            .map(|s| TestDb::new(backend, s))
            .collect();
        let k = start_domain("kb", &dbs[0].url, &[]).await;
        wait_ready(&k).await;
        // A past job on a King Song S22 that cut out, fixed with a controller (as jobs sends it).
        let mut kc = KbServiceClient::new(k.channel());
        let model = "King Song S22";
        kc.put_document(auth::request(
            &Actor::System("test".into()),
            kb::PutDocumentRequest {
                title: format!("Job job_past1 — {model}"),
                body: format!(
                    "# Job job_past1 — {model}\n\n## Diagnostics notes\n\n- Cuts out under load.\n\n## Parts used\n\n- 1 × 36V controller\n"
                ),
                visibility: kb::Visibility::Staff.into(),
                format: kb::Format::Markdown.into(),
                source_ref: "job:job_past1".into(),
                links: vec![
                    link("is_model", ("vehicle", "veh_past1"), ("model", model), model),
                    link("serviced_in", ("vehicle", "veh_past1"), ("job", "job_past1"), ""),
                    link("used_part", ("job", "job_past1"), ("product", "prd_ctrl36"), "36V controller"),
                ],
                ..Default::default()
            },
        ))
        .await
        .unwrap();

        let llm = FakeLlm::start(BENCH_RULES).unwrap();
        let tmp = TempDir::new("repairbot");
        let bot_proc = Proc::spawn(
            "repairbot",
            &[
                ("OMNEURO__DATABASE__URL", dbs[1].url.clone()),
                ("OMNEURO__UPSTREAMS__KB", k.grpc_url()),
                ("OMNEURO__LLM__BASE_URL", llm.base_url()),
                ("OMNEURO__LLM__MODEL", "gpt-4o-mini".into()),
                ("OMNEURO_SECRET_OPENAI_API_KEY", "sk-test-fakellm".into()),
            ],
            &tmp.0,
        );
        bot_proc.wait_ready().await;
        assert!(
            eventually(std::time::Duration::from_secs(10), || async {
                bot_proc.logs().contains("LLM enabled")
            })
            .await,
            "{}",
            bot_proc.logs()
        );

        // A tech asks in the portal: the graph's part, the past job linked to its portal page.
        let portal = start_portal(&dbs[2].url, &[("repairbot", bot_proc.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&dbs[2].url).await;
        let mut tech = Browser::new(&portal.url(""));
        staff_sign_in(&mut tech, &mut staff.tech).await;
        let page = ask(
            &mut tech,
            "kiwi: my S22 keeps cutting out, what fixed it before?",
        )
        .await;
        assert!(
            page.body.contains("got a new 36V controller"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("<a href=\"/jobs/job_past1\">"),
            "{}",
            page.body
        );
        assert_eq!(llm.matched("kiwi_answer").await, 1);

        // A client's conversation: even when the model asks for it, the tool refuses.
        let mut bot =
            omneuro_proto::repairbot::v1::repairbot_service_client::RepairbotServiceClient::connect(
                bot_proc.grpc_url(),
            )
            .await
            .unwrap();
        use omneuro_proto::repairbot::v1 as rpb;
        let me = Actor::Client("cli_graphtest0000".into());
        let conv = bot
            .start_conversation(auth::request(
                &me,
                rpb::StartConversationRequest {
                    channel: rpb::Channel::Web.into(),
                    client_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .conversation
            .unwrap()
            .id;
        let reply = bot
            .send_message(auth::request(
                &me,
                rpb::SendMessageRequest {
                    conversation_id: conv,
                    text: "kiwi: which parts fixed cutting out on an S22?".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .reply
            .unwrap();
        assert_eq!(reply.content, "I can't look that up.");
        assert!(reply.tool_calls[0].refused, "{reply:?}");
        assert!(!reply.tool_calls[0].result.contains("controller"));
        assert!(reply.sources.is_empty());

        portal.stop().await;
        drop(bot_proc);
        drop(llm);
        k.stop().await;
    }
}
