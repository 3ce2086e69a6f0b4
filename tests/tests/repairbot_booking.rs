//! Booking through the assistant (ADR 0016), over real sockets on both databases: real garage,
//! jobs and shop; repairbot in-process for the offline assistant, as its own process with fakellm
//! (PEERS.md) as the model.
//!
//! Proves: `create_booking` only proposes and the client's explicit yes books exactly one job with
//! the proposed slot (linked as the source); a no, another message, or a yes with nothing waiting
//! books nothing; a visitor and staff are refused; a taken or non-existent slot gets a clear
//! answer; a client with two vehicles is asked which; the model calling `create_booking` twice
//! still needs the yes, and a model claiming "booked" books nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::garage::v1 as gpb;
use omneuro_proto::jobs::v1 as jobs;
use omneuro_proto::jobs::v1::jobs_service_client::JobsServiceClient;
use omneuro_proto::repairbot::v1 as pb;
use omneuro_tests::*;
use pb::repairbot_service_client::RepairbotServiceClient;
use tonic::transport::Channel;

type Bot = RepairbotServiceClient<Channel>;
type Jobs = JobsServiceClient<Channel>;

/// garage, jobs, shop in-process; client A (one vehicle) and client B (two vehicles).
struct Shop {
    _dbs: Vec<TestDb>,
    garage: Running,
    jobs: Running,
    shop: Running,
    a: String,
    a_vehicle: String,
    b: String,
    b_vehicles: Vec<String>,
}

async fn shop(backend: Backend, sink: &SmtpSink) -> Shop {
    let dbs: Vec<TestDb> = ["garage", "jobs", "shop"]
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
    for r in [&g, &s, &j] {
        wait_ready(r).await;
    }
    let mut gc = GarageClient::new(g.channel());
    let (a, av) =
        client_with_vehicle(&mut gc, sink, "bka", other_vehicle("Segway", "Max G30")).await;
    let (b, bv1) =
        client_with_vehicle(&mut gc, sink, "bkb", other_vehicle("Kaabo", "Mantis")).await;
    let bv2 = gc
        .create_vehicle(auth::request(
            &Actor::Client(b.id.clone()),
            gpb::CreateVehicleRequest {
                input: Some(other_vehicle("Inmotion", "V12")),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    Shop {
        _dbs: dbs,
        garage: g,
        jobs: j,
        shop: s,
        a: a.id,
        a_vehicle: av.id,
        b: b.id,
        b_vehicles: vec![bv1.id, bv2.id],
    }
}

impl Shop {
    fn upstreams(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OMNEURO__UPSTREAMS__JOBS", self.jobs.grpc_url()),
            ("OMNEURO__UPSTREAMS__SHOP", self.shop.grpc_url()),
            ("OMNEURO__UPSTREAMS__GARAGE", self.garage.grpc_url()),
        ]
    }

    async fn stop(self) {
        self.garage.stop().await;
        self.jobs.stop().await;
        self.shop.stop().await;
    }
}

fn owner() -> Actor {
    Actor::Staff {
        id: "stf_bookingtest0000".into(),
        role: StaffRole::Owner,
    }
}

/// Every job in jobs (as the owner sees them).
async fn all_jobs(j: &mut Jobs) -> Vec<jobs::WorkOrder> {
    j.list_jobs(auth::request(&owner(), jobs::ListJobsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .jobs
}

/// Free slots, earliest first: (date, window code, start, remaining in its window).
async fn free_slots(j: &mut Jobs) -> Vec<(String, String, String, u32)> {
    j.list_availability(jobs::ListAvailabilityRequest {})
        .await
        .unwrap()
        .into_inner()
        .windows
        .into_iter()
        .filter(|w| w.remaining > 0)
        .flat_map(|w| {
            w.slots
                .into_iter()
                .map(move |s| (w.date.clone(), w.window_code.clone(), s.start, w.remaining))
        })
        .collect()
}

async fn start(bot: &mut Bot, who: &Actor) -> String {
    bot.start_conversation(auth::request(
        who,
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
    .id
}

async fn send(bot: &mut Bot, who: &Actor, conv: &str, text: &str) -> pb::Message {
    bot.send_message(auth::request(
        who,
        pb::SendMessageRequest {
            conversation_id: conv.into(),
            text: text.into(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .reply
    .unwrap()
}

fn asks_to_confirm(m: &pb::Message) -> bool {
    m.content.contains("Reply yes to book")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_assistant_books_only_after_the_clients_yes() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let shop = shop(backend, &sink).await;
        let rdb = TestDb::new(backend, "repairbot");
        // Many messages in a minute from one client: no per-minute limit here.
        let mut env = shop.upstreams();
        env.push(("OMNEURO__LLM__PER_CLIENT_PER_MINUTE", "0".into()));
        let r = start_domain("repairbot", &rdb.url, &env).await;
        wait_ready(&r).await;
        let mut bot = Bot::new(r.channel());
        let mut jc = Jobs::new(shop.jobs.channel());
        let slots = free_slots(&mut jc).await;
        let (date, window, start_at, _) = slots[0].clone();
        let a = Actor::Client(shop.a.clone());
        let conv = start(&mut bot, &a).await;

        // Propose: nothing is booked; the answer asks for the yes and names the slot.
        let ask = format!("book my scooter for {date} at {start_at}");
        let m = send(&mut bot, &a, &conv, &ask).await;
        assert_eq!(m.tool_calls.len(), 1, "{m:?}");
        assert_eq!(m.tool_calls[0].name, "create_booking");
        assert!(!m.tool_calls[0].refused, "{m:?}");
        assert!(asks_to_confirm(&m), "{}", m.content);
        assert!(
            m.content.contains(&start_at) && m.content.contains("Segway"),
            "{}",
            m.content
        );
        assert!(all_jobs(&mut jc).await.is_empty());

        // Yes: exactly one booking, with the proposed slot, linked as the source.
        let m = send(&mut bot, &a, &conv, "Yes").await;
        assert!(m.content.starts_with("Booked"), "{}", m.content);
        let booked = all_jobs(&mut jc).await;
        assert_eq!(booked.len(), 1, "{booked:?}");
        let job = &booked[0];
        assert_eq!(job.client_id, shop.a);
        assert_eq!(job.vehicle_id, shop.a_vehicle);
        let apt = job.appointment.clone().unwrap();
        assert_eq!(
            (
                apt.date.as_str(),
                apt.window_code.as_str(),
                apt.start.as_str()
            ),
            (date.as_str(), window.as_str(), start_at.as_str())
        );
        assert_eq!(job.services, ["diagnostics"]);
        assert_eq!(m.sources.len(), 1);
        assert_eq!(m.sources[0].kind, "job");
        assert_eq!(m.sources[0].url, format!("/garage/jobs/{}", job.id));
        assert!(m.content.contains(&job.id));

        // The proposal was used once: another yes books nothing.
        let m = send(&mut bot, &a, &conv, "yes").await;
        assert!(!m.content.starts_with("Booked"), "{}", m.content);
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // Propose → no: nothing booked, and a later yes finds nothing waiting.
        let m = send(&mut bot, &a, &conv, &ask).await;
        assert!(asks_to_confirm(&m), "{}", m.content);
        let m = send(&mut bot, &a, &conv, "no").await;
        assert!(m.content.contains("nothing was booked"), "{}", m.content);
        let m = send(&mut bot, &a, &conv, "yes").await;
        assert!(!m.content.starts_with("Booked"), "{}", m.content);
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // Propose → another message: the proposal is dropped.
        let m = send(&mut bot, &a, &conv, &ask).await;
        assert!(asks_to_confirm(&m), "{}", m.content);
        send(&mut bot, &a, &conv, "what are your opening hours?").await;
        send(&mut bot, &a, &conv, "confirm").await;
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // An expired proposal: the yes is told so, nothing booked.
        let m = send(&mut bot, &a, &conv, &ask).await;
        assert!(asks_to_confirm(&m), "{}", m.content);
        assert_eq!(
            rdb.execute("UPDATE booking_proposals SET expires_at = '2000-01-01 00:00:00'"),
            1
        );
        let m = send(&mut bot, &a, &conv, "yes").await;
        assert!(m.content.contains("expired"), "{}", m.content);
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // A yes in a fresh conversation (nothing proposed) does nothing.
        let fresh = start(&mut bot, &a).await;
        let m = send(&mut bot, &a, &fresh, "book it").await;
        assert!(
            m.tool_calls.iter().all(|t| t.name != "create_booking"),
            "{m:?}"
        );
        assert!(!asks_to_confirm(&m) && !m.content.starts_with("Booked"));
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // A time with no slot: a clear answer with the free times, nothing to confirm.
        let m = send(
            &mut bot,
            &a,
            &conv,
            &format!("book my scooter for {date} at 3am"),
        )
        .await;
        assert!(
            m.content.contains("There is no drop-off time"),
            "{}",
            m.content
        );
        assert!(m.content.contains("Free drop-off times"), "{}", m.content);
        assert!(!asks_to_confirm(&m));

        // The slot fills up between the proposal and the yes: jobs' refusal, nothing booked.
        let (d2, w2, s2, _) = free_slots(&mut jc)
            .await
            .into_iter()
            .find(|(d, w, _, _)| !(d == &date && w == &window))
            .unwrap();
        let m = send(
            &mut bot,
            &a,
            &conv,
            &format!("book my scooter for {d2} at {s2}"),
        )
        .await;
        assert!(asks_to_confirm(&m), "{}", m.content);
        let b = Actor::Client(shop.b.clone());
        loop {
            let left = free_slots(&mut jc)
                .await
                .into_iter()
                .find(|(d, w, _, _)| d == &d2 && w == &w2);
            let Some((_, _, s, _)) = left else { break };
            jc.create_booking(auth::request(
                &b,
                jobs::CreateBookingRequest {
                    vehicle_id: shop.b_vehicles[0].clone(),
                    services: vec!["diagnostics".into()],
                    problem: String::new(),
                    safety_flag: false,
                    slot: Some(jobs::Slot {
                        date: d2.clone(),
                        window_code: w2.clone(),
                        start: s,
                        starts_at: None,
                    }),
                },
            ))
            .await
            .unwrap();
        }
        let before = all_jobs(&mut jc).await.len();
        let m = send(&mut bot, &a, &conv, "yes").await;
        assert!(m.content.starts_with("Nothing was booked"), "{}", m.content);
        assert!(m.tool_calls[0].refused, "{m:?}");
        assert!(m.sources.is_empty());
        assert_eq!(all_jobs(&mut jc).await.len(), before);

        // Two vehicles: asked which; naming one proposes it.
        let bconv = start(&mut bot, &b).await;
        let m = send(
            &mut bot,
            &b,
            &bconv,
            &format!("book my scooter for {date} at {start_at}"),
        )
        .await;
        assert!(m.content.contains("Which vehicle"), "{}", m.content);
        assert!(
            m.content.contains("Kaabo") && m.content.contains("Inmotion"),
            "{}",
            m.content
        );
        assert!(!asks_to_confirm(&m));
        let m = send(
            &mut bot,
            &b,
            &bconv,
            &format!("book my Inmotion for {date} at {start_at}"),
        )
        .await;
        assert!(
            asks_to_confirm(&m) && m.content.contains("Inmotion"),
            "{}",
            m.content
        );
        // Only that client can confirm it: staff writing "yes" in the conversation books nothing.
        let before = all_jobs(&mut jc).await.len();
        let m = send(&mut bot, &owner(), &bconv, "yes").await;
        assert!(m.content.contains("Only the client"), "{}", m.content);
        assert_eq!(all_jobs(&mut jc).await.len(), before);

        // A visitor is told to sign in; staff are told to use the portal.
        let anon = Actor::System("site".into());
        let vconv = start(&mut bot, &anon).await;
        let m = send(&mut bot, &anon, &vconv, &ask).await;
        assert!(m.tool_calls[0].refused, "{m:?}");
        assert!(
            m.content.contains("sign in") && m.content.contains("/garage/book"),
            "{}",
            m.content
        );
        assert!(!asks_to_confirm(&m));
        send(&mut bot, &anon, &vconv, "yes").await;
        let sconv = start(&mut bot, &owner()).await;
        let m = send(&mut bot, &owner(), &sconv, &ask).await;
        assert!(
            m.tool_calls[0].refused && m.content.contains("portal"),
            "{}",
            m.content
        );
        send(&mut bot, &owner(), &sconv, "yes").await;
        assert_eq!(all_jobs(&mut jc).await.len(), before);

        r.stop().await;
        shop.stop().await;
    }
}

/// The model's script. Trigger words (walrus, narwhal, puffin, heron) never appear in the system
/// prompt. DATE and START are a free slot.
const RULES: &str = r#"
version: 1
rules:
  - name: walrus_propose_twice
    when: { messages_contain: "walrus", turn: 1 }
    respond:
      tool_calls:
        - { name: create_booking, arguments: { date: "DATE", start: "START" } }
        - { name: create_booking, arguments: { date: "DATE", start: "START", services: ["diagnostics"] } }
  - name: walrus_answer
    when: { messages_contain: "walrus", turn: 2 }
    respond: { content: "That time is free." }
  - name: narwhal_propose
    when: { messages_contain: "narwhal", turn: 1 }
    respond:
      tool_calls: [{ name: create_booking, arguments: { date: "DATE", start: "START" } }]
  - name: narwhal_answer
    when: { messages_contain: "narwhal", turn: 2 }
    respond: { content: "That time is free." }
  - name: narwhal_chat
    when: { messages_contain: "narwhal", turn: 3 }
    respond: { content: "Parking is right out front." }
  - name: narwhal_lies
    when: { messages_contain: "narwhal" }
    respond: { content: "Done, you are booked!" }
  - name: puffin_bad_slot
    when: { messages_contain: "puffin", turn: 1 }
    respond:
      tool_calls: [{ name: create_booking, arguments: { date: "DATE", start: "03:00" } }]
  - name: puffin_answer
    when: { messages_contain: "puffin" }
    respond: { content: "That time isn't available." }
  - name: heron_visitor
    when: { messages_contain: "heron", turn: 1 }
    respond:
      tool_calls: [{ name: create_booking, arguments: { date: "DATE", start: "START" } }]
  - name: heron_answer
    when: { messages_contain: "heron" }
    respond: { content: "Please sign in to book." }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_proposes_and_only_the_clients_yes_books() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    if peer_or_skip("fakellm", venv_bin("fakellm")).is_none() {
        return;
    }
    for backend in backends() {
        let shop = shop(backend, &sink).await;
        let mut jc = Jobs::new(shop.jobs.channel());
        let (date, window, start_at, _) = free_slots(&mut jc).await[0].clone();
        let rules = RULES.replace("DATE", &date).replace("START", &start_at);
        let llm = FakeLlm::start(&rules).unwrap();
        let tmp = TempDir::new("repairbot");
        let rdb = TestDb::new(backend, "repairbot");
        let mut env = shop.upstreams();
        env.extend([
            ("OMNEURO__DATABASE__URL", rdb.url.clone()),
            ("OMNEURO__LLM__BASE_URL", llm.base_url()),
            ("OMNEURO__LLM__MODEL", "gpt-4o-mini".into()),
            ("OMNEURO_SECRET_OPENAI_API_KEY", "sk-test-fakellm".into()),
        ]);
        let bot_proc = Proc::spawn("repairbot", &env, &tmp.0);
        bot_proc.wait_ready().await;
        assert!(
            eventually(std::time::Duration::from_secs(10), || async {
                bot_proc.logs().contains("LLM enabled")
            })
            .await,
            "{}",
            bot_proc.logs()
        );
        let mut bot = Bot::connect(bot_proc.grpc_url()).await.unwrap();
        let a = Actor::Client(shop.a.clone());

        // The model calls create_booking twice: still only a proposal, asked to confirm.
        let conv = start(&mut bot, &a).await;
        let m = send(&mut bot, &a, &conv, "walrus: book my scooter please").await;
        assert_eq!(
            pb::ReplyMode::try_from(m.mode).unwrap(),
            pb::ReplyMode::Model,
            "{m:?}"
        );
        assert_eq!(m.tool_calls.len(), 2, "{m:?}");
        assert!(
            m.tool_calls
                .iter()
                .all(|t| t.name == "create_booking" && !t.refused)
        );
        assert!(m.content.starts_with("That time is free."), "{}", m.content);
        assert!(asks_to_confirm(&m), "{}", m.content);
        assert!(all_jobs(&mut jc).await.is_empty());
        assert_eq!(llm.matched("walrus_answer").await, 1);

        // The yes is handled by the server: the model is not asked, one job is booked.
        let calls = llm.total().await;
        let m = send(&mut bot, &a, &conv, "yes, book it").await;
        assert!(m.content.starts_with("Booked"), "{}", m.content);
        assert_eq!(llm.total().await, calls, "the yes never reaches the model");
        let booked = all_jobs(&mut jc).await;
        assert_eq!(booked.len(), 1, "{booked:?}");
        let apt = booked[0].appointment.clone().unwrap();
        assert_eq!(
            (apt.date, apt.window_code, apt.start),
            (date.clone(), window.clone(), start_at.clone())
        );
        assert_eq!(m.sources[0].url, format!("/garage/jobs/{}", booked[0].id));

        // Another message drops the proposal; a later yes goes to the model, which cannot book
        // (even when it says it did).
        let conv = start(&mut bot, &a).await;
        let m = send(&mut bot, &a, &conv, "narwhal: a drop-off please").await;
        assert!(asks_to_confirm(&m), "{}", m.content);
        let m = send(&mut bot, &a, &conv, "narwhal: is there parking?").await;
        assert_eq!(m.content, "Parking is right out front.");
        let m = send(&mut bot, &a, &conv, "yes").await;
        assert_eq!(m.content, "Done, you are booked!");
        assert!(m.tool_calls.is_empty());
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // A slot that does not exist: the tool says so, nothing to confirm.
        let conv = start(&mut bot, &a).await;
        let m = send(&mut bot, &a, &conv, "puffin: early drop-off").await;
        assert!(m.tool_calls[0].result.contains("no drop-off time"), "{m:?}");
        assert!(!asks_to_confirm(&m));
        send(&mut bot, &a, &conv, "yes").await;
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        // A visitor: create_booking is refused (not even offered), nothing stored.
        let anon = Actor::System("site".into());
        let conv = start(&mut bot, &anon).await;
        let m = send(&mut bot, &anon, &conv, "heron: book a scooter").await;
        assert!(m.tool_calls[0].refused, "{m:?}");
        assert!(!asks_to_confirm(&m));
        send(&mut bot, &anon, &conv, "yes").await;
        assert_eq!(all_jobs(&mut jc).await.len(), 1);

        drop(bot_proc);
        drop(llm);
        shop.stop().await;
    }
}
