//! The team's skills and weekly hours: what each staff member is good at and when they work,
//! kept by the owner at `/settings/team` and shown on Today ("on today"). portal owns them, in
//! its own database beside the staff accounts (ADR 0011). A refused change shows why on the same
//! page with what was typed; a change is saved whole or not at all (one transaction).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{NaiveDateTime, NaiveTime};
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, now_utc, write_transaction};
use omneuro_platform::error::DomainError;
use serde::Deserialize;

use crate::Portal;
use crate::accounts::{self, Audit, StaffMember};
use crate::pages::{forbidden, outage, page, refusal, see_other};
use crate::schema::{staff, staff_hours};
use crate::settings::DAYS;
use crate::staff::{Nav, Staff, role_label};

pub const MAX_SKILLS: usize = 12;
pub const MAX_SKILL_CHARS: usize = 40;

/// One working span on a weekday, shop time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub starts: NaiveTime,
    pub ends: NaiveTime,
}

/// A staff member's skills and week (index 0 = Monday).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub skills: Vec<String>,
    pub week: [Option<Span>; 7],
}

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// "9:00", "09:00", "17:30" → a time; anything else `None`.
fn parse_time(v: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(v.trim(), "%H:%M").ok()
}

impl Schedule {
    /// What the owner typed: skills comma-separated; per day a start and an end (both empty for
    /// a day off). The first problem is the error, in the owner's words.
    pub fn parse(skills: &str, days: &[(String, String); 7]) -> Result<Self, DomainError> {
        let mut list: Vec<String> = Vec::new();
        for s in skills.split(',') {
            let s = s
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            if s.is_empty() || list.contains(&s) {
                continue;
            }
            if s.chars().count() > MAX_SKILL_CHARS || s.chars().any(char::is_control) {
                return Err(DomainError::invalid(format!(
                    "A skill is a few words (at most {MAX_SKILL_CHARS} characters), like \"battery packs\"; separate skills with commas."
                )));
            }
            list.push(s);
        }
        if list.len() > MAX_SKILLS {
            return Err(DomainError::invalid(format!(
                "At most {MAX_SKILLS} skills; keep the ones that matter when handing out jobs."
            )));
        }
        let mut week = [None; 7];
        for (i, (start, end)) in days.iter().enumerate() {
            let day = DAYS[i].1;
            match (start.trim().is_empty(), end.trim().is_empty()) {
                (true, true) => continue,
                (false, false) => {}
                _ => {
                    return Err(DomainError::invalid(format!(
                        "{day}: give both a start and an end time, or neither for a day off."
                    )));
                }
            }
            let (Some(starts), Some(ends)) = (parse_time(start), parse_time(end)) else {
                return Err(DomainError::invalid(format!(
                    "{day}: times are 24-hour HH:MM, like 09:00 and 17:30."
                )));
            };
            if starts >= ends {
                return Err(DomainError::invalid(format!(
                    "{day}: the end ({}) must be after the start ({}).",
                    hhmm(ends),
                    hhmm(starts)
                )));
            }
            week[i] = Some(Span { starts, ends });
        }
        Ok(Self { skills: list, week })
    }
}

/// Everyone's schedule by staff id.
pub fn schedules(
    conn: &mut DbConnection,
) -> Result<std::collections::HashMap<String, Schedule>, DomainError> {
    let mut out: std::collections::HashMap<String, Schedule> = std::collections::HashMap::new();
    let skills: Vec<(String, String)> =
        staff::table.select((staff::id, staff::skills)).load(conn)?;
    for (id, s) in skills {
        out.entry(id).or_default().skills = s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let hours: Vec<(String, i32, String, String)> = staff_hours::table
        .select((
            staff_hours::staff_id,
            staff_hours::weekday,
            staff_hours::starts,
            staff_hours::ends,
        ))
        .load(conn)?;
    for (id, day, starts, ends) in hours {
        let (Some(starts), Some(ends), Ok(day)) =
            (parse_time(&starts), parse_time(&ends), usize::try_from(day))
        else {
            continue;
        };
        if let Some(slot) = out.entry(id).or_default().week.get_mut(day) {
            *slot = Some(Span { starts, ends });
        }
    }
    Ok(out)
}

/// Replaces a staff member's skills and week, audited as the owner's change.
pub fn save(
    conn: &mut DbConnection,
    by: &StaffMember,
    member_id: &str,
    s: &Schedule,
    ip: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    write_transaction(conn, |c| {
        let member = accounts::load(c, member_id)?;
        diesel::update(staff::table.find(member_id))
            .set((
                staff::skills.eq(s.skills.join(", ")),
                staff::updated_at.eq(now),
            ))
            .execute(c)?;
        diesel::delete(staff_hours::table.filter(staff_hours::staff_id.eq(member_id)))
            .execute(c)?;
        for (day, span) in s.week.iter().enumerate() {
            if let Some(span) = span {
                diesel::insert_into(staff_hours::table)
                    .values((
                        staff_hours::staff_id.eq(member_id),
                        staff_hours::weekday.eq(day as i32),
                        staff_hours::starts.eq(hhmm(span.starts)),
                        staff_hours::ends.eq(hhmm(span.ends)),
                    ))
                    .execute(c)?;
            }
        }
        accounts::audit(
            c,
            &Audit {
                staff_id: &by.id,
                staff_email: &by.email,
                action: "changed skills and hours",
                target: &member.email,
                detail: &s.skills.join(", "),
                ip,
                outcome: "ok",
            },
            now,
        )
    })
}

/// One staff member's form: typed text, so a refused value comes back as typed.
pub struct MemberDraft {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub skills: String,
    /// (day label, start, end) Monday first.
    pub days: Vec<(&'static str, String, String)>,
}

impl MemberDraft {
    fn from_schedule(m: &StaffMember, s: Option<&Schedule>) -> Self {
        let s = s.cloned().unwrap_or_default();
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            role: role_label(m.role),
            skills: s.skills.join(", "),
            days: DAYS
                .iter()
                .zip(s.week.iter())
                .map(|((_, label), span)| match span {
                    Some(sp) => (*label, hhmm(sp.starts), hhmm(sp.ends)),
                    None => (*label, String::new(), String::new()),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "team_hours.html")]
struct TeamPage<'a> {
    nav: Nav,
    tab: &'static str,
    members: Vec<MemberDraft>,
    typed_id: &'a str,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn team_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    typed: Option<MemberDraft>,
    message: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let loaded = state
        .db
        .run(|c| Ok::<_, DomainError>((accounts::list(c)?, schedules(c)?)))
        .await;
    let (members, scheds) = match loaded {
        Ok(x) => x,
        Err(e) => return outage(req, &e),
    };
    let typed_id = typed.as_ref().map(|t| t.id.clone()).unwrap_or_default();
    let mut typed = typed;
    let members = members
        .iter()
        .filter(|m| !m.disabled)
        .map(|m| match typed.take_if(|t| t.id == m.id) {
            Some(mut t) => {
                t.name = m.name.clone();
                t.role = role_label(m.role);
                t
            }
            None => MemberDraft::from_schedule(m, scheds.get(&m.id)),
        })
        .collect();
    let t = TeamPage {
        nav: staff.nav(req, state),
        tab: "/settings/team",
        members,
        typed_id: &typed_id,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

#[derive(Deserialize)]
pub struct Saved {
    #[serde(default)]
    saved: Option<String>,
}

/// GET `/settings/team`.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<Saved>,
) -> HttpResponse {
    let notice = q.saved.as_ref().map(|_| "Saved. Today shows who is on.");
    team_page(&staff, &state, &req, StatusCode::OK, None, None, notice).await
}

/// POST `/settings/team/{id}`: one staff member's skills and week.
pub async fn save_member(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<Vec<(String, String)>>,
) -> HttpResponse {
    let form = form.into_inner();
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.chars().take(600).collect::<String>())
            .unwrap_or_default()
    };
    if !staff.csrf_ok(&req, &state, &field("csrf")) {
        return forbidden(&req);
    }
    let skills = field("skills");
    let days: [(String, String); 7] = std::array::from_fn(|i| {
        (
            field(&format!("{}_start", DAYS[i].0)),
            field(&format!("{}_end", DAYS[i].0)),
        )
    });
    let member_id = id.into_inner();
    let parsed = Schedule::parse(&skills, &days);
    let result = match parsed {
        Ok(s) => {
            let (by, ip, member) = (
                staff.member().clone(),
                omneuro_platform::web::client_ip(&req),
                member_id.clone(),
            );
            state
                .db
                .run(move |c| save(c, &by, &member, &s, &ip, now_utc()))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other("/settings/team?saved=1", &[]),
        Err(e) => match refusal(&e) {
            Some((status, m)) => {
                let typed = MemberDraft {
                    id: member_id,
                    name: String::new(),
                    role: "",
                    skills,
                    days: DAYS
                        .iter()
                        .zip(days)
                        .map(|((_, label), (s, e))| (*label, s, e))
                        .collect(),
                };
                team_page(&staff, &state, &req, status, Some(typed), Some(&m), None).await
            }
            None => outage(&req, &e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(pairs: &[(&str, &str)]) -> [(String, String); 7] {
        std::array::from_fn(|i| {
            pairs
                .get(i)
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .unwrap_or_default()
        })
    }

    #[test]
    fn skills_and_hours_are_read_the_way_the_owner_types_them() {
        let s = Schedule::parse(
            " Battery packs,controller ,, battery  packs, EUC ",
            &week(&[("9:00", "17:30"), ("", ""), ("12:00", "20:00")]),
        )
        .unwrap();
        assert_eq!(s.skills, ["battery packs", "controller", "euc"]);
        assert_eq!(
            s.week[0],
            Some(Span {
                starts: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                ends: NaiveTime::from_hms_opt(17, 30, 0).unwrap()
            })
        );
        assert_eq!(s.week[1], None);
        assert!(s.week[2].is_some() && s.week[6].is_none());
        for (days, why) in [
            (week(&[("9:00", "")]), "both a start and an end"),
            (week(&[("9", "17")]), "HH:MM"),
            (week(&[("25:00", "26:00")]), "HH:MM"),
            (
                week(&[("", ""), ("17:00", "09:00")]),
                "Tue: the end (09:00) must be after",
            ),
        ] {
            let e = Schedule::parse("", &days).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let many = (0..13)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(Schedule::parse(&many, &week(&[])).is_err());
        assert!(Schedule::parse(&"x".repeat(41), &week(&[])).is_err());
    }
}
