//! The authorization matrix, on both databases, through the real nginx:
//!
//! - docs/ROLES.md's role table is read and must say exactly what `Permission::allows` says;
//! - every route in portal's route table × {anonymous, client session, tech, front desk, owner}
//!   on the tech host gets the answer the table promises (sign-in page, "not for your role", or
//!   the page itself), and on the public host never reaches the portal whoever's cookies are sent;
//! - every staff RPC × the same five callers is allowed or refused as the table says;
//! - a route or an RPC that this file does not classify fails the test.
//!
//! Then the account rules a person would notice: brute force slowed and locked out (and the lock
//! not telling a real address from an unknown one), password change ending other sessions, sign
//! out everywhere, a disabled account's session ending, and the homepage and client garage never
//! asking for staff credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use omneuro_platform::auth::{self, Actor, Permission, StaffRole};
use omneuro_proto::billing::v1 as bpb;
use omneuro_proto::jobs::v1 as jpb;
use omneuro_proto::kb::v1 as kpb;
use omneuro_proto::shop::v1 as spb;
use omneuro_tests::*;
use tonic::Code;
use tonic::transport::Channel;

type JobsC = jpb::jobs_service_client::JobsServiceClient<Channel>;
type BillingC = bpb::billing_service_client::BillingServiceClient<Channel>;
type ShopC = spb::shop_service_client::ShopServiceClient<Channel>;
type KbC = kpb::kb_service_client::KbServiceClient<Channel>;

const ROLES: [(StaffRole, &str); 3] = [
    (StaffRole::Owner, "owner"),
    (StaffRole::Tech, "tech"),
    (StaffRole::FrontDesk, "front desk"),
];

/// docs/ROLES.md's table: permission name → the roles with a ✓.
fn role_table() -> BTreeMap<String, BTreeSet<&'static str>> {
    let text = std::fs::read_to_string(repo_root().join("docs/ROLES.md")).unwrap();
    let mut table = BTreeMap::new();
    let mut header: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        if cells[0] == "permission" {
            header = cells;
            continue;
        }
        if cells[0].starts_with("---") || header.is_empty() {
            continue;
        }
        let allowed = ROLES
            .iter()
            .filter(|(_, name)| {
                let col = header.iter().position(|h| h == name).unwrap();
                cells[col] == "✓"
            })
            .map(|(_, name)| *name)
            .collect();
        table.insert(cells[0].clone(), allowed);
    }
    table
}

#[test]
fn the_docs_role_table_is_the_code_role_table() {
    let table = role_table();
    assert_eq!(table.len(), Permission::ALL.len(), "{table:?}");
    for p in Permission::ALL {
        let documented = table
            .get(p.as_str())
            .unwrap_or_else(|| panic!("docs/ROLES.md has no row for `{}`", p.as_str()));
        for (role, name) in ROLES {
            assert_eq!(
                p.allows(role),
                documented.contains(name),
                "`{}` for {name}: code and docs/ROLES.md differ",
                p.as_str()
            );
        }
    }
}

/// Who may use a portal route, as this test expects it (by the docs' permission names).
fn route_rule(method: &str, path: &str) -> Option<&'static str> {
    Some(match (method, path) {
        ("GET", "/")
        | ("GET" | "POST", "/signin")
        | ("GET" | "POST", "/signin/code")
        | ("GET" | "POST", "/signin/enroll")
        | ("GET" | "POST", "/invite/{token}") => "public",
        ("POST", "/signout")
        | ("GET", "/account")
        | ("POST", "/account/password")
        | ("POST", "/account/totp")
        | ("POST", "/account/totp/confirm")
        | ("POST", "/account/totp/off")
        | ("POST", "/account/recovery-codes")
        | ("POST", "/account/signout-everywhere") => "signed in",
        ("GET", "/today")
        | ("GET", "/jobs")
        | ("GET", "/jobs/{id}")
        | ("GET", "/jobs/{id}/photos/{photo_id}")
        | ("GET" | "POST", "/assistant")
        | ("POST", "/assistant/stream")
        | ("POST", "/assistant/new") => "view jobs",
        ("POST", "/jobs/{id}/move") => "move jobs",
        ("POST", "/jobs/{id}/notes")
        | ("POST", "/jobs/{id}/labor")
        | ("POST", "/jobs/{id}/parts")
        | ("POST", "/jobs/{id}/lines/{line_id}/remove")
        | ("POST", "/jobs/{id}/photos")
        | ("POST", "/jobs/{id}/photos/{photo_id}/remove") => "work the bench",
        ("POST", "/jobs/{id}/assign") => "assign techs",
        ("POST", "/jobs/{id}/estimate") => "send estimates",
        ("GET" | "POST", "/walkin") => "open walk-ins",
        ("GET", "/clients") | ("GET", "/conversations") | ("GET", "/conversations/{id}") => {
            "view clients"
        }
        ("GET", "/invoices") | ("GET", "/invoices/{id}") | ("POST", "/invoices/{id}/void") => {
            "invoice"
        }
        ("POST", "/invoices/{id}/refund") => "refund",
        ("GET", "/settings")
        | ("POST", "/settings/booking")
        | ("GET" | "POST", "/settings/services")
        | ("POST", "/settings/tax")
        | ("GET", "/settings/team")
        | ("POST", "/settings/team/{id}") => "edit settings",
        ("GET", "/stock") | ("POST", "/stock/{id}") => "adjust stock",
        ("GET" | "POST", "/catalog")
        | ("GET" | "POST", "/catalog/{id}")
        | ("POST", "/catalog/{id}/fitment") => "edit the catalog",
        ("GET", "/reports") => "view reports",
        ("GET", "/kb") | ("GET", "/kb/{doc_id}") => "view jobs",
        ("GET" | "POST", "/kb/upload") | ("POST", "/kb/{doc_id}/delete") => {
            "edit the knowledge base"
        }
        ("GET", "/staff")
        | ("POST", "/staff/invite")
        | ("POST", "/staff/invites/withdraw")
        | ("POST", "/staff/{id}")
        | ("GET", "/audit") => "manage staff",
        _ => return None,
    })
}

/// The staff RPCs and the permission each needs; every other RPC is listed in [`OTHER_RPCS`].
const STAFF_RPCS: &[(&str, &str)] = &[
    ("jobs.UpdateBookingRules", "edit settings"),
    ("jobs.SaveServiceOffering", "edit settings"),
    ("jobs.MoveJob", "move jobs"),
    ("jobs.CreateWalkIn", "open walk-ins"),
    ("jobs.GetWorkbench", "view jobs"),
    ("jobs.AddNote", "work the bench"),
    ("jobs.AddLabor", "work the bench"),
    ("jobs.AddPart", "work the bench"),
    ("jobs.RemoveLine", "work the bench"),
    ("jobs.AddPhoto", "work the bench"),
    ("jobs.GetPhoto", "view jobs"),
    ("jobs.RemovePhoto", "work the bench"),
    ("jobs.AssignTech", "assign techs"),
    ("jobs.SendEstimate", "send estimates"),
    ("billing.SetTaxRate", "edit settings"),
    ("jobs.GetJobsReport", "view reports"),
    ("billing.CreateJobInvoice", "invoice"),
    ("billing.IssueInvoice", "invoice"),
    ("billing.VoidInvoice", "invoice"),
    ("billing.Refund", "refund"),
    ("billing.GetRevenueReport", "view reports"),
    ("shop.AdjustStock", "adjust stock"),
    ("shop.ListCatalog", "edit the catalog"),
    ("shop.CreateProduct", "edit the catalog"),
    ("shop.UpdateProduct", "edit the catalog"),
    ("shop.SetFitment", "edit the catalog"),
    ("shop.SyncCatalog", "edit the catalog"),
    ("shop.UseJobPart", "work the bench"),
    ("shop.ReturnJobPart", "work the bench"),
    ("garage.SearchClients", "view clients"),
    ("kb.PutDocument", "edit the knowledge base"),
    ("kb.DeleteDocument", "edit the knowledge base"),
];

/// RPCs that are not staff-only (public, a client's own records, or service-to-service), covered
/// by their services' own tests.
const OTHER_RPCS: &[&str] = &[
    "garage.ListVehicleMakes",
    "garage.RequestSignInLink",
    "garage.ConsumeSignInLink",
    "garage.Authenticate",
    "garage.SignOut",
    "garage.GetClient",
    "garage.UpdateProfile",
    "garage.RecordSmsOptOut",
    // System only (the SMS receptionist): garage's own tests and tests/tests/sms_receptionist.rs.
    "garage.FindClientsByPhone",
    "garage.ListVehicles",
    "garage.GetVehicle",
    "garage.CreateVehicle",
    "garage.UpdateVehicle",
    "garage.ArchiveVehicle",
    "jobs.ListServiceOfferings",
    "jobs.GetBookingRules",
    "jobs.ListAvailability",
    "jobs.CreateBooking",
    "jobs.RescheduleBooking",
    "jobs.CancelBooking",
    "jobs.ListJobs",
    "jobs.GetJob",
    "jobs.RenewStatusLink",
    "jobs.RevokeStatusLink",
    "jobs.GetStatusPage",
    "jobs.GetEstimate",
    "jobs.DecideEstimate",
    "jobs.MarkPaid",
    "billing.GetTaxRate",
    "billing.GetInvoice",
    "billing.ListInvoices",
    "billing.PayInvoice",
    "billing.CreatePaymentIntent",
    "billing.CreateQuoteDeposit",
    "shop.ListProducts",
    "shop.GetProduct",
    "shop.GetCart",
    "shop.SetCartItem",
    "shop.Checkout",
    "shop.GetOrder",
    "shop.OrderPaid",
    "shop.OrderExpired",
    "shop.QuoteBatteryPack",
    // Any staff role or a system worker (or, for reading and searching, a client within what
    // they may see): kb's own tests (tests/tests/kb.rs, portal_kb.rs, site_help.rs).
    "kb.GetDocument",
    "kb.Search",
    "kb.RebuildIndex",
    "kb.Neighbours",
    "kb.JobsMentioning",
    "kb.PartsForSymptom",
    "kb.Path",
    "kb.ListDocuments",
];

#[test]
fn every_rpc_in_the_protos_is_classified() {
    let mut found = Vec::new();
    for svc in ["garage", "jobs", "billing", "shop", "kb"] {
        let proto = std::fs::read_to_string(
            repo_root().join(format!("proto/omneuro/{svc}/v1/{svc}.proto")),
        )
        .unwrap();
        for line in proto.lines() {
            if let Some(rest) = line.trim().strip_prefix("rpc ") {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
                found.push(format!("{svc}.{name}"));
            }
        }
    }
    for rpc in &found {
        let staff = STAFF_RPCS.iter().any(|(r, _)| r == rpc);
        let other = OTHER_RPCS.contains(&rpc.as_str());
        assert!(
            staff ^ other,
            "{rpc}: classify it (staff with a permission, or other) in tests/tests/portal_access.rs"
        );
    }
    assert_eq!(found.len(), STAFF_RPCS.len() + OTHER_RPCS.len());
}

fn req<T>(actor: Option<&Actor>, m: T) -> tonic::Request<T> {
    match actor {
        Some(a) => auth::request(a, m),
        None => tonic::Request::new(m),
    }
}

/// Calls a staff RPC with an empty (or bogus) request: what matters is whether the caller gets
/// past the permission check, not what the call then does.
async fn call(
    rpc: &str,
    a: Option<&Actor>,
    j: &JobsC,
    b: &BillingC,
    s: &ShopC,
    g: &omneuro_proto::garage::v1::garage_service_client::GarageServiceClient<Channel>,
    k: &KbC,
) -> Result<(), tonic::Status> {
    let (mut j, mut b, mut s, mut g, mut k) =
        (j.clone(), b.clone(), s.clone(), g.clone(), k.clone());
    match rpc {
        "jobs.UpdateBookingRules" => j
            .update_booking_rules(req(a, jpb::UpdateBookingRulesRequest::default()))
            .await
            .map(|_| ()),
        "jobs.SaveServiceOffering" => j
            .save_service_offering(req(a, jpb::SaveServiceOfferingRequest::default()))
            .await
            .map(|_| ()),
        "jobs.MoveJob" => j
            .move_job(req(a, jpb::MoveJobRequest::default()))
            .await
            .map(|_| ()),
        "jobs.CreateWalkIn" => j
            .create_walk_in(req(a, jpb::CreateWalkInRequest::default()))
            .await
            .map(|_| ()),
        "jobs.GetWorkbench" => j
            .get_workbench(req(a, jpb::GetWorkbenchRequest::default()))
            .await
            .map(|_| ()),
        "jobs.AddNote" => j
            .add_note(req(a, jpb::AddNoteRequest::default()))
            .await
            .map(|_| ()),
        "jobs.AddLabor" => j
            .add_labor(req(a, jpb::AddLaborRequest::default()))
            .await
            .map(|_| ()),
        "jobs.AddPart" => j
            .add_part(req(a, jpb::AddPartRequest::default()))
            .await
            .map(|_| ()),
        "jobs.RemoveLine" => j
            .remove_line(req(a, jpb::RemoveLineRequest::default()))
            .await
            .map(|_| ()),
        "jobs.AddPhoto" => j
            .add_photo(req(a, jpb::AddPhotoRequest::default()))
            .await
            .map(|_| ()),
        "jobs.GetPhoto" => j
            .get_photo(req(a, jpb::GetPhotoRequest::default()))
            .await
            .map(|_| ()),
        "jobs.RemovePhoto" => j
            .remove_photo(req(a, jpb::RemovePhotoRequest::default()))
            .await
            .map(|_| ()),
        "jobs.AssignTech" => j
            .assign_tech(req(a, jpb::AssignTechRequest::default()))
            .await
            .map(|_| ()),
        "jobs.SendEstimate" => j
            .send_estimate(req(a, jpb::SendEstimateRequest::default()))
            .await
            .map(|_| ()),
        "billing.SetTaxRate" => b
            .set_tax_rate(req(a, bpb::SetTaxRateRequest::default()))
            .await
            .map(|_| ()),
        "jobs.GetJobsReport" => j
            .get_jobs_report(req(a, jpb::GetJobsReportRequest::default()))
            .await
            .map(|_| ()),
        "billing.GetRevenueReport" => b
            .get_revenue_report(req(a, bpb::GetRevenueReportRequest::default()))
            .await
            .map(|_| ()),
        "billing.CreateJobInvoice" => b
            .create_job_invoice(req(a, bpb::CreateJobInvoiceRequest::default()))
            .await
            .map(|_| ()),
        "billing.IssueInvoice" => b
            .issue_invoice(req(a, bpb::IssueInvoiceRequest::default()))
            .await
            .map(|_| ()),
        "billing.VoidInvoice" => b
            .void_invoice(req(a, bpb::VoidInvoiceRequest::default()))
            .await
            .map(|_| ()),
        "billing.Refund" => b
            .refund(req(a, bpb::RefundRequest::default()))
            .await
            .map(|_| ()),
        "shop.AdjustStock" => s
            .adjust_stock(req(a, spb::AdjustStockRequest::default()))
            .await
            .map(|_| ()),
        "shop.ListCatalog" => s
            .list_catalog(req(a, spb::ListCatalogRequest::default()))
            .await
            .map(|_| ()),
        "shop.CreateProduct" => s
            .create_product(req(a, spb::CreateProductRequest::default()))
            .await
            .map(|_| ()),
        "shop.UpdateProduct" => s
            .update_product(req(a, spb::UpdateProductRequest::default()))
            .await
            .map(|_| ()),
        "shop.SetFitment" => s
            .set_fitment(req(a, spb::SetFitmentRequest::default()))
            .await
            .map(|_| ()),
        "shop.SyncCatalog" => s
            .sync_catalog(req(a, spb::SyncCatalogRequest::default()))
            .await
            .map(|_| ()),
        "shop.UseJobPart" => s
            .use_job_part(req(a, spb::JobPartRequest::default()))
            .await
            .map(|_| ()),
        "shop.ReturnJobPart" => s
            .return_job_part(req(a, spb::JobPartRequest::default()))
            .await
            .map(|_| ()),
        "garage.SearchClients" => g
            .search_clients(req(
                a,
                omneuro_proto::garage::v1::SearchClientsRequest {
                    query: "matrix".into(),
                    limit: 0,
                },
            ))
            .await
            .map(|_| ()),
        "kb.PutDocument" => k
            .put_document(req(a, kpb::PutDocumentRequest::default()))
            .await
            .map(|_| ()),
        "kb.DeleteDocument" => k
            .delete_document(req(a, kpb::DeleteDocumentRequest::default()))
            .await
            .map(|_| ()),
        other => panic!("no call written for {other}"),
    }
}

/// One of the five kinds of caller.
struct Persona {
    name: &'static str,
    role: Option<StaffRole>,
    login: Option<StaffLogin>,
    browser: Browser,
    /// This persona's session was ended by the last request (sign out): sign in again.
    ended: bool,
}

fn is_portal_page(body: &str) -> bool {
    body.contains("Juice Junkiez tech portal</title>")
}

async fn staff_csrf(b: &mut Browser) -> String {
    let p = b.get("/account").await;
    assert_eq!(p.status, 200, "{}", p.body);
    p.csrf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_staff_rpc_allows_exactly_the_roles_in_the_docs() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let table = role_table();
    for backend in backends() {
        let dbs: Vec<TestDb> = [
            "garage",
            "jobs",
            "billing",
            "shop",
            "portal",
            "repairbot",
            "kb",
        ]
        .iter()
        .map(|s| TestDb::new(backend, s))
        .collect();
        let mail = [("OMNEURO__MAIL__SMTP_URL", sink.url())];
        let g = start_domain("garage", &dbs[0].url, &mail).await;
        let sh = start_domain("shop", &dbs[3].url, &[]).await;
        let jsvc = start_domain(
            "jobs",
            &dbs[1].url,
            &[
                mail[0].clone(),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", sh.grpc_url()),
            ],
        )
        .await;
        let bsvc = start_domain(
            "billing",
            &dbs[2].url,
            &[
                ("OMNEURO__UPSTREAMS__JOBS", jsvc.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", sh.grpc_url()),
                ("OMNEURO__UPSTREAMS__GARAGE", g.grpc_url()),
            ],
        )
        .await;
        let rbot = start_domain(
            "repairbot",
            &dbs[5].url,
            &[
                ("OMNEURO__UPSTREAMS__JOBS", jsvc.grpc_url()),
                ("OMNEURO__UPSTREAMS__SHOP", sh.grpc_url()),
            ],
        )
        .await;
        let kbsvc = start_domain("kb", &dbs[6].url, &[]).await;
        for svc in [&g, &sh, &jsvc, &bsvc, &rbot, &kbsvc] {
            wait_ready(svc).await;
        }
        let ups = [
            ("garage", g.grpc_url()),
            ("jobs", jsvc.grpc_url()),
            ("shop", sh.grpc_url()),
            ("billing", bsvc.grpc_url()),
            ("repairbot", rbot.grpc_url()),
            ("kb", kbsvc.grpc_url()),
        ];
        let site = start_site(&ups).await;
        let portal = start_portal(&dbs[4].url, &ups, &mail).await;
        wait_ready(&portal).await;
        let tmp = TempDir::new("access");
        let Some(nginx) = Nginx::start(
            &tmp.0,
            &[
                (
                    "SITE_ADDR",
                    site.url("").trim_start_matches("http://").to_owned(),
                ),
                (
                    "PORTAL_ADDR",
                    portal.url("").trim_start_matches("http://").to_owned(),
                ),
                ("BILLING_ADDR", "127.0.0.1:9".to_owned()),
                ("REPAIRBOT_ADDR", "127.0.0.1:9".to_owned()),
            ],
        ) else {
            return;
        };
        let edge = format!("http://127.0.0.1:{}", nginx.port);
        let tech_host = format!("tech.localhost:{}", nginx.port);
        let public_host = format!("localhost:{}", nginx.port);

        // A client with a booked job (the job the routes are tried on) and a site session.
        let mut gc =
            omneuro_proto::garage::v1::garage_service_client::GarageServiceClient::new(g.channel());
        let (client, vehicle) =
            client_with_vehicle(&mut gc, &sink, "matrix", other_vehicle("Begode", "Master")).await;
        let mut jc = JobsC::new(jsvc.channel());
        let slot = jc
            .list_availability(jpb::ListAvailabilityRequest {})
            .await
            .unwrap()
            .into_inner()
            .windows[0]
            .slots[0]
            .clone();
        let job = jc
            .create_booking(auth::request(
                &Actor::Client(client.id.clone()),
                jpb::CreateBookingRequest {
                    vehicle_id: vehicle.id.clone(),
                    services: vec!["diagnostics".into()],
                    problem: "Cuts out under load.".into(),
                    safety_flag: false,
                    slot: Some(slot),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let grant = sign_in_rpc(&mut gc, &sink, &client.email).await;

        let staff = seed_staff(&dbs[4].url).await;
        let mut personas = vec![
            Persona {
                name: "anonymous",
                role: None,
                login: None,
                browser: Browser::new(&edge).with_host(&tech_host),
                ended: false,
            },
            Persona {
                name: "client",
                role: None,
                login: None,
                browser: Browser::new(&edge).with_host(&tech_host),
                ended: false,
            },
        ];
        personas[1]
            .browser
            .cookies
            .insert("jj_session".into(), grant.session_token.clone());
        for login in [staff.tech, staff.desk, staff.owner] {
            let mut browser = Browser::new(&edge).with_host(&tech_host);
            let mut login = login;
            let p = staff_sign_in(&mut browser, &mut login).await;
            assert_eq!(
                (p.status, p.location.as_str()),
                (303, "/jobs"),
                "{}",
                p.body
            );
            personas.push(Persona {
                name: match login.role {
                    StaffRole::Owner => "owner",
                    StaffRole::Tech => "tech",
                    StaffRole::FrontDesk => "front desk",
                },
                role: Some(login.role),
                login: Some(login),
                browser,
                ended: false,
            });
        }

        // ---- portal routes × personas, tech host ------------------------------------------------
        let mut routes: Vec<&portal::pages::RouteSpec> = portal::pages::ROUTES.iter().collect();
        // Routes that end the session go last (sign out everywhere the very last).
        routes.sort_by_key(|r| (r.path.contains("signout"), r.path.contains("everywhere")));
        for r in &routes {
            let rule = route_rule(r.method, r.path).unwrap_or_else(|| {
                panic!(
                    "{} {}: a portal route this test does not classify; add it to route_rule()",
                    r.method, r.path
                )
            });
            let path = r
                .path
                .replace("{id}", &job.id)
                .replace("{line_id}", "lin_notaline00000000")
                .replace("{photo_id}", "pho_notaphoto0000000")
                .replace("{doc_id}", "doc_notadocument0000")
                .replace("{token}", "not-an-invite-token");
            let path = if r.path == "/staff/{id}" {
                "/staff/stf_nobodyatall0000".to_owned()
            } else {
                path
            };
            for persona in personas.iter_mut() {
                if persona.ended {
                    let login = persona.login.as_mut().unwrap();
                    let p = staff_sign_in(&mut persona.browser, login).await;
                    assert_eq!(p.location, "/jobs", "{}: {}", persona.name, p.body);
                    persona.ended = false;
                }
                let page = if r.method == "GET" {
                    persona.browser.get(&path).await
                } else {
                    let csrf = if persona.role.is_some() {
                        staff_csrf(&mut persona.browser).await
                    } else {
                        "x".to_owned()
                    };
                    persona.browser.post(&path, &[("csrf", &csrf)]).await
                };
                let what = format!("{} {} as {}", r.method, r.path, persona.name);
                assert!(page.status < 500, "{what}: {} {}", page.status, page.body);
                if rule == "public" {
                    continue;
                }
                let allowed = match persona.role {
                    None => false,
                    Some(role) => {
                        let name = ROLES.iter().find(|(r, _)| *r == role).unwrap().1;
                        rule == "signed in" || table[rule].contains(name)
                    }
                };
                let to_signin = page.status == 303 && page.location == "/signin";
                let denied = page.status == 403 && page.body.contains("id=\"denied\"");
                match (persona.role, allowed) {
                    (None, _) => assert!(to_signin, "{what}: {} {}", page.status, page.location),
                    (Some(_), false) => assert!(denied, "{what}: {} {}", page.status, page.body),
                    (Some(_), true) if r.path.contains("signout") => {
                        // Signing out is the answer: back to sign-in with the cookie removed.
                        assert!(
                            to_signin
                                && page
                                    .set_cookies
                                    .iter()
                                    .any(|c| c.starts_with("jjt_session=;")),
                            "{what}: {} {:?}",
                            page.status,
                            page.set_cookies
                        );
                        persona.ended = true;
                    }
                    (Some(_), true) => {
                        assert!(
                            !to_signin && !denied,
                            "{what}: refused ({} {})",
                            page.status,
                            page.location
                        );
                        if r.path == "/account/recovery-codes" && page.status == 200 {
                            let list =
                                &page.body[page.body.find("id=\"recovery-codes\"").unwrap()..];
                            let codes: Vec<String> = list
                                .split("<li>")
                                .skip(1)
                                .map(|c| c[..c.find("</li>").unwrap()].to_owned())
                                .collect();
                            assert_eq!(codes.len(), 10, "{list}");
                            persona.login.as_mut().unwrap().recovery_codes = codes;
                        }
                    }
                }
            }
        }
        assert_eq!(routes.len(), portal::pages::ROUTES.len());

        // ---- the same routes on the public host: never the portal, whoever's cookies ------------
        let mut everyone = Browser::new(&edge).with_host(&public_host);
        for p in &personas {
            everyone.cookies.extend(p.browser.cookies.clone());
        }
        for r in portal::pages::ROUTES {
            let path = r
                .path
                .replace("{id}", &job.id)
                .replace("{line_id}", "lin_notaline00000000")
                .replace("{photo_id}", "pho_notaphoto0000000")
                .replace("{doc_id}", "doc_notadocument0000")
                .replace("{token}", "x")
                .replace("{id}", "x");
            let page = if r.method == "GET" {
                everyone.get(&path).await
            } else {
                everyone.post(&path, &[("csrf", "x")]).await
            };
            assert!(
                !is_portal_page(&page.body),
                "{} {} answered by the portal on the public host",
                r.method,
                path
            );
        }
        // The homepage and the client garage never ask for staff credentials.
        let mut visitor = Browser::new(&edge).with_host(&public_host);
        for path in ["/", "/garage", "/signin"] {
            let p = visitor.get(path).await;
            assert!(p.status == 200 || p.status == 303, "{path}: {}", p.status);
            assert!(
                !p.location.contains("tech.") && !is_portal_page(&p.body),
                "{path}"
            );
            assert!(
                !p.body.contains("name=\"password\""),
                "{path} asks for a password"
            );
        }

        // ---- staff RPCs × callers ---------------------------------------------------------------
        let (jc, bc, sc, gsc, kc) = (
            JobsC::new(jsvc.channel()),
            BillingC::new(bsvc.channel()),
            ShopC::new(sh.channel()),
            omneuro_proto::garage::v1::garage_service_client::GarageServiceClient::new(g.channel()),
            KbC::new(kbsvc.channel()),
        );
        for (rpc, perm) in STAFF_RPCS {
            let no_one = call(rpc, None, &jc, &bc, &sc, &gsc, &kc).await.unwrap_err();
            assert_eq!(
                no_one.code(),
                Code::Unauthenticated,
                "{rpc} without a caller"
            );
            let client_err = call(
                rpc,
                Some(&Actor::Client(client.id.clone())),
                &jc,
                &bc,
                &sc,
                &gsc,
                &kc,
            )
            .await
            .unwrap_err();
            assert_eq!(
                client_err.code(),
                Code::PermissionDenied,
                "{rpc} as a client"
            );
            for (role, name) in ROLES {
                let actor = Actor::Staff {
                    id: "stf_matrix0000000000".into(),
                    role,
                };
                let got = call(rpc, Some(&actor), &jc, &bc, &sc, &gsc, &kc).await;
                let refused = matches!(&got, Err(e) if e.code() == Code::PermissionDenied || e.code() == Code::Unauthenticated);
                assert_eq!(
                    !refused,
                    table[*perm].contains(name),
                    "{rpc} as {name}: {got:?}"
                );
            }
        }

        drop(nginx);
        portal.stop().await;
        site.stop().await;
        for svc in [bsvc, jsvc, sh, g, kbsvc] {
            svc.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_slowed_then_locked_and_sessions_end_when_they_should() {
    for backend in backends() {
        let pdb = TestDb::new(backend, "portal");
        let portal = start_portal(&pdb.url, &[], &[]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let base = portal.url("");

        // Guessing the tech's password: the answers slow down, then the address locks.
        let mut guesser = Browser::new(&base);
        let csrf = guesser.get("/signin").await.csrf();
        let mut times = Vec::new();
        for i in 0..5 {
            let t = Instant::now();
            let p = guesser
                .post(
                    "/signin",
                    &[
                        ("csrf", &csrf),
                        ("email", &staff.tech.email),
                        ("password", &format!("guess-number-{i}")),
                    ],
                )
                .await;
            times.push(t.elapsed());
            assert_eq!(p.status, 401, "guess {i}");
        }
        assert!(
            times[4] >= times[0] + Duration::from_millis(400),
            "later guesses are held back: {times:?}"
        );
        // Locked: even the right password is refused now, with a lock message…
        let p = guesser
            .post(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("email", &staff.tech.email),
                    ("password", &staff.tech.password),
                ],
            )
            .await;
        assert_eq!(p.status, 429, "{}", p.body);
        assert!(p.body.contains("locked for 15 minutes"));
        assert!(!guesser.cookies.contains_key("jjt_session"));
        // …and an unknown address locks the same way (the lock tells nothing about accounts).
        for i in 0..6 {
            let p = guesser
                .post(
                    "/signin",
                    &[
                        ("csrf", &csrf),
                        ("email", "nobody@juicejunkiez.test"),
                        ("password", &format!("guess-{i}")),
                    ],
                )
                .await;
            assert_eq!(p.status, if i < 5 { 401 } else { 429 }, "unknown {i}");
        }
        // The lock is per address: the front desk still signs in.
        let mut desk = Browser::new(&base);
        let p = staff_sign_in(&mut desk, &mut staff.desk).await;
        assert_eq!(p.location, "/jobs");
        // Password change: every other session of that person ends; this browser keeps going.
        let mut tablet = Browser::new(&base);
        let mut laptop = Browser::new(&base);
        assert_eq!(
            staff_sign_in(&mut tablet, &mut staff.desk).await.location,
            "/jobs"
        );
        assert_eq!(
            staff_sign_in(&mut laptop, &mut staff.desk).await.location,
            "/jobs"
        );
        let csrf = staff_csrf(&mut laptop).await;
        // Bad input first: the same page says why, nothing changes.
        for (current, new, confirm, why) in [
            (
                "wrong-current-pw",
                "a-brand-new-phrase-9",
                "a-brand-new-phrase-9",
                "current password",
            ),
            (staff.desk.password.as_str(), "short", "short", "at least 8"),
            (
                staff.desk.password.as_str(),
                "password123",
                "password123",
                "most common",
            ),
            (
                staff.desk.password.as_str(),
                "a-brand-new-phrase-9",
                "different-phrase-9",
                "differ",
            ),
        ] {
            let p = laptop
                .post(
                    "/account/password",
                    &[
                        ("csrf", &csrf),
                        ("current", current),
                        ("new", new),
                        ("confirm", confirm),
                    ],
                )
                .await;
            assert_eq!(p.status, 400, "{why}");
            assert!(p.body.contains(why), "{why}: {}", p.body);
        }
        assert_eq!(tablet.get("/account").await.status, 200);
        let p = laptop
            .post(
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current", &staff.desk.password),
                    ("new", "a-brand-new-phrase-9"),
                    ("confirm", "a-brand-new-phrase-9"),
                ],
            )
            .await;
        assert_eq!(p.location, "/account?changed=1");
        assert_eq!(laptop.get("/account?changed=1").await.status, 200);
        assert_eq!(tablet.get("/account").await.location, "/signin");
        staff.desk.password = "a-brand-new-phrase-9".into();

        // Sign out everywhere ends the laptop and the tablet alike.
        assert_eq!(
            staff_sign_in(&mut tablet, &mut staff.desk).await.location,
            "/jobs"
        );
        let csrf = staff_csrf(&mut laptop).await;
        let p = laptop
            .post("/account/signout-everywhere", &[("csrf", &csrf)])
            .await;
        assert_eq!(p.location, "/signin");
        assert_eq!(tablet.get("/account").await.location, "/signin");
        assert_eq!(laptop.get("/account").await.location, "/signin");

        // The owner switches the front desk's account off: its live session ends at once, and
        // the last owner can't switch themself (or be switched) off.
        assert_eq!(
            staff_sign_in(&mut tablet, &mut staff.desk).await.location,
            "/jobs"
        );
        let mut owner = Browser::new(&base);
        assert_eq!(
            staff_sign_in(&mut owner, &mut staff.owner).await.location,
            "/jobs"
        );
        let list = owner.get("/staff").await;
        let row = &list.body[list
            .body
            .find("data-staff=\"desk@juicejunkiez.test\"")
            .unwrap()..];
        let action = row[row.find("action=\"").unwrap() + 8..]
            .chars()
            .take_while(|c| *c != '"')
            .collect::<String>();
        let csrf = list.csrf();
        let p = owner
            .post(
                &action,
                &[("csrf", &csrf), ("role", "front_desk"), ("disabled", "1")],
            )
            .await;
        assert_eq!(p.location, "/staff");
        assert_eq!(tablet.get("/account").await.location, "/signin");
        let p = staff_sign_in(&mut tablet, &mut staff.desk).await;
        assert_eq!(p.status, 401, "a switched-off account can't sign in");
        // Wrong authenticator codes count too, and lock the owner's second step.
        let mut owner_b = Browser::new(&base);
        let csrf = owner_b.get("/signin").await.csrf();
        let p = owner_b
            .post(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("email", &staff.owner.email),
                    ("password", &staff.owner.password),
                ],
            )
            .await;
        assert_eq!(p.location, "/signin/code");
        let code_csrf = owner_b.get("/signin/code").await.csrf();
        let mut last = 0;
        for _ in 0..5 {
            last = owner_b
                .post("/signin/code", &[("csrf", &code_csrf), ("code", "000000")])
                .await
                .status;
        }
        assert_eq!(last, 401);
        let p = owner_b
            .post("/signin/code", &[("csrf", &code_csrf), ("code", "000000")])
            .await;
        assert_eq!(p.status, 429, "{}", p.body);
        // The planted half-open session is gone: the code page sends you back to sign in.
        assert_eq!(owner_b.get("/signin/code").await.location, "/signin");

        portal.stop().await;
    }
}

/// The value inside `id="{id}"…>…<` on a page (an element's text).
fn text_of(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..start + rest[start..].find('<').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_account_and_invites_work_the_way_a_person_uses_them() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    for backend in backends() {
        let pdb = TestDb::new(backend, "portal");
        let portal = start_portal(&pdb.url, &[], &[("OMNEURO__MAIL__SMTP_URL", sink.url())]).await;
        wait_ready(&portal).await;
        let mut staff = seed_staff(&pdb.url).await;
        let base = portal.url("");
        // An attempt from long ago: pruned by the next successful sign-in (recent ones stay).
        pdb.execute(
            "INSERT INTO sign_in_attempts (id, email, ip, succeeded, at) VALUES ('att_old', 'old@example.com', '192.0.2.9', FALSE, '2025-01-01 00:00:00')",
        );

        // ---- a tech turns the authenticator app on from their account -------------------------
        let mut tech = Browser::new(&base);
        assert_eq!(
            staff_sign_in(&mut tech, &mut staff.tech).await.location,
            "/jobs"
        );
        let (old, recent) = pdb.query_pair(
            "SELECT COUNT(CASE WHEN id = 'att_old' THEN 1 END) AS a, COUNT(*) AS b FROM sign_in_attempts",
        );
        assert_eq!(old, 0, "attempts older than 30 days are pruned");
        assert!(recent >= 1, "today's attempts stay");
        let acct = tech.get("/account").await;
        assert!(text_of(&acct.body, "totp-state").starts_with("Off."));
        let csrf = acct.csrf();
        let p = tech.post("/account/totp", &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 200);
        let key: String = text_of(&p.body, "totp-key").split_whitespace().collect();
        // The same key as a QR code to scan, drawn inline (no image fetched from anywhere).
        let qr = &p.body[p.body.find("id=\"totp-qr\"").expect("a QR code")..];
        assert!(qr.contains("<svg") && qr.contains("</svg>"));
        // A wrong code: the same set-up page, the same key, nothing turned on.
        let p = tech
            .post(
                "/account/totp/confirm",
                &[("csrf", &csrf), ("code", "000000")],
            )
            .await;
        assert_eq!(p.status, 400);
        let again: String = text_of(&p.body, "totp-key").split_whitespace().collect();
        assert_eq!(again, key);
        let code = portal::totp::code_at(&key, chrono::Utc::now().timestamp() as u64).unwrap();
        let p = tech
            .post("/account/totp/confirm", &[("csrf", &csrf), ("code", &code)])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let codes: Vec<String> = p.body[p.body.find("id=\"recovery-codes\"").unwrap()..]
            .split("<li>")
            .skip(1)
            .map(|c| c[..c.find("</li>").unwrap()].to_owned())
            .collect();
        assert_eq!(codes.len(), 10);
        // Signing in now needs the second step; a recovery code works once.
        let mut other = Browser::new(&base);
        let c = other.get("/signin").await.csrf();
        let p = other
            .post(
                "/signin",
                &[
                    ("csrf", &c),
                    ("email", &staff.tech.email),
                    ("password", &staff.tech.password),
                ],
            )
            .await;
        assert_eq!(p.location, "/signin/code");
        let c = other.get("/signin/code").await.csrf();
        let p = other
            .post("/signin/code", &[("csrf", &c), ("code", &codes[0])])
            .await;
        assert_eq!(p.location, "/jobs");
        let c = staff_csrf(&mut other).await;
        other.post("/signout", &[("csrf", &c)]).await;
        let c = other.get("/signin").await.csrf();
        other
            .post(
                "/signin",
                &[
                    ("csrf", &c),
                    ("email", &staff.tech.email),
                    ("password", &staff.tech.password),
                ],
            )
            .await;
        let c = other.get("/signin/code").await.csrf();
        let p = other
            .post("/signin/code", &[("csrf", &c), ("code", &codes[0])])
            .await;
        assert_eq!(p.status, 401, "a used recovery code is refused");
        // Turning it off needs the password; then no second step again.
        let csrf = staff_csrf(&mut tech).await;
        let p = tech
            .post(
                "/account/totp/off",
                &[("csrf", &csrf), ("current", "not-my-password")],
            )
            .await;
        assert_eq!(p.status, 400);
        assert!(text_of(&p.body, "totp-state").starts_with("On."));
        let p = tech
            .post(
                "/account/totp/off",
                &[("csrf", &csrf), ("current", &staff.tech.password)],
            )
            .await;
        assert_eq!(p.location, "/account");
        let mut third = Browser::new(&base);
        assert_eq!(
            staff_sign_in(&mut third, &mut staff.tech).await.location,
            "/jobs"
        );

        // ---- owners keep theirs; nobody changes their own role ---------------------------------
        let mut owner = Browser::new(&base);
        assert_eq!(
            staff_sign_in(&mut owner, &mut staff.owner).await.location,
            "/jobs"
        );
        let csrf = staff_csrf(&mut owner).await;
        let p = owner
            .post(
                "/account/totp/off",
                &[("csrf", &csrf), ("current", &staff.owner.password)],
            )
            .await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("Owners must keep the authenticator app"));
        let db = portal_db(&pdb.url);
        let owner_id = db
            .run(portal::accounts::list)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.email == staff.owner.email)
            .unwrap()
            .id;
        let p = owner
            .post(
                &format!("/staff/{owner_id}"),
                &[("csrf", &csrf), ("role", "tech"), ("disabled", "1")],
            )
            .await;
        assert_eq!(p.status, 409);
        assert!(p.body.contains("your own role"));

        // ---- invites: bad input keeps the form, a taken address is refused ----------------------
        for (email, role, status, why) in [
            ("not-an-email", "tech", 400, "valid email address"),
            (
                staff.desk.email.as_str(),
                "tech",
                409,
                "already a staff account",
            ),
            ("new@juicejunkiez.test", "janitor", 400, "Choose a role"),
        ] {
            let p = owner
                .post(
                    "/staff/invite",
                    &[
                        ("csrf", &csrf),
                        ("name", "Robin Bench"),
                        ("email", email),
                        ("role", role),
                    ],
                )
                .await;
            assert_eq!(p.status, status, "{why}");
            assert!(p.body.contains(why), "{why}: {}", p.body);
            assert!(
                p.body.contains("value=\"Robin Bench\""),
                "the form keeps what was typed"
            );
        }
        let p = owner
            .post(
                "/staff/invite",
                &[
                    ("csrf", &csrf),
                    ("name", "Robin Bench"),
                    ("email", "robin@juicejunkiez.test"),
                    ("role", "front_desk"),
                ],
            )
            .await;
        assert_eq!(p.location, "/staff?invited=1");
        let link_in = |mail: serde_json::Value| {
            let text = mail["text"].as_str().unwrap().to_owned();
            let path = &text[text.find("/invite/").unwrap()..];
            path.chars()
                .take_while(|c| !c.is_whitespace())
                .collect::<String>()
        };
        let first = link_in(sink.wait_for("robin@juicejunkiez.test", 1).await);
        // Waiting on the staff page; sent again, only the new link works.
        let p = owner.get("/staff").await;
        assert!(p.body.contains("data-invite=\"robin@juicejunkiez.test\""));
        let p = owner
            .post(
                "/staff/invite",
                &[
                    ("csrf", &csrf),
                    ("name", "Robin Bench"),
                    ("email", "robin@juicejunkiez.test"),
                    ("role", "front_desk"),
                ],
            )
            .await;
        assert_eq!(p.location, "/staff?invited=1");
        let path = link_in(sink.wait_for("robin@juicejunkiez.test", 2).await);
        assert_ne!(path, first);
        let mut robin = Browser::new(&base);
        assert_eq!(robin.get(&first).await.status, 410, "the replaced link");
        // Another invite, withdrawn: its link dies, it leaves the list; twice is refused.
        owner
            .post(
                "/staff/invite",
                &[
                    ("csrf", &csrf),
                    ("name", "Sam Spare"),
                    ("email", "sam@juicejunkiez.test"),
                    ("role", "tech"),
                ],
            )
            .await;
        let sams = link_in(sink.wait_for("sam@juicejunkiez.test", 1).await);
        let withdraw = [("csrf", csrf.as_str()), ("email", "sam@juicejunkiez.test")];
        let p = owner.post("/staff/invites/withdraw", &withdraw).await;
        assert_eq!(p.location, "/staff?withdrawn=1");
        let p = owner.get(&p.location).await;
        assert!(p.body.contains("Invite withdrawn") && !p.body.contains("data-invite=\"sam@"));
        assert!(p.body.contains("data-invite=\"robin@juicejunkiez.test\""));
        assert_eq!(robin.get(&sams).await.status, 410);
        let p = owner.post("/staff/invites/withdraw", &withdraw).await;
        assert_eq!(p.status, 404, "{}", p.body);
        assert!(p.body.contains("no open invite"));
        let p = robin.get(&path).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("robin@juicejunkiez.test") && p.body.contains("front desk"));
        let c = p.csrf();
        for (pw, confirm, why) in [
            ("solder-and-flux-77", "solder-and-flux-78", "differ"),
            ("password1", "password1", "most common"),
        ] {
            let p = robin
                .post(
                    &path,
                    &[
                        ("csrf", &c),
                        ("name", "Robin B."),
                        ("password", pw),
                        ("confirm", confirm),
                    ],
                )
                .await;
            assert_eq!(p.status, 400, "{why}");
            assert!(
                p.body.contains(why) && p.body.contains("value=\"Robin B.\""),
                "{why}"
            );
        }
        let p = robin
            .post(
                &path,
                &[
                    ("csrf", &c),
                    ("name", "Robin B."),
                    ("password", "solder-and-flux-77"),
                    ("confirm", "solder-and-flux-77"),
                ],
            )
            .await;
        assert_eq!(p.location, "/signin?welcome=1");
        // The link works once; a made-up one is no better.
        for link in [path.as_str(), "/invite/made-up-token"] {
            let p = robin.get(link).await;
            assert_eq!(p.status, 410, "{link}");
            assert!(p.body.contains("expired or was already used"));
        }
        let mut robin_login = staff.desk.clone();
        robin_login.email = "robin@juicejunkiez.test".into();
        robin_login.password = "solder-and-flux-77".into();
        assert_eq!(
            staff_sign_in(&mut robin, &mut robin_login).await.location,
            "/jobs"
        );
        let me = robin.get("/account").await;
        assert!(me.body.contains("Robin B.") && me.body.contains("front desk"));

        // The owner reads it all back in the audit log.
        let audit = owner.get("/audit").await;
        for want in [
            "set up the authenticator app",
            "used a recovery code",
            "turned off the authenticator app",
            "invited a staff member",
            "withdrew an invite",
            "accepted an invite",
            "robin@juicejunkiez.test",
        ] {
            assert!(
                audit.body.contains(want),
                "{want} missing from the audit log"
            );
        }
        portal.stop().await;
    }
}
