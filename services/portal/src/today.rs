//! Today, the tablet's first screen: today's drop-offs by window (from jobs' booking rules and
//! open jobs), who is on (staff signed in right now, from portal's own sessions), and what is
//! waiting on parts.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use chrono_tz::Tz;
use omneuro_platform::auth;
use omneuro_platform::db::now_utc;
use omneuro_platform::grpc;
use omneuro_proto::jobs::v1 as pb;

use crate::Portal;
use crate::accounts;
use crate::board::{JOBS_DOWN, SHOP_TZ, list_jobs, services_text, status_label};
use crate::pages::page;
use crate::staff::{Nav, Staff, role_label};

pub struct Visit {
    pub id: String,
    pub time: String,
    pub vehicle: String,
    pub services: String,
    pub status: String,
    pub safety: bool,
}

pub struct WindowDay {
    pub label: String,
    pub hours: String,
    pub visits: Vec<Visit>,
}

pub struct OnShift {
    pub name: String,
    pub role: &'static str,
    pub seen: String,
}

pub struct Waiting {
    pub id: String,
    pub vehicle: String,
    pub tech: String,
}

#[derive(Template)]
#[template(path = "today.html")]
struct TodayPage {
    nav: Nav,
    day: String,
    windows: Vec<WindowDay>,
    on: Vec<OnShift>,
    waiting: Vec<Waiting>,
    notice: &'static str,
}

/// Today's open jobs with a drop-off today, by the rules' windows in order (a window the rules no
/// longer have is shown under its code, after them).
fn by_window(jobs: &[pb::WorkOrder], rules: &pb::BookingRules, today: &str) -> Vec<WindowDay> {
    let mut windows: Vec<(String, WindowDay)> = rules
        .windows
        .iter()
        .map(|w| {
            (
                w.code.clone(),
                WindowDay {
                    label: w.label.clone(),
                    hours: format!("{}–{}", w.start, w.end),
                    visits: Vec::new(),
                },
            )
        })
        .collect();
    let mut todays: Vec<(&pb::WorkOrder, &pb::Appointment)> = jobs
        .iter()
        .filter_map(|j| j.appointment.as_ref().map(|a| (j, a)))
        .filter(|(_, a)| a.booked && a.date == today)
        .collect();
    todays.sort_by(|a, b| a.1.start.cmp(&b.1.start).then(a.0.id.cmp(&b.0.id)));
    for (j, a) in todays {
        let visit = Visit {
            id: j.id.clone(),
            time: a.start.clone(),
            vehicle: j.vehicle_label.clone(),
            services: services_text(&j.services),
            status: status_label(&j.status),
            safety: j.safety_flag,
        };
        match windows.iter_mut().find(|(code, _)| *code == a.window_code) {
            Some((_, w)) => w.visits.push(visit),
            None => windows.push((
                a.window_code.clone(),
                WindowDay {
                    label: a.window_code.clone(),
                    hours: String::new(),
                    visits: vec![visit],
                },
            )),
        }
    }
    windows.into_iter().map(|(_, w)| w).collect()
}

/// GET `/today`.
pub async fn today(staff: Staff, state: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let mut j = state.jobs.clone();
    let rules_call = grpc::call(
        "JobsService/GetBookingRules",
        j.get_booking_rules(auth::request(&staff.actor(), pb::GetBookingRulesRequest {})),
    );
    let (rules, jobs) = tokio::join!(rules_call, list_jobs(&staff, &state, true));
    let cfg = state.staff.clone();
    let on = state
        .db
        .run(move |c| accounts::signed_in_now(c, &cfg, now_utc()))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "who is on: sessions unavailable");
            Vec::new()
        });
    let (status, rules, jobs, notice) = match (rules, jobs) {
        (Ok(r), Ok(jobs)) => (StatusCode::OK, r.into_inner(), jobs, ""),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            pb::BookingRules::default(),
            Vec::new(),
            JOBS_DOWN,
        ),
    };
    let zone: Tz = rules.timezone.parse().unwrap_or(SHOP_TZ);
    let now = Utc::now().with_timezone(&zone);
    let today = now.format("%Y-%m-%d").to_string();
    let waiting = jobs
        .iter()
        .filter(|j| j.status == "awaiting_parts")
        .map(|j| Waiting {
            id: j.id.clone(),
            vehicle: j.vehicle_label.clone(),
            tech: j.assigned_tech.clone(),
        })
        .collect();
    let on = on
        .into_iter()
        .map(|(m, seen)| OnShift {
            name: m.name,
            role: role_label(m.role),
            seen: seen
                .and_utc()
                .with_timezone(&zone)
                .format("%H:%M")
                .to_string(),
        })
        .collect();
    let t = TodayPage {
        nav: staff.nav(&req, &state),
        day: now.format("%A, %B %-d").to_string(),
        windows: by_window(&jobs, &rules, &today),
        on,
        waiting,
        notice,
    };
    page(&t, status, &req, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, date: &str, window: &str, start: &str, booked: bool) -> pb::WorkOrder {
        pb::WorkOrder {
            id: id.into(),
            vehicle_label: format!("EUC {id}"),
            status: "intake".into(),
            appointment: Some(pb::Appointment {
                date: date.into(),
                window_code: window.into(),
                start: start.into(),
                booked,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn todays_booked_drop_offs_land_in_their_window_in_time_order() {
        let rules = pb::BookingRules {
            windows: ["morning", "evening"]
                .iter()
                .map(|c| pb::BookingWindow {
                    code: (*c).into(),
                    label: c.to_uppercase(),
                    start: "10:00".into(),
                    end: "12:00".into(),
                    capacity: 2,
                })
                .collect(),
            ..Default::default()
        };
        let jobs = vec![
            job("b", "2026-11-26", "morning", "11:00", true),
            job("a", "2026-11-26", "morning", "10:00", true),
            job("c", "2026-11-27", "morning", "10:00", true),
            job("d", "2026-11-26", "evening", "15:00", false),
            job("e", "2026-11-26", "night", "20:00", true),
        ];
        let w = by_window(&jobs, &rules, "2026-11-26");
        let ids: Vec<Vec<&str>> = w
            .iter()
            .map(|w| w.visits.iter().map(|v| v.id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["a", "b"], vec![], vec!["e"]]);
        assert_eq!(w[2].label, "night");
    }
}
