//! The public help page `/help/{doc_id}` over real HTTP, with real garage and kb on both
//! databases: a visitor reads a client-visible shop-wide document (title, sections, personal data
//! redacted); a staff-only document, another client's own record, a made-up id and garbage all
//! get the same helpful 404 that never shows the document; a signed-in client reads their own
//! record but not someone else's; kb's `GetDocument` answers the same way over gRPC (client
//! audience for visitors, staff see all unredacted); kb down gives a 503 page saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::kb::v1 as pb;
use omneuro_tests::*;
use tonic::Code;

type KbC = pb::kb_service_client::KbServiceClient<tonic::transport::Channel>;

async fn put(k: &mut KbC, title: &str, body: &str, vis: pb::Visibility, owner: &str) -> String {
    k.put_document(auth::request(
        &Actor::System("jobs".into()),
        pb::PutDocumentRequest {
            title: title.into(),
            body: body.into(),
            format: pb::Format::Markdown.into(),
            visibility: vis.into(),
            owner_client_id: owner.into(),
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

async fn get(
    k: &mut KbC,
    who: &Actor,
    id: &str,
    audience: pb::Audience,
    client_id: &str,
) -> Result<pb::GetDocumentResponse, Code> {
    k.get_document(auth::request(
        who,
        pb::GetDocumentRequest {
            id: id.into(),
            audience: audience.into(),
            client_id: client_id.into(),
        },
    ))
    .await
    .map(|r| r.into_inner())
    .map_err(|s| s.code())
}

fn is_missing_page(body: &str) -> bool {
    body.contains("id=\"help-missing\"") && body.contains("find that help page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_pages_show_client_visible_documents_and_nothing_else() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, kdb) = (TestDb::new(backend, "garage"), TestDb::new(backend, "kb"));
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let k = start_domain("kb", &kdb.url, &[]).await;
        wait_ready(&g).await;
        wait_ready(&k).await;
        let site = start_site(&[("garage", g.grpc_url()), ("kb", k.grpc_url())]).await;
        let mut gc =
            omneuro_proto::garage::v1::garage_service_client::GarageServiceClient::new(g.channel());
        let (me, _) =
            client_with_vehicle(&mut gc, &sink, "helpme", other_vehicle("Segway", "P100")).await;
        let (other, _) =
            client_with_vehicle(&mut gc, &sink, "helpother", other_vehicle("Kaabo", "Wolf")).await;
        let grant = sign_in_rpc(&mut gc, &sink, &me.email).await;

        let mut kc = KbC::new(k.channel());
        let public = put(
            &mut kc,
            "Winter battery storage",
            "# Winter battery storage\n\n## Charge\n\nStore the pack at half charge in the heated room.\n\n\
             Questions: service@juicejunkiez.test or (410) 555-0123.\n\n## Cold\n\nNever charge below freezing.",
            pb::Visibility::Client,
            "",
        )
        .await;
        let staff_only = put(
            &mut kc,
            "Supplier margins",
            "We mark up the walrusmargin cells 45 percent.",
            pb::Visibility::Staff,
            "",
        )
        .await;
        let theirs = put(
            &mut kc,
            "Kaabo Wolf repair record",
            "The other client's beetlecontroller was replaced.",
            pb::Visibility::Client,
            &other.id,
        )
        .await;
        let mine = put(
            &mut kc,
            "Your Segway P100 record",
            "Your heronmotor was serviced.",
            pb::Visibility::Client,
            &me.id,
        )
        .await;

        // ---- a visitor -------------------------------------------------------------------------
        let mut visitor = Browser::new(&site.url(""));
        let p = visitor.get(&format!("/help/{public}")).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("id=\"help-title\">Winter battery storage<"));
        assert!(
            p.body.contains("<h2>Winter battery storage › Charge</h2>"),
            "{}",
            p.body
        );
        assert!(
            p.body
                .contains("Store the pack at half charge in the heated room.")
        );
        assert!(p.body.contains("Never charge below freezing."));
        assert!(p.body.contains("[email]") && p.body.contains("[phone]"));
        assert!(!p.body.contains("service@juicejunkiez.test") && !p.body.contains("555-0123"));
        for (what, id) in [
            ("staff-only", staff_only.as_str()),
            ("another client's", theirs.as_str()),
            ("a client's own, signed out", mine.as_str()),
            ("made up", "doc_nosuchdocument000"),
            ("garbage", "not-a-doc%20id"),
        ] {
            let p = visitor.get(&format!("/help/{id}")).await;
            assert_eq!(p.status, 404, "{what}");
            assert!(is_missing_page(&p.body), "{what}: {}", p.body);
            assert!(
                p.body.contains("id=\"help-signin\""),
                "{what}: signing in is offered"
            );
            for secret in [
                "walrusmargin",
                "Supplier",
                "beetlecontroller",
                "Kaabo",
                "heronmotor",
            ] {
                assert!(!p.body.contains(secret), "{what}: {secret} leaked");
            }
        }

        // ---- a signed-in client: their own record, not another's -------------------------------
        let mut client = Browser::new(&site.url(""));
        client
            .cookies
            .insert("jj_session".into(), grant.session_token.clone());
        let p = client.get(&format!("/help/{mine}")).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("heronmotor"));
        let p = client.get(&format!("/help/{public}")).await;
        assert_eq!(p.status, 200);
        for id in [&theirs, &staff_only] {
            let p = client.get(&format!("/help/{id}")).await;
            assert_eq!(p.status, 404);
            assert!(is_missing_page(&p.body));
            assert!(!p.body.contains("id=\"help-signin\""), "already signed in");
        }

        // ---- kb's GetDocument, by audience -----------------------------------------------------
        let site_actor = Actor::System("site".into());
        let staff = Actor::Staff {
            id: "stf_help".into(),
            role: StaffRole::FrontDesk,
        };
        let r = get(&mut kc, &site_actor, &public, pb::Audience::Client, "")
            .await
            .unwrap();
        let d = r.document.unwrap();
        assert!(d.body.contains("[email]") && !d.body.contains("service@"));
        assert_eq!(r.sections.len(), 2);
        assert_eq!(r.sections[0].heading, "Winter battery storage › Charge");
        assert!(r.sections.iter().all(|s| !s.text.contains("555-0123")));
        for id in [&staff_only, &theirs, &mine] {
            assert_eq!(
                get(&mut kc, &site_actor, id, pb::Audience::Client, "")
                    .await
                    .unwrap_err(),
                Code::NotFound
            );
        }
        // As the client (themself, or named by a staff or system caller).
        let as_me = Actor::Client(me.id.clone());
        assert!(
            get(&mut kc, &as_me, &mine, pb::Audience::Unspecified, "")
                .await
                .is_ok()
        );
        assert!(
            get(&mut kc, &site_actor, &mine, pb::Audience::Client, &me.id)
                .await
                .is_ok()
        );
        assert_eq!(
            get(&mut kc, &as_me, &theirs, pb::Audience::Unspecified, "")
                .await
                .unwrap_err(),
            Code::NotFound
        );
        assert_eq!(
            get(&mut kc, &as_me, &staff_only, pb::Audience::Unspecified, "")
                .await
                .unwrap_err(),
            Code::NotFound
        );
        let r = get(&mut kc, &as_me, &public, pb::Audience::Unspecified, "")
            .await
            .unwrap();
        assert!(
            !r.document.unwrap().body.contains("service@"),
            "clients get redacted text"
        );
        // A client may not read as staff or as someone else.
        assert_eq!(
            get(&mut kc, &as_me, &public, pb::Audience::Staff, "")
                .await
                .unwrap_err(),
            Code::PermissionDenied
        );
        assert_eq!(
            get(&mut kc, &as_me, &public, pb::Audience::Client, &other.id)
                .await
                .unwrap_err(),
            Code::PermissionDenied
        );
        // Staff (any role) read everything as it is.
        for id in [&public, &staff_only, &theirs, &mine] {
            assert!(
                get(&mut kc, &staff, id, pb::Audience::Unspecified, "")
                    .await
                    .is_ok()
            );
        }
        let r = get(&mut kc, &staff, &public, pb::Audience::Unspecified, "")
            .await
            .unwrap();
        assert!(
            r.document
                .unwrap()
                .body
                .contains("service@juicejunkiez.test")
        );

        // ---- a deleted document is gone; kb down says so ---------------------------------------
        kc.delete_document(auth::request(
            &staff_as_tech(),
            pb::DeleteDocumentRequest {
                id: mine.clone(),
                source_ref: String::new(),
            },
        ))
        .await
        .unwrap();
        let p = client.get(&format!("/help/{mine}")).await;
        assert_eq!(p.status, 404);
        k.stop().await;
        let p = visitor.get(&format!("/help/{public}")).await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("aren&#39;t answering") || p.body.contains("aren't answering"));
        site.stop().await;
        g.stop().await;
    }
}

fn staff_as_tech() -> Actor {
    Actor::Staff {
        id: "stf_help".into(),
        role: StaffRole::Tech,
    }
}
