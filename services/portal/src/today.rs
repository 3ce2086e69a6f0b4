//! Today, the tablet's first screen: today's drop-offs by window (from jobs' booking rules and
//! open jobs), who is on (staff signed in right now, from portal's own sessions), and what is
//! waiting on parts.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, NaiveDateTime, Utc};
use chrono_tz::Tz;
use omneuro_platform::auth;
use omneuro_platform::db::now_utc;
use omneuro_platform::grpc;
use omneuro_proto::jobs::v1 as pb;

use crate::Portal;
use crate::board::{JOBS_DOWN, SHOP_TZ, list_jobs, services_text, status_label};
use crate::pages::page;
use crate::staff::{Nav, Staff, role_label};
use crate::{accounts, roster};

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

/// Someone on today: scheduled for today (their hours and skills) and/or signed in now.
pub struct OnShift {
    pub name: String,
    pub role: &'static str,
    /// "09:00–17:00" when scheduled today, else empty.
    pub hours: String,
    pub skills: String,
    /// When they were last seen, if signed in now.
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

/// Who is on today: everyone scheduled for `weekday` (0 = Monday), by start time, then anyone
/// else signed in now; disabled accounts never.
/// What Today needs to know about the team: who is signed in (and when last seen), everyone,
/// and everyone's schedule.
#[derive(Default)]
struct Team {
    signed_in: Vec<(accounts::StaffMember, NaiveDateTime)>,
    members: Vec<accounts::StaffMember>,
    schedules: std::collections::HashMap<String, roster::Schedule>,
}

fn on_today(
    Team {
        signed_in,
        members,
        schedules,
    }: Team,
    weekday: usize,
    zone: Tz,
) -> Vec<OnShift> {
    let seen = |id: &str| {
        signed_in
            .iter()
            .find(|(m, _)| m.id == id)
            .map(|(_, at)| {
                at.and_utc()
                    .with_timezone(&zone)
                    .format("%H:%M")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let mut on: Vec<(String, OnShift)> = members
        .iter()
        .filter(|m| !m.disabled)
        .filter_map(|m| {
            let sched = schedules.get(&m.id);
            let span = sched.and_then(|s| s.week.get(weekday).copied().flatten());
            let seen = seen(&m.id);
            if span.is_none() && seen.is_empty() {
                return None;
            }
            let key = span
                .map(|s| s.starts.format("0%H:%M").to_string())
                .unwrap_or_else(|| "1".to_owned());
            Some((
                format!("{key}{}", m.name),
                OnShift {
                    name: m.name.clone(),
                    role: role_label(m.role),
                    hours: span
                        .map(|s| format!("{}–{}", s.starts.format("%H:%M"), s.ends.format("%H:%M")))
                        .unwrap_or_default(),
                    skills: sched.map(|s| s.skills.join(", ")).unwrap_or_default(),
                    seen,
                },
            ))
        })
        .collect();
    on.sort_by(|a, b| a.0.cmp(&b.0));
    on.into_iter().map(|(_, o)| o).collect()
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
    let people = state
        .db
        .run(move |c| {
            Ok::<_, omneuro_platform::error::DomainError>(Team {
                signed_in: accounts::signed_in_now(c, &cfg, now_utc())?,
                members: accounts::list(c)?,
                schedules: roster::schedules(c)?,
            })
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "who is on: staff records unavailable");
            Default::default()
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
    let on = on_today(people, now.weekday().num_days_from_monday() as usize, zone);
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
