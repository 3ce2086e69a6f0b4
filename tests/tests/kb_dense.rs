//! kb's dense vectors and hybrid search over real gRPC on both databases.
//!
//! - all-MiniLM-L6-v2 in-process (the wheel's files, `OMNEURO_TEST_MINILM_DIR`, fetched by
//!   scripts/test): a question with no word in common with the answer is found by dense and hybrid
//!   search and missed by BM25; a client's dense search never reaches staff-only documents; a
//!   replaced document is found by its new meaning only, a deleted one not at all; a restart loads
//!   the stored vectors instead of embedding again.
//! - An OpenAI-compatible `/v1/embeddings` (llmock): while it is down documents still go in and
//!   BM25 answers (dense says UNAVAILABLE); once it is up the waiting chunks are embedded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

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

fn minilm_dir() -> Option<String> {
    peer_or_skip(
        "the all-MiniLM-L6-v2 files (OMNEURO_TEST_MINILM_DIR; scripts/test fetches them)",
        std::env::var("OMNEURO_TEST_MINILM_DIR")
            .ok()
            .filter(|d| std::path::Path::new(d).join("model.safetensors").is_file()),
    )
}

async fn put(c: &mut Kb, title: &str, body: &str, vis: pb::Visibility, source: &str) -> String {
    c.put_document(auth::request(
        &staff(),
        pb::PutDocumentRequest {
            title: title.into(),
            body: body.into(),
            format: pb::Format::Text.into(),
            visibility: vis.into(),
            source_ref: source.into(),
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

async fn search(
    c: &mut Kb,
    who: &Actor,
    query: &str,
    mode: pb::SearchMode,
    audience: pb::Audience,
) -> Result<pb::SearchResponse, tonic::Status> {
    c.search(auth::request(
        who,
        pb::SearchRequest {
            query: query.into(),
            limit: 10,
            audience: audience.into(),
            mode: mode.into(),
            ..Default::default()
        },
    ))
    .await
    .map(|r| r.into_inner())
}

fn docs(r: &pb::SearchResponse) -> Vec<String> {
    r.hits.iter().map(|h| h.document_id.clone()).collect()
}

/// Polls until dense search as staff puts `doc` first for `query`.
async fn wait_dense_top(c: &mut Kb, query: &str, doc: &str) -> bool {
    eventually(Duration::from_secs(120), || {
        let mut c = c.clone();
        let (query, doc) = (query.to_owned(), doc.to_owned());
        async move {
            search(
                &mut c,
                &staff(),
                &query,
                pb::SearchMode::Dense,
                pb::Audience::Staff,
            )
            .await
            .is_ok_and(|r| r.hits.first().is_some_and(|h| h.document_id == doc))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_minilm_finds_meaning_that_bm25_misses() {
    let Some(model_dir) = minilm_dir() else {
        return;
    };
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let env = [
            ("OMNEURO__KB__EMBEDDINGS__PROVIDER", "local".to_owned()),
            ("OMNEURO__KB__EMBEDDINGS__MODEL_DIR", model_dir.clone()),
        ];
        let k = start_domain("kb", &db.url, &env).await;
        wait_ready(&k).await;
        let mut c = Kb::new(k.channel());
        let tyre = put(
            &mut c,
            "Flat tyre repair",
            "We patch or replace inner tubes while you wait, and check the rim tape for sharp edges.",
            pb::Visibility::Client,
            "doc:tyre",
        )
        .await;
        let storage = put(
            &mut c,
            "Winter storage",
            "Keep the battery between 40 and 60 percent charge and store it indoors above freezing.",
            pb::Visibility::Client,
            "doc:storage",
        )
        .await;
        let water = put(
            &mut c,
            "Controller failure after rain",
            "Water got into the deck and the motor controller's MOSFETs burned out; replaced the controller and resealed the deck.",
            pb::Visibility::Staff,
            "doc:water",
        )
        .await;

        // "puncture" is in no document: BM25 finds nothing, the vectors find the tyre repair.
        assert!(
            wait_dense_top(&mut c, "I got a puncture", &tyre).await,
            "{backend:?}: dense search never put the tyre repair first"
        );
        let bm25 = search(
            &mut c,
            &staff(),
            "puncture",
            pb::SearchMode::Bm25,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert!(bm25.hits.is_empty(), "{:?}", docs(&bm25));
        assert_eq!(bm25.mode, pb::SearchMode::Bm25 as i32);
        // Unspecified is hybrid when kb has embeddings; with no BM25 match the fused list is the
        // dense one.
        let hybrid = search(
            &mut c,
            &staff(),
            "puncture",
            pb::SearchMode::Unspecified,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert_eq!(hybrid.mode, pb::SearchMode::Hybrid as i32);
        assert_eq!(docs(&hybrid).first(), Some(&tyre), "{:?}", docs(&hybrid));
        // A hit only the vectors found carries the chunk's opening words as its snippet.
        assert!(
            hybrid.hits[0].snippet.starts_with("We patch"),
            "{:?}",
            hybrid.hits[0].snippet
        );
        let cold = search(
            &mut c,
            &staff(),
            "what to do with my scooter when it gets cold outside",
            pb::SearchMode::Dense,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert_eq!(docs(&cold).first(), Some(&storage), "{:?}", docs(&cold));

        // Staff find the staff-only note by meaning; a client never gets it, in any mode.
        let q = "my scooter got soaked and the electronics fried";
        assert!(wait_dense_top(&mut c, q, &water).await);
        for mode in [
            pb::SearchMode::Dense,
            pb::SearchMode::Hybrid,
            pb::SearchMode::Unspecified,
        ] {
            let r = search(
                &mut c,
                &Actor::Client("cli_a".into()),
                q,
                mode,
                pb::Audience::Client,
            )
            .await
            .unwrap();
            assert!(!docs(&r).contains(&water), "{mode:?}: {:?}", docs(&r));
            assert!(
                !r.hits.is_empty(),
                "{mode:?}: client-visible documents are still ranked"
            );
        }

        // The same source with new text: found by its new meaning, its old one is gone.
        let replaced = put(
            &mut c,
            "Flat tyre repair",
            "Brake pads are replaced when worn below two millimetres; we bleed hydraulic brakes too.",
            pb::Visibility::Client,
            "doc:tyre",
        )
        .await;
        assert_eq!(replaced, tyre);
        assert!(wait_dense_top(&mut c, "my brakes squeal when stopping", &tyre).await);
        let r = search(
            &mut c,
            &staff(),
            "I got a puncture",
            pb::SearchMode::Dense,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert!(
            r.hits.iter().all(|h| !h.text.contains("inner tubes")),
            "old text came back"
        );

        // Deleted: in no mode.
        c.delete_document(auth::request(
            &staff(),
            pb::DeleteDocumentRequest {
                id: storage.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        for mode in [pb::SearchMode::Dense, pb::SearchMode::Hybrid] {
            let r = search(
                &mut c,
                &staff(),
                "what to do with my scooter when it gets cold outside",
                mode,
                pb::Audience::Staff,
            )
            .await
            .unwrap();
            assert!(!docs(&r).contains(&storage), "{mode:?}: {:?}", docs(&r));
        }
        let (vectors, chunks) = db.query_pair(
            "SELECT (SELECT COUNT(*) FROM chunk_vectors) AS a, (SELECT COUNT(*) FROM chunks) AS b",
        );
        assert_eq!(vectors, chunks, "{backend:?}: one vector per chunk");

        // A restart loads the stored vectors: dense answers at once, nothing is embedded again.
        k.stop().await;
        let k = start_domain("kb", &db.url, &env).await;
        wait_ready(&k).await;
        let mut c = Kb::new(k.channel());
        assert!(wait_dense_top(&mut c, "my brakes squeal when stopping", &tyre).await);
        assert_eq!(
            db.query_pair(
                "SELECT (SELECT COUNT(*) FROM chunk_vectors) AS a, (SELECT COUNT(*) FROM chunks) AS b"
            ),
            (vectors, chunks)
        );
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_embedder_that_is_down_delays_dense_search_only() {
    let Some(mut mock) = LlMock::start() else {
        return;
    };
    let port = mock.port;
    mock.stop();
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let env = [
            ("OMNEURO__KB__EMBEDDINGS__PROVIDER", "openai".to_owned()),
            (
                "OMNEURO__KB__EMBEDDINGS__BASE_URL",
                format!("http://127.0.0.1:{port}/v1"),
            ),
            (
                "OMNEURO__KB__EMBEDDINGS__MODEL",
                "text-embedding-3-small".to_owned(),
            ),
            ("OMNEURO__KB__EMBEDDINGS__TIMEOUT_MS", "5000".to_owned()),
        ];
        let k = start_domain("kb", &db.url, &env).await;
        wait_ready(&k).await;
        let mut c = Kb::new(k.channel());
        // The embedder is down: documents still go in and BM25 still answers.
        let pads = put(
            &mut c,
            "Brake pads",
            "Organic pads wear faster than sintered ones.",
            pb::Visibility::Client,
            "doc:pads",
        )
        .await;
        let tyres = put(
            &mut c,
            "Tyre pressure",
            "Check tyre pressure every week; soft tyres waste range.",
            pb::Visibility::Client,
            "doc:tyres",
        )
        .await;
        let r = search(
            &mut c,
            &staff(),
            "sintered pads",
            pb::SearchMode::Unspecified,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert_eq!(r.mode, pb::SearchMode::Bm25 as i32, "fell back to BM25");
        assert_eq!(docs(&r), std::slice::from_ref(&pads));
        let e = search(
            &mut c,
            &staff(),
            "sintered pads",
            pb::SearchMode::Dense,
            pb::Audience::Staff,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
        let (vectors, chunks) = db.query_pair(
            "SELECT (SELECT COUNT(*) FROM chunk_vectors) AS a, (SELECT COUNT(*) FROM chunks) AS b",
        );
        assert_eq!(
            (vectors, chunks),
            (0, 2),
            "chunks stored, none embedded yet"
        );

        // Up again: the waiting chunks are embedded (llmock gives the same text the same
        // vector, so the chunk's own text finds it first).
        let _up = LlMock::start_on(port).unwrap();
        assert!(
            wait_dense_top(
                &mut c,
                "Tyre pressure\nCheck tyre pressure every week; soft tyres waste range.",
                &tyres
            )
            .await,
            "{backend:?}: the chunks were never embedded"
        );
        assert!(
            wait_dense_top(
                &mut c,
                "Brake pads\nOrganic pads wear faster than sintered ones.",
                &pads
            )
            .await
        );
        let hybrid = search(
            &mut c,
            &staff(),
            "tyre pressure",
            pb::SearchMode::Hybrid,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert_eq!(hybrid.mode, pb::SearchMode::Hybrid as i32);
        assert_eq!(docs(&hybrid).first(), Some(&tyres));
        let (vectors, chunks) = db.query_pair(
            "SELECT (SELECT COUNT(*) FROM chunk_vectors) AS a, (SELECT COUNT(*) FROM chunks) AS b",
        );
        assert_eq!(vectors, chunks);
        k.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dense_modes_need_an_embedder() {
    for backend in backends() {
        let db = TestDb::new(backend, "kb");
        let k = start_domain("kb", &db.url, &[]).await;
        wait_ready(&k).await;
        let mut c = Kb::new(k.channel());
        put(
            &mut c,
            "Brake pads",
            "Organic pads wear faster than sintered ones.",
            pb::Visibility::Client,
            "doc:pads",
        )
        .await;
        for mode in [pb::SearchMode::Dense, pb::SearchMode::Hybrid] {
            let e = search(&mut c, &staff(), "pads", mode, pb::Audience::Staff)
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::FailedPrecondition, "{mode:?}: {e:?}");
            assert!(e.message().contains("[kb.embeddings]"), "{}", e.message());
        }
        let r = search(
            &mut c,
            &staff(),
            "pads",
            pb::SearchMode::Unspecified,
            pb::Audience::Staff,
        )
        .await
        .unwrap();
        assert_eq!(r.mode, pb::SearchMode::Bm25 as i32);
        assert_eq!(r.hits.len(), 1);
        let mut raw = auth::request(
            &staff(),
            pb::SearchRequest {
                query: "pads".into(),
                mode: 42,
                ..Default::default()
            },
        );
        raw.set_timeout(Duration::from_secs(5));
        let e = c.search(raw).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        k.stop().await;
    }
}
