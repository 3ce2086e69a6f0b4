//! Jobs into kb through jobs' outbox, on both databases (ADR 0014): with kb stopped, a job is
//! created and gets a diagnostics note — the changes wait in `kb_outbox`; kb starts and the job is
//! searchable by staff within seconds (one document, `source_ref = job:<id>`, the note's text in
//! it); a status change replaces it.
//!
//! repairbot's conversations into kb through repairbot's outbox (ADR 0020), on both databases: a
//! client's conversation with the offline assistant is one staff-only document, re-rendered as
//! messages arrive, linked to its client and the product it cited; another client cannot find it.
//!
//! The knowledge graph on a seeded shop history, on both databases: past jobs on a make/model that
//! mention a symptom, the parts most used for it, a path between two entities, neighbours; edges
//! replaced and removed with their document; clients refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use jpb::jobs_service_client::JobsServiceClient;
use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::jobs::v1 as jpb;
use omneuro_proto::kb::v1 as pb;
use omneuro_tests::*;
use pb::kb_service_client::KbServiceClient;

fn tech() -> Actor {
    Actor::Staff {
        id: "stf_tech".into(),
        role: StaffRole::Tech,
    }
}

/// Staff hits for `query` (empty while kb is not there).
async fn staff_hits(kb_url: &str, query: &str) -> Vec<pb::SearchHit> {
    let Ok(ch) = tonic::transport::Endpoint::from_shared(kb_url.to_owned())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
    else {
        return Vec::new();
    };
    KbServiceClient::new(ch)
        .search(auth::request(
            &tech(),
            pb::SearchRequest {
                query: query.into(),
                limit: 20,
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner().hits)
        .unwrap_or_default()
}

fn pending(jdb: &TestDb) -> i64 {
    jdb.query_pair(
        "SELECT CAST(COUNT(*) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b FROM kb_outbox \
         WHERE state = 'pending'",
    )
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_changes_wait_while_kb_is_down_and_catch_up_when_it_is_back() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, jdb, kdb, sdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "kb"),
            TestDb::new(backend, "shop"),
        );
        let shop = start_domain("shop", &sdb.url, &[]).await;
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let kb_port = free_port();
        let kb_url = format!("http://127.0.0.1:{kb_port}");
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
                ("OMNEURO__UPSTREAMS__KB", kb_url.clone()),
                ("OMNEURO__UPSTREAMS__CONNECT_TIMEOUT_MS", "300".to_owned()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__WORKER__RETRY_BASE_MS", "200".to_owned()),
            ],
        )
        .await;
        for r in [&g, &shop, &jsvc] {
            wait_ready(r).await;
        }
        let mut gc =
            omneuro_proto::garage::v1::garage_service_client::GarageServiceClient::new(g.channel());
        let mut j = JobsServiceClient::new(jsvc.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "kbev", other_vehicle("Begode", "Master")).await;

        // kb is down: jobs works as ever, the changes wait.
        let job = j
            .create_walk_in(auth::request(
                &tech(),
                jpb::CreateWalkInRequest {
                    client_id: client.id.clone(),
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into()],
                    problem: "Cuts out under hard acceleration.".into(),
                    safety_flag: false,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        j.add_note(auth::request(
            &tech(),
            jpb::AddNoteRequest {
                job_id: job.id.clone(),
                body: "Found a scorched phase wire connector near the controller.".into(),
            },
        ))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(pending(&jdb), 2, "{backend:?}: both changes wait for kb");

        // kb starts on the port jobs was told about: the backlog drains within seconds.
        let k = start_domain(
            "kb",
            &kdb.url,
            &[("OMNEURO__GRPC__PORT", kb_port.to_string())],
        )
        .await;
        wait_ready(&k).await;
        let found = eventually(Duration::from_secs(10), || {
            let url = kb_url.clone();
            async move {
                !staff_hits(&url, "scorched phase connector")
                    .await
                    .is_empty()
            }
        })
        .await;
        assert!(found, "{backend:?}: the note is searchable once kb is back");
        let hits = staff_hits(&kb_url, "scorched phase connector").await;
        let source = format!("job:{}", job.id);
        assert!(hits.iter().all(|h| h.source_ref == source), "{hits:?}");
        assert!(hits[0].title.contains("Begode Master"), "{}", hits[0].title);
        assert!(
            eventually(Duration::from_secs(5), || async { pending(&jdb) == 0 }).await,
            "{backend:?}: delivered rows are marked done"
        );

        // Staff only: a client-facing search does not see the job's document.
        let mut kc = KbServiceClient::new(k.channel());
        let as_client = kc
            .search(auth::request(
                &Actor::Client(client.id.clone()),
                pb::SearchRequest {
                    query: "scorched phase connector".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .hits;
        assert!(as_client.is_empty(), "{as_client:?}");

        // A status change re-renders the same document (replaced, not added).
        j.move_job(auth::request(
            &tech(),
            jpb::MoveJobRequest {
                id: job.id.clone(),
                to_status: "diagnosing".into(),
                note: "Bench test booked with the wiring harness".into(),
            },
        ))
        .await
        .unwrap();
        let updated = eventually(Duration::from_secs(10), || {
            let url = kb_url.clone();
            async move {
                staff_hits(&url, "wiring harness bench")
                    .await
                    .iter()
                    .any(|h| h.text.contains("diagnosing"))
            }
        })
        .await;
        assert!(updated, "{backend:?}: the status change reached kb");
        let doc_ids: std::collections::BTreeSet<String> = staff_hits(&kb_url, "Begode Master")
            .await
            .into_iter()
            .filter(|h| h.source_ref == source)
            .map(|h| h.document_id)
            .collect();
        assert_eq!(doc_ids.len(), 1, "{backend:?}: one document per job");

        // The job's links reached the graph: the vehicle it was serviced in, and that vehicle's
        // make and model as garage knows it.
        let around = neighbours(&mut kc, ("job", &job.id), &[]).await;
        assert!(
            around.contains(&(
                "serviced_in".into(),
                false,
                format!("vehicle:{}", vehicle.id)
            )),
            "{around:?}"
        );
        let models = neighbours(&mut kc, ("vehicle", &vehicle.id), &["is_model"]).await;
        assert_eq!(
            models,
            vec![("is_model".into(), true, "model:begode master".into())]
        );

        // A part line: the document lists it and the graph has job -used_part-> product.
        let product =
            omneuro_proto::shop::v1::shop_service_client::ShopServiceClient::new(shop.channel())
                .list_products(omneuro_proto::shop::v1::ListProductsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .products
                .remove(0);
        j.add_part(auth::request(
            &tech(),
            jpb::AddPartRequest {
                job_id: job.id.clone(),
                product_id: product.id.clone(),
                quantity: 2,
            },
        ))
        .await
        .unwrap();
        let want = vec![(
            "used_part".to_owned(),
            true,
            format!("product:{}", product.id),
        )];
        let kc2 = kc.clone();
        assert!(
            eventually(Duration::from_secs(10), || {
                let (mut kc, want, id) = (kc2.clone(), want.clone(), job.id.clone());
                async move { neighbours(&mut kc, ("job", &id), &["used_part"]).await == want }
            })
            .await,
            "{backend:?}: the part reached the graph"
        );
        let doc_id = staff_hits(&kb_url, "Begode Master")
            .await
            .into_iter()
            .find(|h| h.source_ref == source)
            .expect("the job document")
            .document_id;
        let body = kc
            .get_document(auth::request(
                &tech(),
                pb::GetDocumentRequest {
                    id: doc_id,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .document
            .unwrap()
            .body;
        assert!(body.contains(&format!("2 × {}", product.name)), "{body}");

        k.stop().await;
        jsvc.stop().await;
        shop.stop().await;
        g.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_one_staff_only_document_that_follows_its_messages() {
    use omneuro_proto::repairbot::v1 as rpb;
    use rpb::repairbot_service_client::RepairbotServiceClient;
    for backend in backends() {
        let (sdb, rdb, kdb) = (
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "repairbot"),
            TestDb::new(backend, "kb"),
        );
        let k = start_domain("kb", &kdb.url, &[]).await;
        let shop = start_domain("shop", &sdb.url, &[]).await;
        let r = start_domain(
            "repairbot",
            &rdb.url,
            &[
                ("OMNEURO__UPSTREAMS__SHOP", shop.grpc_url()),
                ("OMNEURO__UPSTREAMS__KB", k.grpc_url()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__WORKER__RETRY_BASE_MS", "200".to_owned()),
            ],
        )
        .await;
        for x in [&k, &shop, &r] {
            wait_ready(x).await;
        }
        let kb_url = k.grpc_url();
        let mut bot = RepairbotServiceClient::new(r.channel());
        let client = omneuro_platform::ids::new_id("cli");
        let me = Actor::Client(client.clone());
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
        let say = |text: &str| {
            auth::request(
                &me,
                rpb::SendMessageRequest {
                    conversation_id: conv.clone(),
                    text: text.into(),
                },
            )
        };
        let reply = bot
            .send_message(say("do you have a 10 inch inner tube?"))
            .await
            .unwrap()
            .into_inner()
            .reply
            .unwrap();
        assert!(
            reply.sources.iter().any(|s| s.id == "prd_demo_tube_10"),
            "{reply:?}"
        );
        let source = format!("conversation:{conv}");
        let conv_docs = |query: &'static str, who: Actor| {
            let (url, source) = (kb_url.clone(), source.clone());
            async move {
                let ch = tonic::transport::Endpoint::from_shared(url)
                    .unwrap()
                    .connect_lazy();
                KbServiceClient::new(ch)
                    .search(auth::request(
                        &who,
                        pb::SearchRequest {
                            query: query.into(),
                            limit: 50,
                            ..Default::default()
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .hits
                    .into_iter()
                    .filter(|h| h.source_ref == source)
                    .map(|h| h.document_id)
                    .collect::<std::collections::BTreeSet<String>>()
            }
        };
        assert!(
            eventually(Duration::from_secs(10), || async {
                !conv_docs("inch inner tube", tech()).await.is_empty()
            })
            .await,
            "{backend:?}: staff find the conversation"
        );
        // Staff only: neither its own client nor another finds it.
        let stranger = Actor::Client(omneuro_platform::ids::new_id("cli"));
        for who in [me.clone(), stranger] {
            assert!(
                conv_docs("inch inner tube", who).await.is_empty(),
                "{backend:?}"
            );
        }

        // A later message re-renders the same document.
        bot.send_message(say("Thanks, I will collect it with my zebrawood basket."))
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(10), || async {
                !conv_docs("zebrawood basket", tech()).await.is_empty()
            })
            .await,
            "{backend:?}: the new message reached kb"
        );
        assert_eq!(
            conv_docs("inch inner tube zebrawood", tech()).await.len(),
            1,
            "{backend:?}: one document per conversation"
        );
        let rpending = || {
            rdb.query_pair(
                "SELECT CAST(COUNT(*) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b FROM kb_outbox \
                 WHERE state = 'pending'",
            )
            .0
        };
        assert!(
            eventually(Duration::from_secs(5), || async { rpending() == 0 }).await,
            "{backend:?}: the backlog drains"
        );

        // The graph: the client owns it, it is about the product it cited.
        let mut kc = KbServiceClient::new(k.channel());
        assert_eq!(
            neighbours(&mut kc, ("client", &client), &["owns"]).await,
            vec![("owns".into(), true, source.clone())]
        );
        assert!(
            neighbours(&mut kc, ("conversation", &conv), &["about"])
                .await
                .contains(&("about".into(), true, "product:prd_demo_tube_10".into())),
            "{backend:?}"
        );

        r.stop().await;
        shop.stop().await;
        k.stop().await;
    }
}

type Kb = KbServiceClient<tonic::transport::Channel>;

fn system() -> Actor {
    Actor::System("jobs".into())
}

fn eref(kind: &str, key: &str) -> Option<pb::EntityRef> {
    Some(pb::EntityRef {
        kind: kind.into(),
        key: key.into(),
    })
}

/// (edge kind, outgoing, `kind:key` of the neighbour), in kb's order.
async fn neighbours(kc: &mut Kb, of: (&str, &str), kinds: &[&str]) -> Vec<(String, bool, String)> {
    kc.neighbours(auth::request(
        &tech(),
        pb::NeighboursRequest {
            entity: eref(of.0, of.1),
            edge_kinds: kinds.iter().map(|k| k.to_string()).collect(),
            limit: 0,
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .neighbours
    .into_iter()
    .map(|n| {
        let e = n.entity.unwrap();
        (n.edge_kind, n.outgoing, format!("{}:{}", e.kind, e.key))
    })
    .collect()
}

fn link(kind: &str, from: (&str, &str), to: (&str, &str), to_label: &str) -> pb::Link {
    pb::Link {
        kind: kind.into(),
        from: eref(from.0, from.1),
        to: eref(to.0, to.1),
        from_label: String::new(),
        to_label: to_label.into(),
    }
}

/// A job document the way jobs sends one.
fn job_doc(
    id: &str,
    client: &str,
    vehicle: &str,
    model: &str,
    note: &str,
    parts: &[(&str, &str)],
) -> pb::PutDocumentRequest {
    let mut links = vec![
        link("owns", ("client", client), ("vehicle", vehicle), ""),
        link("is_model", ("vehicle", vehicle), ("model", model), model),
        link("serviced_in", ("vehicle", vehicle), ("job", id), ""),
    ];
    let mut body = format!("# Job {id} — {model}\n\n## Diagnostics notes\n\n- {note}\n");
    if !parts.is_empty() {
        body.push_str("\n## Parts used\n\n");
    }
    for (prd, name) in parts {
        body.push_str(&format!("- 1 × {name}\n"));
        links.push(link("used_part", ("job", id), ("product", prd), name));
        links.push(link("fits", ("product", prd), ("model", model), model));
    }
    pb::PutDocumentRequest {
        title: format!("Job {id} — {model}"),
        body,
        visibility: pb::Visibility::Staff.into(),
        format: pb::Format::Markdown.into(),
        owner_client_id: client.into(),
        source_ref: format!("job:{id}"),
        links,
        ..Default::default()
    }
}

fn product_doc(id: &str, name: &str) -> pb::PutDocumentRequest {
    pb::PutDocumentRequest {
        title: name.into(),
        body: format!("{name}: stocked part."),
        visibility: pb::Visibility::Client.into(),
        source_ref: format!("product:{id}"),
        ..Default::default()
    }
}

const S22: &str = "King Song S22";
const MASTER: &str = "Begode Master";

async fn seed(kc: &mut Kb) {
    for (id, name) in [
        ("prd_ctrl", "Controller board"),
        ("prd_wire", "Phase wire set"),
        ("prd_fuse", "Main fuse 40A"),
        ("prd_tube", "Inner tube 16x3"),
    ] {
        kc.put_document(auth::request(&system(), product_doc(id, name)))
            .await
            .unwrap();
    }
    let history = [
        job_doc(
            "job_s22one",
            "cli_a",
            "veh_a1",
            S22,
            "Cuts out under load; controller overheating.",
            &[
                ("prd_ctrl", "Controller board"),
                ("prd_wire", "Phase wire set"),
            ],
        ),
        job_doc(
            "job_s22two",
            "cli_b",
            "veh_b1",
            S22,
            "Cuts out at speed, burnt phase connector. Same fault as job_s22one.",
            &[("prd_wire", "Phase wire set")],
        ),
        job_doc(
            "job_s22three",
            "cli_a",
            "veh_a1",
            S22,
            "Flat tyre; checked the controller board while it was open.",
            &[("prd_tube", "Inner tube 16x3")],
        ),
        job_doc(
            "job_master1",
            "cli_c",
            "veh_c1",
            MASTER,
            "Cuts out on hills, main fuse blown.",
            &[
                ("prd_fuse", "Main fuse 40A"),
                ("prd_wire", "Phase wire set"),
            ],
        ),
    ];
    for d in history {
        kc.put_document(auth::request(&system(), d)).await.unwrap();
    }
    // A conversation with no links: its mentions come from the text alone.
    kc.put_document(auth::request(
        &system(),
        pb::PutDocumentRequest {
            title: "Chat with a rider".into(),
            body: "My king song s22 cuts out — is it like job_s22two?".into(),
            visibility: pb::Visibility::Staff.into(),
            source_ref: "conversation:conv_1".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
}

async fn jobs_mentioning(kc: &mut Kb, model: &str, text: &str) -> Vec<String> {
    kc.jobs_mentioning(auth::request(
        &tech(),
        pb::JobsMentioningRequest {
            make_model: model.into(),
            text: text.into(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .jobs
    .into_iter()
    .map(|m| {
        let job = m.job.unwrap();
        assert_eq!(m.source_ref, format!("job:{}", job.key));
        job.key
    })
    .collect()
}

async fn parts(kc: &mut Kb, model: &str, symptom: &str) -> Vec<(String, String, Vec<String>)> {
    kc.parts_for_symptom(auth::request(
        &tech(),
        pb::PartsForSymptomRequest {
            symptom: symptom.into(),
            model: model.into(),
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .parts
    .into_iter()
    .map(|p| {
        let e = p.part.unwrap();
        (e.key, e.label, p.job_ids)
    })
    .collect()
}

async fn path(kc: &mut Kb, from: (&str, &str), to: (&str, &str), depth: u32) -> Vec<String> {
    let r = kc
        .path(auth::request(
            &tech(),
            pb::PathRequest {
                from: eref(from.0, from.1),
                to: eref(to.0, to.1),
                max_depth: depth,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.found, !r.steps.is_empty());
    r.steps
        .into_iter()
        .map(|s| {
            let e = s.entity.unwrap();
            match (s.edge_kind.as_str(), s.forward) {
                ("", _) => format!("{}:{}", e.kind, e.key),
                (k, true) => format!("-{k}-> {}:{}", e.kind, e.key),
                (k, false) => format!("<-{k}- {}:{}", e.kind, e.key),
            }
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_queries_on_a_seeded_shop_history() {
    for backend in backends() {
        let kdb = TestDb::new(backend, "kb");
        let k = start_domain("kb", &kdb.url, &[]).await;
        wait_ready(&k).await;
        let mut kc = Kb::new(k.channel());
        seed(&mut kc).await;

        // Past jobs on the S22 that mention "cuts out" (any case; the Master's job is another model,
        // the flat tyre does not mention it).
        assert_eq!(
            jobs_mentioning(&mut kc, "king song s22", "CUTS OUT").await,
            s(&["job_s22one", "job_s22two"]),
            "{backend:?}"
        );
        assert_eq!(
            jobs_mentioning(&mut kc, S22, "controller board").await,
            s(&["job_s22one", "job_s22three"])
        );
        assert!(
            jobs_mentioning(&mut kc, S22, "brake squeal")
                .await
                .is_empty()
        );

        // Parts most used for the symptom on the model.
        assert_eq!(
            parts(&mut kc, S22, "cuts out").await,
            vec![
                (
                    "prd_wire".into(),
                    "Phase wire set".into(),
                    s(&["job_s22one", "job_s22two"])
                ),
                (
                    "prd_ctrl".into(),
                    "Controller board".into(),
                    s(&["job_s22one"])
                ),
            ],
            "{backend:?}"
        );
        assert_eq!(
            parts(&mut kc, MASTER, "cuts out").await,
            vec![
                (
                    "prd_fuse".into(),
                    "Main fuse 40A".into(),
                    s(&["job_master1"])
                ),
                (
                    "prd_wire".into(),
                    "Phase wire set".into(),
                    s(&["job_master1"])
                ),
            ]
        );

        // A shortest path, and none within too small a depth.
        assert_eq!(
            path(&mut kc, ("client", "cli_b"), ("product", "prd_ctrl"), 0).await,
            s(&[
                "client:cli_b",
                "-owns-> vehicle:veh_b1",
                "-is_model-> model:king song s22",
                "<-fits- product:prd_ctrl",
            ]),
            "{backend:?}"
        );
        assert!(
            path(&mut kc, ("client", "cli_b"), ("product", "prd_ctrl"), 2)
                .await
                .is_empty()
        );

        // Neighbours, with mentions found in text (job ids, product names from product documents,
        // model names from the links).
        assert_eq!(
            neighbours(&mut kc, ("job", "job_s22two"), &[]).await,
            vec![
                ("serviced_in".into(), false, "vehicle:veh_b1".into()),
                ("used_part".into(), true, "product:prd_wire".into()),
                ("mentions".into(), true, "job:job_s22one".into()),
                ("mentions".into(), true, "model:king song s22".into()),
                ("mentions".into(), true, "product:prd_wire".into()),
                ("mentions".into(), false, "conversation:conv_1".into()),
            ],
            "{backend:?}"
        );
        assert_eq!(
            neighbours(&mut kc, ("job", "job_s22three"), &["mentions"]).await,
            vec![
                ("mentions".into(), true, "model:king song s22".into()),
                ("mentions".into(), true, "product:prd_ctrl".into()),
                ("mentions".into(), true, "product:prd_tube".into()),
            ]
        );
        assert_eq!(
            neighbours(&mut kc, ("model", "KING SONG S22"), &["is_model"]).await,
            vec![
                ("is_model".into(), false, "vehicle:veh_a1".into()),
                ("is_model".into(), false, "vehicle:veh_b1".into()),
            ]
        );

        // Edges are replaced with their document, and go away with it.
        kc.put_document(auth::request(
            &system(),
            job_doc(
                "job_s22three",
                "cli_a",
                "veh_a1",
                S22,
                "Flat tyre.",
                &[("prd_ctrl", "Controller board")],
            ),
        ))
        .await
        .unwrap();
        assert_eq!(
            neighbours(&mut kc, ("job", "job_s22three"), &["used_part"]).await,
            vec![("used_part".into(), true, "product:prd_ctrl".into())]
        );
        kc.delete_document(auth::request(
            &system(),
            pb::DeleteDocumentRequest {
                source_ref: "job:job_s22two".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        assert_eq!(
            parts(&mut kc, S22, "cuts out").await,
            vec![
                (
                    "prd_ctrl".into(),
                    "Controller board".into(),
                    s(&["job_s22one"])
                ),
                (
                    "prd_wire".into(),
                    "Phase wire set".into(),
                    s(&["job_s22one"])
                ),
            ],
            "{backend:?}"
        );

        // Clients may not query the graph; bad input and unknown entities get clear statuses.
        let client = Actor::Client("cli_a".into());
        let denied = [
            kc.neighbours(auth::request(
                &client,
                pb::NeighboursRequest {
                    entity: eref("job", "job_s22one"),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
            kc.jobs_mentioning(auth::request(
                &client,
                pb::JobsMentioningRequest {
                    make_model: S22.into(),
                    text: "cuts out".into(),
                },
            ))
            .await
            .map(|_| ()),
            kc.parts_for_symptom(auth::request(
                &client,
                pb::PartsForSymptomRequest {
                    symptom: "cuts out".into(),
                    model: S22.into(),
                },
            ))
            .await
            .map(|_| ()),
            kc.path(auth::request(
                &client,
                pb::PathRequest {
                    from: eref("client", "cli_a"),
                    to: eref("job", "job_s22one"),
                    max_depth: 0,
                },
            ))
            .await
            .map(|_| ()),
        ];
        for r in denied {
            assert_eq!(r.unwrap_err().code(), tonic::Code::PermissionDenied);
        }
        let code = |r: Result<tonic::Response<pb::NeighboursResponse>, tonic::Status>| {
            r.unwrap_err().code()
        };
        let ask = |kind: &str, key: &str| {
            auth::request(
                &tech(),
                pb::NeighboursRequest {
                    entity: eref(kind, key),
                    ..Default::default()
                },
            )
        };
        assert_eq!(
            code(kc.neighbours(ask("planet", "x")).await),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(kc.neighbours(ask("job", "job_nope")).await),
            tonic::Code::NotFound
        );
        let too_deep = kc
            .path(auth::request(
                &tech(),
                pb::PathRequest {
                    from: eref("client", "cli_a"),
                    to: eref("job", "job_s22one"),
                    max_depth: 7,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(too_deep.code(), tonic::Code::InvalidArgument);
        let bad_link = kc
            .put_document(auth::request(
                &system(),
                pb::PutDocumentRequest {
                    links: vec![link(
                        "likes",
                        ("client", "cli_a"),
                        ("job", "job_s22one"),
                        "",
                    )],
                    ..job_doc("job_s22one", "cli_a", "veh_a1", S22, "x", &[])
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad_link.code(), tonic::Code::InvalidArgument);

        k.stop().await;
    }
}
