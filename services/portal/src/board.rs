//! The job board for the shop tablet, one job's page, and moving a job along the workflow. Every
//! handler takes [`Staff`] (the guard); jobs decides which moves are legal, the portal only shows
//! the ones it offers (`next_statuses`) and forwards the choice.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, refusal_status, request_id};
use omneuro_proto::jobs::v1 as pb;
use serde::Deserialize;
use tonic::Code;

use crate::Portal;
use crate::bench::{Bench, Draft};
use crate::pages::{forbidden, page, see_other};
use crate::staff::Staff;

/// The shop's clock (jobs' booking rules use the same zone) for times on the pages.
pub(crate) const SHOP_TZ: Tz = chrono_tz::America::New_York;

/// Every status in workflow order, with the workshop's name for it; the last two are closed.
pub(crate) const WORKFLOW: [(&str, &str); 9] = [
    ("intake", "Intake"),
    ("diagnosing", "Diagnosing"),
    ("awaiting_approval", "Awaiting approval"),
    ("awaiting_parts", "Awaiting parts"),
    ("in_progress", "In progress"),
    ("awaiting_payment", "Awaiting payment"),
    ("ready", "Ready for pick-up"),
    ("delivered", "Delivered"),
    ("canceled", "Canceled"),
];
const OPEN_STATUSES: usize = 7;

pub(crate) const JOBS_DOWN: &str = "The jobs service isn't answering right now, so jobs can't be shown or moved. Nothing is lost; reload in a minute.";

pub(crate) fn status_label(code: &str) -> String {
    WORKFLOW
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| (*l).to_owned())
        .unwrap_or_else(|| code.replace('_', " "))
}

pub(crate) fn services_text(services: &[String]) -> String {
    services
        .iter()
        .map(|s| s.replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "Sat Jun 14 · 10:00 (morning)", or empty without an appointment.
fn appointment_text(a: Option<&pb::Appointment>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    let day = NaiveDate::parse_from_str(&a.date, "%Y-%m-%d")
        .map(|d| d.format("%a %b %-d").to_string())
        .unwrap_or_else(|_| a.date.clone());
    let mut s = format!("{day} · {}", a.start);
    if !a.window_code.is_empty() {
        s.push_str(&format!(" ({})", a.window_code));
    }
    if !a.booked {
        s.push_str(" — released");
    }
    s
}

pub(crate) fn when(unix_micros: i64) -> String {
    DateTime::from_timestamp_micros(unix_micros)
        .map(|t| {
            t.with_timezone(&SHOP_TZ)
                .format("%b %-d, %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// Staff names by id, from portal's own accounts (for history and notes).
pub(crate) type Names = std::collections::HashMap<String, String>;

/// Everyone's name by id; empty (ids shown instead) if the database can't be read.
pub(crate) async fn staff_names(state: &Portal) -> Names {
    match state.db.run(crate::accounts::list).await {
        Ok(list) => list.into_iter().map(|m| (m.id, m.name)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "staff names unavailable; showing ids");
            Names::new()
        }
    }
}

/// Who made a move, readably: "Marcus (tech)" (the id when the name is unknown), "client",
/// "system (jobs)".
pub(crate) fn who(actor: &str, names: &Names) -> String {
    match Actor::decode(actor) {
        Some(Actor::Staff { id, role }) => format!(
            "{} ({})",
            names.get(&id).unwrap_or(&id),
            role.as_str().replace('_', " ")
        ),
        Some(Actor::Client(_)) => "client".to_owned(),
        Some(Actor::System(name)) => format!("system ({name})"),
        None => actor.to_owned(),
    }
}

// ---- the board -------------------------------------------------------------------------------

pub struct Card {
    pub id: String,
    pub vehicle: String,
    pub services: String,
    pub safety: bool,
    pub appointment: String,
}

pub struct Column {
    pub code: &'static str,
    pub label: &'static str,
    pub cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage<'a> {
    nav: crate::staff::Nav,
    all: bool,
    columns: Vec<Column>,
    notice: &'a str,
}

#[derive(Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    all: String,
}

fn columns(mut jobs: Vec<pb::WorkOrder>, all: bool) -> Vec<Column> {
    // Soonest drop-off first; jobs without one after, oldest first.
    jobs.sort_by_key(|j| {
        (
            j.appointment
                .as_ref()
                .and_then(|a| a.starts_at.as_ref())
                .map_or(i64::MAX, |t| t.unix_micros),
            j.created_at.as_ref().map_or(0, |t| t.unix_micros),
        )
    });
    let shown = if all { WORKFLOW.len() } else { OPEN_STATUSES };
    WORKFLOW[..shown]
        .iter()
        .map(|(code, label)| Column {
            code,
            label,
            cards: jobs
                .iter()
                .filter(|j| j.status == *code)
                .map(|j| Card {
                    id: j.id.clone(),
                    vehicle: j.vehicle_label.clone(),
                    services: services_text(&j.services),
                    safety: j.safety_flag,
                    appointment: appointment_text(j.appointment.as_ref()),
                })
                .collect(),
        })
        .collect()
}

/// The open jobs (`open_only`), or every job, from jobs as this staff member.
pub(crate) async fn list_jobs(
    staff: &Staff,
    state: &Portal,
    open_only: bool,
) -> Result<Vec<pb::WorkOrder>, tonic::Status> {
    let statuses = if open_only {
        WORKFLOW[..OPEN_STATUSES]
            .iter()
            .map(|(c, _)| (*c).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let mut j = state.jobs.clone();
    grpc::call(
        "JobsService/ListJobs",
        j.list_jobs(auth::request(
            &staff.actor(),
            pb::ListJobsRequest { statuses },
        )),
    )
    .await
    .map(|r| r.into_inner().jobs)
}

/// GET `/jobs`: open jobs by status in workflow order; `?all=1` adds delivered and canceled.
pub async fn board(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<BoardQuery>,
) -> HttpResponse {
    let all = matches!(q.all.as_str(), "1" | "true" | "yes");
    let (status, jobs, notice) = match list_jobs(&staff, &state, !all).await {
        Ok(jobs) => (StatusCode::OK, jobs, ""),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new(), JOBS_DOWN),
    };
    page(
        &BoardPage {
            nav: staff.nav(&req, &state),
            all,
            columns: columns(jobs, all),
            notice,
        },
        status,
        &req,
        &[],
    )
}

// ---- one job ---------------------------------------------------------------------------------

pub struct HistoryRow {
    pub when: String,
    pub who: String,
    pub from: String,
    pub to: String,
    pub note: String,
}

pub struct Move {
    pub code: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage<'a> {
    csrf: String,
    nav: crate::staff::Nav,
    job: &'a pb::WorkOrder,
    status: String,
    services: String,
    appointment: String,
    history: Vec<HistoryRow>,
    moves: Vec<Move>,
    bench: Bench,
    error: &'a str,
}

/// The job page: the job, its moves and history, and its bench (with `draft` kept in the bench
/// forms, so a refused entry is not typed again).
pub(crate) async fn job_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    wb: pb::JobWorkbench,
    status: StatusCode,
    error: &str,
    draft: Draft,
) -> HttpResponse {
    let Some(job) = wb.job.clone() else {
        tracing::error!("jobs answered a workbench without its job");
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(req));
    };
    let names = staff_names(state).await;
    let history = job
        .history
        .iter()
        .map(|e| HistoryRow {
            when: e
                .at
                .as_ref()
                .map(|t| when(t.unix_micros))
                .unwrap_or_default(),
            who: who(&e.actor, &names),
            from: if e.from_status.is_empty() {
                "—".to_owned()
            } else {
                status_label(&e.from_status)
            },
            to: status_label(&e.to_status),
            note: e.note.clone(),
        })
        .collect();
    let moves = job
        .next_statuses
        .iter()
        .map(|s| Move {
            code: s.clone(),
            label: status_label(s),
        })
        .collect();
    let bench = Bench::load(staff, state, wb, draft, &names).await;
    page(
        &JobPage {
            csrf: staff.csrf(req, state),
            nav: staff.nav(req, state),
            job: &job,
            status: status_label(&job.status),
            services: services_text(&job.services),
            appointment: appointment_text(job.appointment.as_ref()),
            history,
            moves,
            bench,
            error,
        },
        status,
        req,
        &[],
    )
}

/// The job with its bench, or the page to show instead (404 for an unknown id, 403 when jobs
/// refuses the caller, 503 when jobs is down).
pub(crate) async fn fetch(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: String,
) -> Result<pb::JobWorkbench, HttpResponse> {
    let mut j = state.jobs.clone();
    grpc::call(
        "JobsService/GetWorkbench",
        j.get_workbench(auth::request(
            &staff.actor(),
            pb::GetWorkbenchRequest { job_id: id },
        )),
    )
    .await
    .map(|r| r.into_inner())
    .map_err(|s| match s.code() {
        Code::NotFound | Code::InvalidArgument => {
            error_page(StatusCode::NOT_FOUND, &request_id(req))
        }
        Code::PermissionDenied => error_page(StatusCode::FORBIDDEN, &request_id(req)),
        _ => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(req)),
    })
}

/// GET `/jobs/{id}`.
pub async fn job(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
) -> HttpResponse {
    match fetch(&staff, &state, &req, id.into_inner()).await {
        Ok(wb) => {
            job_page(
                &staff,
                &state,
                &req,
                wb,
                StatusCode::OK,
                "",
                Draft::default(),
            )
            .await
        }
        Err(res) => res,
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to_status: String,
    #[serde(default)]
    note: String,
}

/// POST `/jobs/{id}/move`: back to the job on success; a refused move re-shows the job with
/// jobs' reason (409 illegal move, 400 bad input).
pub async fn move_job(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<MoveForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let id = id.into_inner();
    let form = form.into_inner();
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/MoveJob",
        j.move_job(auth::request(
            &staff.actor(),
            pb::MoveJobRequest {
                id: id.clone(),
                to_status: form.to_status.trim().to_owned(),
                note: form.note.trim().to_owned(),
            },
        )),
    )
    .await;
    let (status, message) = match res {
        Ok(r) => {
            let moved = r.into_inner();
            tracing::info!(job_id = %moved.id, to = %moved.status, "job moved from the portal");
            return see_other(&format!("/jobs/{}", moved.id), &[]);
        }
        // Refusals are shown on the job page; without the job (or jobs) there is no page.
        Err(s) => match refusal_status(s.code()) {
            Some(status) if status != StatusCode::NOT_FOUND => (status, s.message().to_owned()),
            other => {
                let status = other.unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return error_page(status, &request_id(&req));
            }
        },
    };
    match fetch(&staff, &state, &req, id).await {
        Ok(wb) => job_page(&staff, &state, &req, wb, status, &message, Draft::default()).await,
        Err(res) => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_keeps_workflow_order_and_hides_closed_jobs_unless_asked() {
        let job = |id: &str, status: &str| pb::WorkOrder {
            id: id.into(),
            status: status.into(),
            ..Default::default()
        };
        let jobs = vec![
            job("job_c", "ready"),
            job("job_a", "intake"),
            job("job_d", "delivered"),
        ];
        let open = columns(jobs.clone(), false);
        assert_eq!(open.len(), 7);
        assert_eq!(open[0].code, "intake");
        assert_eq!(open[0].cards[0].id, "job_a");
        assert_eq!(open[6].cards[0].id, "job_c");
        let all = columns(jobs, true);
        assert_eq!(all.len(), 9);
        assert_eq!(all[7].cards[0].id, "job_d");
    }

    #[test]
    fn people_and_times_read_well() {
        let names = Names::from([("stf_1".to_owned(), "Marcus".to_owned())]);
        assert_eq!(who("staff:stf_1:tech", &names), "Marcus (tech)");
        assert_eq!(who("staff:stf_2:front_desk", &names), "stf_2 (front desk)");
        assert_eq!(who("client:cli_1", &names), "client");
        assert_eq!(status_label("awaiting_parts"), "Awaiting parts");
        assert_eq!(status_label("mystery_state"), "mystery state");
        // 2025-06-14 14:00 UTC is 10:00 in Baltimore (EDT).
        assert_eq!(when(1_749_909_600_000_000), "Jun 14, 10:00");
        let a = pb::Appointment {
            date: "2025-06-14".into(),
            start: "10:00".into(),
            window_code: "morning".into(),
            booked: true,
            ..Default::default()
        };
        assert_eq!(appointment_text(Some(&a)), "Sat Jun 14 · 10:00 (morning)");
    }
}
