//! Repairs in the client's garage: book a drop-off, follow a job (timeline, status link), move or
//! cancel the booking; and the no-login status page behind `/status/<token>`.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query, ServiceConfig, get, post};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, failure, request_id};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::jobs::v1 as jobs;
use serde::Deserialize;
use tonic::Code;

use crate::pages::{SiteState, format_money};
use crate::visitor::{Chrome, Visitor, forbidden, page, private, see_other, site_actor};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/garage/book", get().to(book_form))
        .route("/garage/book", post().to(book_submit))
        .route("/garage/jobs/{id}", get().to(job_page))
        .route("/garage/jobs/{id}/cancel", post().to(cancel))
        .route("/garage/jobs/{id}/reschedule", get().to(reschedule_form))
        .route("/garage/jobs/{id}/reschedule", post().to(reschedule_submit))
        .route("/garage/jobs/{id}/status-link", post().to(renew_link))
        .route("/status/{token}", get().to(status_page))
        .route("/estimate/{token}", get().to(estimate_page))
        .route("/estimate/{token}/{decision}", post().to(estimate_decide));
}

/// "Tue Dec 1, 10:00"
fn when(date: &str, start: &str) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| format!("{}, {start}", d.format("%a %b %-d")))
        .unwrap_or_default()
}

/// "Nov 25, 14:03" in shop time for timeline entries.
fn stamp(t: Option<&omneuro_proto::common::v1::Timestamp>) -> String {
    t.and_then(|t| t.to_utc())
        .map(|u| {
            u.and_utc()
                .with_timezone(&chrono_tz::America::New_York)
                .format("%b %-d, %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn status_label(s: &str) -> &'static str {
    match s {
        "intake" => "Booked in",
        "diagnosing" => "Diagnosing",
        "awaiting_approval" => "Waiting for your approval",
        "awaiting_parts" => "Waiting for parts",
        "in_progress" => "Being repaired",
        "awaiting_payment" => "Waiting for payment",
        "ready" => "Ready for pick-up",
        "delivered" => "Picked up",
        "canceled" => "Canceled",
        _ => "Updated",
    }
}

/// A row of "My repairs" on the garage page.
pub struct JobRow {
    pub id: String,
    pub vehicle: String,
    pub status: String,
    pub when: String,
}

/// The signed-in client's jobs, newest first (None when jobs does not answer).
pub async fn my_jobs(state: &SiteState, actor: &Actor) -> Option<Vec<JobRow>> {
    let mut j = state.upstreams.jobs.clone();
    grpc::call(
        "JobsService/ListJobs",
        j.list_jobs(auth::request(actor, jobs::ListJobsRequest::default())),
    )
    .await
    .ok()
    .map(|r| {
        r.into_inner()
            .jobs
            .into_iter()
            .map(|w| JobRow {
                when: w
                    .appointment
                    .as_ref()
                    .filter(|a| a.booked)
                    .map(|a| format!("Drop-off {}", when(&a.date, &a.start)))
                    .unwrap_or_default(),
                id: w.id,
                vehicle: w.vehicle_label,
                status: w.status_label,
            })
            .collect()
    })
}

const BOOKING_BREAK: &str = "Booking is taking a break right now. Please try again in a minute.";

// ---- booking ---------------------------------------------------------------------------------

pub struct WindowView {
    pub day: String,
    pub label: String,
    pub remaining: u32,
    /// (form value "date|window|HH:MM", "10:00")
    pub slots: Vec<(String, String)>,
}

#[derive(Default)]
struct BookForm {
    vehicle_id: String,
    services: Vec<String>,
    problem: String,
    safety_flag: bool,
    slot: String,
}

#[derive(Template)]
#[template(path = "book.html")]
struct BookPage<'a> {
    chrome: Chrome<'a>,
    /// The job being moved; empty when booking.
    rescheduling: String,
    error: String,
    vehicles: Vec<(String, String)>,
    services: Vec<(String, String)>,
    windows: Option<Vec<WindowView>>,
    form: BookForm,
}

async fn windows(state: &SiteState) -> Option<Vec<WindowView>> {
    let mut j = state.upstreams.jobs.clone();
    let r = grpc::call(
        "JobsService/ListAvailability",
        j.list_availability(jobs::ListAvailabilityRequest {}),
    )
    .await
    .ok()?;
    Some(
        r.into_inner()
            .windows
            .into_iter()
            .map(|w| WindowView {
                day: chrono::NaiveDate::parse_from_str(&w.date, "%Y-%m-%d")
                    .map(|d| d.format("%A, %B %-d").to_string())
                    .unwrap_or_else(|_| w.date.clone()),
                label: w.label,
                remaining: w.remaining,
                slots: w
                    .slots
                    .into_iter()
                    .map(|s| (format!("{}|{}|{}", s.date, s.window_code, s.start), s.start))
                    .collect(),
            })
            .collect(),
    )
}

async fn book_page(
    state: &SiteState,
    req: &HttpRequest,
    v: &Visitor,
    actor: &Actor,
    status: StatusCode,
    form: BookForm,
    error: String,
) -> HttpResponse {
    let mut g = state.upstreams.garage.clone();
    let mut j = state.upstreams.jobs.clone();
    let (vehicles, offerings, windows) = tokio::join!(
        grpc::call(
            "GarageService/ListVehicles",
            g.list_vehicles(auth::request(actor, garage::ListVehiclesRequest::default()))
        ),
        grpc::call(
            "JobsService/ListServiceOfferings",
            j.list_service_offerings(jobs::ListServiceOfferingsRequest::default())
        ),
        windows(state),
    );
    let vehicles = vehicles
        .map(|r| {
            r.into_inner()
                .vehicles
                .into_iter()
                .map(|v| (v.id, v.label))
                .collect()
        })
        .unwrap_or_default();
    let services = offerings
        .map(|r| {
            r.into_inner()
                .offerings
                .into_iter()
                .map(|o| (o.code, o.name))
                .collect()
        })
        .unwrap_or_default();
    page(
        &BookPage {
            chrome: v.chrome(&state.links),
            rescheduling: String::new(),
            error,
            vehicles,
            services,
            windows,
            form,
        },
        status,
        req,
        &v.cookies,
    )
}

async fn book_form(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    let form = BookForm {
        services: vec!["diagnostics".into()],
        ..BookForm::default()
    };
    book_page(
        &state,
        &req,
        &v,
        &actor,
        StatusCode::OK,
        form,
        String::new(),
    )
    .await
}

/// The posted form: repeated `service` fields, so it is read as pairs.
fn pairs(body: &[(String, String)], key: &str) -> Vec<String> {
    body.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

fn first(body: &[(String, String)], key: &str) -> String {
    pairs(body, key).into_iter().next().unwrap_or_default()
}

fn slot_of(value: &str) -> Option<jobs::Slot> {
    let mut it = value.splitn(3, '|');
    let (date, window, start) = (it.next()?, it.next()?, it.next()?);
    Some(jobs::Slot {
        date: date.into(),
        window_code: window.into(),
        start: start.into(),
        starts_at: None,
    })
}

async fn book_submit(
    state: Data<SiteState>,
    req: HttpRequest,
    body: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    let body = body.into_inner();
    if !v.csrf_ok(&state, &req, &first(&body, "csrf")) {
        return forbidden(&req);
    }
    let form = BookForm {
        vehicle_id: first(&body, "vehicle_id"),
        services: pairs(&body, "service"),
        problem: first(&body, "problem"),
        safety_flag: !first(&body, "safety_flag").is_empty(),
        slot: first(&body, "slot"),
    };
    let Some(slot) = slot_of(&form.slot) else {
        return book_page(
            &state,
            &req,
            &v,
            &actor,
            StatusCode::BAD_REQUEST,
            form,
            "Pick a drop-off time.".into(),
        )
        .await;
    };
    let mut j = state.upstreams.jobs.clone();
    let res = grpc::call(
        "JobsService/CreateBooking",
        j.create_booking(auth::request(
            &actor,
            jobs::CreateBookingRequest {
                vehicle_id: form.vehicle_id.clone(),
                services: form.services.clone(),
                problem: form.problem.clone(),
                safety_flag: form.safety_flag,
                slot: Some(slot),
            },
        )),
    )
    .await;
    match res {
        Ok(r) => see_other(
            &format!("/garage/jobs/{}?booked=1", r.into_inner().id),
            &v.cookies,
        ),
        Err(s) => {
            let (status, msg) = failure(&s, BOOKING_BREAK);
            book_page(&state, &req, &v, &actor, status, form, msg).await
        }
    }
}

// ---- a job -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage<'a> {
    chrome: Chrome<'a>,
    job: jobs::WorkOrder,
    /// (estimate page URL on this site, total, status label, still open)
    estimate: Option<(String, String, String, bool)>,
    appointment: String,
    services: String,
    timeline: Vec<(String, String)>,
    can_change: bool,
    flash: &'a str,
    error: String,
}

#[derive(Deserialize)]
struct JobFlash {
    #[serde(default)]
    booked: String,
    #[serde(default)]
    moved: String,
    #[serde(default)]
    link: String,
}

/// The job's estimate, if one was sent (None when there is none or jobs does not answer).
async fn load_estimate(state: &SiteState, actor: &Actor, job_id: &str) -> Option<jobs::Estimate> {
    let mut j = state.upstreams.jobs.clone();
    grpc::call(
        "JobsService/GetEstimate",
        j.get_estimate(auth::request(
            actor,
            jobs::GetEstimateRequest {
                token: String::new(),
                job_id: job_id.to_owned(),
            },
        )),
    )
    .await
    .ok()
    .map(|r| r.into_inner())
}

fn estimate_status(s: &str) -> &'static str {
    match s {
        "sent" => "Waiting for your answer",
        "approved" => "Approved: the repair is under way",
        "declined" => "Declined: your vehicle is ready to collect",
        _ => "Replaced by a newer estimate",
    }
}

async fn load_job(
    state: &SiteState,
    actor: &Actor,
    id: &str,
) -> Result<jobs::WorkOrder, tonic::Status> {
    let mut j = state.upstreams.jobs.clone();
    grpc::call(
        "JobsService/GetJob",
        j.get_job(auth::request(
            actor,
            jobs::GetJobRequest { id: id.to_owned() },
        )),
    )
    .await
    .map(|r| r.into_inner())
}

fn job_view<'a>(
    state: &'a SiteState,
    v: &Visitor,
    job: jobs::WorkOrder,
    estimate: Option<jobs::Estimate>,
    flash: &'a str,
    error: String,
) -> JobPage<'a> {
    let appointment = job
        .appointment
        .as_ref()
        .filter(|a| a.booked)
        .map(|a| when(&a.date, &a.start))
        .unwrap_or_default();
    let can_change = job.status == "intake" && !appointment.is_empty();
    JobPage {
        chrome: v.chrome(&state.links),
        estimate: estimate.map(|e| {
            let token = e.url.rsplit('/').next().unwrap_or_default().to_owned();
            (
                format!("/estimate/{token}"),
                format_money(e.total.as_ref()),
                estimate_status(&e.status).to_owned(),
                e.status == "sent",
            )
        }),
        appointment,
        services: job.services.join(", "),
        timeline: job
            .history
            .iter()
            .map(|e| (stamp(e.at.as_ref()), status_label(&e.to_status).to_owned()))
            .collect(),
        can_change,
        job,
        flash,
        error,
    }
}

async fn job_page(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    q: Query<JobFlash>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    let (job, estimate) = tokio::join!(
        load_job(&state, &actor, &id),
        load_estimate(&state, &actor, &id)
    );
    match job {
        Ok(job) => {
            let flash = if !q.booked.is_empty() {
                "Booked! A confirmation with a calendar invite is on its way."
            } else if !q.moved.is_empty() {
                "Done."
            } else if !q.link.is_empty() {
                "Here is your new status link; the old one no longer works."
            } else {
                ""
            };
            page(
                &job_view(&state, &v, job, estimate, flash, String::new()),
                StatusCode::OK,
                &req,
                &v.cookies,
            )
        }
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn cancel(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let mut j = state.upstreams.jobs.clone();
    let res = grpc::call(
        "JobsService/CancelBooking",
        j.cancel_booking(auth::request(
            &actor,
            jobs::CancelBookingRequest {
                job_id: id.to_string(),
            },
        )),
    )
    .await;
    after_change(&state, &req, &v, &actor, &id, res.map(|_| ()), "moved").await
}

async fn renew_link(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let mut j = state.upstreams.jobs.clone();
    let res = grpc::call(
        "JobsService/RenewStatusLink",
        j.renew_status_link(auth::request(
            &actor,
            jobs::StatusLinkRequest {
                job_id: id.to_string(),
            },
        )),
    )
    .await;
    after_change(&state, &req, &v, &actor, &id, res.map(|_| ()), "link").await
}

/// After a change: back to the job page, or the job page with the reason it didn't happen.
async fn after_change(
    state: &SiteState,
    req: &HttpRequest,
    v: &Visitor,
    actor: &Actor,
    id: &str,
    res: Result<(), tonic::Status>,
    flash: &str,
) -> HttpResponse {
    match res {
        Ok(()) => see_other(&format!("/garage/jobs/{id}?{flash}=1"), &v.cookies),
        Err(s) if s.code() == Code::NotFound => error_page(StatusCode::NOT_FOUND, &request_id(req)),
        Err(s) => {
            let (status, msg) = failure(&s, BOOKING_BREAK);
            match load_job(state, actor, id).await {
                Ok(job) => page(
                    &job_view(state, v, job, None, "", msg),
                    status,
                    req,
                    &v.cookies,
                ),
                Err(_) => error_page(status, &request_id(req)),
            }
        }
    }
}

async fn reschedule_page(
    state: &SiteState,
    req: &HttpRequest,
    v: &Visitor,
    id: &str,
    status: StatusCode,
    error: String,
) -> HttpResponse {
    page(
        &BookPage {
            chrome: v.chrome(&state.links),
            rescheduling: id.to_owned(),
            error,
            vehicles: Vec::new(),
            services: Vec::new(),
            windows: windows(state).await,
            form: BookForm::default(),
        },
        status,
        req,
        &v.cookies,
    )
}

async fn reschedule_form(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    match load_job(&state, &actor, &id).await {
        Ok(_) => reschedule_page(&state, &req, &v, &id, StatusCode::OK, String::new()).await,
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    }
}

async fn reschedule_submit(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    body: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    let body = body.into_inner();
    if !v.csrf_ok(&state, &req, &first(&body, "csrf")) {
        return forbidden(&req);
    }
    let Some(slot) = slot_of(&first(&body, "slot")) else {
        return reschedule_page(
            &state,
            &req,
            &v,
            &id,
            StatusCode::BAD_REQUEST,
            "Pick a drop-off time.".into(),
        )
        .await;
    };
    let mut j = state.upstreams.jobs.clone();
    let res = grpc::call(
        "JobsService/RescheduleBooking",
        j.reschedule_booking(auth::request(
            &actor,
            jobs::RescheduleBookingRequest {
                job_id: id.to_string(),
                slot: Some(slot),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other(&format!("/garage/jobs/{id}?moved=1"), &v.cookies),
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(s) => {
            let (status, msg) = failure(&s, BOOKING_BREAK);
            reschedule_page(&state, &req, &v, &id, status, msg).await
        }
    }
}

// ---- the no-login status page ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "status.html")]
struct StatusView<'a> {
    chrome: Chrome<'a>,
    page: jobs::StatusPage,
    appointment: String,
    timeline: Vec<(String, String)>,
}

/// Anyone with the link sees the vehicle, its status, the next step and the timeline; nothing
/// else, and the page is never cached, indexed or leaked through the Referer header.
async fn status_page(
    state: Data<SiteState>,
    req: HttpRequest,
    token: Path<String>,
) -> HttpResponse {
    let mut j = state.upstreams.jobs.clone();
    let res = grpc::call(
        "JobsService/GetStatusPage",
        j.get_status_page(auth::request(
            &site_actor(),
            jobs::GetStatusPageRequest {
                token: token.chars().take(64).collect(),
            },
        )),
    )
    .await;
    let v = Visitor::of(&state, &req).await;
    let mut resp = match res {
        Ok(r) => {
            let p = r.into_inner();
            let appointment = p
                .appointment
                .as_ref()
                .filter(|a| a.booked)
                .map(|a| when(&a.date, &a.start))
                .unwrap_or_default();
            let timeline = p
                .timeline
                .iter()
                .map(|s| (stamp(s.at.as_ref()), s.label.clone()))
                .collect();
            page(
                &StatusView {
                    chrome: v.chrome(&state.links),
                    page: p,
                    appointment,
                    timeline,
                },
                StatusCode::OK,
                &req,
                &v.cookies,
            )
        }
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    };
    private(&mut resp);
    resp
}

// ---- the estimate link ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "estimate.html")]
struct EstimateView<'a> {
    chrome: Chrome<'a>,
    est: jobs::Estimate,
    token: String,
    /// (description, "2" or "1.50 h", "$12.34")
    lines: Vec<(String, String, String)>,
    total: String,
    status: &'static str,
    open: bool,
    flash: &'static str,
    error: String,
}

#[derive(Deserialize)]
struct EstimateFlash {
    #[serde(default)]
    done: String,
}

async fn fetch_estimate(state: &SiteState, token: &str) -> Result<jobs::Estimate, tonic::Status> {
    let mut j = state.upstreams.jobs.clone();
    grpc::call(
        "JobsService/GetEstimate",
        j.get_estimate(auth::request(
            &site_actor(),
            jobs::GetEstimateRequest {
                token: token.to_owned(),
                job_id: String::new(),
            },
        )),
    )
    .await
    .map(|r| r.into_inner())
}

fn estimate_view<'a>(
    state: &'a SiteState,
    v: &mut Visitor,
    req: &HttpRequest,
    est: jobs::Estimate,
    token: String,
    flash: &'static str,
    error: String,
) -> EstimateView<'a> {
    v.form_csrf(state, req);
    EstimateView {
        chrome: v.chrome(&state.links),
        lines: est
            .lines
            .iter()
            .map(|l| {
                let qty = if l.kind == "labor" {
                    format!("{} h", l.hours)
                } else {
                    l.quantity.to_string()
                };
                (l.description.clone(), qty, format_money(l.amount.as_ref()))
            })
            .collect(),
        total: format_money(est.total.as_ref()),
        status: estimate_status(&est.status),
        open: est.status == "sent",
        est,
        token,
        flash,
        error,
    }
}

/// The estimate behind an emailed link: anyone holding it sees the lines and may answer once.
async fn estimate_page(
    state: Data<SiteState>,
    req: HttpRequest,
    token: Path<String>,
    q: Query<EstimateFlash>,
) -> HttpResponse {
    let token: String = token.chars().take(64).collect();
    let mut v = Visitor::of(&state, &req).await;
    match fetch_estimate(&state, &token).await {
        Ok(est) => {
            let flash = if q.done.is_empty() {
                ""
            } else {
                "Thanks, we've got your answer."
            };
            let view = estimate_view(&state, &mut v, &req, est, token, flash, String::new());
            let mut resp = page(&view, StatusCode::OK, &req, &v.cookies);
            private(&mut resp);
            resp
        }
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    }
}

async fn estimate_decide(
    state: Data<SiteState>,
    req: HttpRequest,
    path: Path<(String, String)>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let (token, decision) = path.into_inner();
    let approve = match decision.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return error_page(StatusCode::NOT_FOUND, &request_id(&req)),
    };
    let mut v = Visitor::of(&state, &req).await;
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    // Signed in: the decision is recorded as that client's; otherwise as the link's holder.
    let actor = v.actor().unwrap_or_else(site_actor);
    let mut j = state.upstreams.jobs.clone();
    let res = grpc::call(
        "JobsService/DecideEstimate",
        j.decide_estimate(auth::request(
            &actor,
            jobs::DecideEstimateRequest {
                token: token.clone(),
                job_id: String::new(),
                approve,
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other(&format!("/estimate/{token}?done=1"), &v.cookies),
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(s) => {
            let (status, msg) = failure(&s, BOOKING_BREAK);
            match fetch_estimate(&state, &token).await {
                Ok(est) => {
                    let view = estimate_view(&state, &mut v, &req, est, token, "", msg);
                    page(&view, status, &req, &v.cookies)
                }
                Err(_) => error_page(status, &request_id(&req)),
            }
        }
    }
}
