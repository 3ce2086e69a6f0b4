//! The owner's jobs report, week by week ([`omneuro_platform::weeks`]: ISO weeks, Monday 00:00
//! UTC, the current week last):
//!
//! - **opened**: jobs created that week (bookings and walk-ins);
//! - **by status**: every job that was open at some point in the week, counted once in the
//!   status it had at the end of the week (from `work_order_events`). A delivered or canceled job
//!   counts in the week it closed and not after, so the bars show the week's work, not every job
//!   ever finished;
//! - **turnaround**: for jobs that became `ready` (ready for pick-up) for the first time that
//!   week, the time from drop-off to ready. Drop-off is the start of the booked slot, or when the
//!   job was opened for a walk-in (or when the booked slot is not between opening and ready).
//!   Every way to `delivered` passes through `ready`, so "first ready" is when the shop's work
//!   was done; the wait for pick-up is the client's, not the shop's;
//! - **parts used**: the ten parts put on jobs most (by quantity) in the period, from part lines
//!   added in it (a removed line is gone, and its part went back on the shelf).
//!
//! Loading is a few plain queries (both backends); the figures are worked out in Rust
//! ([`compute`], tested without a database), which is plenty at one shop's scale.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::db::DbConnection;
use omneuro_platform::error::DomainError;
use omneuro_platform::weeks::Weeks;

use crate::schema::{appointments, job_lines, work_order_events, work_orders};
use crate::workorders::Status;

/// How many parts the report lists.
pub const TOP_PARTS: usize = 10;

/// Rows fetched per `IN (…)` query, well under either backend's parameter limit.
const BATCH: usize = 500;

/// Jobs that reached ready, and how long they took in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turnaround {
    pub jobs: u32,
    pub total_seconds: i64,
}

impl Turnaround {
    /// The average in whole seconds; 0 when no job finished.
    pub fn average_seconds(&self) -> i64 {
        if self.jobs == 0 {
            0
        } else {
            self.total_seconds / i64::from(self.jobs)
        }
    }

    fn add(&mut self, seconds: i64) {
        self.jobs += 1;
        self.total_seconds += seconds;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekFigures {
    /// The Monday the week starts on.
    pub monday: NaiveDate,
    pub opened: u32,
    /// Jobs per status at the end of the week, in [`Status::ALL`] order.
    pub by_status: [u32; Status::ALL.len()],
    pub turnaround: Turnaround,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartUse {
    /// Empty for a line without a product (not made today, but old rows may have none).
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsReport {
    pub weeks: Vec<WeekFigures>,
    /// Over the whole period.
    pub turnaround: Turnaround,
    pub parts: Vec<PartUse>,
}

/// One job's facts the report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHistory {
    pub opened: NaiveDateTime,
    /// The start of its (latest) booked slot, if it was booked.
    pub dropoff: Option<NaiveDateTime>,
    /// Status moves, oldest first (the first one is `intake` when it was opened).
    pub moves: Vec<(NaiveDateTime, Status)>,
}

impl JobHistory {
    fn first(&self, pred: impl Fn(Status) -> bool) -> Option<NaiveDateTime> {
        self.moves.iter().find(|(_, s)| pred(*s)).map(|(at, _)| *at)
    }

    /// Its status just before `at` (`intake` if it has no move before then).
    fn status_before(&self, at: NaiveDateTime) -> Status {
        self.moves
            .iter()
            .take_while(|(t, _)| *t < at)
            .last()
            .map_or(Status::Intake, |(_, s)| *s)
    }

    /// Drop-off to first ready, in seconds, if it has been ready.
    fn turnaround(&self) -> Option<(NaiveDateTime, i64)> {
        let ready = self.first(|s| s == Status::Ready)?;
        let from = match self.dropoff {
            Some(d) if d > self.opened && d <= ready => d,
            _ => self.opened,
        };
        Some((ready, (ready - from).num_seconds().max(0)))
    }
}

/// A part line on a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLine {
    pub product_id: Option<String>,
    pub name: String,
    pub quantity: i64,
    pub added: NaiveDateTime,
}

/// The report from the jobs' histories and part lines (anything outside `weeks` is ignored).
pub fn compute(weeks: &Weeks, jobs: &[JobHistory], parts: &[PartLine]) -> JobsReport {
    let mut out: Vec<WeekFigures> = weeks
        .mondays()
        .into_iter()
        .map(|monday| WeekFigures {
            monday,
            opened: 0,
            by_status: [0; Status::ALL.len()],
            turnaround: Turnaround::default(),
        })
        .collect();
    let mut overall = Turnaround::default();
    for job in jobs {
        if let Some(w) = weeks.index(job.opened).and_then(|i| out.get_mut(i)) {
            w.opened += 1;
        }
        let closed = job.first(|s| matches!(s, Status::Delivered | Status::Canceled));
        for (i, w) in out.iter_mut().enumerate() {
            let (start, end) = (weeks.start_of(i), weeks.start_of(i + 1));
            let live = job.opened < end && closed.is_none_or(|c| c >= start);
            if live {
                let status = job.status_before(end);
                if let Some(pos) = Status::ALL.iter().position(|s| *s == status) {
                    w.by_status[pos] += 1;
                }
            }
        }
        if let Some((ready, seconds)) = job.turnaround()
            && let Some(w) = weeks.index(ready).and_then(|i| out.get_mut(i))
        {
            w.turnaround.add(seconds);
            overall.add(seconds);
        }
    }
    JobsReport {
        weeks: out,
        turnaround: overall,
        parts: top_parts(weeks, parts),
    }
}

fn top_parts(weeks: &Weeks, parts: &[PartLine]) -> Vec<PartUse> {
    // Keyed by product (or by name for a line without one); the newest line's name wins.
    let mut by_key: HashMap<String, (PartUse, NaiveDateTime)> = HashMap::new();
    for p in parts.iter().filter(|p| weeks.index(p.added).is_some()) {
        let key = p
            .product_id
            .clone()
            .unwrap_or_else(|| format!("name:{}", p.name));
        let e = by_key.entry(key).or_insert_with(|| {
            (
                PartUse {
                    product_id: p.product_id.clone().unwrap_or_default(),
                    name: p.name.clone(),
                    quantity: 0,
                },
                p.added,
            )
        });
        e.0.quantity += p.quantity;
        if p.added > e.1 {
            e.0.name = p.name.clone();
            e.1 = p.added;
        }
    }
    let mut list: Vec<PartUse> = by_key.into_values().map(|(p, _)| p).collect();
    list.sort_by(|a, b| {
        b.quantity
            .cmp(&a.quantity)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.product_id.cmp(&b.product_id))
    });
    list.truncate(TOP_PARTS);
    list
}

/// Loads what the report needs for `weeks` and works it out.
pub fn load(conn: &mut DbConnection, weeks: &Weeks) -> Result<JobsReport, DomainError> {
    let (start, end) = (weeks.start(), weeks.end());
    let closed = [Status::Delivered.as_str(), Status::Canceled.as_str()];
    // Every job opened before the period ends that is still open or changed during the period
    // (a job closed during it changed then); a few extra (a closed job touched otherwise) do no
    // harm: their history says they were not live.
    let orders: Vec<(String, NaiveDateTime)> = work_orders::table
        .filter(work_orders::created_at.lt(end))
        .filter(
            diesel::dsl::not(work_orders::status.eq_any(closed))
                .or(work_orders::updated_at.ge(start)),
        )
        .select((work_orders::id, work_orders::created_at))
        .load(conn)?;
    let mut jobs: HashMap<String, JobHistory> = orders
        .into_iter()
        .map(|(id, opened)| {
            (
                id,
                JobHistory {
                    opened,
                    dropoff: None,
                    moves: Vec::new(),
                },
            )
        })
        .collect();
    let ids: Vec<String> = jobs.keys().cloned().collect();
    for chunk in ids.chunks(BATCH) {
        let moves: Vec<(String, NaiveDateTime, String)> = work_order_events::table
            .filter(work_order_events::job_id.eq_any(chunk))
            .filter(work_order_events::at.lt(end))
            .order_by((
                work_order_events::job_id,
                work_order_events::at,
                work_order_events::id,
            ))
            .select((
                work_order_events::job_id,
                work_order_events::at,
                work_order_events::to_status,
            ))
            .load(conn)?;
        for (job, at, to) in moves {
            if let (Some(j), Some(to)) = (jobs.get_mut(&job), Status::parse(&to)) {
                j.moves.push((at, to));
            }
        }
        let slots: Vec<(String, NaiveDateTime)> = appointments::table
            .filter(appointments::job_id.eq_any(chunk))
            .order_by((appointments::job_id, appointments::created_at.desc()))
            .select((appointments::job_id, appointments::starts_at))
            .load(conn)?;
        for (job, starts_at) in slots {
            // Newest first within a job: keep the first one seen.
            if let Some(j) = jobs.get_mut(&job)
                && j.dropoff.is_none()
            {
                j.dropoff = Some(starts_at);
            }
        }
    }
    let parts: Vec<PartLine> = job_lines::table
        .filter(job_lines::kind.eq("part"))
        .filter(job_lines::created_at.ge(start))
        .filter(job_lines::created_at.lt(end))
        .select((
            job_lines::product_id,
            job_lines::description,
            job_lines::quantity,
            job_lines::created_at,
        ))
        .load::<(Option<String>, String, i32, NaiveDateTime)>(conn)?
        .into_iter()
        .map(|(product_id, name, quantity, added)| PartLine {
            product_id,
            name,
            quantity: i64::from(quantity),
            added,
        })
        .collect();
    let jobs: Vec<JobHistory> = jobs.into_values().collect();
    Ok(compute(weeks, &jobs, &parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn count(w: &WeekFigures, s: Status) -> u32 {
        w.by_status[Status::ALL.iter().position(|x| *x == s).unwrap()]
    }

    /// Three weeks: Mondays 2025-05-26, 06-02 and 06-09 (now Wednesday 06-11).
    fn weeks() -> Weeks {
        Weeks::ending(3, at("2025-06-11 15:00")).unwrap()
    }

    #[test]
    fn each_live_job_counts_once_a_week_in_its_status_at_the_end_of_it() {
        use Status::*;
        let jobs = vec![
            // Walk-in in week 0, ready in week 1 (3 days, 1 hour later), delivered in week 2.
            JobHistory {
                opened: at("2025-05-30 10:00"),
                dropoff: None,
                moves: vec![
                    (at("2025-05-30 10:00"), Intake),
                    (at("2025-05-31 09:00"), Diagnosing),
                    (at("2025-06-01 11:00"), InProgress),
                    (at("2025-06-02 09:00"), AwaitingPayment),
                    (at("2025-06-02 11:00"), Ready),
                    (at("2025-06-10 12:00"), Delivered),
                ],
            },
            // Booked in week 1 for a slot in week 2, still in intake; turnaround not yet.
            JobHistory {
                opened: at("2025-06-04 20:00"),
                dropoff: Some(at("2025-06-10 14:00")),
                moves: vec![(at("2025-06-04 20:00"), Intake)],
            },
            // Booked long before, dropped off in week 2 and ready 3 hours later.
            JobHistory {
                opened: at("2025-04-01 08:00"),
                dropoff: Some(at("2025-06-09 10:00")),
                moves: vec![
                    (at("2025-04-01 08:00"), Intake),
                    (at("2025-06-09 10:30"), Diagnosing),
                    (at("2025-06-09 13:00"), Ready),
                ],
            },
            // Canceled before the period: never counted.
            JobHistory {
                opened: at("2025-03-01 08:00"),
                dropoff: None,
                moves: vec![
                    (at("2025-03-01 08:00"), Intake),
                    (at("2025-03-02 08:00"), Canceled),
                ],
            },
            // Opened and canceled in week 0.
            JobHistory {
                opened: at("2025-05-27 08:00"),
                dropoff: None,
                moves: vec![
                    (at("2025-05-27 08:00"), Intake),
                    (at("2025-05-28 08:00"), Canceled),
                ],
            },
        ];
        let r = compute(&weeks(), &jobs, &[]);
        let opened: Vec<u32> = r.weeks.iter().map(|w| w.opened).collect();
        assert_eq!(opened, vec![2, 1, 0]);
        let (w0, w1, w2) = (&r.weeks[0], &r.weeks[1], &r.weeks[2]);
        assert_eq!(w0.monday, NaiveDate::from_ymd_opt(2025, 5, 26).unwrap());
        // Week 0: the walk-in in progress, the old booking in intake, one canceled.
        assert_eq!(count(w0, InProgress), 1);
        assert_eq!(count(w0, Intake), 1);
        assert_eq!(count(w0, Canceled), 1);
        assert_eq!(w0.by_status.iter().sum::<u32>(), 3);
        // Week 1: the walk-in ready, the two bookings in intake.
        assert_eq!(count(w1, Ready), 1);
        assert_eq!(count(w1, Intake), 2);
        assert_eq!(w1.by_status.iter().sum::<u32>(), 3);
        // Week 2: delivered (closed this week), one still in intake, one ready.
        assert_eq!(count(w2, Delivered), 1);
        assert_eq!(count(w2, Intake), 1);
        assert_eq!(count(w2, Ready), 1);
        assert_eq!(w2.by_status.iter().sum::<u32>(), 3);
        // Turnaround: the walk-in from opening (3 days + 1 hour) in week 1; the booking from its
        // slot (3 hours, not the two months since it was booked) in week 2.
        assert_eq!(w0.turnaround, Turnaround::default());
        assert_eq!(w1.turnaround.jobs, 1);
        assert_eq!(w1.turnaround.average_seconds(), 73 * 3600);
        assert_eq!(w2.turnaround.average_seconds(), 3 * 3600);
        assert_eq!(r.turnaround.jobs, 2);
        assert_eq!(r.turnaround.average_seconds(), (73 + 3) * 3600 / 2);
    }

    #[test]
    fn no_jobs_make_zeros() {
        let r = compute(&weeks(), &[], &[]);
        assert_eq!(r.weeks.len(), 3);
        assert!(r.weeks.iter().all(|w| w.opened == 0
            && w.by_status.iter().all(|c| *c == 0)
            && w.turnaround.average_seconds() == 0));
        assert_eq!(r.turnaround.average_seconds(), 0);
        assert!(r.parts.is_empty());
    }

    #[test]
    fn parts_are_summed_by_product_top_ten_most_first_in_the_period_only() {
        let line = |id: &str, name: &str, q: i64, when: &str| PartLine {
            product_id: Some(id.into()),
            name: name.into(),
            quantity: q,
            added: at(when),
        };
        let mut parts = vec![
            line("prd_a", "Tube 10in", 2, "2025-06-02 10:00"),
            line("prd_a", "Inner tube 10in", 3, "2025-06-10 10:00"),
            line("prd_b", "Brake pads", 4, "2025-05-27 10:00"),
            // Before the period: not counted.
            line("prd_b", "Brake pads", 40, "2025-05-01 10:00"),
        ];
        for i in 0..12 {
            parts.push(line(
                &format!("prd_x{i:02}"),
                &format!("Bolt {i:02}"),
                1,
                "2025-06-03 10:00",
            ));
        }
        let r = compute(&weeks(), &[], &parts);
        assert_eq!(r.parts.len(), TOP_PARTS);
        assert_eq!(
            (r.parts[0].name.as_str(), r.parts[0].quantity),
            ("Inner tube 10in", 5)
        );
        assert_eq!(
            (r.parts[1].product_id.as_str(), r.parts[1].quantity),
            ("prd_b", 4)
        );
        // Ties by name.
        assert_eq!(r.parts[2].name, "Bolt 00");
        assert_eq!(r.parts[9].name, "Bolt 07");
    }
}
