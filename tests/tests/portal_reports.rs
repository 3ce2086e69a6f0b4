//! The owner's reports with real jobs, billing, shop and portal on both databases: a known
//! history over four weeks shows exactly its figures (jobs opened and by status at each week's
//! end, turnaround drop-off → ready, the parts used most, paid / refunded / net per week) in the
//! tables, the SVG charts are well-formed with a shape per figure, a bad `weeks` gets the page
//! with the reason (400), the report RPCs refuse a tech and the front desk, and with billing or
//! then jobs down the page shows what it can.

use chrono::{Days, NaiveDateTime, TimeDelta};
use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_platform::db::now_utc;
use omneuro_platform::weeks::Weeks;
use omneuro_proto::billing::v1 as bpb;
use omneuro_proto::jobs::v1 as jpb;
use omneuro_proto::shop::v1 as spb;
use omneuro_tests::*;
use tonic::Code;

fn staff(role: StaffRole) -> Actor {
    Actor::Staff {
        id: "stf_reports0000000000".into(),
        role,
    }
}

fn stamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The HTML from `<{tag} id="{id}"` to the matching close tag (tables and SVGs don't nest here).
fn element<'a>(body: &'a str, tag: &str, id: &str) -> &'a str {
    let open = body
        .find(&format!("<{tag} id=\"{id}\""))
        .or_else(|| {
            // <svg xmlns=… id=…>
            let at = body.find(&format!("id=\"{id}\""))?;
            body[..at].rfind(&format!("<{tag}"))
        })
        .unwrap_or_else(|| panic!("no <{tag} id=\"{id}\"> in {body}"));
    let close = format!("</{tag}>");
    let end = body[open..].find(&close).unwrap() + open + close.len();
    &body[open..end]
}

/// The `<tr data-week="{week}">` row of a table.
fn row<'a>(table: &'a str, week: &str) -> &'a str {
    let at = table
        .find(&format!("<tr data-week=\"{week}\""))
        .unwrap_or_else(|| panic!("no week {week} in {table}"));
    &table[at..at + table[at..].find("</tr>").unwrap()]
}

/// Every value of `attr="…"` in `html`, in order.
fn values(html: &str, attr: &str) -> Vec<String> {
    let marker = format!(" {attr}=\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            html[i + marker.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

fn one(html: &str, attr: &str) -> i64 {
    let v = values(html, attr);
    assert_eq!(v.len(), 1, "{attr} in {html}");
    v[0].parse().unwrap()
}

/// A row's non-zero status counts, as (status, count).
fn statuses(row: &str) -> Vec<(String, i64)> {
    values(row, "data-status")
        .into_iter()
        .zip(values(row, "data-count"))
        .map(|(s, c)| (s, c.parse().unwrap()))
        .filter(|(_, c)| *c > 0)
        .collect()
}

/// Checks `svg` is well-formed XML (tags closed in order, one root, no stray markup) and counts
/// its elements named `name`.
fn well_formed_count(svg: &str, name: &str) -> usize {
    let (mut stack, mut roots, mut n) = (Vec::<String>::new(), 0, 0);
    for t in xmlparser::Tokenizer::from(svg) {
        match t.unwrap_or_else(|e| panic!("{e}: {svg}")) {
            xmlparser::Token::ElementStart { local, .. } => {
                roots += usize::from(stack.is_empty());
                n += usize::from(local.as_str() == name);
                stack.push(local.to_string());
            }
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Empty => {
                    stack.pop();
                }
                xmlparser::ElementEnd::Close(_, close) => {
                    assert_eq!(stack.pop().as_deref(), Some(close.as_str()), "{svg}");
                }
            },
            _ => {}
        }
    }
    assert!(stack.is_empty() && roots == 1, "{svg}");
    n
}

/// (id, opened, booked slot, moves after intake).
type SeedJob = (
    &'static str,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Vec<(NaiveDateTime, &'static str)>,
);

struct Seeded {
    weeks: Vec<String>,
    /// The walk-in moved and given a part over RPC.
    rpc_job: String,
}

/// Four weeks of history, written straight into jobs' and billing's databases (a job needs a
/// signed-in client and garage to be opened over RPC, and a payment needs Stripe's webhook: the
/// rows are what those flows leave behind). Then one job moves and two parts go on jobs through
/// the real RPCs. Week 3 is the current one.
fn seed_history(jdb: &TestDb, bdb: &TestDb, w: &Weeks) -> Seeded {
    let at = |week: usize, days: u64, hours: i64| {
        w.start_of(week)
            .checked_add_days(Days::new(days))
            .unwrap()
            .checked_add_signed(TimeDelta::hours(hours))
            .unwrap()
    };
    let before = |days: u64| w.start().checked_sub_days(Days::new(days)).unwrap();
    let jobs: Vec<SeedJob> = vec![
        // A walk-in: ready 6 days after it was opened, delivered the next day.
        (
            "job_rpt_a",
            at(0, 1, 10),
            None,
            vec![
                (at(0, 1, 11), "diagnosing"),
                (at(0, 2, 9), "in_progress"),
                (at(1, 0, 10), "ready"),
                (at(1, 1, 12), "delivered"),
            ],
        ),
        // B booked in week 0 for a slot in week 1: turnaround counts from the slot (8 days).
        (
            "job_rpt_b",
            at(0, 3, 9),
            Some(at(1, 1, 10)),
            vec![
                (at(1, 1, 11), "diagnosing"),
                (at(1, 2, 9), "awaiting_parts"),
                (at(2, 0, 9), "in_progress"),
                (at(2, 2, 10), "ready"),
            ],
        ),
        // C: a walk-in late in week 2, moved over RPC below.
        ("job_rpt_c", at(2, 4, 15), None, vec![]),
        // D: opened in week 1, canceled in week 2.
        (
            "job_rpt_d",
            at(1, 0, 9),
            None,
            vec![(at(2, 0, 9), "canceled")],
        ),
        // E: opened and delivered before the period: nowhere.
        (
            "job_rpt_e",
            before(30),
            None,
            vec![(before(29), "ready"), (before(28), "delivered")],
        ),
        // F: waiting for approval since before the period: in every week.
        (
            "job_rpt_f",
            before(7),
            None,
            vec![(before(6), "diagnosing"), (before(5), "awaiting_approval")],
        ),
    ];
    let mut sql = String::from("BEGIN;");
    for (id, opened, slot, moves) in &jobs {
        let status = moves.last().map_or("intake", |m| m.1);
        let updated = moves.last().map_or(*opened, |m| m.0);
        sql.push_str(&format!(
            "INSERT INTO work_orders (id, client_id, vehicle_id, vehicle_label, status, services, problem, safety_flag, assigned_tech, source, status_token, created_at, updated_at) \
             VALUES ('{id}', 'cli_reports', 'veh_{id}', 'Scooter {id}', '{status}', 'diagnostics', '', FALSE, '', '{}', NULL, '{}', '{}');",
            if slot.is_some() { "booking" } else { "walk_in" },
            stamp(*opened),
            stamp(updated)
        ));
        sql.push_str(&format!(
            "INSERT INTO work_order_events (id, job_id, at, actor, from_status, to_status, note) VALUES ('evt_{id}_0', '{id}', '{}', 'staff:stf_x:owner', NULL, 'intake', '');",
            stamp(*opened)
        ));
        let mut from = "intake";
        for (i, (t, to)) in moves.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO work_order_events (id, job_id, at, actor, from_status, to_status, note) VALUES ('evt_{id}_{}', '{id}', '{}', 'staff:stf_x:owner', '{from}', '{to}', '');",
                i + 1,
                stamp(*t)
            ));
            from = to;
        }
        if let Some(s) = slot {
            sql.push_str(&format!(
                "INSERT INTO appointments (id, job_id, client_id, day, window_code, start_local, starts_at, status, created_at, updated_at) \
                 VALUES ('apt_{id}', '{id}', 'cli_reports', '{}', 'morning', '10:00', '{}', 'booked', '{}', '{}');",
                s.format("%Y-%m-%d"),
                stamp(*s),
                stamp(*opened),
                stamp(*opened)
            ));
        }
    }
    sql.push_str("COMMIT;");
    jdb.execute_batch(&sql);

    // Billing: inv1 paid in week 0; inv3 paid in week 1 and refunded 15.00 in Stripe's dashboard
    // (only the invoice's total knows, changed in week 2); inv2 paid in week 2, 20.00 refunded
    // from the portal in week 3; inv4 paid before the period.
    let mut sql = String::from("BEGIN;");
    for (id, total, refunded, paid_at, updated) in [
        ("inv_rpt_1", 10_000, 0, at(0, 2, 14), at(0, 2, 14)),
        ("inv_rpt_2", 5_300, 2_000, at(2, 1, 16), at(3, 0, 1)),
        ("inv_rpt_3", 8_000, 1_500, at(1, 4, 11), at(2, 3, 12)),
        ("inv_rpt_4", 99_900, 0, before(1), before(1)),
    ] {
        sql.push_str(&format!(
            "INSERT INTO invoices (id, number, source, source_id, client_id, status, currency, subtotal_cents, tax_rate_bps, tax_cents, total_cents, paid_cents, refunded_cents, payment_intent_id, created_at, updated_at) \
             VALUES ('{id}', 'JJ-{id}', 'job', 'job_rpt_x', 'cli_reports', '{}', 'USD', {total}, 0, 0, {total}, {total}, {refunded}, 'pi_{id}', '{}', '{}');",
            if refunded > 0 { "partially_refunded" } else { "paid" },
            stamp(paid_at),
            stamp(updated)
        ));
        sql.push_str(&format!(
            "INSERT INTO payments (id, invoice_id, payment_intent_id, amount_cents, currency, created_at) VALUES ('pay_{id}', '{id}', 'pi_{id}', {total}, 'USD', '{}');",
            stamp(paid_at)
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO refunds (id, invoice_id, stripe_refund_id, amount_cents, reason, created_by, created_at) VALUES ('ref_rpt_2', 'inv_rpt_2', 're_rpt_2', 2000, 'scratched', 'staff:stf_x:owner', '{}');",
        stamp(at(3, 0, 1))
    ));
    sql.push_str("COMMIT;");
    bdb.execute_batch(&sql);
    Seeded {
        weeks: w.mondays().iter().map(|d| d.to_string()).collect(),
        rpc_job: "job_rpt_c".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_the_weeks_figures_as_tables_and_charts() {
    for backend in backends() {
        let (jdb, bdb, sdb, pdb) = (
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "billing"),
            TestDb::new(backend, "shop"),
            TestDb::new(backend, "portal"),
        );
        let sh = start_domain("shop", &sdb.url, &[]).await;
        let j = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__WORKER__ENABLED", "false".to_owned()),
                ("OMNEURO__UPSTREAMS__SHOP", sh.grpc_url()),
            ],
        )
        .await;
        let b = start_domain(
            "billing",
            &bdb.url,
            &[("OMNEURO__UPSTREAMS__JOBS", j.grpc_url())],
        )
        .await;
        for svc in [&sh, &j, &b] {
            wait_ready(svc).await;
        }
        // The same calendar the services use (a run across Monday 00:00 UTC could straddle it).
        let weeks = Weeks::ending(4, now_utc()).unwrap();
        let seeded = seed_history(&jdb, &bdb, &weeks);
        let wk = &seeded.weeks;

        // Through the RPCs, as the owner: C starts diagnosing now, and two parts go on jobs.
        let owner = staff(StaffRole::Owner);
        let mut jc = jpb::jobs_service_client::JobsServiceClient::new(j.channel());
        jc.move_job(auth::request(
            &owner,
            jpb::MoveJobRequest {
                id: seeded.rpc_job.clone(),
                to_status: "diagnosing".into(),
                note: "On the bench".into(),
            },
        ))
        .await
        .unwrap();
        let products: Vec<spb::Product> =
            spb::shop_service_client::ShopServiceClient::new(sh.channel())
                .list_products(spb::ListProductsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .products
                .into_iter()
                .filter(|p| p.stock >= 5)
                .take(2)
                .collect();
        assert_eq!(products.len(), 2, "demo products with stock");
        let (p1, p2) = (&products[0], &products[1]);
        for (job, product, quantity) in [
            (seeded.rpc_job.as_str(), &p1.id, 2),
            ("job_rpt_b", &p2.id, 3),
        ] {
            jc.add_part(auth::request(
                &owner,
                jpb::AddPartRequest {
                    job_id: job.into(),
                    product_id: product.clone(),
                    quantity,
                },
            ))
            .await
            .unwrap();
        }
        // One more p2 on A in week 0, and 50 of p1 long before the period (not counted).
        jdb.execute_batch(&format!(
            "BEGIN;\
             INSERT INTO job_lines (id, job_id, kind, description, product_id, quantity, hours_hundredths, unit_price_cents, amount_cents, currency, added_by, created_at) \
             VALUES ('line_rpt_1', 'job_rpt_a', 'part', '{}', '{}', 1, 0, 100, 100, 'USD', 'staff:stf_x:owner', '{}');\
             INSERT INTO job_lines (id, job_id, kind, description, product_id, quantity, hours_hundredths, unit_price_cents, amount_cents, currency, added_by, created_at) \
             VALUES ('line_rpt_2', 'job_rpt_e', 'part', '{}', '{}', 50, 0, 100, 5000, 'USD', 'staff:stf_x:owner', '{}');\
             COMMIT;",
            p2.name.replace('\'', "''"),
            p2.id,
            stamp(weeks.start_of(0) + TimeDelta::hours(60)),
            p1.name.replace('\'', "''"),
            p1.id,
            stamp(weeks.start() - TimeDelta::days(29)),
        ));

        // The report RPCs: the owner only; more than 52 weeks refused.
        let mut bc = bpb::billing_service_client::BillingServiceClient::new(b.channel());
        for role in [StaffRole::Tech, StaffRole::FrontDesk] {
            let e = jc
                .get_jobs_report(auth::request(
                    &staff(role),
                    jpb::GetJobsReportRequest { weeks: 4 },
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{role:?}");
            let e = bc
                .get_revenue_report(auth::request(
                    &staff(role),
                    bpb::GetRevenueReportRequest { weeks: 4 },
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{role:?}");
        }
        let e = jc
            .get_jobs_report(auth::request(
                &owner,
                jpb::GetJobsReportRequest { weeks: 53 },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = bc
            .get_revenue_report(auth::request(
                &owner,
                bpb::GetRevenueReportRequest { weeks: 53 },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let twelve = jc
            .get_jobs_report(auth::request(
                &owner,
                jpb::GetJobsReportRequest { weeks: 0 },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(twelve.weeks.len(), 12, "0 weeks means the default");

        // The page.
        let portal = start_portal(
            &pdb.url,
            &[("jobs", j.grpc_url()), ("billing", b.grpc_url())],
            &[],
        )
        .await;
        wait_ready(&portal).await;
        let mut people = seed_staff(&pdb.url).await;
        let mut boss = Browser::new(&portal.url(""));
        let mut tech = Browser::new(&portal.url(""));
        assert_eq!(
            staff_sign_in(&mut boss, &mut people.owner).await.location,
            "/jobs"
        );
        assert_eq!(
            staff_sign_in(&mut tech, &mut people.tech).await.location,
            "/jobs"
        );
        let p = tech.get("/reports").await;
        assert_eq!(p.status, 403, "a tech may not see reports");
        assert!(!tech.get("/today").await.body.contains("href=\"/reports\""));

        let p = boss.get("/reports?weeks=4").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let body = &p.body;
        assert!(body.contains("href=\"/reports\""), "Reports in the bar");

        // Jobs by status at the end of each week, and jobs opened.
        let jobs = element(body, "table", "jobs-table");
        let st = |w: usize| statuses(row(jobs, &wk[w]));
        let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(s, c)| ((*s).to_owned(), *c)).collect()
        };
        assert_eq!(
            st(0),
            pairs(&[("intake", 1), ("awaiting_approval", 1), ("in_progress", 1)])
        );
        assert_eq!(
            st(1),
            pairs(&[
                ("intake", 1),
                ("awaiting_approval", 1),
                ("awaiting_parts", 1),
                ("delivered", 1)
            ])
        );
        assert_eq!(
            st(2),
            pairs(&[
                ("intake", 1),
                ("awaiting_approval", 1),
                ("ready", 1),
                ("canceled", 1)
            ])
        );
        assert_eq!(
            st(3),
            pairs(&[("diagnosing", 1), ("awaiting_approval", 1), ("ready", 1)])
        );
        let opened: Vec<i64> = (0..4)
            .map(|w| one(row(jobs, &wk[w]), "data-opened"))
            .collect();
        assert_eq!(opened, [2, 1, 1, 0]);
        // One segment per non-zero status count: 3 + 4 + 4 + 3.
        let svg = element(body, "svg", "chart-status");
        assert_eq!(well_formed_count(svg, "rect"), 14);
        assert_eq!(svg.matches("<rect").count(), 14);
        assert!(svg.contains("<title id=\"chart-status-title\">Jobs by status"));

        // Turnaround: A 6 days (week 1), B 8 days from its slot (week 2); 7 days over all.
        let ta = element(body, "table", "turnaround-table");
        let secs: Vec<(i64, i64)> = (0..4)
            .map(|w| {
                let r = row(ta, &wk[w]);
                (one(r, "data-finished"), one(r, "data-turnaround-seconds"))
            })
            .collect();
        assert_eq!(secs, [(0, 0), (1, 6 * 86_400), (1, 8 * 86_400), (0, 0)]);
        let overall = element(body, "span", "turnaround-overall");
        assert_eq!(one(overall, "data-turnaround-seconds"), 7 * 86_400);
        assert_eq!(one(overall, "data-finished"), 2);
        assert!(overall.contains("7.0 days"), "{overall}");
        let svg = element(body, "svg", "chart-turnaround");
        assert_eq!(well_formed_count(svg, "circle"), 2);

        // Parts: p2 4 (3 over RPC + 1), p1 2; the 50 before the period don't count.
        let parts = element(body, "table", "parts-table");
        assert_eq!(
            values(parts, "data-product"),
            [p2.id.clone(), p1.id.clone()]
        );
        assert_eq!(values(parts, "data-quantity"), ["4", "2"]);
        let svg = element(body, "svg", "chart-parts");
        assert_eq!(well_formed_count(svg, "rect"), 2);

        // Revenue per week and over the period.
        let money = element(body, "table", "revenue-table");
        let figures = |r: &str| {
            (
                one(r, "data-paid-cents"),
                one(r, "data-refunded-cents"),
                one(r, "data-net-cents"),
                one(r, "data-invoices"),
            )
        };
        let got: Vec<_> = (0..4).map(|w| figures(row(money, &wk[w]))).collect();
        assert_eq!(
            got,
            [
                (10_000, 0, 10_000, 1),
                (8_000, 0, 8_000, 1),
                (5_300, 1_500, 3_800, 1),
                (0, 2_000, -2_000, 0)
            ]
        );
        assert_eq!(figures(row(money, "total")), (23_300, 3_500, 19_800, 3));
        assert!(row(money, &wk[3]).contains("-$20.00"));
        let svg = element(body, "svg", "chart-revenue");
        assert_eq!(well_formed_count(svg, "rect"), 4, "a bar per week");

        // The default is 12 weeks.
        let p = boss.get("/reports").await;
        assert_eq!(p.status, 200);
        assert_eq!(
            values(element(&p.body, "table", "revenue-table"), "data-week").len(),
            12 + 1
        );

        // A bad number of weeks: the page says why, nothing else.
        for bad in ["99", "0", "ten", "-3"] {
            let p = boss.get(&format!("/reports?weeks={bad}")).await;
            assert_eq!(p.status, 400, "{bad}");
            assert!(
                p.body.contains("id=\"message\"") && p.body.contains("from 1 to 52"),
                "{bad}: {}",
                p.body
            );
            assert!(p.body.contains(&format!("value=\"{bad}\"")), "typed kept");
            assert!(!p.body.contains("<svg"), "{bad}");
        }
        let p = boss.get("/reports?weeks=%3Cb%3E").await;
        assert_eq!(p.status, 400);
        assert!(!p.body.contains("<b>"), "{}", p.body);
        assert!(p.body.contains("id=\"message\""));

        // billing down: the jobs half still shows, with a notice for the money.
        b.stop().await;
        let p = boss.get("/reports?weeks=4").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("id=\"money-notice\"") && p.body.contains("billing service isn"));
        assert!(p.body.contains("id=\"jobs-table\"") && !p.body.contains("id=\"revenue-table\""));
        // Both down: 503, a notice for each half, no figures.
        j.stop().await;
        let p = boss.get("/reports?weeks=4").await;
        assert_eq!(p.status, 503, "{}", p.body);
        assert!(p.body.contains("id=\"jobs-notice\"") && p.body.contains("id=\"money-notice\""));
        assert!(!p.body.contains("<table"));
        portal.stop().await;
        sh.stop().await;
    }
}
