//! Walk-ins: a client is at the counter without a booking. Staff enter the client's id (from an
//! earlier job's page, which links here with it filled in), pick one of the client's vehicles
//! (garage lists them), the services and the problem, and jobs opens the job in intake.
//!
//! There is no client search yet (garage has no staff lookup by email or phone); that arrives with
//! staff accounts.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, request_id};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::jobs::v1 as pb;
use serde::Deserialize;
use tonic::Code;

use crate::Portal;
use crate::pages::{forbidden, page, see_other};
use crate::staff::Staff;

const GARAGE_DOWN: &str = "The garage service isn't answering, so the client's vehicles can't be listed. Reload in a minute.";
const JOBS_DOWN: &str =
    "The jobs service isn't answering, so walk-ins can't be opened right now. Reload in a minute.";
const NO_VEHICLE: &str = "Pick the vehicle that came in.";
const NO_SERVICE: &str = "Pick at least one service.";

pub struct VehicleOption {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

pub struct ServiceOption {
    pub code: String,
    pub name: String,
    pub checked: bool,
}

/// What was typed, kept when the walk-in is refused.
#[derive(Default)]
pub struct WalkInDraft {
    pub client_id: String,
    pub vehicle_id: String,
    pub services: Vec<String>,
    pub problem: String,
    pub safety: bool,
}

#[derive(Template)]
#[template(path = "walkin.html")]
struct WalkInPage<'a> {
    csrf: String,
    nav: crate::staff::Nav,
    client_id: &'a str,
    /// `None` until a client id is entered (or when garage is down).
    vehicles: Option<Vec<VehicleOption>>,
    services: Vec<ServiceOption>,
    problem: &'a str,
    safety: bool,
    error: &'a str,
}

/// The walk-in page for `draft` (vehicles and services fetched now).
async fn walkin_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    mut status: StatusCode,
    error: &str,
    draft: &WalkInDraft,
) -> HttpResponse {
    let mut error = error.to_owned();
    let vehicles = if draft.client_id.is_empty() {
        None
    } else {
        let mut g = state.garage.clone();
        let res = grpc::call(
            "GarageService/ListVehicles",
            g.list_vehicles(auth::request(
                &staff.actor(),
                garage::ListVehiclesRequest {
                    include_archived: false,
                    client_id: draft.client_id.clone(),
                },
            )),
        )
        .await;
        match res {
            Ok(r) => Some(
                r.into_inner()
                    .vehicles
                    .into_iter()
                    .map(|v| VehicleOption {
                        selected: v.id == draft.vehicle_id,
                        id: v.id,
                        label: v.label,
                    })
                    .collect(),
            ),
            Err(s) if matches!(s.code(), Code::InvalidArgument | Code::NotFound) => {
                Some(Vec::new())
            }
            Err(_) => {
                status = StatusCode::SERVICE_UNAVAILABLE;
                error = GARAGE_DOWN.to_owned();
                None
            }
        }
    };
    let mut j = state.jobs.clone();
    let offerings = grpc::call(
        "JobsService/ListServiceOfferings",
        j.list_service_offerings(auth::request(
            &staff.actor(),
            pb::ListServiceOfferingsRequest::default(),
        )),
    )
    .await;
    let services = match offerings {
        Ok(r) => {
            let mut list = r.into_inner().offerings;
            list.sort_by_key(|o| o.sort_order);
            list.into_iter()
                .map(|o| ServiceOption {
                    checked: if draft.services.is_empty() {
                        o.code == "diagnostics"
                    } else {
                        draft.services.contains(&o.code)
                    },
                    code: o.code,
                    name: o.name,
                })
                .collect()
        }
        Err(_) => {
            status = StatusCode::SERVICE_UNAVAILABLE;
            error = JOBS_DOWN.to_owned();
            Vec::new()
        }
    };
    page(
        &WalkInPage {
            csrf: staff.csrf(req, state),
            nav: staff.nav(req, state),
            client_id: &draft.client_id,
            vehicles,
            services,
            problem: &draft.problem,
            safety: draft.safety,
            error: &error,
        },
        status,
        req,
        &[],
    )
}

fn client_id(typed: &str) -> String {
    typed.trim().chars().take(64).collect()
}

#[derive(Deserialize)]
pub struct WalkInQuery {
    #[serde(default)]
    client: String,
}

/// GET `/walkin` (`?client=cli_…` lists that client's vehicles).
pub async fn form(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<WalkInQuery>,
) -> HttpResponse {
    let draft = WalkInDraft {
        client_id: client_id(&q.client),
        ..WalkInDraft::default()
    };
    walkin_page(&staff, &state, &req, StatusCode::OK, "", &draft).await
}

/// POST `/walkin`: opens the job and goes to it; a refusal re-shows the form with the reason.
/// The form is read as pairs because `services` repeats (one per ticked box).
pub async fn create(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let mut csrf = String::new();
    let mut draft = WalkInDraft::default();
    for (k, v) in form.into_inner() {
        match k.as_str() {
            "csrf" => csrf = v,
            "client_id" => draft.client_id = client_id(&v),
            "vehicle_id" => draft.vehicle_id = v.trim().to_owned(),
            "services" if !v.trim().is_empty() && !draft.services.contains(&v) => {
                draft.services.push(v.trim().to_owned());
            }
            "problem" => draft.problem = v,
            "safety_flag" => draft.safety = !v.is_empty(),
            _ => {}
        }
    }
    if !staff.csrf_ok(&req, &state, &csrf) {
        return forbidden(&req);
    }
    let refusal = if draft.vehicle_id.is_empty() {
        Some(NO_VEHICLE)
    } else if draft.services.is_empty() {
        Some(NO_SERVICE)
    } else {
        None
    };
    if let Some(message) = refusal {
        return walkin_page(
            &staff,
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            message,
            &draft,
        )
        .await;
    }
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/CreateWalkIn",
        j.create_walk_in(auth::request(
            &staff.actor(),
            pb::CreateWalkInRequest {
                client_id: draft.client_id.clone(),
                vehicle_id: draft.vehicle_id.clone(),
                services: draft.services.clone(),
                problem: draft.problem.trim().to_owned(),
                safety_flag: draft.safety,
            },
        )),
    )
    .await;
    let (status, message) = match res {
        Ok(r) => {
            let job = r.into_inner();
            tracing::info!(job_id = %job.id, "walk-in opened from the portal");
            return see_other(&format!("/jobs/{}", job.id), &[]);
        }
        Err(s) => match s.code() {
            Code::InvalidArgument | Code::NotFound => {
                (StatusCode::BAD_REQUEST, s.message().to_owned())
            }
            Code::FailedPrecondition => (StatusCode::CONFLICT, s.message().to_owned()),
            Code::PermissionDenied => return error_page(StatusCode::FORBIDDEN, &request_id(&req)),
            _ => return error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
        },
    };
    walkin_page(&staff, &state, &req, status, &message, &draft).await
}
