//! The portal's bench, through its pages, with real garage, jobs and shop on both databases and
//! the portal as its own process: a walk-in opened at the counter, diagnostics notes, labor priced
//! hours × rate, a part at the shop's catalog price (the form never carries a price), bad input
//! refused with the reason before anything is added, a line removed, a tech assigned, the estimate
//! sent (the job waits for the client's approval and the client is mailed), forged posts refused,
//! and the pages when shop or jobs is down.

use omneuro_platform::auth::{self, Actor, StaffRole};
use omneuro_proto::jobs::v1 as pb;
use omneuro_proto::shop::v1 as shop;
use omneuro_tests::*;
use pb::jobs_service_client::JobsServiceClient;
use shop::shop_service_client::ShopServiceClient;

type Jobs = JobsServiceClient<tonic::transport::Channel>;

fn base(p: &Proc) -> String {
    format!("http://{}", p.http)
}

fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// What jobs holds for the job (read as staff over gRPC, not through the portal).
async fn workbench(j: &mut Jobs, id: &str) -> pb::JobWorkbench {
    let staff = Actor::Staff {
        id: "stf_test".into(),
        role: StaffRole::Owner,
    };
    j.get_workbench(auth::request(
        &staff,
        pb::GetWorkbenchRequest { job_id: id.into() },
    ))
    .await
    .unwrap()
    .into_inner()
}

/// The value of the first `attr="…"` after `from` in `body`.
fn attr_after(body: &str, from: usize, attr: &str) -> String {
    let marker = format!("{attr}=\"");
    let at = body[from..]
        .find(&marker)
        .unwrap_or_else(|| panic!("no {attr} after {from}"))
        + from
        + marker.len();
    body[at..].chars().take_while(|c| *c != '"').collect()
}

/// The bench's lines as the page shows them: (line id, kind, the row's HTML).
fn lines_shown(body: &str) -> Vec<(String, String, String)> {
    body.match_indices("<tr id=\"line-")
        .map(|(i, _)| {
            let id = attr_after(body, i, "id")["line-".len()..].to_owned();
            let kind = attr_after(body, i, "data-kind");
            let end = body[i..].find("</tr>").unwrap() + i;
            (id, kind, body[i..end].to_owned())
        })
        .collect()
}

/// The part picker's `<option>` for `product_id`.
fn option_for<'a>(body: &'a str, product_id: &str) -> &'a str {
    let at = body
        .find(&format!("<option value=\"{product_id}\""))
        .unwrap_or_else(|| panic!("{product_id} not offered: {body}"));
    &body[at..at + body[at..].find("</option>").unwrap()]
}

fn shown_status(body: &str) -> String {
    attr_after(body, 0, "data-status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_prices_lines_from_the_server_and_sends_the_estimate_from_the_job_page() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let (gdb, jdb, sdb) = (
            TestDb::new(backend, "garage"),
            TestDb::new(backend, "jobs"),
            TestDb::new(backend, "shop"),
        );
        let g = start_domain(
            "garage",
            &gdb.url,
            &[("OMNEURO__MAIL__SMTP_URL", sink.url())],
        )
        .await;
        let s = start_domain("shop", &sdb.url, &[]).await;
        let jsvc = start_domain(
            "jobs",
            &jdb.url,
            &[
                ("OMNEURO__MAIL__SMTP_URL", sink.url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
                ("OMNEURO__WORKER__POLL_MS", "100".to_owned()),
                ("OMNEURO__LINKS__PUBLIC_URL", "http://jj.test".to_owned()),
            ],
        )
        .await;
        for r in [&g, &s, &jsvc] {
            wait_ready(r).await;
        }
        let mut gc = GarageClient::new(g.channel());
        let mut j = JobsServiceClient::new(jsvc.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "bench", other_vehicle("King Song", "S22")).await;
        let product = ShopServiceClient::new(s.channel())
            .list_products(shop::ListProductsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .products
            .into_iter()
            .find(|p| p.price.as_ref().is_some_and(|m| m.amount_cents > 0))
            .unwrap();
        let price = product.price.as_ref().unwrap().amount_cents;

        let dir = TempDir::new("portal-bench");
        let pdb = TestDb::new(backend, "portal");
        let mut staff = seed_staff(&pdb.url).await;
        let portal = Proc::spawn(
            "portal",
            &[
                ("OMNEURO__UPSTREAMS__JOBS", jsvc.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", s.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__DATABASE__URL", pdb.url.clone()),
            ],
            &dir.0,
        );
        portal.wait_ready().await;
        let mut b = Browser::new(&base(&portal));
        // Not signed in: the bench posts send you to sign in.
        let p = b.post("/walkin", &[("csrf", "x")]).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/signin"));
        let p = staff_sign_in(&mut b, &mut staff.tech).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/jobs"));

        // ---- a walk-in at the counter ---------------------------------------------------------
        let p = b.get("/jobs").await;
        assert!(p.body.contains("href=\"/walkin\""), "{}", p.body);
        let p = b.get(&format!("/walkin?client={}", client.id)).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains(&format!("value=\"{}\"", vehicle.id))
                && p.body.contains("King Song S22")
        );
        let csrf = p.csrf();
        let p = b.get("/walkin?client=cli_nobodyatall000000").await;
        assert!(p.body.contains("id=\"no-vehicles\""), "{}", p.body);
        // No vehicle picked: the reason, nothing opened.
        let p = b
            .post(
                "/walkin",
                &[
                    ("csrf", &csrf),
                    ("client_id", &client.id),
                    ("services", "diagnostics"),
                ],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("Pick the vehicle"), "{}", p.body);
        let walkin = [
            ("csrf", csrf.as_str()),
            ("client_id", client.id.as_str()),
            ("vehicle_id", vehicle.id.as_str()),
            ("services", "diagnostics"),
            ("services", "controller"),
            ("problem", "Won't power on after rain."),
        ];
        let p = b.post_with("/walkin", &walkin[1..], &[]).await;
        assert_eq!(p.status, 403, "a walk-in needs the CSRF token");
        let p = b.post("/walkin", &walkin).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let job_path = p.location.clone();
        let job_id = job_path.trim_start_matches("/jobs/").to_owned();
        assert!(job_id.starts_with("job_"), "{job_path}");
        let listed = j
            .list_jobs(auth::request(
                &Actor::Client(client.id.clone()),
                pb::ListJobsRequest::default(),
            ))
            .await
            .unwrap()
            .into_inner()
            .jobs;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].services, ["diagnostics", "controller"]);
        let path = |tail: &str| format!("{job_path}/{tail}");

        // ---- the bench on the job page --------------------------------------------------------
        let p = b.get(&job_path).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert_eq!(shown_status(&p.body), "intake");
        for want in [
            "id=\"bench\"",
            "No notes yet.",
            "No lines yet.",
            "No estimate sent yet.",
        ] {
            assert!(p.body.contains(want), "{want} missing: {}", p.body);
        }
        // The part form carries a product and a quantity, never a price.
        let form_at = p.body.find("id=\"part-form\"").unwrap();
        let part_form = &p.body[form_at..form_at + p.body[form_at..].find("</form>").unwrap()];
        let names: Vec<String> = part_form
            .match_indices("name=\"")
            .map(|(i, _)| attr_after(part_form, i, "name"))
            .collect();
        assert_eq!(names, ["csrf", "product_id", "quantity"]);
        let option = option_for(&p.body, &product.id);
        assert!(option.contains(&dollars(price)), "{option}");
        assert!(
            !p.body.contains("id=\"estimate-form\""),
            "nothing to send yet"
        );
        let csrf = p.csrf();

        // Forged posts (no token, a wrong one, another site): 403 and nothing changes.
        let forged: [(String, Vec<(&str, &str)>); 4] = [
            (path("notes"), vec![("body", "forged note")]),
            (
                path("labor"),
                vec![("description", "forged"), ("hours", "1"), ("rate", "90")],
            ),
            (
                path("parts"),
                vec![("product_id", product.id.as_str()), ("quantity", "1")],
            ),
            (path("assign"), vec![("tech", "Mallory")]),
        ];
        for (to, fields) in &forged {
            let mut with_token = fields.clone();
            with_token.push(("csrf", csrf.as_str()));
            let mut wrong = fields.clone();
            wrong.push(("csrf", "forged"));
            for (form, headers) in [
                (fields.clone(), vec![]),
                (wrong, vec![]),
                (with_token, vec![("origin", "https://evil.example")]),
            ] {
                let p = b.post_with(to, &form, &headers).await;
                assert_eq!(p.status, 403, "{to} {form:?} {headers:?}");
            }
        }
        let w = workbench(&mut j, &job_id).await;
        assert!(w.notes.is_empty() && w.lines.is_empty(), "{w:?}");
        assert_eq!(w.job.as_ref().unwrap().assigned_tech, "");

        // Nothing to send yet: jobs' reason, 409.
        let p = b.post(&path("estimate"), &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(
            p.body.contains("Add labor or parts before sending"),
            "{}",
            p.body
        );

        // A note (escaped on the page).
        let p = b
            .post(
                &path("notes"),
                &[
                    ("csrf", &csrf),
                    ("body", "Water in the charge port <b>burnt</b>"),
                ],
            )
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
        let p = b.get(&job_path).await;
        let notes = &p.body[p.body.find("id=\"notes\"").unwrap()..];
        assert!(
            notes.contains("Water in the charge port &#60;b&#62;burnt")
                && notes.contains("Marcus Tech (tech)"),
            "{notes}"
        );

        // Labor: 1.5 h at $90 is $135.00.
        let p = b
            .post(
                &path("labor"),
                &[
                    ("csrf", &csrf),
                    ("description", "Controller diagnosis"),
                    ("hours", "1.5"),
                    ("rate", "90"),
                ],
            )
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
        let p = b.get(&job_path).await;
        let lines = lines_shown(&p.body);
        assert_eq!(lines.len(), 1, "{}", p.body);
        let (labor_id, kind, row) = &lines[0];
        assert_eq!(kind, "labor");
        for want in ["Controller diagnosis", "1.50 h", "$90.00/h", "$135.00"] {
            assert!(row.contains(want), "{want} missing: {row}");
        }
        assert!(p.body.contains("id=\"lines-total\">$135.00<"), "{}", p.body);

        // Bad input is refused with the reason, keeps what was typed, and adds nothing.
        for (hours, rate, want) in [
            ("abc", "90", "Hours should be a number like 1.5"),
            ("2", "ninety", "The rate should be dollars per hour"),
            ("2", "90.001", "The rate should be dollars per hour"),
            ("", "90", "Hours should be a number like 1.5"),
        ] {
            let p = b
                .post(
                    &path("labor"),
                    &[
                        ("csrf", &csrf),
                        ("description", "Wheel bearing"),
                        ("hours", hours),
                        ("rate", rate),
                    ],
                )
                .await;
            assert_eq!(p.status, 400, "{hours:?} {rate:?}: {}", p.body);
            assert!(
                p.body.contains("id=\"error\"") && p.body.contains(want),
                "{want}: {}",
                p.body
            );
            assert!(
                p.body.contains("value=\"Wheel bearing\""),
                "the typing is kept"
            );
            assert_eq!(lines_shown(&p.body).len(), 1);
        }
        assert_eq!(workbench(&mut j, &job_id).await.lines.len(), 1);

        // A part from the picker, at the catalog's price: a price in the form is ignored.
        let p = b
            .post(
                &path("parts"),
                &[
                    ("csrf", &csrf),
                    ("product_id", &product.id),
                    ("quantity", "2"),
                    ("price", "0.01"),
                    ("unit_price_cents", "1"),
                ],
            )
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
        let w = workbench(&mut j, &job_id).await;
        assert_eq!(w.lines.len(), 2);
        assert_eq!(
            (
                w.lines[1].description.as_str(),
                w.lines[1].product_id.as_str()
            ),
            (product.name.as_str(), product.id.as_str())
        );
        assert_eq!(w.lines[1].unit_price.as_ref().unwrap().amount_cents, price);
        let p = b.get(&job_path).await;
        let lines = lines_shown(&p.body);
        let (part_id, kind, row) = &lines[1];
        assert_eq!(kind, "part");
        assert!(
            row.contains(&dollars(price)) && row.contains(&dollars(2 * price)),
            "{row}"
        );
        let total = 13_500 + 2 * price;
        assert!(
            p.body
                .contains(&format!("id=\"lines-total\">{}<", dollars(total))),
            "{}",
            p.body
        );
        for (product_id, quantity, want) in [
            ("prd_nope", "1", "No such part"),
            ("", "1", "Pick a part from the list"),
            (
                product.id.as_str(),
                "lots",
                "Quantity should be a whole number",
            ),
            (
                product.id.as_str(),
                "0",
                "Quantity should be between 1 and 100",
            ),
        ] {
            let p = b
                .post(
                    &path("parts"),
                    &[
                        ("csrf", &csrf),
                        ("product_id", product_id),
                        ("quantity", quantity),
                    ],
                )
                .await;
            assert_eq!(p.status, 400, "{product_id} {quantity}: {}", p.body);
            assert!(p.body.contains(want), "{want}: {}", p.body);
        }
        assert_eq!(workbench(&mut j, &job_id).await.lines.len(), 2);

        // A forged remove changes nothing; the real one takes the line off; again is a 404 reason.
        let remove = path(&format!("lines/{part_id}/remove"));
        let p = b.post(&remove, &[("csrf", "forged")]).await;
        assert_eq!(p.status, 403);
        assert_eq!(workbench(&mut j, &job_id).await.lines.len(), 2);
        let p = b.post(&remove, &[("csrf", &csrf)]).await;
        assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
        let p = b.get(&job_path).await;
        let lines = lines_shown(&p.body);
        assert_eq!(lines.len(), 1);
        assert_eq!(&lines[0].0, labor_id);
        assert!(p.body.contains("id=\"lines-total\">$135.00<"));
        let p = b.post(&remove, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 404);
        assert!(p.body.contains("No such line"), "{}", p.body);

        // The tech.
        let p = b
            .post(&path("assign"), &[("csrf", &csrf), ("tech", " Marcus ")])
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
        let p = b.get(&job_path).await;
        let field = p.body.find("id=\"assign-tech\"").unwrap();
        assert_eq!(attr_after(&p.body, field, "value"), "Marcus");
        assert_eq!(
            workbench(&mut j, &job_id).await.job.unwrap().assigned_tech,
            "Marcus"
        );

        // The estimate: not from intake (jobs' reason), a forged send does nothing, then from
        // diagnosing it goes out and the job waits for the client.
        let p = b.post(&path("estimate"), &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("cannot get an estimate now"), "{}", p.body);
        let p = b
            .post(
                &path("move"),
                &[("csrf", &csrf), ("to_status", "diagnosing")],
            )
            .await;
        assert_eq!(p.status, 303);
        let p = b.post(&path("estimate"), &[]).await;
        assert_eq!(p.status, 403);
        assert!(workbench(&mut j, &job_id).await.estimate.is_none());
        let p = b.post(&path("estimate"), &[("csrf", &csrf)]).await;
        assert_eq!((p.status, p.location.as_str()), (303, job_path.as_str()));
        let p = b.get(&job_path).await;
        assert_eq!(shown_status(&p.body), "awaiting_approval");
        assert!(p.body.contains("Waiting for your approval"), "{}", p.body);
        let at = p.body.find("id=\"estimate-sent\"").unwrap();
        let sent = &p.body[at..at + p.body[at..].find("</p>").unwrap()];
        assert!(
            sent.contains("data-estimate=\"sent\"")
                && sent.contains("Sent")
                && sent.contains("$135.00"),
            "{sent}"
        );
        let url = attr_after(&p.body, at, "href");
        assert!(url.starts_with("http://jj.test/estimate/"), "{url}");
        let est = workbench(&mut j, &job_id).await.estimate.unwrap();
        assert_eq!(
            (est.status.as_str(), est.url.as_str()),
            ("sent", url.as_str())
        );
        assert!(
            eventually(std::time::Duration::from_secs(15), || async {
                sink.to(&client.email).iter().any(|m| {
                    m["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("Your estimate")
                        && m["text"].as_str().unwrap_or_default().contains(&url)
                })
            })
            .await,
            "{:#?}",
            sink.to(&client.email)
        );

        // An unknown job: the friendly 404.
        let p = b
            .post(
                "/jobs/job_doesnotexist0000/notes",
                &[("csrf", &csrf), ("body", "hi")],
            )
            .await;
        assert_eq!(p.status, 404);
        assert!(p.body.contains("couldn't find"));

        // shop down: the bench still works, the picker says why it is missing.
        s.stop().await;
        let p = b.get(&job_path).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("id=\"shop-down\""), "{}", p.body);
        // jobs down: the friendly 503, for the page and a post.
        jsvc.stop().await;
        assert_eq!(b.get(&job_path).await.status, 503);
        let p = b
            .post(&path("notes"), &[("csrf", &csrf), ("body", "still here")])
            .await;
        assert_eq!(p.status, 503);
        assert!(p.body.contains("Temporarily unavailable"));

        g.stop().await;
    }
}
