//! Invoices and refunds at the counter with real garage, jobs, shop, billing (a process) and
//! localstripe, on both databases: the owner finds a card-paid invoice by status, sees its lines
//! and the client's name, refunds part of it with a reason through Stripe (billing agrees, the
//! audit log keeps it); a refund that isn't dollars, has no reason, or is more than was paid shows
//! why on the same page with what was typed and changes nothing; the front desk sees invoices
//! and voids an unpaid one but is never offered a refund; a status that doesn't exist is refused.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::billing::v1 as pb;
use omneuro_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_refunds_part_of_a_card_payment_and_the_desk_voids_an_unpaid_invoice() {
    let (Some(sink), Some(stripe)) = (SmtpSink::start(), LocalStripe::start()) else {
        return;
    };
    let owner_actor = Actor::Staff {
        id: "stf_test".into(),
        role: StaffRole::Owner,
    };
    for backend in backends() {
        stripe.wipe().await;
        let f = billing_fleet(
            backend,
            &sink,
            &stripe_env(stripe.base_url(), &stripe.api_key),
        )
        .await;
        f.listen_to(&stripe).await;
        let (_, paid) = f.paid_invoice(&sink, &stripe, "refund", 8000).await;
        let (_, unpaid) = f.open_invoice(&sink, "unpaid", 3000).await;
        let b = f.billing_client();
        let invoice = |id: &str| {
            let (mut b, owner, id) = (b.clone(), owner_actor.clone(), id.to_owned());
            async move {
                b.get_invoice(auth::request(&owner, pb::GetInvoiceRequest { id }))
                    .await
                    .unwrap()
                    .into_inner()
            }
        };

        let pdb = TestDb::new(backend, "portal");
        let portal = start_portal(
            &pdb.url,
            &[
                ("billing", f.billing.grpc_url()),
                ("garage", f.garage.grpc_url()),
            ],
            &[],
        )
        .await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut owner = Browser::new(&portal.url(""));
        staff_sign_in(&mut owner, &mut staff.owner).await;

        // The list: both invoices; by status, only the paid one.
        let p = owner.get("/invoices").await;
        assert_eq!(p.status, 200, "{}", p.body);
        for inv in [&paid, &unpaid] {
            assert!(
                p.body.contains(&format!("data-invoice=\"{}\"", inv.id)),
                "{}",
                inv.id
            );
        }
        let p = owner.get("/invoices?status=paid").await;
        assert!(p.body.contains(&format!(
            "data-invoice=\"{}\" data-status=\"paid\"",
            paid.id
        )));
        assert!(!p.body.contains(&unpaid.id));
        let p = owner.get("/invoices?status=lost").await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("id=\"message\"") && p.body.contains("not an invoice status"));

        // One invoice: lines, totals, the client by name, a refund form.
        let path = format!("/invoices/{}", paid.id);
        let p = owner.get(&path).await;
        assert_eq!(p.status, 200, "{}", p.body);
        let total = paid.total.as_ref().unwrap().amount_cents;
        let dollars = format!("${}.{:02}", total / 100, total % 100);
        assert!(
            p.body.contains(&format!("id=\"paid\">{dollars}<")),
            "{}",
            p.body
        );
        assert!(p.body.contains("Controller repair") && p.body.contains("for refund_"));
        assert!(p.body.contains(&format!("action=\"{path}/refund\"")));
        assert!(
            !p.body.contains("/void\""),
            "a paid invoice can't be voided"
        );
        let csrf = p.csrf();

        // Refused: why on the page, what was typed kept, nothing refunded.
        for (amount, reason, why) in [
            ("fifteen", "goodwill", "should be dollars"),
            ("15", "", "Say why"),
            ("100000", "goodwill", "still refundable"),
        ] {
            let p = owner
                .post(
                    &format!("{path}/refund"),
                    &[("csrf", &csrf), ("amount", amount), ("reason", reason)],
                )
                .await;
            assert_eq!(p.status, 400, "{amount}: {}", p.body);
            assert!(
                p.body.contains("id=\"message\"") && p.body.contains(why),
                "{amount}"
            );
            assert!(p.body.contains(&format!("value=\"{amount}\"")), "{amount}");
            assert_eq!(invoice(&paid.id).await.refunded, paid.refunded, "{amount}");
        }

        // $15 back through Stripe: billing and the page agree; the audit log keeps who and why.
        let p = owner
            .post(
                &format!("{path}/refund"),
                &[("csrf", &csrf), ("amount", "15"), ("reason", "goodwill")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let now = invoice(&paid.id).await;
        assert_eq!(
            (
                now.status.as_str(),
                now.refunded.as_ref().unwrap().amount_cents
            ),
            ("partially_refunded", 1500)
        );
        let p = owner.get(&p.location).await;
        assert!(p.body.contains("Refunded through Stripe"));
        assert!(p.body.contains("id=\"refunded\">$15.00<"));
        let (audited, _) = pdb.query_pair(
            "SELECT COUNT(*) AS a, CAST(0 AS BIGINT) AS b FROM audit_log WHERE action = 'refunded a client' AND outcome = 'ok'",
        );
        assert_eq!(audited, 1);

        // The front desk: invoices yes, refunds never offered; voids the unpaid one.
        let mut desk = Browser::new(&portal.url(""));
        staff_sign_in(&mut desk, &mut staff.desk).await;
        let p = desk.get(&path).await;
        assert_eq!(p.status, 200);
        assert!(!p.body.contains("/refund\""));
        let upath = format!("/invoices/{}", unpaid.id);
        let p = desk.get(&upath).await;
        assert!(p.body.contains(&format!("action=\"{upath}/void\"")));
        let dcsrf = p.csrf();
        let p = desk
            .post(&format!("{upath}/void"), &[("csrf", &dcsrf)])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(invoice(&unpaid.id).await.status, "void");
        // Voiding twice: billing's reason, nothing else changes.
        let p = desk
            .post(&format!("{upath}/void"), &[("csrf", &dcsrf)])
            .await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("id=\"message\"") && p.body.contains("cannot become void"));

        // billing down: the list says so, with nothing that looks like a real list.
        let mut f = f;
        f.billing.terminate();
        let p = owner.get("/invoices").await;
        assert_eq!(p.status, 503, "{}", p.body);
        assert!(p.body.contains("billing service isn") && !p.body.contains("id=\"invoices\""));
        portal.stop().await;
    }
}
