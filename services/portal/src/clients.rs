//! Clients and vehicles for the counter: search by name, phone, email, make/model or serial
//! (garage's `SearchClients`, as the signed-in staff member), each client with their vehicles and
//! a walk-in button. A plain GET form, so it works without JavaScript.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::garage::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::pages::page;
use crate::staff::{Nav, Staff};

const GARAGE_DOWN: &str =
    "The client records aren't answering right now. Nothing is lost; search again in a minute.";

pub struct VehicleRow {
    pub label: String,
    pub serials: String,
    pub voltage: String,
}

pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub vehicles: Vec<VehicleRow>,
}

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage<'a> {
    nav: Nav,
    q: &'a str,
    searched: bool,
    results: Vec<ClientRow>,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn vehicle_row(v: pb::Vehicle) -> VehicleRow {
    let input = v.input.unwrap_or_default();
    let serials = [
        ("battery", input.battery_serial),
        ("motor", input.motor_serial),
    ]
    .into_iter()
    .filter(|(_, s)| !s.is_empty())
    .map(|(what, s)| format!("{what} {s}"))
    .collect::<Vec<_>>()
    .join(" · ");
    VehicleRow {
        label: v.label,
        serials,
        voltage: match input.voltage_class {
            0 => String::new(),
            volts => format!("{volts} V"),
        },
    }
}

/// GET `/clients?q=…`.
pub async fn search(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<SearchQuery>,
) -> HttpResponse {
    let typed: String = q.q.chars().take(200).collect();
    let mut t = ClientsPage {
        nav: staff.nav(&req, &state),
        q: &typed,
        searched: !typed.trim().is_empty(),
        results: Vec::new(),
        message: None,
    };
    if !t.searched {
        return page(&t, StatusCode::OK, &req, &[]);
    }
    let mut g = state.garage.clone();
    let res = grpc::call(
        "GarageService/SearchClients",
        g.search_clients(auth::request(
            &staff.actor(),
            pb::SearchClientsRequest {
                query: typed.clone(),
                limit: 0,
            },
        )),
    )
    .await;
    let status = match res {
        Ok(r) => {
            t.results = r
                .into_inner()
                .matches
                .into_iter()
                .map(|m| {
                    let c = m.client.unwrap_or_default();
                    ClientRow {
                        id: c.id,
                        name: c.name,
                        email: c.email,
                        phone: c.phone,
                        vehicles: m.vehicles.into_iter().map(vehicle_row).collect(),
                    }
                })
                .collect();
            StatusCode::OK
        }
        Err(s) => {
            let (status, message) = failure(&s, GARAGE_DOWN);
            t.message = Some(message);
            status
        }
    };
    page(&t, status, &req, &[])
}
