//! Knowledge-base documents through the portal's pages, with a real kb on both databases: a tech
//! uploads a Markdown, a text, an HTML and a PDF file and pasted text from `/kb/upload`; each is
//! searchable in kb at once, listed (paged, searched by title, filtered), shown with its text, and
//! deleted from its page (confirm box, CSRF), after which kb no longer has it; the uploads and the
//! delete are in the audit log. Bad uploads (empty, binary, broken or fake PDF, an unsupported
//! type, over kb's limit, over the portal's cap, nothing, both, no title, a forged post) get their
//! reason on the form and store nothing. The front desk reads but may not upload or delete; a
//! client session and a signed-out browser are sent to sign in; kb refuses the list to clients and
//! writes to the front desk. kb down: the pages say so and nothing changes. Through the real
//! nginx, the upload route takes more than 1 MB and no other route does. In Chromium, a tech
//! uploads a Markdown file through the page and sees it listed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kb::extract::sample::one_page_pdf;
use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::common::v1::PageRequest;
use omneuro_proto::kb::v1 as pb;
use omneuro_tests::*;
use tonic::Code;

type KbC = pb::kb_service_client::KbServiceClient<tonic::transport::Channel>;

fn tech_actor() -> Actor {
    Actor::Staff {
        id: "stf_kbtech".into(),
        role: StaffRole::Tech,
    }
}

/// The upload form's parts: a file (name, declared type, bytes) or none, pasted text, a title.
fn form<'a>(
    csrf: &'a str,
    title: &'a str,
    visibility: &'a str,
    file: Option<(&'a str, &'a str, &'a [u8])>,
    text: &'a str,
    format: &'a str,
) -> Vec<Part<'a>> {
    let mut parts = vec![
        Part {
            name: "csrf",
            file: None,
            data: csrf.as_bytes(),
        },
        Part {
            name: "title",
            file: None,
            data: title.as_bytes(),
        },
        Part {
            name: "visibility",
            file: None,
            data: visibility.as_bytes(),
        },
    ];
    let (name, ct, data) = file.unwrap_or(("", "application/octet-stream", b""));
    parts.push(Part {
        name: "file",
        file: Some((name, ct)),
        data,
    });
    parts.push(Part {
        name: "text",
        file: None,
        data: text.as_bytes(),
    });
    parts.push(Part {
        name: "format",
        file: None,
        data: format.as_bytes(),
    });
    parts
}

fn unescape(s: &str) -> String {
    s.replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The text of the page's `id="message"` alert.
fn message(body: &str) -> String {
    let Some(at) = body.find("id=\"message\">") else {
        return String::new();
    };
    let rest = &body[at + "id=\"message\">".len()..];
    unescape(&rest[..rest.find('<').unwrap_or(rest.len())])
}

fn documents_in(kdb: &TestDb) -> i64 {
    kdb.query_pair("SELECT COUNT(*) AS a, COUNT(*) AS b FROM documents")
        .0
}

/// The document ids the list page shows, in order.
fn listed(body: &str) -> Vec<String> {
    body.match_indices("data-document=\"")
        .map(|(i, m)| {
            body[i + m.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

async fn search_ids(k: &mut KbC, query: &str) -> Vec<String> {
    let hits = k
        .search(auth::request(
            &tech_actor(),
            pb::SearchRequest {
                query: query.into(),
                limit: 20,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .hits;
    let mut ids: Vec<String> = hits.into_iter().map(|h| h.document_id).collect();
    ids.dedup();
    ids
}

async fn get_doc(k: &mut KbC, who: &Actor, id: &str) -> Result<pb::GetDocumentResponse, Code> {
    k.get_document(auth::request(
        who,
        pb::GetDocumentRequest {
            id: id.into(),
            ..Default::default()
        },
    ))
    .await
    .map(|r| r.into_inner())
    .map_err(|s| s.code())
}

async fn list(
    k: &mut KbC,
    who: &Actor,
    req: pb::ListDocumentsRequest,
) -> pb::ListDocumentsResponse {
    k.list_documents(auth::request(who, req))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_upload_every_format_find_it_in_kb_and_delete_it_and_bad_uploads_store_nothing() {
    let pdf = one_page_pdf("Torque the axle nuts to 40 newton metres on the dromedaryhub.");
    for backend in backends() {
        let (kdb, pdb) = (TestDb::new(backend, "kb"), TestDb::new(backend, "portal"));
        // kb's own limit is small here, so its "too large" answer is seen through the form.
        let k = start_domain(
            "kb",
            &kdb.url,
            &[("OMNEURO__KB__MAX_DOCUMENT_BYTES", "200000".to_owned())],
        )
        .await;
        wait_ready(&k).await;
        let portal = start_portal(&pdb.url, &[("kb", k.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut kc = KbC::new(k.channel());

        let mut tech = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );
        let p = tech.get("/kb").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("id=\"upload-link\""), "a tech may upload");
        assert!(p.body.contains("0 documents"), "{}", p.body);
        let p = tech.get("/kb/upload").await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("enctype=\"multipart/form-data\""));
        let csrf = p.csrf();

        // ---- every format in, each searchable in kb at once ------------------------------------
        let html = b"<html><body><h1>Controller reset</h1><p>Hold the button for the <b>okapiflash</b> sequence.</p><script>var secretword = 1;</script></body></html>";
        let uploads: Vec<(&str, Vec<Part<'_>>, &str, &str)> = vec![
            (
                "markdown file",
                form(
                    &csrf,
                    "",
                    "client",
                    Some((
                        "winter-storage.md",
                        "text/markdown",
                        b"# Winter storage\n\n## Battery\n\nKeep the pack at half charge; the narwhalcell chemistry hates the cold.\n",
                    )),
                    "",
                    "",
                ),
                "narwhalcell",
                "winter-storage",
            ),
            (
                "text file",
                form(
                    &csrf,
                    "Supplier notes",
                    "staff",
                    Some((
                        "supplier.txt",
                        "text/plain",
                        b"Order the pangolinbrake pads from the Dundalk warehouse.",
                    )),
                    "",
                    "",
                ),
                "pangolinbrake",
                "Supplier notes",
            ),
            (
                "HTML file",
                form(
                    &csrf,
                    "Controller reset",
                    "staff",
                    Some(("reset.html", "text/html", html)),
                    "",
                    "",
                ),
                "okapiflash",
                "Controller reset",
            ),
            (
                "PDF file",
                form(
                    &csrf,
                    "Hub torque",
                    "staff",
                    Some(("torque.pdf", "application/pdf", &pdf)),
                    "",
                    "",
                ),
                "dromedaryhub",
                "Hub torque",
            ),
            (
                "pasted Markdown",
                form(
                    &csrf,
                    "Tire plugs",
                    "client",
                    None,
                    "## Plugging a tubeless tire\n\nUse the quokkaplug kit, then check the pressure.",
                    "markdown",
                ),
                "quokkaplug",
                "Tire plugs",
            ),
        ];
        let mut ids = Vec::new();
        for (what, parts, word, title) in &uploads {
            let p = tech.post_multipart("/kb/upload", parts).await;
            assert_eq!(p.status, 303, "{what}: {}", p.body);
            assert!(
                p.location.starts_with("/kb/doc_") && p.location.ends_with("?added=1"),
                "{what}: {}",
                p.location
            );
            let id = p.location["/kb/".len()..p.location.find('?').unwrap()].to_owned();
            assert_eq!(search_ids(&mut kc, word).await, vec![id.clone()], "{what}");
            let page = tech.get(&p.location).await;
            assert_eq!(page.status, 200, "{what}");
            assert!(page.body.contains("Added to the knowledge base"), "{what}");
            assert!(
                page.body.contains(&format!("id=\"doc-title\">{title}<")),
                "{what}"
            );
            assert!(page.body.contains(word), "{what}: the text is shown");
            ids.push(id);
        }
        // The HTML document shows its text, not its markup or script.
        let page = tech.get(&format!("/kb/{}", ids[2])).await;
        assert!(!page.body.contains("secretword"));
        assert!(unescape(&page.body).contains("Hold the button for the okapiflash sequence."));
        // The client-visible shop-wide one names its public help page.
        let page = tech.get(&format!("/kb/{}", ids[0])).await;
        assert!(
            page.body
                .contains(&format!("http://localhost:8080/help/{}", ids[0])),
            "{}",
            page.body
        );
        assert_eq!(documents_in(&kdb), 5);
        // The same file again: already there, nothing changes.
        let p = tech.post_multipart("/kb/upload", &uploads[0].1).await;
        assert_eq!(p.location, format!("/kb/{}?same=1", ids[0]));
        assert!(
            tech.get(&p.location)
                .await
                .body
                .contains("already in the knowledge base")
        );
        assert_eq!(documents_in(&kdb), 5);

        // ---- the list: newest first, search, filters, job sources link to the job --------------
        let job_doc = kc
            .put_document(auth::request(
                &Actor::System("jobs".into()),
                pb::PutDocumentRequest {
                    title: "Job job_kbpage00000000000".into(),
                    body: "Replaced the gnucontroller.".into(),
                    visibility: pb::Visibility::Staff.into(),
                    source_ref: "job:job_kbpage00000000000".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .document
            .unwrap();
        let p = tech.get("/kb").await;
        let shown = listed(&p.body);
        assert_eq!(shown.len(), 6, "{}", p.body);
        assert_eq!(shown[0], job_doc.id, "newest first");
        assert!(p.body.contains("6 documents"));
        assert!(p.body.contains("href=\"/jobs/job_kbpage00000000000\""));
        let page = tech.get(&format!("/kb/{}", job_doc.id)).await;
        assert!(page.body.contains("href=\"/jobs/job_kbpage00000000000\""));
        let p = tech.get("/kb?q=TORQUE").await;
        assert_eq!(
            listed(&p.body),
            vec![ids[3].clone()],
            "title search ignores case"
        );
        let p = tech.get("/kb?visibility=client").await;
        let mut want = vec![ids[0].clone(), ids[4].clone()];
        want.reverse();
        assert_eq!(listed(&p.body), want);
        let p = tech.get("/kb?source=job").await;
        assert_eq!(listed(&p.body), vec![job_doc.id.clone()]);
        let p = tech.get("/kb?source=none&q=%25").await;
        assert!(
            listed(&p.body).is_empty(),
            "a % in the search is a percent sign"
        );
        let p = tech.get("/kb?page=not-a-token").await;
        assert_eq!(p.status, 400);
        assert!(message(&p.body).contains("page_token"), "{}", p.body);

        // Paging and filters in kb itself (staff and system only).
        let me = tech_actor();
        let first = list(
            &mut kc,
            &me,
            pb::ListDocumentsRequest {
                page: Some(PageRequest {
                    page_size: 4,
                    page_token: String::new(),
                }),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(first.total, 6);
        assert_eq!(first.documents.len(), 4);
        assert!(first.documents.iter().all(|d| d.body.is_empty()));
        let token = first.page.unwrap().next_page_token;
        assert!(!token.is_empty());
        let second = list(
            &mut kc,
            &Actor::System("repairbot".into()),
            pb::ListDocumentsRequest {
                page: Some(PageRequest {
                    page_size: 4,
                    page_token: token,
                }),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(second.documents.len(), 2);
        assert!(second.page.unwrap().next_page_token.is_empty());
        let mut all: Vec<String> = first
            .documents
            .iter()
            .chain(&second.documents)
            .map(|d| d.id.clone())
            .collect();
        assert_eq!(all.len(), 6);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 6, "no document on two pages");
        let pdfs = list(
            &mut kc,
            &me,
            pb::ListDocumentsRequest {
                visibility: pb::Visibility::Staff.into(),
                source_kind: "none".into(),
                title_contains: "hub".into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(pdfs.documents.len(), 1);
        assert_eq!(pdfs.documents[0].format, i32::from(pb::Format::Pdf));
        assert!(pdfs.documents[0].chunk_count >= 1);
        let e = kc
            .list_documents(auth::request(
                &Actor::Client("cli_kbnosy".into()),
                pb::ListDocumentsRequest::default(),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = kc
            .list_documents(tonic::Request::new(pb::ListDocumentsRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        let e = kc
            .list_documents(auth::request(
                &me,
                pb::ListDocumentsRequest {
                    source_kind: "job:%".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);

        // ---- bad uploads: the reason on the form, nothing stored -------------------------------
        let mut big_md = b"# Big\n\n".to_vec();
        big_md.resize(300_000, b'a');
        let mut huge = b"# Huge\n\n".to_vec();
        huge.resize(21 * 1024 * 1024, b'b');
        let bad: Vec<(&str, Vec<Part<'_>>, u16, &str)> = vec![
            (
                "empty file",
                form(
                    &csrf,
                    "Empty",
                    "staff",
                    Some(("empty.md", "text/markdown", b"")),
                    "",
                    "",
                ),
                400,
                "Nothing was added: the document is empty.",
            ),
            (
                "binary file",
                form(
                    &csrf,
                    "Binary",
                    "staff",
                    Some((
                        "firmware.txt",
                        "text/plain",
                        b"\x00\x01\x02ELF\x00\x00\xff\xfe",
                    )),
                    "",
                    "",
                ),
                400,
                "Nothing was added: the document looks binary",
            ),
            (
                "broken PDF",
                form(
                    &csrf,
                    "Broken",
                    "staff",
                    Some((
                        "broken.pdf",
                        "application/pdf",
                        b"%PDF-1.4\n1 0 obj << /Type /Cat",
                    )),
                    "",
                    "",
                ),
                400,
                "Nothing was added: the PDF cannot be read",
            ),
            (
                "not a PDF",
                form(
                    &csrf,
                    "Fake",
                    "staff",
                    Some(("fake.pdf", "application/pdf", b"just words pretending")),
                    "",
                    "",
                ),
                400,
                "not a PDF",
            ),
            (
                "unsupported type",
                form(
                    &csrf,
                    "Photo",
                    "staff",
                    Some(("wheel.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 not text")),
                    "",
                    "",
                ),
                400,
                "only Markdown (.md), text (.txt), HTML (.html) and PDF (.pdf) files can",
            ),
            (
                "over kb's limit",
                form(
                    &csrf,
                    "Big",
                    "staff",
                    Some(("big.md", "text/markdown", &big_md)),
                    "",
                    "",
                ),
                400,
                "Nothing was added: the document is 300000 bytes; the limit is 200000 bytes",
            ),
            (
                "over the portal's cap",
                form(
                    &csrf,
                    "Huge",
                    "staff",
                    Some(("huge.md", "text/markdown", &huge)),
                    "",
                    "",
                ),
                413,
                "The file is too large: at most 20 MB.",
            ),
            (
                "nothing",
                form(&csrf, "Nothing", "staff", None, "   ", "markdown"),
                400,
                "Choose a file or paste the text to add.",
            ),
            (
                "both",
                form(
                    &csrf,
                    "Both",
                    "staff",
                    Some(("a.md", "text/markdown", b"# A\n\nalpha")),
                    "beta",
                    "text",
                ),
                400,
                "Choose a file or paste text, not both.",
            ),
            (
                "no title for pasted text",
                form(&csrf, "", "staff", None, "Some pasted words.", "text"),
                400,
                "Give the pasted text a title.",
            ),
            (
                "no visibility",
                form(&csrf, "Who", "", None, "Some pasted words.", "text"),
                400,
                "Choose who may read it",
            ),
        ];
        for (what, parts, status, want) in &bad {
            let p = tech.post_multipart("/kb/upload", parts).await;
            assert_eq!(p.status, *status, "{what}: {}", p.body);
            assert!(
                message(&p.body).contains(want),
                "{what}: {:?}",
                message(&p.body)
            );
            assert!(
                p.body.contains("id=\"upload-form\""),
                "{what}: the form is back"
            );
            assert_eq!(documents_in(&kdb), 6, "{what}: nothing stored");
        }
        // The form keeps what was typed.
        let p = tech
            .post_multipart(
                "/kb/upload",
                &form(&csrf, "", "client", None, "Kept <words> here.", "html"),
            )
            .await;
        assert!(
            unescape(&p.body).contains(">Kept <words> here.</textarea>"),
            "{}",
            p.body
        );
        assert!(
            p.body
                .contains("value=\"client\" id=\"vis-client\" checked")
        );
        // A forged post and a form that isn't multipart at all.
        let p = tech
            .post_multipart(
                "/kb/upload",
                &form("forged", "Forged", "staff", None, "words", "text"),
            )
            .await;
        assert_eq!(p.status, 403);
        let p = tech.post("/kb/upload", &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 400);
        assert!(message(&p.body).contains("didn't arrive whole"));
        assert_eq!(documents_in(&kdb), 6);

        // ---- who may: the front desk reads only; clients and strangers sign in -----------------
        let mut desk = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut desk, &mut staff.desk).await.location,
            "/jobs"
        );
        let p = desk.get("/kb").await;
        assert_eq!(p.status, 200);
        assert!(!p.body.contains("id=\"upload-link\""));
        let page = desk.get(&format!("/kb/{}", ids[1])).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("id=\"delete-form\""));
        let desk_csrf = page.csrf();
        assert_eq!(desk.get("/kb/upload").await.status, 403);
        let p = desk
            .post_multipart(
                "/kb/upload",
                &form(&desk_csrf, "Desk", "staff", None, "words", "text"),
            )
            .await;
        assert_eq!(p.status, 403);
        let p = desk
            .post(
                &format!("/kb/{}/delete", ids[1]),
                &[("csrf", &desk_csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(p.status, 403);
        let e = kc
            .put_document(auth::request(
                &Actor::Staff {
                    id: "stf_desk".into(),
                    role: StaffRole::FrontDesk,
                },
                pb::PutDocumentRequest {
                    title: "Desk".into(),
                    body: "words".into(),
                    visibility: pb::Visibility::Staff.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let mut stranger = Browser::new(&portal.url(""));
        stranger
            .cookies
            .insert("jj_session".into(), "a-client-session".into());
        for path in ["/kb", "/kb/upload", &format!("/kb/{}", ids[0])] {
            let p = stranger.get(path).await;
            assert_eq!((p.status, p.location.as_str()), (303, "/signin"), "{path}");
        }
        let p = stranger
            .post_multipart(
                "/kb/upload",
                &form("x", "Stranger", "staff", None, "words", "text"),
            )
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        assert_eq!(documents_in(&kdb), 6);

        // ---- deleting: confirm first, then gone from kb ----------------------------------------
        let path = format!("/kb/{}/delete", ids[3]);
        let p = tech.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 400);
        assert!(message(&p.body).contains("Tick"));
        assert_eq!(documents_in(&kdb), 6);
        let p = tech
            .post(&path, &[("csrf", "forged"), ("confirm", "yes")])
            .await;
        assert_eq!(p.status, 403);
        let p = tech
            .post(&path, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(p.location, "/kb?deleted=1");
        assert!(
            tech.get(&p.location)
                .await
                .body
                .contains("Document deleted.")
        );
        assert_eq!(
            get_doc(&mut kc, &me, &ids[3]).await.unwrap_err(),
            Code::NotFound
        );
        assert!(search_ids(&mut kc, "dromedaryhub").await.is_empty());
        assert_eq!(documents_in(&kdb), 5);
        let p = tech.get(&format!("/kb/{}", ids[3])).await;
        assert_eq!(p.status, 404);
        let p = tech
            .post(&path, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(p.status, 404, "twice");
        // The other formats go the same way: each gone from kb and its search.
        for (i, (what, _, word, _)) in uploads.iter().enumerate() {
            if i == 3 {
                continue;
            }
            let p = tech
                .post(
                    &format!("/kb/{}/delete", ids[i]),
                    &[("csrf", &csrf), ("confirm", "yes")],
                )
                .await;
            assert_eq!(p.location, "/kb?deleted=1", "{what}");
            assert_eq!(
                get_doc(&mut kc, &me, &ids[i]).await.unwrap_err(),
                Code::NotFound
            );
            assert!(search_ids(&mut kc, word).await.is_empty(), "{what}");
        }
        assert_eq!(documents_in(&kdb), 1, "only the job's record is left");
        assert_eq!(
            listed(&tech.get("/kb").await.body),
            vec![job_doc.id.clone()]
        );
        // Every upload and delete is in the audit log, with who did them.
        let (added, deleted) = pdb.query_pair(
            "SELECT COUNT(CASE WHEN action = 'added a knowledge-base document' AND outcome = 'ok' THEN 1 END) AS a, \
             COUNT(CASE WHEN action = 'deleted a knowledge-base document' AND outcome = 'ok' THEN 1 END) AS b \
             FROM audit_log WHERE staff_email = 'tech@juicejunkiez.test'",
        );
        // Five new, one again; five deletes (the refused attempts are logged as refused).
        assert_eq!((added, deleted), (6, 5));

        // ---- kb down: the pages say so, nothing changes ----------------------------------------
        k.stop().await;
        let p = tech
            .post_multipart(
                "/kb/upload",
                &form(&csrf, "Later", "staff", None, "words", "text"),
            )
            .await;
        assert_eq!(p.status, 503);
        assert!(message(&p.body).contains("nothing was added"), "{}", p.body);
        let p = tech.get("/kb").await;
        assert_eq!(p.status, 503);
        assert!(message(&p.body).contains("isn't answering"));
        let p = tech
            .post(
                &format!("/kb/{}/delete", ids[0]),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(p.status, 503);
        portal.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_takes_a_large_upload_on_the_upload_route_only_and_the_list_pages() {
    for backend in backends() {
        let (kdb, pdb) = (TestDb::new(backend, "kb"), TestDb::new(backend, "portal"));
        let k = start_domain("kb", &kdb.url, &[]).await;
        wait_ready(&k).await;
        let portal = start_portal(&pdb.url, &[("kb", k.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let tmp = TempDir::new("kb-edge");
        let Some(nginx) = Nginx::start(
            &tmp.0,
            &[
                (
                    "PORTAL_ADDR",
                    portal.url("").trim_start_matches("http://").to_owned(),
                ),
                ("SITE_ADDR", "127.0.0.1:9".to_owned()),
                ("BILLING_ADDR", "127.0.0.1:9".to_owned()),
                ("REPAIRBOT_ADDR", "127.0.0.1:9".to_owned()),
            ],
        ) else {
            return;
        };
        let edge = format!("http://127.0.0.1:{}", nginx.port);
        let mut tech = Browser::new(&edge).with_host(&format!("tech.localhost:{}", nginx.port));
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );
        let csrf = tech.get("/kb/upload").await.csrf();
        let mut two_mb = b"# Shop manual\n\nThe capybaramotor section.\n\n".to_vec();
        two_mb.resize(2 * 1024 * 1024, b'z');
        let parts = form(
            &csrf,
            "Shop manual",
            "staff",
            Some(("manual.md", "text/markdown", &two_mb)),
            "",
            "",
        );
        let p = tech.post_multipart("/kb/upload", &parts).await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(
            kdb.query_pair("SELECT COUNT(*) AS a, COUNT(*) AS b FROM documents")
                .0,
            1
        );
        // Fifty-one more: the list pages by fifty, and the next page keeps the search.
        let mut kc = KbC::new(k.channel());
        for i in 0..51 {
            kc.put_document(auth::request(
                &Actor::System("test".into()),
                pb::PutDocumentRequest {
                    title: format!("Bench note {i}"),
                    body: format!("Bench note number {i}."),
                    visibility: pb::Visibility::Staff.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        }
        let p = tech.get("/kb?q=bench+note").await;
        assert_eq!(listed(&p.body).len(), 50, "{}", p.body);
        assert!(p.body.contains("51 documents"));
        assert!(!p.body.contains("id=\"first-page\""));
        let at = p.body.find("id=\"next-page\"").expect("a next page");
        let before = &p.body[..at];
        let next =
            unescape(&before[before.rfind("href=\"").unwrap() + 6..before.rfind('"').unwrap()]);
        assert_eq!(next, "/kb?q=bench%20note&visibility=&source=&page=50");
        let p = tech.get(&next).await;
        assert_eq!(listed(&p.body).len(), 1);
        assert!(p.body.contains("id=\"first-page\"") && !p.body.contains("id=\"next-page\""));

        let (ct, body) = multipart_body(&parts);
        let c = nginx.client();
        for (host, path) in [
            ("tech.localhost", "/kb/doc_notadocument0000/delete"),
            ("localhost", "/kb/upload"),
        ] {
            let r = c
                .post(nginx.url(host, path))
                .header("content-type", ct.clone())
                .header(
                    "cookie",
                    format!("jjt_session={}", tech.cookies["jjt_session"]),
                )
                .body(body.clone())
                .send()
                .await;
            assert!(
                r.map(|r| r.status() == 413).unwrap_or(true),
                "{host}{path}: 2 MB not refused at the edge"
            );
        }
        drop(nginx);
        portal.stop().await;
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tech_uploads_a_markdown_file_in_chromium_and_sees_it_listed() {
    if browser_peers().is_none() {
        return;
    }
    for backend in backends() {
        let (kdb, pdb) = (TestDb::new(backend, "kb"), TestDb::new(backend, "portal"));
        let k = start_domain("kb", &kdb.url, &[]).await;
        wait_ready(&k).await;
        // The browser posts from the portal's own address: that is the tech origin here.
        let port = free_port();
        let tech_url = format!("http://127.0.0.1:{port}");
        let portal = start_portal(
            &pdb.url,
            &[("kb", k.grpc_url())],
            &[
                ("OMNEURO__HTTP__PORT", port.to_string()),
                ("OMNEURO__LINKS__TECH_URL", tech_url.clone()),
            ],
        )
        .await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut tech = Browser::new(&tech_url);
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );
        let shots = repo_root()
            .join("target/browser-artifacts")
            .join(format!("kb-{backend:?}").to_lowercase());
        let out = run_browser_flow(
            "kb_flow.cjs",
            &shots,
            &[
                ("TECH_URL", tech_url.clone()),
                ("SESSION", tech.cookies["jjt_session"].clone()),
            ],
        )
        .await;
        let out = out.unwrap_or_else(|e| {
            panic!(
                "{backend:?}: kb flow failed (screenshots in {}):\n{e}",
                shots.display()
            )
        });
        let result: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap_or("{}")).unwrap();
        let id = result["doc"].as_str().unwrap().to_owned();
        assert!(id.starts_with("doc_"), "{result}");
        // What the browser uploaded is in kb, client-visible, and found by its words.
        let mut kc = KbC::new(k.channel());
        let d = get_doc(&mut kc, &tech_actor(), &id).await.unwrap();
        let d = d.document.unwrap();
        assert_eq!(d.title, "Brake bleeding");
        assert_eq!(d.visibility, i32::from(pb::Visibility::Client));
        assert_eq!(d.format, i32::from(pb::Format::Markdown));
        assert_eq!(search_ids(&mut kc, "wallabybleed").await, vec![id]);
        portal.stop().await;
        k.stop().await;
    }
}
