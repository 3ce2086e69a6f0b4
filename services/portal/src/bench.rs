//! A job's bench on its page: diagnostics notes, labor and parts lines with their total, the tech
//! assigned, and sending the estimate to the client. Every handler takes [`Staff`] (the guard) and
//! checks the form's CSRF token first, like moving a job.
//!
//! Prices are never the browser's: labor is hours × the rate staff type (checked here, then by
//! jobs), a part is a shop product that jobs prices from the catalog when it is added. The form
//! only carries the product id and a quantity.
//!
//! Success goes back to the job page (303). A refusal re-shows the job page with the reason and
//! what was typed (400 bad input, 409 not possible now, 404 a line that is gone); jobs down is the
//! 503 page.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse};
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, refusal_status, request_id};
use omneuro_proto::common::v1::{Money, PageRequest};
use omneuro_proto::jobs::v1 as pb;
use omneuro_proto::shop::v1 as shop;
use serde::Deserialize;
use tonic::Status;

use crate::Portal;
use crate::board::{fetch, job_page, when, who};
use crate::pages::{forbidden, see_other};
use crate::signin::CsrfForm;
use crate::staff::Staff;

const BAD_RATE: &str = "The rate should be dollars per hour, like 90 or 90.00.";
const BAD_QUANTITY: &str = "Quantity should be a whole number, like 1 or 2.";
const NO_PART: &str = "Pick a part from the list.";
/// How many catalog pages (of 200) the part picker reads at most.
const CATALOG_PAGES: usize = 5;

/// `$12.34` for USD cents; other currencies show their code.
pub fn money(m: Option<&Money>) -> String {
    let Some(m) = m else {
        return String::new();
    };
    let sign = if m.amount_cents < 0 { "-" } else { "" };
    let abs = m.amount_cents.unsigned_abs();
    let amount = format!("{}.{:02}", abs / 100, abs % 100);
    if m.currency.is_empty() || m.currency.eq_ignore_ascii_case("USD") {
        format!("{sign}${amount}")
    } else {
        format!("{sign}{amount} {}", m.currency)
    }
}

/// Dollars as staff type them ("90", "90.5", "90.00", "$90": an hourly rate, a price) in cents;
/// `None` for anything else (the owning service checks the range).
pub fn parse_dollars(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_prefix('$').unwrap_or(s).trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty())
        || whole.len() > 9
        || frac.len() > 2
        || !digits(whole)
        || !digits(frac)
    {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = format!("{frac:0<2}").parse().ok()?;
    w.checked_mul(100)?.checked_add(f)
}

// ---- the bench on the job page ---------------------------------------------------------------

/// What was typed into the bench forms, kept when a post is refused.
#[derive(Default)]
pub struct Draft {
    pub note: String,
    pub labor_description: String,
    pub labor_hours: String,
    pub labor_rate: String,
    pub product_id: String,
    pub quantity: String,
    /// `None`: the tech assigned now.
    pub tech: Option<String>,
    pub photo_caption: String,
}

pub struct NoteRow {
    pub when: String,
    pub who: String,
    pub body: String,
}

pub struct LineRow {
    pub id: String,
    pub kind: String,
    pub kind_label: &'static str,
    pub description: String,
    /// "1.50 h" for labor, the quantity for a part.
    pub amount_of: String,
    /// "$90.00/h" for labor, "$12.34" each for a part.
    pub unit_price: String,
    pub amount: String,
}

pub struct EstimateView {
    pub status: String,
    pub status_label: String,
    pub total: String,
    pub sent: String,
    pub url: String,
}

pub struct PhotoRow {
    pub id: String,
    pub caption: String,
    pub who: String,
    pub when: String,
    pub size: String,
}

pub struct ProductOption {
    pub id: String,
    pub name: String,
    pub price: String,
    pub in_stock: bool,
    pub selected: bool,
}

/// The bench section of the job page.
pub struct Bench {
    /// Delivered or canceled: lines can no longer change.
    pub closed: bool,
    pub notes: Vec<NoteRow>,
    pub lines: Vec<LineRow>,
    pub total: String,
    pub estimate: Option<EstimateView>,
    /// The part picker; `None` when shop isn't answering.
    pub products: Option<Vec<ProductOption>>,
    pub draft: Draft,
    pub tech: String,
    pub photos: Vec<PhotoRow>,
    /// This person may add and remove photos (work the bench).
    pub can_photo: bool,
    /// The job has as many photos as it may have.
    pub photos_full: bool,
    /// How many a job may have (jobs says; the page stops offering the form there).
    pub max_photos: usize,
}

fn estimate_label(status: &str) -> String {
    match status {
        "sent" => "Sent — waiting for the client".to_owned(),
        "approved" => "Approved by the client".to_owned(),
        "declined" => "Declined by the client".to_owned(),
        "superseded" => "Replaced by a newer estimate".to_owned(),
        other => other.replace('_', " "),
    }
}

fn line_row(l: pb::JobLine) -> LineRow {
    let labor = l.kind == "labor";
    let unit = money(l.unit_price.as_ref());
    LineRow {
        kind_label: if labor { "Labor" } else { "Part" },
        amount_of: if labor {
            format!("{} h", l.hours)
        } else {
            l.quantity.to_string()
        },
        unit_price: if labor { format!("{unit}/h") } else { unit },
        amount: money(l.amount.as_ref()),
        id: l.id,
        kind: l.kind,
        description: l.description,
    }
}

/// The shop catalog for the part picker, by name; `None` when shop isn't answering.
async fn catalog(staff: &Staff, state: &Portal, selected: &str) -> Option<Vec<ProductOption>> {
    let mut s = state.shop.clone();
    let mut products = Vec::new();
    let mut token = String::new();
    for _ in 0..CATALOG_PAGES {
        let page = grpc::call(
            "ShopService/ListProducts",
            s.list_products(auth::request(
                &staff.actor(),
                shop::ListProductsRequest {
                    page: Some(PageRequest {
                        page_size: 200,
                        page_token: token,
                    }),
                    featured_only: false,
                    category: String::new(),
                    fits: Vec::new(),
                },
            )),
        )
        .await
        .ok()?
        .into_inner();
        products.extend(page.products);
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            break;
        }
    }
    products.sort_by_key(|p| p.name.to_lowercase());
    Some(
        products
            .into_iter()
            .map(|p| ProductOption {
                price: money(p.price.as_ref()),
                in_stock: p.stock > 0,
                selected: p.id == selected,
                id: p.id,
                name: p.name,
            })
            .collect(),
    )
}

impl Bench {
    /// The bench from jobs' workbench, with the part picker from shop (only while the job is open).
    pub async fn load(
        staff: &Staff,
        state: &Portal,
        wb: pb::JobWorkbench,
        draft: Draft,
        names: &crate::board::Names,
    ) -> Bench {
        let job = wb.job.unwrap_or_default();
        let closed = job.next_statuses.is_empty();
        let products = if closed {
            Some(Vec::new())
        } else {
            catalog(staff, state, &draft.product_id).await
        };
        let max_photos = usize::try_from(wb.max_photos).unwrap_or(usize::MAX);
        let photos: Vec<PhotoRow> = wb
            .photos
            .into_iter()
            .map(|p| PhotoRow {
                when: p
                    .created_at
                    .as_ref()
                    .map(|t| when(t.unix_micros))
                    .unwrap_or_default(),
                who: who(&p.uploaded_by, names),
                size: crate::photos::size_text(p.size_bytes),
                caption: p.caption,
                id: p.id,
            })
            .collect();
        Bench {
            closed,
            photos_full: max_photos > 0 && photos.len() >= max_photos,
            photos,
            can_photo: staff.may(omneuro_platform::auth::Permission::WorkBench),
            max_photos,
            notes: wb
                .notes
                .into_iter()
                .map(|n| NoteRow {
                    when: n
                        .at
                        .as_ref()
                        .map(|t| when(t.unix_micros))
                        .unwrap_or_default(),
                    who: who(&n.author, names),
                    body: n.body,
                })
                .collect(),
            lines: wb.lines.into_iter().map(line_row).collect(),
            total: money(Some(&wb.lines_total.unwrap_or_default())),
            estimate: wb.estimate.map(|e| EstimateView {
                status_label: estimate_label(&e.status),
                status: e.status,
                total: money(e.total.as_ref()),
                sent: e.sent_at.map(|t| when(t.unix_micros)).unwrap_or_default(),
                url: e.url,
            }),
            products,
            tech: draft.tech.clone().unwrap_or(job.assigned_tech),
            draft,
        }
    }
}

// ---- posting to the bench --------------------------------------------------------------------

/// Re-shows the job page with `message` (and what was typed), or the page for a job that is gone.
pub(crate) async fn refuse(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: String,
    status: StatusCode,
    message: &str,
    draft: Draft,
) -> HttpResponse {
    match fetch(staff, state, req, id).await {
        Ok(wb) => job_page(staff, state, req, wb, status, message, draft).await,
        Err(res) => res,
    }
}

/// After a bench call: back to the job (at the id jobs answered with) on success, else jobs'
/// reason on the job page (400 bad input, 409 not possible now, 404 e.g. a line already
/// removed), 403 when jobs refuses the caller, 503 when jobs is down.
async fn finish(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: String,
    res: Result<String, Status>,
    draft: Draft,
) -> HttpResponse {
    let s = match res {
        Ok(job_id) if !job_id.is_empty() => return see_other(&format!("/jobs/{job_id}"), &[]),
        Ok(_) => return see_other(&format!("/jobs/{id}"), &[]),
        Err(s) => s,
    };
    let status = match refusal_status(s.code()) {
        Some(status) if status != StatusCode::FORBIDDEN => status,
        other => {
            let status = other.unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return error_page(status, &request_id(req));
        }
    };
    refuse(staff, state, req, id, status, s.message(), draft).await
}

/// The job id a workbench answer is for.
fn bench_job(r: tonic::Response<pb::JobWorkbench>) -> String {
    r.into_inner().job.map(|j| j.id).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

/// POST `/jobs/{id}/notes`: a diagnostics note.
pub async fn add_note(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<NoteForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (id, form) = (id.into_inner(), form.into_inner());
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/AddNote",
        j.add_note(auth::request(
            &staff.actor(),
            pb::AddNoteRequest {
                job_id: id.clone(),
                body: form.body.trim().to_owned(),
            },
        )),
    )
    .await
    .map(bench_job);
    let draft = Draft {
        note: form.body,
        ..Draft::default()
    };
    finish(&staff, &state, &req, id, res, draft).await
}

#[derive(Deserialize)]
pub struct LaborForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    hours: String,
    /// Dollars per hour, as typed.
    #[serde(default)]
    rate: String,
}

/// POST `/jobs/{id}/labor`: hours × rate; the rate (dollars) is checked here before jobs is asked.
pub async fn add_labor(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<LaborForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (id, form) = (id.into_inner(), form.into_inner());
    let rate = parse_dollars(&form.rate);
    let draft = Draft {
        labor_description: form.description.clone(),
        labor_hours: form.hours.clone(),
        labor_rate: form.rate.clone(),
        ..Draft::default()
    };
    let Some(rate_cents) = rate else {
        return refuse(
            &staff,
            &state,
            &req,
            id,
            StatusCode::BAD_REQUEST,
            BAD_RATE,
            draft,
        )
        .await;
    };
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/AddLabor",
        j.add_labor(auth::request(
            &staff.actor(),
            pb::AddLaborRequest {
                job_id: id.clone(),
                description: form.description.trim().to_owned(),
                hours: form.hours.trim().to_owned(),
                rate_cents,
            },
        )),
    )
    .await
    .map(bench_job);
    finish(&staff, &state, &req, id, res, draft).await
}

#[derive(Deserialize)]
pub struct PartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    product_id: String,
    #[serde(default)]
    quantity: String,
}

/// POST `/jobs/{id}/parts`: a shop product and a quantity; jobs takes the name and the price from
/// the catalog.
pub async fn add_part(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<PartForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (id, form) = (id.into_inner(), form.into_inner());
    let product_id = form.product_id.trim().to_owned();
    let quantity = form.quantity.trim().parse::<i32>().ok();
    let draft = Draft {
        product_id: product_id.clone(),
        quantity: form.quantity,
        ..Draft::default()
    };
    let checked = if product_id.is_empty() {
        Err(NO_PART)
    } else {
        quantity.ok_or(BAD_QUANTITY)
    };
    let quantity = match checked {
        Ok(q) => q,
        Err(message) => {
            return refuse(
                &staff,
                &state,
                &req,
                id,
                StatusCode::BAD_REQUEST,
                message,
                draft,
            )
            .await;
        }
    };
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/AddPart",
        j.add_part(auth::request(
            &staff.actor(),
            pb::AddPartRequest {
                job_id: id.clone(),
                product_id,
                quantity,
            },
        )),
    )
    .await
    .map(bench_job);
    finish(&staff, &state, &req, id, res, draft).await
}

/// POST `/jobs/{id}/lines/{line_id}/remove`.
pub async fn remove_line(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    path: Path<(String, String)>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (id, line_id) = path.into_inner();
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/RemoveLine",
        j.remove_line(auth::request(
            &staff.actor(),
            pb::RemoveLineRequest {
                job_id: id.clone(),
                line_id,
            },
        )),
    )
    .await
    .map(bench_job);
    finish(&staff, &state, &req, id, res, Draft::default()).await
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tech: String,
}

/// POST `/jobs/{id}/assign`: the tech on the job (free text until staff accounts exist; empty
/// clears it).
pub async fn assign(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<AssignForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (id, form) = (id.into_inner(), form.into_inner());
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/AssignTech",
        j.assign_tech(auth::request(
            &staff.actor(),
            pb::AssignTechRequest {
                job_id: id.clone(),
                tech: form.tech.trim().to_owned(),
            },
        )),
    )
    .await
    .map(bench_job);
    let draft = Draft {
        tech: Some(form.tech),
        ..Draft::default()
    };
    finish(&staff, &state, &req, id, res, draft).await
}

/// POST `/jobs/{id}/estimate`: the lines as they are now go to the client (jobs moves the job to
/// awaiting approval and mails the approve/decline link).
pub async fn send_estimate(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let id = id.into_inner();
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/SendEstimate",
        j.send_estimate(auth::request(
            &staff.actor(),
            pb::SendEstimateRequest { job_id: id.clone() },
        )),
    )
    .await
    .map(|r| {
        let est = r.into_inner();
        tracing::info!(job_id = %est.job_id, estimate_id = %est.id, "estimate sent from the portal");
        est.job_id
    });
    finish(&staff, &state, &req, id, res, Draft::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_like_staff_type_them() {
        for (typed, cents) in [
            ("90", 9000),
            ("90.00", 9000),
            ("90.5", 9050),
            (" $95.25 ", 9525),
            ("0", 0),
            (".5", 50),
            ("1000", 100_000),
        ] {
            assert_eq!(parse_dollars(typed), Some(cents), "{typed:?}");
        }
        for bad in [
            "",
            " ",
            "abc",
            "90.001",
            "-5",
            "9O",
            "90,00",
            "1e3",
            "$",
            ".",
            "1.2.3",
            "9999999999",
        ] {
            assert_eq!(parse_dollars(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn money_reads_as_dollars() {
        let usd = |c| Money {
            amount_cents: c,
            currency: "USD".into(),
        };
        assert_eq!(money(Some(&usd(13_500))), "$135.00");
        assert_eq!(money(Some(&usd(5))), "$0.05");
        assert_eq!(money(Some(&usd(-150))), "-$1.50");
        assert_eq!(money(None), "");
    }

    #[test]
    fn lines_read_per_kind() {
        let m = |c| {
            Some(Money {
                amount_cents: c,
                currency: "USD".into(),
            })
        };
        let labor = line_row(pb::JobLine {
            kind: "labor".into(),
            hours: "1.50".into(),
            quantity: 1,
            unit_price: m(9000),
            amount: m(13_500),
            ..Default::default()
        });
        assert_eq!(
            (
                labor.kind_label,
                labor.amount_of.as_str(),
                labor.unit_price.as_str()
            ),
            ("Labor", "1.50 h", "$90.00/h")
        );
        assert_eq!(labor.amount, "$135.00");
        let part = line_row(pb::JobLine {
            kind: "part".into(),
            quantity: 2,
            unit_price: m(1234),
            amount: m(2468),
            ..Default::default()
        });
        assert_eq!(
            (
                part.kind_label,
                part.amount_of.as_str(),
                part.unit_price.as_str()
            ),
            ("Part", "2", "$12.34")
        );
    }
}
