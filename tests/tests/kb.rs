//! The knowledge base over real gRPC on both databases: every format goes in, is found and goes
//! away again; a changed source replaces its chunks; clients see only client-visible documents that
//! are shop-wide or their own (with personal data redacted), staff see everything; the index rebuilt
//! from the database (by RPC, and from nothing on a restart) answers exactly as before; bad input
//! gets clear statuses; `kb ingest` on a folder ingests what it can, reports the rest and carries on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kb::extract::sample::one_page_pdf as tiny_pdf;
use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::kb::v1 as pb;
use omneuro_tests::*;
use pb::kb_service_client::KbServiceClient;
use tonic::Code;

type Kb = KbServiceClient<tonic::transport::Channel>;

fn staff() -> Actor {
    Actor::Staff {
        id: "stf_tech1".into(),
        role: StaffRole::Tech,
    }
}

fn system() -> Actor {
    Actor::System("jobs".into())
}

fn client(id: &str) -> Actor {
    Actor::Client(id.into())
}

fn doc(title: &str, body: &str, format: pb::Format, vis: pb::Visibility) -> pb::PutDocumentRequest {
    pb::PutDocumentRequest {
        title: title.into(),
        body: body.into(),
        format: format.into(),
        visibility: vis.into(),
        ..Default::default()
    }
}

async fn put(
    c: &mut Kb,
    who: &Actor,
    req: pb::PutDocumentRequest,
) -> Result<pb::PutDocumentResponse, tonic::Status> {
    c.put_document(auth::request(who, req))
        .await
        .map(|r| r.into_inner())
}

async fn search_as(
    c: &mut Kb,
    who: &Actor,
    query: &str,
    audience: pb::Audience,
    client_id: &str,
) -> Result<Vec<pb::SearchHit>, tonic::Status> {
    c.search(auth::request(
        who,
        pb::SearchRequest {
            query: query.into(),
            limit: 20,
            audience: audience.into(),
            client_id: client_id.into(),
            mode: pb::SearchMode::Unspecified.into(),
        },
    ))
    .await
    .map(|r| r.into_inner().hits)
}

async fn search(c: &mut Kb, who: &Actor, query: &str) -> Vec<pb::SearchHit> {
    search_as(c, who, query, pb::Audience::Unspecified, "")
        .await
        .unwrap()
}

/// Every hit (the 60 chunks of the rebuild test fit in one page: no tie is cut at the limit).
async fn search_all(c: &mut Kb, who: &Actor, query: &str) -> Vec<pb::SearchHit> {
    c.search(auth::request(
        who,
        pb::SearchRequest {
            query: query.into(),
            limit: 100,
            ..Default::default()
        },
    ))
    .await
    .unwrap()
    .into_inner()
    .hits
}

fn doc_ids(hits: &[pb::SearchHit]) -> Vec<String> {
    let mut v: Vec<String> = hits.iter().map(|h| h.document_id.clone()).collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_round_trips_and_a_changed_source_replaces_its_chunks() {
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let k = start_domain("kb", &db.url, &[]).await;
        wait_ready(&k).await;
        let mut c = KbServiceClient::new(k.channel());
        let staff = staff();

        let html = "<html><head><title>t</title><script>var zanzibar = 1;</script><style>p{}</style></head>\
                    <body><h1>Controller</h1><p>Flash the <b>quokkafirmware</b> &amp; reboot.</p></body></html>";
        let cases: Vec<(&str, pb::PutDocumentRequest, &str)> = vec![
            (
                "text",
                doc(
                    "notes.txt",
                    "Plain note about the wombatcable harness.\n\nSecond paragraph.",
                    pb::Format::Text,
                    pb::Visibility::Staff,
                ),
                "wombatcable",
            ),
            (
                "markdown",
                doc(
                    "guide.md",
                    "# Battery\n\n## Balancing\n\nRun the platypusbalance routine overnight.",
                    pb::Format::Markdown,
                    pb::Visibility::Staff,
                ),
                "platypusbalance",
            ),
            (
                "html",
                doc("page.html", html, pb::Format::Html, pb::Visibility::Staff),
                "quokkafirmware",
            ),
            (
                "pdf",
                pb::PutDocumentRequest {
                    title: "manual.pdf".into(),
                    data: tiny_pdf("Torque the echidnaaxle nut to 45 Nm"),
                    format: pb::Format::Pdf.into(),
                    visibility: pb::Visibility::Staff.into(),
                    ..Default::default()
                },
                "echidnaaxle",
            ),
        ];
        for (name, req, term) in cases {
            let r = put(&mut c, &staff, req).await.unwrap();
            assert!(r.created, "{name}");
            let d = r.document.unwrap();
            assert!(d.chunk_count >= 1, "{name}");
            let hits = search(&mut c, &staff, term).await;
            assert_eq!(
                doc_ids(&hits),
                std::slice::from_ref(&d.id),
                "{name} {backend:?}"
            );
            let h = &hits[0];
            assert!(h.score > 0.0);
            assert!(h.text.to_lowercase().contains(term), "{name}: {}", h.text);
            assert!(
                h.snippet.to_lowercase().contains(term),
                "{name}: {}",
                h.snippet
            );
            assert!(!h.text.contains('<'), "{name}: markup in {}", h.text);
            assert!(h.end_char > h.start_char);
            if name == "markdown" {
                assert_eq!(h.heading, "Battery › Balancing");
                assert_eq!(h.title, "guide.md");
            }
            let del = c
                .delete_document(auth::request(
                    &staff,
                    pb::DeleteDocumentRequest {
                        id: d.id.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(del.chunks_removed, d.chunk_count);
            assert!(
                search(&mut c, &staff, term).await.is_empty(),
                "{name} still found after delete"
            );
            let gone = c
                .get_document(auth::request(
                    &staff,
                    pb::GetDocumentRequest {
                        id: d.id.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap_err();
            assert_eq!(gone.code(), Code::NotFound);
        }
        // Script and style contents are not document text.
        let html_doc = put(
            &mut c,
            &staff,
            doc("page2.html", html, pb::Format::Html, pb::Visibility::Staff),
        )
        .await
        .unwrap();
        assert!(search(&mut c, &staff, "zanzibar").await.is_empty());
        c.delete_document(auth::request(
            &staff,
            pb::DeleteDocumentRequest {
                id: html_doc.document.unwrap().id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();

        // The same source again: unchanged; changed: replaced, the old text is gone.
        let mut src = doc(
            "Job notes",
            "Customer reports a koalarattle from the rear hub.",
            pb::Format::Text,
            pb::Visibility::Staff,
        );
        src.source_ref = "job:job_abc:notes".into();
        let first = put(&mut c, &system(), src.clone()).await.unwrap();
        assert!(first.created && !first.replaced);
        let same = put(&mut c, &system(), src.clone()).await.unwrap();
        assert!(!same.created && !same.replaced);
        src.body = "Rear hub rebuilt; the dingorattle is gone.".into();
        let changed = put(&mut c, &system(), src.clone()).await.unwrap();
        assert!(!changed.created && changed.replaced);
        let id = first.document.unwrap().id;
        assert_eq!(changed.document.unwrap().id, id);
        assert!(search(&mut c, &staff, "koalarattle").await.is_empty());
        let hits = search(&mut c, &staff, "dingorattle").await;
        assert_eq!(doc_ids(&hits), std::slice::from_ref(&id));
        assert_eq!(hits[0].source_ref, "job:job_abc:notes");
        // Deleting by source ref.
        let del = c
            .delete_document(auth::request(
                &system(),
                pb::DeleteDocumentRequest {
                    source_ref: "job:job_abc:notes".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(del.id, id);
        assert!(search(&mut c, &staff, "dingorattle").await.is_empty());
        // The same body twice without a source: stored once.
        let a = put(
            &mut c,
            &staff,
            doc(
                "A",
                "Identical wallabyvalve text.",
                pb::Format::Text,
                pb::Visibility::Staff,
            ),
        )
        .await
        .unwrap();
        let b = put(
            &mut c,
            &staff,
            doc(
                "B",
                "Identical wallabyvalve text.",
                pb::Format::Text,
                pb::Visibility::Staff,
            ),
        )
        .await
        .unwrap();
        assert!(a.created && !b.created);
        assert_eq!(search(&mut c, &staff, "wallabyvalve").await.len(), 1);
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_see_shop_wide_client_documents_and_their_own_records_only() {
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let k = start_domain("kb", &db.url, &[]).await;
        wait_ready(&k).await;
        let mut c = KbServiceClient::new(k.channel());
        let (a, b) = ("cli_alice", "cli_bob");
        let mut ids = std::collections::HashMap::new();
        for (key, vis, owner, body) in [
            (
                "staff",
                pb::Visibility::Staff,
                "",
                "Internal margin on the brakepad kit is 40 %.",
            ),
            (
                "public",
                pb::Visibility::Client,
                "",
                "Our brakepad kits fit most scooters. Open 9 to 5.",
            ),
            (
                "alice",
                pb::Visibility::Client,
                a,
                "Alice's brakepad swap done; call her at 410-555-0123 or alice@example.com.",
            ),
            (
                "bob",
                pb::Visibility::Client,
                b,
                "Bob's brakepad order is waiting for pickup.",
            ),
            (
                "alice_staff",
                pb::Visibility::Staff,
                a,
                "Alice haggled over the brakepad price.",
            ),
        ] {
            let mut req = doc(key, body, pb::Format::Text, vis);
            req.owner_client_id = owner.into();
            ids.insert(
                key,
                put(&mut c, &system(), req)
                    .await
                    .unwrap()
                    .document
                    .unwrap()
                    .id,
            );
        }
        let set = |keys: &[&str]| {
            let mut v: Vec<String> = keys.iter().map(|k| ids[k].clone()).collect();
            v.sort();
            v
        };

        assert_eq!(
            doc_ids(&search(&mut c, &staff(), "brakepad").await),
            set(&["staff", "public", "alice", "bob", "alice_staff"])
        );
        let alice_hits = search(&mut c, &client(a), "brakepad").await;
        assert_eq!(
            doc_ids(&alice_hits),
            set(&["public", "alice"]),
            "{backend:?}"
        );
        let own = alice_hits
            .iter()
            .find(|h| h.document_id == ids["alice"])
            .unwrap();
        assert!(
            own.text.contains("[phone]") && own.text.contains("[email]"),
            "{}",
            own.text
        );
        assert!(!own.text.contains("555-0123") && !own.snippet.contains("example.com"));
        assert_eq!(
            doc_ids(&search(&mut c, &client(b), "brakepad").await),
            set(&["public", "bob"])
        );
        // Staff and workers answering for a client get that client's view; with no client, shop-wide only.
        let for_alice = search_as(&mut c, &system(), "brakepad", pb::Audience::Client, a)
            .await
            .unwrap();
        assert_eq!(doc_ids(&for_alice), set(&["public", "alice"]));
        let anonymous = search_as(&mut c, &staff(), "brakepad", pb::Audience::Client, "")
            .await
            .unwrap();
        assert_eq!(doc_ids(&anonymous), set(&["public"]));
        // Staff see the phone number as written.
        let raw = search(&mut c, &staff(), "haggled OR swap").await;
        assert!(raw.iter().any(|h| h.text.contains("410-555-0123")));

        // A client may not widen their view.
        let e = search_as(&mut c, &client(a), "brakepad", pb::Audience::Staff, "")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = search_as(&mut c, &client(a), "brakepad", pb::Audience::Client, b)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = c
            .search(pb::SearchRequest {
                query: "brakepad".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        // Documents by id follow the same rule; writes are for staff and workers.
        for (who, key, ok) in [
            (a, "alice", true),
            (a, "public", true),
            (a, "bob", false),
            (a, "staff", false),
            (a, "alice_staff", false),
        ] {
            let r = c
                .get_document(auth::request(
                    &client(who),
                    pb::GetDocumentRequest {
                        id: ids[key].clone(),
                        ..Default::default()
                    },
                ))
                .await;
            match ok {
                true => assert!(r.is_ok(), "{key}"),
                false => assert_eq!(r.unwrap_err().code(), Code::NotFound, "{key}"),
            }
        }
        let e = put(
            &mut c,
            &client(a),
            doc("mine", "hello", pb::Format::Text, pb::Visibility::Client),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = c
            .delete_document(auth::request(
                &client(a),
                pb::DeleteDocumentRequest {
                    id: ids["alice"].clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = c
            .rebuild_index(auth::request(&staff(), pb::RebuildIndexRequest {}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_rebuilt_from_the_database_answers_as_before() {
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let first_index = TempDir::new("kbidx");
        let env = |dir: &TempDir| {
            vec![(
                "OMNEURO__KB__INDEX_DIR",
                dir.0.join("index").display().to_string(),
            )]
        };
        let k = start_domain("kb", &db.url, &env(&first_index)).await;
        wait_ready(&k).await;
        let mut c = KbServiceClient::new(k.channel());
        let topics = [
            "battery",
            "brake",
            "tire",
            "controller",
            "motor",
            "throttle",
        ];
        for i in 0..30 {
            let t = topics[i % topics.len()];
            let u = topics[(i * 7 + 3) % topics.len()];
            let body = format!(
                "# {t} service {i}\n\nChecked the {t} and the {u} on scooter {i}. The {t} needed work.\n\n## Notes\n\n{u} looked fine; {t} replaced."
            );
            let vis = if i % 3 == 0 {
                pb::Visibility::Client
            } else {
                pb::Visibility::Staff
            };
            let mut req = doc(&format!("Job {i}"), &body, pb::Format::Markdown, vis);
            if i % 5 == 0 {
                req.owner_client_id = "cli_carol".into();
            }
            put(&mut c, &system(), req).await.unwrap();
        }
        let queries = [
            "battery",
            "battery tire",
            "controller replaced",
            "motor notes",
            "scooter 7",
        ];
        // Ranked hits as (score, chunk id); equal scores in chunk id order.
        let snapshot = |hits: Vec<pb::SearchHit>| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = hits
                .into_iter()
                .map(|h| (format!("{:.4}", h.score), h.chunk_id))
                .collect();
            v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            v
        };
        let mut before = Vec::new();
        for q in queries {
            before.push(snapshot(search_all(&mut c, &staff(), q).await));
            before.push(snapshot(search_all(&mut c, &client("cli_carol"), q).await));
        }
        let empty: Vec<usize> = (0..before.len())
            .filter(|&i| before[i].is_empty())
            .collect();
        assert!(empty.is_empty(), "no hits for queries {empty:?}");

        let r = c
            .rebuild_index(auth::request(&system(), pb::RebuildIndexRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.documents, 30);
        let mut after = Vec::new();
        for q in queries {
            after.push(snapshot(search_all(&mut c, &staff(), q).await));
            after.push(snapshot(search_all(&mut c, &client("cli_carol"), q).await));
        }
        assert_eq!(before, after, "{backend:?}: rebuild by RPC");
        k.stop().await;

        // A new, empty index directory: kb rebuilds it from the database when it starts.
        let second_index = TempDir::new("kbidx");
        let k = start_domain("kb", &db.url, &env(&second_index)).await;
        wait_ready(&k).await;
        let mut c = KbServiceClient::new(k.channel());
        assert!(
            eventually(Duration::from_secs(20), || {
                let mut c = c.clone();
                async move { !search(&mut c, &staff(), "battery").await.is_empty() }
            })
            .await,
            "the index was not rebuilt on start"
        );
        let mut restarted = Vec::new();
        for q in queries {
            restarted.push(snapshot(search_all(&mut c, &staff(), q).await));
            restarted.push(snapshot(search_all(&mut c, &client("cli_carol"), q).await));
        }
        assert_eq!(before, restarted, "{backend:?}: rebuild on start");
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_get_clear_invalid_argument_statuses() {
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let k = start_domain(
            "kb",
            &db.url,
            &[("OMNEURO__KB__MAX_DOCUMENT_BYTES", "100000".into())],
        )
        .await;
        wait_ready(&k).await;
        let mut c = KbServiceClient::new(k.channel());
        let bytes = |title: &str, data: Vec<u8>, format: pb::Format| pb::PutDocumentRequest {
            title: title.into(),
            data,
            format: format.into(),
            visibility: pb::Visibility::Staff.into(),
            ..Default::default()
        };
        let pdf = tiny_pdf("fine");
        let cases: Vec<(&str, pb::PutDocumentRequest, &str)> = vec![
            (
                "empty",
                doc("e", "", pb::Format::Text, pb::Visibility::Staff),
                "empty",
            ),
            (
                "blank",
                doc("e", " \n\t ", pb::Format::Text, pb::Visibility::Staff),
                "empty",
            ),
            (
                "blank bytes",
                bytes("e", b"\n\n".to_vec(), pb::Format::Markdown),
                "empty",
            ),
            (
                "nul",
                doc("b", "a\0b", pb::Format::Text, pb::Visibility::Staff),
                "binary",
            ),
            (
                "binary",
                bytes(
                    "b",
                    vec![0x89, b'P', b'N', b'G', 0, 0, 1, 2, 3],
                    pb::Format::Text,
                ),
                "binary",
            ),
            (
                "latin1",
                bytes("b", b"caf\xe9 au lait".to_vec(), pb::Format::Text),
                "UTF-8",
            ),
            (
                "huge",
                doc(
                    "h",
                    &"x ".repeat(50_001),
                    pb::Format::Text,
                    pb::Visibility::Staff,
                ),
                "limit is 100000 bytes",
            ),
            (
                "huge bytes",
                bytes("h", vec![b'a'; 100_001], pb::Format::Markdown),
                "limit is 100000 bytes",
            ),
            (
                "not a pdf",
                bytes("p", b"hello".to_vec(), pb::Format::Pdf),
                "not a PDF",
            ),
            (
                "broken pdf",
                bytes("p", pdf[..pdf.len() / 3].to_vec(), pb::Format::Pdf),
                "the PDF cannot be read",
            ),
            (
                "pdf as text",
                doc("p", "%PDF-1.4", pb::Format::Pdf, pb::Visibility::Staff),
                "as bytes",
            ),
            (
                "only markup",
                doc(
                    "m",
                    "<div><script>x()</script></div>",
                    pb::Format::Html,
                    pb::Visibility::Staff,
                ),
                "no searchable text",
            ),
            (
                "no title",
                doc("  ", "body", pb::Format::Text, pb::Visibility::Staff),
                "title",
            ),
            (
                "no visibility",
                doc("t", "body", pb::Format::Text, pb::Visibility::Unspecified),
                "visibility",
            ),
            (
                "bad owner",
                pb::PutDocumentRequest {
                    owner_client_id: "bob".into(),
                    ..doc("t", "body", pb::Format::Text, pb::Visibility::Client)
                },
                "client id",
            ),
            (
                "both",
                pb::PutDocumentRequest {
                    data: b"x".to_vec(),
                    ..doc("t", "body", pb::Format::Text, pb::Visibility::Staff)
                },
                "not both",
            ),
        ];
        for (name, req, says) in cases {
            let e = put(&mut c, &staff(), req).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{name}: {e:?}");
            assert!(
                e.message().contains(says),
                "{name}: `{}` should say {says}",
                e.message()
            );
        }
        // Nothing half-stored: a good document still goes in and is the only one.
        put(
            &mut c,
            &staff(),
            doc(
                "ok",
                "A good wombat document.",
                pb::Format::Text,
                pb::Visibility::Staff,
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            db.query_pair(
                "SELECT COUNT(*) AS a, (SELECT COUNT(*) FROM chunks) AS b FROM documents"
            ),
            (1, 1)
        );
        let e = c
            .delete_document(auth::request(
                &staff(),
                pb::DeleteDocumentRequest {
                    id: "doc_nope".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = c
            .delete_document(auth::request(
                &staff(),
                pb::DeleteDocumentRequest {
                    id: "x".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        // Junk queries never fail.
        for q in ["", "AND OR (", "\"unclosed", "title:", "*"] {
            search(&mut c, &staff(), q).await;
        }
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_ingest_walks_a_folder_reports_bad_files_and_ingests_the_rest() {
    for backend in backends() {
        let tmp = TempDir::new("kbcli");
        let db = TestDb::new(backend, "kb");
        let mut kb = Proc::spawn(
            "kb",
            &[
                ("OMNEURO__DATABASE__URL", db.url.clone()),
                ("OMNEURO__KB__MAX_DOCUMENT_BYTES", "200000".into()),
                (
                    "OMNEURO__KB__INDEX_DIR",
                    tmp.0.join("index").display().to_string(),
                ),
            ],
            &tmp.0,
        );
        kb.wait_ready().await;
        let docs = tmp.0.join("docs");
        std::fs::create_dir_all(docs.join("manuals/.cache")).unwrap();
        let files: Vec<(&str, Vec<u8>)> = vec![
            (
                "guide.md",
                b"# Sherman\n\nThe numbatbrake bleed procedure.".to_vec(),
            ),
            (
                "manuals/page.html",
                b"<h1>Hub</h1><p>Spoke tension for the bilbyhub.</p>".to_vec(),
            ),
            (
                "manuals/notes.txt",
                b"Loose quollbolt on the stem.".to_vec(),
            ),
            (
                "manuals/manual.pdf",
                tiny_pdf("Cell tabs of the dunnartpack"),
            ),
            ("manuals/empty.txt", Vec::new()),
            ("manuals/binary.txt", vec![0u8, 1, 2, 3, 0, 255]),
            (
                "manuals/broken.pdf",
                b"%PDF-1.4\n1 0 obj << /Type /Catalog".to_vec(),
            ),
            ("manuals/huge.txt", vec![b'z'; 200_001]),
            ("manuals/photo.png", vec![0x89, b'P', b'N', b'G']),
            ("manuals/.cache/hidden.md", b"# hidden".to_vec()),
        ];
        for (p, data) in &files {
            std::fs::write(docs.join(p), data).unwrap();
        }
        let run = |args: &[&str]| {
            std::process::Command::new(bin("kb"))
                .args(args)
                .env_clear()
                .env("OMNEURO__DATABASE__URL", &db.url)
                .output()
                .unwrap()
        };
        let server = kb.grpc_url();
        let out = run(&["ingest", "--server", &server, docs.to_str().unwrap()]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stdout.contains(
                "ingested 4 of 8 files (4 new, 0 replaced, 0 unchanged), 4 failed, 1 skipped"
            ),
            "{stdout}"
        );
        for (file, says) in [
            ("empty.txt", "the document is empty"),
            ("binary.txt", "binary"),
            ("broken.pdf", "the PDF cannot be read"),
            ("huge.txt", "the limit is 200000 bytes"),
        ] {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.starts_with("error: ") && l.contains(file) && l.contains(says)),
                "{file}: {stderr}"
            );
        }
        assert!(
            stderr.contains("files/s") && stderr.contains("MB/s") && stderr.contains("ETA"),
            "{stderr}"
        );

        let mut c = KbServiceClient::new(
            tonic::transport::Endpoint::from_shared(server.clone())
                .unwrap()
                .connect_lazy(),
        );
        for term in ["numbatbrake", "bilbyhub", "quollbolt", "dunnartpack"] {
            let hits = search(&mut c, &staff(), term).await;
            assert_eq!(hits.len(), 1, "{term}");
            assert!(
                hits[0].source_ref.starts_with("file:/") && hits[0].source_ref.contains("docs"),
                "{}",
                hits[0].source_ref
            );
        }
        // Again, with one file changed: replaced, the others unchanged.
        std::fs::write(
            docs.join("guide.md"),
            b"# Sherman\n\nThe numbatbrake bleed procedure, revised.",
        )
        .unwrap();
        for (p, _) in &files[4..8] {
            std::fs::remove_file(docs.join(p)).unwrap();
        }
        let out = run(&["ingest", "--server", &server, docs.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("ingested 4 of 4 files (0 new, 1 replaced, 3 unchanged), 0 failed"),
            "{stdout}"
        );
        // A named file of another type is an error; usage mistakes exit 2.
        let out = run(&[
            "ingest",
            "--server",
            &server,
            docs.join("manuals/photo.png").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported file type"));
        assert_eq!(run(&["ingest", "--server", &server]).status.code(), Some(2));
        assert_eq!(run(&["ingest", "--bogus", "x"]).status.code(), Some(2));

        let out = run(&["rebuild-index", "--server", &server]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("rebuilt the search index: 4 documents"),
            "{stdout}"
        );
        assert_eq!(search(&mut c, &staff(), "revised").await.len(), 1);
        kb.terminate();
    }
}
