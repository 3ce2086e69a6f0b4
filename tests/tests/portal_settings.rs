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

/// The owner's services and fees and the tax rate, with real jobs and billing: a new price and a
/// new service are saved where they belong (clients see them in `ListServiceOfferings`); a price
/// that isn't dollars, a code already used, switching off the last service, or a rate billing
/// refuses shows why with what was typed and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_prices_services_and_sets_the_tax_rate() {
    use omneuro_proto::billing::v1 as bpb;
    for backend in backends() {
        let (jdb, bdb, pdb) = (
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "billing"),
            TestDb::new(backend, "portal"),
        );
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[("OMNEURO__WORKER__ENABLED", "false".to_owned())],
        )
        .await;
        let bsvc = start_domain("billing", &bdb.url, &[]).await;
        wait_ready(&jsvc).await;
        wait_ready(&bsvc).await;
        let j = pb::jobs_service_client::JobsServiceClient::new(jsvc.channel());
        let b = bpb::billing_service_client::BillingServiceClient::new(bsvc.channel());
        let portal = start_portal(
            &pdb.url,
            &[("jobs", jsvc.grpc_url()), ("billing", bsvc.grpc_url())],
            &[],
        )
        .await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut owner = Browser::new(&portal.url(""));
        staff_sign_in(&mut owner, &mut staff.owner).await;
        let offered = || {
            let mut j = j.clone();
            async move {
                j.list_service_offerings(pb::ListServiceOfferingsRequest::default())
                    .await
                    .unwrap()
                    .into_inner()
                    .offerings
            }
        };
        let before = offered().await;
        let p = owner.get("/settings/services").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("data-service=\"diagnostics\""));
        assert!(
            p.body
                .contains("name=\"rate\" inputmode=\"decimal\" value=\"6\"")
        );
        let csrf = p.csrf();

        // A new starting price for diagnostics, and firmware switched off.
        let edit = |code: &str, price: &str, active: bool| {
            let mut f = vec![
                ("csrf", csrf.clone()),
                ("code", code.to_owned()),
                ("name", format!("{code} (edited)")),
                ("description", "Checked at the bench.".to_owned()),
                ("price", price.to_owned()),
                ("order", "1".to_owned()),
            ];
            if active {
                f.push(("active", "1".to_owned()));
            }
            f
        };
        let f = edit("diagnostics", "59.50", true);
        let fp: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let p = owner.post("/settings/services", &fp).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let f = edit("firmware", "29", false);
        let fp: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(owner.post("/settings/services", &fp).await.status, 303);
        let now = offered().await;
        let diag = now.iter().find(|o| o.code == "diagnostics").unwrap();
        assert_eq!(diag.starting_price.as_ref().unwrap().amount_cents, 5950);
        assert_eq!(diag.name, "diagnostics (edited)");
        assert!(!now.iter().any(|o| o.code == "firmware"), "switched off");
        assert_eq!(now.len(), before.len() - 1);
        let p = owner.get("/settings/services?saved=service").await;
        assert!(p.body.contains("Service saved"));
        assert!(
            p.body.contains("data-service=\"firmware\""),
            "staff still see it"
        );

        // A new service clients can book.
        let new = [
            ("csrf", csrf.as_str()),
            ("new", "1"),
            ("code", "brake_service"),
            ("name", "Brake service"),
            ("description", "Pads, rotors, bleeding."),
            ("price", "45"),
            ("order", "10"),
            ("active", "1"),
        ];
        assert_eq!(owner.post("/settings/services", &new).await.status, 303);
        let now = offered().await;
        let brakes = now.iter().find(|o| o.code == "brake_service").unwrap();
        assert_eq!(brakes.starting_price.as_ref().unwrap().amount_cents, 4500);

        // Refused: the same code again, a price that isn't dollars, a code jobs refuses.
        let mut bad_price = new;
        bad_price[2] = ("code", "tire_service");
        bad_price[5] = ("price", "forty");
        let mut bad_code = new;
        bad_code[2] = ("code", "Tire Service");
        for (form, status, why, kept) in [
            (
                new,
                409,
                "already a service with the code",
                "value=\"Brake service\"",
            ),
            (bad_price, 400, "should be dollars", "value=\"forty\""),
            (
                bad_code,
                400,
                "lower-case letters",
                "value=\"Tire Service\"",
            ),
        ] {
            let p = owner.post("/settings/services", &form).await;
            assert_eq!(p.status, status, "{why}: {}", p.body);
            assert!(
                p.body.contains("id=\"message\"") && p.body.contains(why),
                "{why}"
            );
            assert!(p.body.contains(kept), "{why}: typed kept");
            assert_eq!(offered().await, now, "{why}: nothing changed");
        }

        // The last offered service can't be switched off.
        for o in &now {
            if o.code != "diagnostics" {
                let f = edit(&o.code, "10", false);
                let fp: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                assert_eq!(owner.post("/settings/services", &fp).await.status, 303);
            }
        }
        let f = edit("diagnostics", "59.50", false);
        let fp: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let p = owner.post("/settings/services", &fp).await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("only service still offered"));
        assert_eq!(offered().await.len(), 1);

        // The tax rate: saved in billing; not a percentage, or over billing's limit, refused.
        let p = owner
            .post("/settings/tax", &[("csrf", &csrf), ("rate", "6.25")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let rate = || {
            let mut b = b.clone();
            async move {
                b.get_tax_rate(bpb::GetTaxRateRequest {
                    jurisdiction: "US-MD".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .tax_rate
                .unwrap()
                .rate_bps
            }
        };
        assert_eq!(rate().await, 625);
        for (typed, why) in [("six", "a percentage"), ("25", "between 0 % and 20 %")] {
            let p = owner
                .post("/settings/tax", &[("csrf", &csrf), ("rate", typed)])
                .await;
            assert_eq!(p.status, 400, "{typed}: {}", p.body);
            assert!(p.body.contains(why) && p.body.contains(&format!("value=\"{typed}\"")));
            assert_eq!(rate().await, 625);
        }

        // billing down: the services still show, with a notice about the rate.
        bsvc.stop().await;
        let p = owner.get("/settings/services").await;
        assert_eq!(p.status, 503);
        assert!(
            p.body.contains("billing service isn")
                && p.body.contains("data-service=\"diagnostics\"")
        );
        portal.stop().await;
        jsvc.stop().await;
    }
}

/// The team's skills and weekly hours: saved whole, shown on Today for today's weekday; a time
/// that isn't one shows why with what was typed and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_keeps_the_teams_skills_and_hours_and_today_shows_who_is_on() {
    use chrono::Datelike;
    for backend in backends() {
        let (jdb, pdb) = (TestDb::new(backend, "jobs"), TestDb::new(backend, "portal"));
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[("OMNEURO__WORKER__ENABLED", "false".to_owned())],
        )
        .await;
        wait_ready(&jsvc).await;
        let portal = start_portal(&pdb.url, &[("jobs", jsvc.grpc_url())], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let mut owner = Browser::new(&portal.url(""));
        staff_sign_in(&mut owner, &mut staff.owner).await;
        let p = owner.get("/settings/team").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let csrf = p.csrf();
        let at = p.body.find("Fran Desk").unwrap();
        let id: String = p.body[..at]
            .rsplit("data-member=\"")
            .next()
            .unwrap()
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        let today = chrono::Utc::now()
            .with_timezone(&chrono_tz::America::New_York)
            .weekday()
            .num_days_from_monday() as usize;
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let start = format!("{}_start", days[today]);
        let end = format!("{}_end", days[today]);
        let path = format!("/settings/team/{id}");

        // Refused: the reason, the typed values kept, nothing saved.
        let p = owner
            .post(
                &path,
                &[
                    ("csrf", csrf.as_str()),
                    ("skills", "Counter, Stripe refunds"),
                    (start.as_str(), "10:00"),
                    (end.as_str(), "9am"),
                ],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("HH:MM") && p.body.contains("value=\"9am\""));
        assert!(p.body.contains("value=\"Counter, Stripe refunds\""));
        let (hours, _) =
            pdb.query_pair("SELECT COUNT(*) AS a, CAST(0 AS BIGINT) AS b FROM staff_hours");
        assert_eq!(hours, 0);

        // Saved; Today lists her (signed out, but scheduled) with her hours and skills.
        let p = owner
            .post(
                &path,
                &[
                    ("csrf", csrf.as_str()),
                    ("skills", "Counter, Stripe refunds"),
                    (start.as_str(), "10:00"),
                    (end.as_str(), "18:30"),
                ],
            )
            .await;
        assert_eq!(p.location, "/settings/team?saved=1", "{}", p.body);
        let p = owner.get(&p.location).await;
        assert!(p.body.contains("value=\"counter, stripe refunds\""));
        assert!(p.body.contains("value=\"18:30\""));
        let p = owner.get("/today").await;
        let on = &p.body[p.body.find("id=\"on\"").unwrap()..];
        let on = &on[..on.find("</section>").unwrap()];
        assert!(
            on.contains("Fran Desk") && on.contains("10:00–18:30"),
            "{on}"
        );
        assert!(on.contains("counter, stripe refunds"), "{on}");
        assert!(
            on.contains("Dana Owner") && on.contains("signed in"),
            "{on}"
        );
        // The audit log keeps it.
        let (audited, _) = pdb.query_pair(
            "SELECT COUNT(*) AS a, CAST(0 AS BIGINT) AS b FROM audit_log WHERE action = 'changed skills and hours'",
        );
        assert_eq!(audited, 1);
        // Nobody by that id: a clear refusal.
        let p = owner
            .post(
                "/settings/team/stf_nobody",
                &[("csrf", csrf.as_str()), ("skills", "x")],
            )
            .await;
        assert_eq!(p.status, 404, "{}", p.body);
        portal.stop().await;
        jsvc.stop().await;
    }
}
