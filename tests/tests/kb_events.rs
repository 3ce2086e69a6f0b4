//! Jobs into kb through jobs' outbox, on both databases (ADR 0014): with kb stopped, a job is
//! created and gets a diagnostics note — the changes wait in `kb_outbox`; kb starts and the job is
//! searchable by staff within seconds (one document, `source_ref = job:<id>`, the note's text in
//! it); a status change replaces it.

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
        let (gdb, jdb, kdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "kb"),
        );
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
                ("OMNEURO__UPSTREAMS__KB", kb_url.clone()),
                ("OMNEURO__UPSTREAMS__CONNECT_TIMEOUT_MS", "300".to_owned()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__WORKER__RETRY_BASE_MS", "200".to_owned()),
            ],
        )
        .await;
        wait_ready(&g).await;
        wait_ready(&jsvc).await;
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

        k.stop().await;
        jsvc.stop().await;
        g.stop().await;
    }
}
