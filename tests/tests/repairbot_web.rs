//! "Ask the shop" on the public site, on both databases: real garage, jobs, shop, kb and repairbot
//! (offline assistant: no model), site in-process.
//!
//! Proves: the no-JavaScript form post (303 back, the reply with its job link), the streamed path
//! (`text/event-stream`: token then done with the sources), CSRF on both, a visitor kept apart from
//! the client's conversation, search_kb answers citing the client-visible document while a
//! staff-only document never reaches a client's or a visitor's answer; and in Chromium, a signed-in
//! client opens the assistant from the garage, asks "where is my scooter?" and sees the job's real
//! status streamed in with a link to `/garage/jobs/<id>`. Then staff read both conversations in
//! the portal (tools called, sources, the job linked to its portal page); clients may not list them. Screenshots land in
//! `target/browser-artifacts/assistant-<backend>/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omneuro_platform::auth::{self, Actor};
use omneuro_platform::config::{self, WebConfig};
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::kb::v1 as kb;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use omneuro_tests::*;

/// site in-process on a known port, so its public URL (the CSRF origin) is the one the browser uses.
async fn start_site_at(port: u16, upstreams: &[(&str, String)]) -> Running {
    let mut pairs = vec![
        ("OMNEURO__HTTP__PORT".to_owned(), port.to_string()),
        ("OMNEURO__SHUTDOWN_GRACE_SECS".to_owned(), "2".to_owned()),
        (
            "OMNEURO__LINKS__PUBLIC_URL".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    for (svc, url) in upstreams {
        pairs.push((
            format!("OMNEURO__UPSTREAMS__{}", svc.to_ascii_uppercase()),
            url.clone(),
        ));
    }
    let cfg = config::load::<WebConfig>(&site::defaults(), None, pairs).unwrap();
    Running::start(site::build(cfg).await.unwrap())
}

/// Stores a text document as a system caller; its id.
async fn put_doc(
    k: &mut KbServiceClient<tonic::transport::Channel>,
    title: &str,
    body: &str,
    vis: kb::Visibility,
) -> String {
    k.put_document(auth::request(
        &Actor::System("test".into()),
        kb::PutDocumentRequest {
            title: title.into(),
            body: body.into(),
            visibility: vis.into(),
            format: kb::Format::Text.into(),
            source_ref: format!("test/{title}"),
            ..Default::default()
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .document
    .unwrap()
    .id
}

/// garage, shop, kb, jobs and repairbot in-process on `backend` (a portal database too).
struct Fleet {
    dbs: Vec<TestDb>,
    garage: Running,
    shop: Running,
    kb: Running,
    jobs: Running,
    repairbot: Running,
}

async fn fleet(backend: Backend, sink: &SmtpSink, repairbot_env: &[(&str, String)]) -> Fleet {
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
    let mut renv = vec![
        ("OMNEURO__UPSTREAMS__JOBS", j.grpc_url()),
        ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
        ("OMNEURO__UPSTREAMS__KB", k.grpc_url()),
    ];
    renv.extend(repairbot_env.iter().cloned());
    let r = start_domain("repairbot", &dbs[4].url, &renv).await;
    for x in [&g, &s, &k, &j, &r] {
        wait_ready(x).await;
    }
    Fleet {
        dbs,
        garage: g,
        shop: s,
        kb: k,
        jobs: j,
        repairbot: r,
    }
}

/// A signed-in client with a Segway Max G30 booked in for diagnostics: (session grant, job).
async fn client_with_job(
    f: &Fleet,
    sink: &SmtpSink,
) -> (omneuro_proto::garage::v1::SessionGrant, jobs::WorkOrder) {
    let mut gc = GarageClient::new(f.garage.channel());
    let mut jc = JobsServiceClient::new(f.jobs.channel());
    let email = format!("{}@example.com", omneuro_platform::ids::new_id("rbweb"));
    let grant = sign_in_rpc(&mut gc, sink, &email).await;
    let me = Actor::Client(grant.client.as_ref().unwrap().id.clone());
    let vehicle = gc
        .create_vehicle(auth::request(
            &me,
            omneuro_proto::garage::v1::CreateVehicleRequest {
                input: Some(other_vehicle("Segway", "Max G30")),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let slot = jc
        .list_availability(jobs::ListAvailabilityRequest {})
        .await
        .unwrap()
        .into_inner()
        .windows
        .iter()
        .filter(|w| w.remaining > 0)
        .find_map(|w| w.slots.first().cloned())
        .expect("a free slot");
    let job = jc
        .create_booking(auth::request(
            &me,
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
    (grant, job)
}

/// Posts a message with the page's CSRF token; the 303 lands back on the assistant.
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
async fn clients_and_visitors_ask_the_shop_on_the_site() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let f = fleet(backend, &sink, &[]).await;
        let (g, s, k, j, r) = (&f.garage, &f.shop, &f.kb, &f.jobs, &f.repairbot);
        let port = free_port();
        let site = start_site_at(
            port,
            &[
                ("garage", g.grpc_url()),
                ("jobs", j.grpc_url()),
                ("shop", s.grpc_url()),
                ("repairbot", r.grpc_url()),
                ("kb", k.grpc_url()),
            ],
        )
        .await;
        let public = format!("http://127.0.0.1:{port}");
        assert_eq!(site.url(""), public);

        // A client with a booked scooter.
        let (grant, job) = client_with_job(&f, &sink).await;
        let client = grant.client.clone().unwrap();
        let me = Actor::Client(client.id.clone());
        let status_label = job.status_label.clone();
        assert!(!status_label.is_empty());
        let job_link = format!("/garage/jobs/{}", job.id);

        // The knowledge base: one note clients may read, one for staff only.
        let mut kc = KbServiceClient::new(k.channel());
        let winter = put_doc(
            &mut kc,
            "Winter battery storage",
            "Store the battery indoors at half charge over winter; the hibernatus routine keeps cells healthy.",
            kb::Visibility::Client,
        )
        .await;
        put_doc(
            &mut kc,
            "Supplier margins",
            "Internal only: the hibernatus supplier margin is 45 percent, code WALRUSMARGIN.",
            kb::Visibility::Staff,
        )
        .await;

        // --- the signed-in client, without JavaScript ---
        let mut b = Browser::new(&public);
        b.cookies
            .insert("jj_session".into(), grant.session_token.clone());
        let garage = b.get("/garage").await;
        assert!(
            garage.body.contains("href=\"/assistant\""),
            "{}",
            garage.body
        );
        let empty = b.get("/assistant").await;
        assert_eq!(empty.status, 200);
        assert!(empty.body.contains("id=\"chat-form\""));
        // No CSRF token, or another origin: refused, nothing sent.
        assert_eq!(
            b.post("/assistant", &[("text", "where is my scooter?")])
                .await
                .status,
            403
        );
        let csrf = empty.csrf();
        assert_eq!(
            b.post_with(
                "/assistant/stream",
                &[("csrf", &csrf), ("text", "hi")],
                &[("origin", "https://evil.example")]
            )
            .await
            .status,
            403
        );
        let page = ask(&mut b, "where is my scooter?").await;
        assert!(b.cookies.contains_key("jj_chat"));
        assert!(page.body.contains("where is my scooter?"), "{}", page.body);
        assert!(page.body.contains(&status_label), "{}", page.body);
        assert!(
            page.body.contains(&format!("<a href=\"{job_link}\">")),
            "{}",
            page.body
        );

        // The same conversation, streamed: token events, then done with the job link.
        let csrf = page.csrf();
        let started = std::time::Instant::now();
        let sse = b
            .post(
                "/assistant/stream",
                &[("csrf", &csrf), ("text", "is my scooter ready?")],
            )
            .await;
        assert_eq!(sse.status, 200);
        let (tok, done) = (
            sse.body.find("event: token").expect("a token event"),
            sse.body.find("event: done").expect("a done event"),
        );
        assert!(tok < done, "{}", sse.body);
        assert!(sse.body.contains(&job_link), "{}", sse.body);
        assert!(
            !sse.body.contains("\"result\""),
            "tool results stay on the server"
        );
        println!("{backend:?}: streamed reply in {:?}", started.elapsed());
        // Both turns are in the stored conversation the page shows.
        let page = b.get("/assistant").await;
        assert!(page.body.contains("is my scooter ready?"));

        // search_kb: the client's question no rule takes finds the client note, never the staff one.
        let page = ask(&mut b, "how does the hibernatus routine work?").await;
        assert!(
            page.body.contains("Winter battery storage"),
            "{}",
            page.body
        );
        assert!(page.body.contains("half charge"), "{}", page.body);
        assert!(!page.body.contains("WALRUSMARGIN") && !page.body.contains("Supplier margins"));
        // Cited as a link to its public help page, which shows the document to this client.
        let help = format!("/help/{winter}");
        assert!(
            page.body.contains(&format!("href=\"{help}\"")),
            "{}",
            page.body
        );
        let shown = b.get(&help).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        assert!(shown.body.contains("hibernatus routine"), "{}", shown.body);

        // --- a visitor: their own anonymous conversation, public look-ups only ---
        let mut v = Browser::new(&public);
        // The client's conversation cookie does not carry over to someone signed out.
        v.cookies
            .insert("jj_chat".into(), b.cookies["jj_chat"].clone());
        let page = v.get("/assistant").await;
        assert!(!page.body.contains("where is my scooter?"), "{}", page.body);
        let page = ask(&mut v, "where is my scooter?").await;
        assert!(page.body.contains("sign in"), "{}", page.body);
        assert!(!page.body.contains(&job.id));
        assert_ne!(v.cookies["jj_chat"], b.cookies["jj_chat"]);
        let page = ask(&mut v, "tell me about hibernatus supplier margin").await;
        assert!(!page.body.contains("WALRUSMARGIN") && !page.body.contains("45 percent"));
        // Bad input is a helpful page, not an error screen.
        let csrf = page.csrf();
        let bad = v
            .post("/assistant", &[("csrf", &csrf), ("text", "   ")])
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("Type a message"), "{}", bad.body);

        // --- the same in Chromium: the widget streams the answer ---
        if browser_peers().is_some() {
            let shots = repo_root()
                .join("target/browser-artifacts")
                .join(format!("assistant-{backend:?}").to_lowercase());
            let out = run_browser_flow(
                "assistant_flow.cjs",
                &shots,
                &[
                    ("PUBLIC_URL", public.clone()),
                    ("SESSION", grant.session_token.clone()),
                    ("JOB_ID", job.id.clone()),
                    ("STATUS_LABEL", status_label.clone()),
                ],
            )
            .await;
            if let Err(e) = &out {
                panic!(
                    "{backend:?}: assistant flow failed (screenshots in {}):\n{e}",
                    shots.display()
                );
            }
        }

        // --- staff read the conversations in the portal ---
        let portal = start_portal(&f.dbs[5].url, &[("repairbot", r.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&f.dbs[5].url).await;
        let mut desk = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut desk, &mut staff.desk).await.location,
            "/jobs"
        );
        let (mine, theirs) = (b.cookies["jj_chat"].clone(), v.cookies["jj_chat"].clone());
        let list = desk.get("/conversations").await;
        assert_eq!(list.status, 200, "{}", list.body);
        assert!(
            list.body
                .contains(&format!("href=\"/conversations/{mine}\""))
        );
        assert!(
            list.body
                .contains(&format!("href=\"/conversations/{theirs}\""))
        );
        assert!(list.body.contains(&client.id) && list.body.contains("visitor"));
        let only = desk
            .get(&format!("/conversations?client={}", client.id))
            .await;
        assert!(only.body.contains(&mine) && !only.body.contains(&theirs));
        let one = desk.get(&format!("/conversations/{mine}")).await;
        assert_eq!(one.status, 200, "{}", one.body);
        for shown in [
            "where is my scooter?",
            "how does the hibernatus routine work?",
            "job_status",
            "search_kb",
            "offline assistant",
            "Winter battery storage",
        ] {
            assert!(one.body.contains(shown), "{shown}: {}", one.body);
        }
        assert!(one.body.contains(&format!("<a href=\"/jobs/{}\">", job.id)));
        assert_eq!(
            desk.get("/conversations/not-a-conversation").await.status,
            404
        );
        assert_eq!(
            desk.get("/conversations/conv_0000000000000000")
                .await
                .status,
            404
        );
        // Clients cannot list conversations, even their own, over gRPC.
        let mut bot =
            omneuro_proto::repairbot::v1::repairbot_service_client::RepairbotServiceClient::new(
                r.channel(),
            );
        let refused = bot
            .list_conversations(auth::request(
                &me,
                omneuro_proto::repairbot::v1::ListConversationsRequest::default(),
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);

        portal.stop().await;
        site.stop().await;
    }
}

/// The measure: the share of the 40 seeded shop questions (tests/data/repairbot_offline_questions.json)
/// the offline assistant answers citing the right record or passage. Printed; a floor is asserted so
/// a rule change that loses answers fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_assistant_answers_most_seeded_shop_questions_with_the_right_record() {
    use omneuro_proto::repairbot::v1 as pb;
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let set: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/repairbot_offline_questions.json"))
            .unwrap(),
    )
    .unwrap();
    let questions = set["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 40);
    for backend in backends() {
        // Forty questions in a minute from one client: no per-minute limit for the measure.
        let f = fleet(
            backend,
            &sink,
            &[("OMNEURO__LLM__PER_CLIENT_PER_MINUTE", "0".to_owned())],
        )
        .await;
        let (grant, job) = client_with_job(&f, &sink).await;
        let me = Actor::Client(grant.client.unwrap().id);
        let anon = Actor::System("site".into());
        let mut kc = KbServiceClient::new(f.kb.channel());
        let mut doc_ids = std::collections::HashMap::new();
        for d in set["docs"].as_array().unwrap() {
            let s = |k: &str| d[k].as_str().unwrap().to_owned();
            let mut req = kb::PutDocumentRequest {
                title: s("title"),
                body: s("body"),
                visibility: kb::Visibility::Client.into(),
                format: kb::Format::Text.into(),
                source_ref: s("source_ref"),
                ..Default::default()
            };
            let id = kc
                .put_document(auth::request(&Actor::System("test".into()), req.clone()))
                .await
                .unwrap()
                .into_inner()
                .document
                .unwrap()
                .id;
            doc_ids.insert(s("source_ref"), id);
            // The same topic for staff only: it must never be the passage a client gets.
            req.title = format!("{} (staff notes)", req.title);
            req.body = format!("{} Internal: supplier WALRUSNOTE.", req.body);
            req.visibility = kb::Visibility::Staff.into();
            req.source_ref = format!("staff/{}", req.source_ref);
            kc.put_document(auth::request(&Actor::System("test".into()), req))
                .await
                .unwrap();
        }
        let mut bot =
            pb::repairbot_service_client::RepairbotServiceClient::new(f.repairbot.channel());
        let mut conv = std::collections::HashMap::new();
        for (who, actor) in [("client", &me), ("visitor", &anon)] {
            let c = bot
                .start_conversation(auth::request(
                    actor,
                    pb::StartConversationRequest {
                        channel: pb::Channel::Web.into(),
                        client_id: String::new(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .conversation
                .unwrap()
                .id;
            conv.insert(who, c);
        }
        let job_url = format!("/garage/jobs/{}", job.id);
        let mut right = 0;
        let mut misses = Vec::new();
        for q in questions {
            let who = q["who"].as_str().unwrap();
            let text = q["q"].as_str().unwrap().replace("{job}", &job.id);
            let expect = q["expect"].as_str().unwrap();
            let actor = if who == "client" { &me } else { &anon };
            let m = bot
                .send_message(auth::request(
                    actor,
                    pb::SendMessageRequest {
                        conversation_id: conv[who].clone(),
                        text: text.clone(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .reply
                .unwrap();
            assert!(
                !m.content.contains("WALRUSNOTE"),
                "staff notes leaked: {text}"
            );
            let ok = m.sources.iter().any(|s| match expect.split_once(':') {
                None if expect == "job" => s.url == job_url,
                None => s.kind == expect,
                Some(("product", id)) => s.kind == "product" && s.id == id,
                Some(("doc", r)) => s.kind == "doc" && doc_ids.get(r) == Some(&s.id),
                Some(_) => false,
            });
            if ok {
                right += 1;
            } else {
                let got: Vec<String> = m
                    .sources
                    .iter()
                    .map(|s| format!("{}:{}", s.kind, s.id))
                    .collect();
                misses.push(format!("  {text:?} wanted {expect}, cited {got:?}"));
            }
        }
        let share = f64::from(right) / questions.len() as f64;
        println!(
            "{backend:?}: the offline assistant answered {right}/{} seeded shop questions with the right record or passage ({:.0} %)\nmissed:\n{}",
            questions.len(),
            share * 100.0,
            misses.join("\n")
        );
        assert!(
            share >= FLOOR,
            "{backend:?}: {right}/40 right, below the floor"
        );
    }
}

/// The share the offline set must keep: 34/40 (85 %) measured on both databases when the set was
/// written (the misses are listed in docs/adr/0015); the floor leaves two answers of slack.
const FLOOR: f64 = 0.8;

/// repairbot away: the page still opens, the form post says so on the page (503), and the stream
/// answers with one friendly `error` event instead of breaking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_says_so_when_repairbot_is_away() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let port = free_port();
    let site = start_site_at(port, &[("repairbot", closed)]).await;
    let mut v = Browser::new(&site.url(""));
    let page = v.get("/assistant").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let p = v
        .post(
            "/assistant",
            &[("csrf", &csrf), ("text", "where is my scooter?")],
        )
        .await;
    assert_eq!(p.status, 503, "{}", p.body);
    assert!(p.body.contains("taking a break"), "{}", p.body);
    // What was typed is kept in the form.
    assert!(
        p.body.contains(">where is my scooter?</textarea>"),
        "{}",
        p.body
    );
    let s = v
        .post("/assistant/stream", &[("csrf", &csrf), ("text", "hello")])
        .await;
    assert_eq!(s.status, 200);
    assert!(
        s.body.starts_with("event: error\ndata: {\"message\":"),
        "{}",
        s.body
    );
    assert!(s.body.contains("taking a break"), "{}", s.body);
    site.stop().await;
}
