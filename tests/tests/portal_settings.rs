//! The owner's booking rules in the portal, with real jobs on both databases: the form shows what
//! jobs has; a change is saved in jobs; a refused change (a time that isn't one, a number that
//! isn't one) shows the reason on the same page with everything as typed and changes nothing;
//! jobs down gets a notice instead of an empty form.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::jobs::v1 as pb;
use omneuro_tests::*;

async fn rules(
    j: &mut pb::jobs_service_client::JobsServiceClient<tonic::transport::Channel>,
) -> pb::BookingRules {
    let owner = Actor::Staff {
        id: "stf_test".into(),
        role: StaffRole::Owner,
    };
    j.get_booking_rules(auth::request(&owner, pb::GetBookingRulesRequest {}))
        .await
        .unwrap()
        .into_inner()
}

/// The form's fields as a browser would post them (every input, ticked boxes only).
fn form_of(body: &str) -> Vec<(String, String)> {
    let form = &body[body.find("id=\"booking-form\"").unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[at..].chars().take_while(|c| *c != '"').collect())
    };
    let mut fields = Vec::new();
    for tag in form.split('<').filter(|t| t.starts_with("input")) {
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        if tag.contains("type=\"checkbox\"") && !tag.contains(" checked") {
            continue;
        }
        fields.push((name, attr(tag, "value").unwrap_or_default()));
    }
    let ta = &form[form.find("name=\"blackouts\">").unwrap() + 17..];
    fields.push((
        "blackouts".into(),
        ta[..ta.find("</textarea>").unwrap()].to_owned(),
    ));
    fields
}

fn set(fields: &mut [(String, String)], name: &str, value: &str) {
    fields.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_owned();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_changes_the_booking_rules_and_a_bad_value_changes_nothing() {
    for backend in backends() {
        let (jdb, pdb) = (TestDb::new(backend, "jobs"), TestDb::new(backend, "portal"));
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[("OMNEURO__WORKER__ENABLED", "false".to_owned())],
        )
        .await;
        wait_ready(&jsvc).await;
        let mut j = pb::jobs_service_client::JobsServiceClient::new(jsvc.channel());
        let portal = start_portal(&pdb.url, &[("jobs", jsvc.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut owner = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut owner, &mut staff.owner).await.location,
            "/jobs"
        );

        let before = rules(&mut j).await;
        let p = owner.get("/settings").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let mut fields = form_of(&p.body);
        let days: Vec<&str> = fields
            .iter()
            .filter(|(k, _)| k == "day")
            .map(|(_, v)| v.as_str())
            .collect();
        let mut want_days = before.dropoff_days.clone();
        want_days.sort();
        let mut shown_days: Vec<String> = days.iter().map(|d| (*d).to_owned()).collect();
        shown_days.sort();
        assert_eq!(shown_days, want_days, "the ticked days are jobs' days");
        assert_eq!(
            fields.iter().find(|(k, _)| k == "w0_capacity").unwrap().1,
            before.windows[0].capacity.to_string()
        );

        // Save: more places in the first window, a closed day, one drop-off day fewer.
        set(&mut fields, "w0_capacity", "5");
        set(&mut fields, "blackouts", "2026-12-25\n2026-12-31");
        let dropped = fields.iter().position(|(k, _)| k == "day").unwrap();
        let dropped_day = fields.remove(dropped).1;
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = owner.post("/settings/booking", &form).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/settings?saved=1"),
            "{}",
            p.body
        );
        let after = rules(&mut j).await;
        assert_eq!(after.windows[0].capacity, 5);
        assert_eq!(after.blackout_days, ["2026-12-25", "2026-12-31"]);
        assert!(!after.dropoff_days.contains(&dropped_day));
        assert!(
            owner
                .get("/settings?saved=1")
                .await
                .body
                .contains("Booking rules saved.")
        );

        // Refused by jobs (not a time) or by the page (not a number): the reason, as typed,
        // nothing changed.
        for (field, value, why) in [
            ("w1_end", "25:00", "not a time"),
            ("w0_capacity", "lots", "not a whole number"),
        ] {
            let mut bad = fields.clone();
            set(&mut bad, "w0_capacity", "5");
            set(&mut bad, "w1_label", "Lunchtime");
            set(&mut bad, field, value);
            let form: Vec<(&str, &str)> =
                bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let p = owner.post("/settings/booking", &form).await;
            assert_eq!(p.status, 400, "{field}: {}", p.body);
            assert!(p.body.contains(why), "{why}: {}", p.body);
            assert!(
                p.body.contains(&format!("value=\"{value}\""))
                    && p.body.contains("value=\"Lunchtime\""),
                "typed values kept"
            );
            assert_eq!(rules(&mut j).await, after, "{field}: nothing changed");
        }

        // jobs down: a notice, not an empty form.
        jsvc.stop().await;
        let p = owner.get("/settings").await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("jobs service isn") && !p.body.contains("booking-form"));
        portal.stop().await;
    }
}
