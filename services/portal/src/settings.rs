//! Settings the owner keeps: the booking rules (drop-off days, windows with their hours and
//! places, slot length, how far ahead and how soon clients may book, days the shop is closed).
//! jobs owns and checks them (`GetBookingRules` / `UpdateBookingRules`); this page shows them as a
//! form and sends back what the owner typed. A refusal shows jobs' reason on the same page with
//! everything as typed; nothing is half-saved because jobs replaces the rules in one transaction.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_proto::jobs::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::board::JOBS_DOWN;
use crate::pages::{forbidden, page, see_other};
use crate::staff::{Nav, Staff};

pub const DAYS: [(&str, &str); 7] = [
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
];

/// One window as the form shows it (typed text, so a refused value comes back as typed).
#[derive(Default)]
pub struct WindowDraft {
    pub code: String,
    pub label: String,
    pub start: String,
    pub end: String,
    pub capacity: String,
}

/// The rules as the form shows them.
#[derive(Default)]
pub struct RulesDraft {
    pub timezone: String,
    pub days: Vec<String>,
    pub windows: Vec<WindowDraft>,
    pub slot_minutes: String,
    pub horizon_days: String,
    pub min_lead_minutes: String,
    /// One YYYY-MM-DD per line.
    pub blackouts: String,
}

impl RulesDraft {
    fn from_pb(r: pb::BookingRules) -> Self {
        Self {
            timezone: r.timezone,
            days: r.dropoff_days,
            windows: r
                .windows
                .into_iter()
                .map(|w| WindowDraft {
                    code: w.code,
                    label: w.label,
                    start: w.start,
                    end: w.end,
                    capacity: w.capacity.to_string(),
                })
                .collect(),
            slot_minutes: r.slot_minutes.to_string(),
            horizon_days: r.horizon_days.to_string(),
            min_lead_minutes: r.min_lead_minutes.to_string(),
            blackouts: r.blackout_days.join("\n"),
        }
    }

    pub fn has_day(&self, code: &str) -> bool {
        self.days.iter().any(|d| d == code)
    }

    /// The rules to send, or which field is not a whole number.
    fn to_pb(&self) -> Result<pb::BookingRules, String> {
        let number = |what: &str, v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what}: `{}` is not a whole number.", v.trim()))
        };
        Ok(pb::BookingRules {
            timezone: self.timezone.clone(),
            dropoff_days: self.days.clone(),
            windows: self
                .windows
                .iter()
                .map(|w| {
                    Ok(pb::BookingWindow {
                        code: w.code.clone(),
                        label: w.label.trim().to_owned(),
                        start: w.start.trim().to_owned(),
                        end: w.end.trim().to_owned(),
                        capacity: number(&format!("{} places", w.label.trim()), &w.capacity)?,
                    })
                })
                .collect::<Result<_, String>>()?,
            slot_minutes: number("Slot length", &self.slot_minutes)?,
            horizon_days: number("Days ahead", &self.horizon_days)?,
            min_lead_minutes: number("Notice", &self.min_lead_minutes)?,
            blackout_days: self
                .blackouts
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    nav: Nav,
    tab: &'static str,
    rules: &'a RulesDraft,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

fn settings_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    rules: &RulesDraft,
    message: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let t = SettingsPage {
        nav: staff.nav(req, state),
        tab: "/settings",
        rules,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// GET `/settings`.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<SettingsQuery>,
) -> HttpResponse {
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/GetBookingRules",
        j.get_booking_rules(auth::request(&staff.actor(), pb::GetBookingRulesRequest {})),
    )
    .await;
    match res {
        Ok(r) => {
            let notice = q.saved.as_ref().map(|_| "Booking rules saved.");
            let rules = RulesDraft::from_pb(r.into_inner());
            settings_page(&staff, &state, &req, StatusCode::OK, &rules, None, notice)
        }
        Err(_) => settings_page(
            &staff,
            &state,
            &req,
            StatusCode::SERVICE_UNAVAILABLE,
            &RulesDraft::default(),
            Some(JOBS_DOWN),
            None,
        ),
    }
}

/// POST `/settings/booking`. Read as pairs: `day` repeats, one per ticked box, and each window's
/// fields are numbered (`w0_label`, …).
pub async fn save_booking(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    form: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let mut csrf = String::new();
    let mut rules = RulesDraft::default();
    for (k, v) in form.into_inner() {
        match k.as_str() {
            "csrf" => csrf = v,
            "timezone" => rules.timezone = v,
            "day" if !rules.days.contains(&v) => rules.days.push(v),
            "slot_minutes" => rules.slot_minutes = v,
            "horizon_days" => rules.horizon_days = v,
            "min_lead_minutes" => rules.min_lead_minutes = v,
            "blackouts" => rules.blackouts = v,
            other => {
                let Some((i, field)) = other
                    .strip_prefix('w')
                    .and_then(|r| r.split_once('_'))
                    .and_then(|(i, f)| Some((i.parse::<usize>().ok()?, f)))
                    .filter(|(i, _)| *i < 8)
                else {
                    continue;
                };
                while rules.windows.len() <= i {
                    rules.windows.push(WindowDraft::default());
                }
                let w = &mut rules.windows[i];
                match field {
                    "code" => w.code = v,
                    "label" => w.label = v,
                    "start" => w.start = v,
                    "end" => w.end = v,
                    "capacity" => w.capacity = v,
                    _ => {}
                }
            }
        }
    }
    if !staff.csrf_ok(&req, &state, &csrf) {
        return forbidden(&req);
    }
    let refuse = |status: StatusCode, message: &str| {
        settings_page(&staff, &state, &req, status, &rules, Some(message), None)
    };
    let pb_rules = match rules.to_pb() {
        Ok(r) => r,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/UpdateBookingRules",
        j.update_booking_rules(auth::request(
            &staff.actor(),
            pb::UpdateBookingRulesRequest {
                rules: Some(pb_rules),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/settings?saved=1", &[]),
        Err(s) => {
            let (status, message) = failure(&s, JOBS_DOWN);
            refuse(status, &message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_numbers_and_blackout_lines_become_rules_or_name_the_bad_field() {
        let mut d = RulesDraft {
            timezone: "America/New_York".into(),
            days: vec!["tue".into()],
            windows: vec![WindowDraft {
                code: "morning".into(),
                label: " Morning ".into(),
                start: "10:00".into(),
                end: "12:00".into(),
                capacity: " 3 ".into(),
            }],
            slot_minutes: "30".into(),
            horizon_days: "14".into(),
            min_lead_minutes: "60".into(),
            blackouts: "2026-12-24\n2026-12-25, 2026-12-31\n\n".into(),
        };
        let r = d.to_pb().unwrap();
        assert_eq!(r.windows[0].capacity, 3);
        assert_eq!(r.windows[0].label, "Morning");
        assert_eq!(r.blackout_days, ["2026-12-24", "2026-12-25", "2026-12-31"]);
        d.windows[0].capacity = "three".into();
        assert_eq!(
            d.to_pb().unwrap_err(),
            "Morning places: `three` is not a whole number."
        );
        d.windows[0].capacity = "3".into();
        d.slot_minutes = "-5".into();
        assert!(d.to_pb().unwrap_err().starts_with("Slot length"));
    }
}
