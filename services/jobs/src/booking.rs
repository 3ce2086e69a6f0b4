//! Booking rules: when customers may drop a device off at the shop.
//!
//! The rules are plain data ([`BookingRules`]) so they can be stored in the database and edited
//! from the staff portal; [`BookingRules::shop_default`] holds the rules Juice Junkiez uses today.
//! On top of them sit two pure functions:
//!
//! - [`availability`] lists every drop-off window a customer can still book, from now through the
//!   booking horizon, with the slot start times that are still far enough away;
//! - [`check_slot`] validates one requested slot (local date, window code, local start time) and
//!   returns it resolved to UTC. It does not look at capacity: the database enforces that
//!   atomically when the booking is written.
//!
//! All dates and times customers see are local to the shop's time zone; conversion to UTC is
//! DST-correct. A local time skipped by a spring-forward change is not a slot, and an ambiguous
//! local time (fall-back) means its earlier instant. A slot lasts `slot_minutes` of real time from
//! its start.
//!
//! No database, I/O or proto types here; callers map to and from those.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

/// Longest booking horizon the rules accept, in days.
pub const MAX_HORIZON_DAYS: u32 = 365;

/// Longest window code, in characters.
pub const MAX_CODE_LEN: usize = 32;

const SECONDS_PER_MINUTE: u64 = 60;
const MINUTES_PER_DAY: u64 = 24 * 60;

/// A named part of the day in which customers drop off (e.g. "morning", 10:00–12:00 local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Stable identifier: 1–32 characters of `a-z`, `0-9`, `_`, `-`.
    pub code: String,
    /// What customers see ("Morning").
    pub label: String,
    /// First slot start, local time.
    pub start: NaiveTime,
    /// End of the last slot, local time (exclusive; must be after `start`, same day).
    pub end: NaiveTime,
    /// Bookings the window takes per day, across all its slots; 0 closes the window.
    pub capacity: u32,
}

/// The shop's booking rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRules {
    /// The shop's time zone; all local dates and times are in it.
    pub timezone: Tz,
    /// Days of the week the shop takes drop-offs.
    pub dropoff_days: Vec<Weekday>,
    /// Drop-off windows; they must not overlap.
    pub windows: Vec<Window>,
    /// Length of one slot; must divide every window.
    pub slot_minutes: u32,
    /// Bookable dates run from today (local) to today + `horizon_days`, inclusive.
    pub horizon_days: u32,
    /// A slot must start at least this long after now.
    pub min_lead_minutes: u32,
    /// Local dates with no drop-off (holidays, closures).
    pub blackouts: BTreeSet<NaiveDate>,
}

/// Rules that make no sense; the message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("dropoff_days: at least one drop-off day is required")]
    NoDropoffDays,
    #[error("dropoff_days: {} is listed more than once", weekday_name(*.weekday))]
    DuplicateDropoffDay { weekday: Weekday },
    #[error("windows: at least one window is required")]
    NoWindows,
    #[error("window `{code}`: code must be 1–{MAX_CODE_LEN} characters of a-z, 0-9, `_` or `-`")]
    InvalidCode { code: String },
    #[error("window `{code}`: code is used by more than one window")]
    DuplicateCode { code: String },
    #[error("window `{code}`: label must not be empty")]
    EmptyLabel { code: String },
    #[error("window `{code}`: start and end must be whole minutes")]
    NotWholeMinutes { code: String },
    #[error("window `{code}`: end must be after start")]
    EndNotAfterStart { code: String },
    #[error("windows `{first}` and `{second}` overlap")]
    Overlap { first: String, second: String },
    #[error("slot_minutes: must be at least 1")]
    ZeroSlotMinutes,
    #[error("window `{code}`: length must be a whole number of {slot_minutes}-minute slots")]
    SlotsDoNotFit { code: String, slot_minutes: u32 },
    #[error("horizon_days: must be between 1 and {MAX_HORIZON_DAYS} (got {horizon_days})")]
    Horizon { horizon_days: u32 },
    #[error(
        "min_lead_minutes: must be less than the {horizon_days}-day horizon \
         ({} minutes), or nothing could ever be booked (got {min_lead_minutes})",
        u64::from(*.horizon_days) * MINUTES_PER_DAY
    )]
    LeadBeyondHorizon {
        min_lead_minutes: u32,
        horizon_days: u32,
    },
}

/// Why a requested slot can't be booked; messages are meant for the customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("That time has already passed. Please pick a later time.")]
    InPast,
    #[error(
        "That time is too soon. Please book at least {} ahead.",
        Minutes(*.min_lead_minutes)
    )]
    TooSoon { min_lead_minutes: u32 },
    #[error(
        "We only take bookings up to {} ahead. Please pick an earlier date.",
        Days(*.horizon_days)
    )]
    TooFarAhead { horizon_days: u32 },
    #[error(
        "We don't take drop-offs on {}s. Please pick another day.",
        weekday_name(*.weekday)
    )]
    ClosedDay { weekday: Weekday },
    #[error("The shop is closed that day. Please pick another day.")]
    Blackout,
    #[error("We don't have that drop-off window. Please pick one from the list.")]
    UnknownWindow,
    #[error("That drop-off window isn't taking bookings. Please pick another window.")]
    WindowClosed,
    #[error("That isn't one of the start times for this window. Please pick one from the list.")]
    NotASlotStart,
    #[error(
        "That time doesn't exist that day because the clocks change for daylight saving time. \
         Please pick another time."
    )]
    DoesNotExist,
}

/// One bookable drop-off slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Local date.
    pub date: NaiveDate,
    pub window_code: String,
    /// Local start, as the customer sees it.
    pub start_local: NaiveDateTime,
    pub start_utc: DateTime<Utc>,
    /// `start_utc` + `slot_minutes`.
    pub end_utc: DateTime<Utc>,
}

/// A window on one date that can still take a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowAvailability {
    /// Local date.
    pub date: NaiveDate,
    pub window_code: String,
    pub label: String,
    pub capacity: u32,
    /// Bookings the window already holds.
    pub booked: u32,
    /// Slots that can still start (lead time respected), earliest first; never empty.
    pub slots: Vec<Slot>,
}

impl BookingRules {
    /// The rules Juice Junkiez uses today: America/New_York; drop-off Sun, Tue, Thu, Sat;
    /// morning 10–12, afternoon 12–15, evening 15–18 with 3 bookings each; 60-minute slots;
    /// 14 days ahead; at least 60 minutes' notice; no blackouts.
    pub fn shop_default() -> Self {
        let window = |code: &str, label: &str, start: u32, end: u32| Window {
            code: code.to_owned(),
            label: label.to_owned(),
            start: hour(start),
            end: hour(end),
            capacity: 3,
        };
        Self {
            timezone: chrono_tz::America::New_York,
            dropoff_days: vec![Weekday::Sun, Weekday::Tue, Weekday::Thu, Weekday::Sat],
            windows: vec![
                window("morning", "Morning", 10, 12),
                window("afternoon", "Afternoon", 12, 15),
                window("evening", "Evening", 15, 18),
            ],
            slot_minutes: 60,
            horizon_days: 14,
            min_lead_minutes: 60,
            blackouts: BTreeSet::new(),
        }
    }

    /// Checks the rules make sense; returns the first problem found.
    ///
    /// A window with capacity 0 is valid: it is closed.
    pub fn validate(&self) -> Result<(), RulesError> {
        if self.dropoff_days.is_empty() {
            return Err(RulesError::NoDropoffDays);
        }
        let mut seen_days = 0u8;
        for &weekday in &self.dropoff_days {
            let bit = weekday_bit(weekday);
            if seen_days & bit != 0 {
                return Err(RulesError::DuplicateDropoffDay { weekday });
            }
            seen_days |= bit;
        }

        if self.windows.is_empty() {
            return Err(RulesError::NoWindows);
        }
        for w in &self.windows {
            if !valid_code(&w.code) {
                return Err(RulesError::InvalidCode {
                    code: w.code.clone(),
                });
            }
            if w.label.trim().is_empty() {
                return Err(RulesError::EmptyLabel {
                    code: w.code.clone(),
                });
            }
            if !whole_minute(w.start) || !whole_minute(w.end) {
                return Err(RulesError::NotWholeMinutes {
                    code: w.code.clone(),
                });
            }
            if w.end <= w.start {
                return Err(RulesError::EndNotAfterStart {
                    code: w.code.clone(),
                });
            }
        }
        for (i, w) in self.windows.iter().enumerate() {
            if self.windows[..i].iter().any(|other| other.code == w.code) {
                return Err(RulesError::DuplicateCode {
                    code: w.code.clone(),
                });
            }
        }
        let mut by_start: Vec<&Window> = self.windows.iter().collect();
        by_start.sort_by_key(|w| w.start);
        for pair in by_start.windows(2) {
            if let [first, second] = pair
                && second.start < first.end
            {
                return Err(RulesError::Overlap {
                    first: first.code.clone(),
                    second: second.code.clone(),
                });
            }
        }

        if self.slot_minutes == 0 {
            return Err(RulesError::ZeroSlotMinutes);
        }
        let step = u64::from(self.slot_minutes) * SECONDS_PER_MINUTE;
        for w in &self.windows {
            if !(seconds(w.end) - seconds(w.start)).is_multiple_of(step) {
                return Err(RulesError::SlotsDoNotFit {
                    code: w.code.clone(),
                    slot_minutes: self.slot_minutes,
                });
            }
        }

        if self.horizon_days == 0 || self.horizon_days > MAX_HORIZON_DAYS {
            return Err(RulesError::Horizon {
                horizon_days: self.horizon_days,
            });
        }
        if u64::from(self.min_lead_minutes) >= u64::from(self.horizon_days) * MINUTES_PER_DAY {
            return Err(RulesError::LeadBeyondHorizon {
                min_lead_minutes: self.min_lead_minutes,
                horizon_days: self.horizon_days,
            });
        }
        Ok(())
    }

    /// The window with this code.
    pub fn window(&self, code: &str) -> Option<&Window> {
        self.windows.iter().find(|w| w.code == code)
    }

    /// Bit set of drop-off days (bit n = n days from Monday).
    fn dropoff_mask(&self) -> u8 {
        self.dropoff_days
            .iter()
            .fold(0, |mask, &d| mask | weekday_bit(d))
    }

    /// The last bookable local date, given today's local date; `None` means no limit is
    /// representable (the calendar ends first).
    fn last_bookable_date(&self, today: NaiveDate) -> Option<NaiveDate> {
        today.checked_add_days(chrono::Days::new(u64::from(
            self.horizon_days.min(MAX_HORIZON_DAYS),
        )))
    }

    /// Resolves a local slot start to a [`Slot`]; `None` if the local time doesn't exist.
    fn resolve(&self, date: NaiveDate, window_code: &str, start: NaiveTime) -> Option<Slot> {
        let start_local = date.and_time(start);
        let (start_utc, end_utc) = self.instants(start_local)?;
        Some(Slot {
            date,
            window_code: window_code.to_owned(),
            start_local,
            start_utc,
            end_utc,
        })
    }

    /// UTC start and end of a slot starting at a local time: `None` if that local time doesn't
    /// exist (spring forward); an ambiguous one (fall back) means the earlier instant.
    fn instants(&self, start_local: NaiveDateTime) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start_utc = match self.timezone.from_local_datetime(&start_local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
            LocalResult::None => return None,
        };
        let end_utc =
            start_utc.checked_add_signed(TimeDelta::minutes(i64::from(self.slot_minutes)))?;
        Some((start_utc, end_utc))
    }
}

/// Every open window from now through the horizon, in date then start-time order, that has
/// remaining capacity and at least one slot still startable (`now` + lead time or later).
///
/// `booked(date, window_code)` says how many bookings that window already holds; it is called at
/// most once per open window and day. Rules are expected to be [validated](BookingRules::validate);
/// invalid parts never panic (slots that don't fit a window are skipped, the horizon is capped at
/// [`MAX_HORIZON_DAYS`]).
pub fn availability(
    rules: &BookingRules,
    now: DateTime<Utc>,
    booked: impl Fn(NaiveDate, &str) -> u32,
) -> Vec<WindowAvailability> {
    let Some(earliest) =
        now.checked_add_signed(TimeDelta::minutes(i64::from(rules.min_lead_minutes)))
    else {
        return Vec::new();
    };
    let today = now.with_timezone(&rules.timezone).date_naive();
    let days = rules.horizon_days.min(MAX_HORIZON_DAYS) as usize + 1;
    let mask = rules.dropoff_mask();

    let mut windows: Vec<&Window> = rules.windows.iter().filter(|w| w.capacity > 0).collect();
    windows.sort_by_key(|w| w.start);

    let mut out = Vec::new();
    for date in today.iter_days().take(days) {
        if mask & weekday_bit(date.weekday()) == 0 || rules.blackouts.contains(&date) {
            continue;
        }
        for w in &windows {
            let taken = booked(date, &w.code);
            if taken >= w.capacity {
                continue;
            }
            // Allocates nothing when no slot qualifies (the filtered size hint starts at 0).
            let slots: Vec<Slot> = slot_starts(w, rules.slot_minutes)
                .filter_map(|t| {
                    let start_local = date.and_time(t);
                    let (start_utc, end_utc) = rules.instants(start_local)?;
                    (start_utc >= earliest).then(|| Slot {
                        date,
                        window_code: w.code.clone(),
                        start_local,
                        start_utc,
                        end_utc,
                    })
                })
                .collect();
            if slots.is_empty() {
                continue;
            }
            out.push(WindowAvailability {
                date,
                window_code: w.code.clone(),
                label: w.label.clone(),
                capacity: w.capacity,
                booked: taken,
                slots,
            });
        }
    }
    out
}

/// Validates a requested slot (local date, window code, local start time) against the rules at
/// `now` and returns it. Capacity is not checked here: the database does that atomically.
pub fn check_slot(
    rules: &BookingRules,
    now: DateTime<Utc>,
    date: NaiveDate,
    window_code: &str,
    start: NaiveTime,
) -> Result<Slot, SlotError> {
    let window = rules.window(window_code).ok_or(SlotError::UnknownWindow)?;
    if !is_slot_start(window, rules.slot_minutes, start) {
        return Err(SlotError::NotASlotStart);
    }

    let today = now.with_timezone(&rules.timezone).date_naive();
    if date < today {
        return Err(SlotError::InPast);
    }
    if rules
        .last_bookable_date(today)
        .is_some_and(|last| date > last)
    {
        return Err(SlotError::TooFarAhead {
            horizon_days: rules.horizon_days,
        });
    }
    let weekday = date.weekday();
    if rules.dropoff_mask() & weekday_bit(weekday) == 0 {
        return Err(SlotError::ClosedDay { weekday });
    }
    if rules.blackouts.contains(&date) {
        return Err(SlotError::Blackout);
    }
    if window.capacity == 0 {
        return Err(SlotError::WindowClosed);
    }

    let slot = rules
        .resolve(date, &window.code, start)
        .ok_or(SlotError::DoesNotExist)?;
    if slot.start_utc < now {
        return Err(SlotError::InPast);
    }
    let too_soon = now
        .checked_add_signed(TimeDelta::minutes(i64::from(rules.min_lead_minutes)))
        .is_none_or(|earliest| slot.start_utc < earliest);
    if too_soon {
        return Err(SlotError::TooSoon {
            min_lead_minutes: rules.min_lead_minutes,
        });
    }
    Ok(slot)
}

/// Local slot start times of a window: every `slot_minutes` from its start while a whole slot
/// still fits before its end. Empty if `slot_minutes` is 0.
fn slot_starts(window: &Window, slot_minutes: u32) -> impl Iterator<Item = NaiveTime> + use<> {
    let step = u64::from(slot_minutes) * SECONDS_PER_MINUTE;
    let end = seconds(window.end);
    let mut next = seconds(window.start);
    std::iter::from_fn(move || {
        if step == 0 || next + step > end {
            return None;
        }
        let t = next;
        next += step;
        NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(t).ok()?, 0)
    })
}

/// Whether `start` is one of the window's slot starts.
fn is_slot_start(window: &Window, slot_minutes: u32, start: NaiveTime) -> bool {
    let step = u64::from(slot_minutes) * SECONDS_PER_MINUTE;
    let (first, end, t) = (seconds(window.start), seconds(window.end), seconds(start));
    step != 0
        && start.nanosecond() == 0
        && t >= first
        && t + step <= end
        && (t - first).is_multiple_of(step)
}

fn seconds(t: NaiveTime) -> u64 {
    u64::from(t.num_seconds_from_midnight())
}

fn whole_minute(t: NaiveTime) -> bool {
    t.second() == 0 && t.nanosecond() == 0
}

fn hour(h: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN)
}

fn weekday_bit(d: Weekday) -> u8 {
    1 << d.num_days_from_monday()
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// A duration in minutes, spelled out for customers ("1 hour 30 minutes").
struct Minutes(u32);

impl fmt::Display for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m) = (self.0 / 60, self.0 % 60);
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        match (h, m) {
            (0, m) => write!(f, "{m} minute{}", plural(m)),
            (h, 0) => write!(f, "{h} hour{}", plural(h)),
            (h, m) => write!(f, "{h} hour{} {m} minute{}", plural(h), plural(m)),
        }
    }
}

/// A number of days, spelled out for customers ("14 days").
struct Days(u32);

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        write!(f, "{n} day{}", if n == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(y: i32, mo: u32, day: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, day, h, mi, 0).unwrap()
    }

    /// `now` given as a New York local time.
    fn ny(y: i32, mo: u32, day: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::America::New_York
            .with_ymd_and_hms(y, mo, day, h, mi, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn none_booked(_: NaiveDate, _: &str) -> u32 {
        0
    }

    fn rules() -> BookingRules {
        BookingRules::shop_default()
    }

    // ---- rules ----

    #[test]
    fn shop_defaults_validate() {
        let r = rules();
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.timezone, chrono_tz::America::New_York);
        assert_eq!(r.horizon_days, 14);
        assert_eq!(r.min_lead_minutes, 60);
        assert_eq!(r.slot_minutes, 60);
        let codes: Vec<_> = r.windows.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["morning", "afternoon", "evening"]);
        let evening = r.window("evening").unwrap();
        assert_eq!(evening.label, "Evening");
        assert_eq!((evening.start, evening.end), (t(15, 0), t(18, 0)));
        assert!(r.windows.iter().all(|w| w.capacity == 3));
        assert!(r.window("night").is_none());
    }

    #[test]
    fn default_slot_starts() {
        let r = rules();
        let starts =
            |code| slot_starts(r.window(code).unwrap(), r.slot_minutes).collect::<Vec<_>>();
        assert_eq!(starts("morning"), [t(10, 0), t(11, 0)]);
        assert_eq!(starts("afternoon"), [t(12, 0), t(13, 0), t(14, 0)]);
        assert_eq!(starts("evening"), [t(15, 0), t(16, 0), t(17, 0)]);
    }

    fn invalid(edit: impl FnOnce(&mut BookingRules)) -> RulesError {
        let mut r = rules();
        edit(&mut r);
        r.validate().unwrap_err()
    }

    #[test]
    fn validate_catches_bad_rules() {
        assert_eq!(
            invalid(|r| r.dropoff_days.clear()),
            RulesError::NoDropoffDays
        );
        assert_eq!(
            invalid(|r| r.dropoff_days.push(Weekday::Tue)),
            RulesError::DuplicateDropoffDay {
                weekday: Weekday::Tue
            }
        );
        assert_eq!(invalid(|r| r.windows.clear()), RulesError::NoWindows);
        for bad in ["", "Morning", "a b", "é", &"x".repeat(33)] {
            assert_eq!(
                invalid(|r| r.windows[0].code = bad.to_owned()),
                RulesError::InvalidCode {
                    code: bad.to_owned()
                }
            );
        }
        let mut ok = rules();
        ok.windows[0].code = "a_1-".repeat(8);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            invalid(|r| r.windows[2].code = "morning".to_owned()),
            RulesError::DuplicateCode {
                code: "morning".to_owned()
            }
        );
        assert_eq!(
            invalid(|r| r.windows[1].label = "  ".to_owned()),
            RulesError::EmptyLabel {
                code: "afternoon".to_owned()
            }
        );
        assert_eq!(
            invalid(|r| r.windows[0].start = NaiveTime::from_hms_opt(10, 0, 30).unwrap()),
            RulesError::NotWholeMinutes {
                code: "morning".to_owned()
            }
        );
        assert_eq!(
            invalid(|r| r.windows[2].end = t(15, 0)),
            RulesError::EndNotAfterStart {
                code: "evening".to_owned()
            }
        );
        assert_eq!(
            invalid(|r| r.windows[2].end = t(9, 0)),
            RulesError::EndNotAfterStart {
                code: "evening".to_owned()
            }
        );
        assert_eq!(
            invalid(|r| r.windows[0].end = t(13, 0)),
            RulesError::Overlap {
                first: "morning".to_owned(),
                second: "afternoon".to_owned()
            }
        );
        // Overlap is found whatever order the windows are listed in.
        assert_eq!(
            invalid(|r| {
                r.windows.reverse();
                r.windows[0].start = t(14, 0);
            }),
            RulesError::Overlap {
                first: "afternoon".to_owned(),
                second: "evening".to_owned()
            }
        );
        assert_eq!(invalid(|r| r.slot_minutes = 0), RulesError::ZeroSlotMinutes);
        assert_eq!(
            invalid(|r| r.slot_minutes = 90),
            RulesError::SlotsDoNotFit {
                code: "morning".to_owned(),
                slot_minutes: 90
            }
        );
        assert_eq!(
            invalid(|r| r.horizon_days = 0),
            RulesError::Horizon { horizon_days: 0 }
        );
        assert_eq!(
            invalid(|r| r.horizon_days = 366),
            RulesError::Horizon { horizon_days: 366 }
        );
        assert_eq!(
            invalid(|r| {
                r.horizon_days = 1;
                r.min_lead_minutes = 1440;
            }),
            RulesError::LeadBeyondHorizon {
                min_lead_minutes: 1440,
                horizon_days: 1
            }
        );

        // Allowed: a closed window, touching windows, 30-minute slots, a 365-day horizon, no lead.
        let mut r = rules();
        r.windows[1].capacity = 0;
        r.slot_minutes = 30;
        r.horizon_days = 365;
        r.min_lead_minutes = 0;
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn rules_error_messages_name_the_field() {
        let msg = |e: RulesError| e.to_string();
        assert_eq!(
            msg(RulesError::EndNotAfterStart {
                code: "evening".to_owned()
            }),
            "window `evening`: end must be after start"
        );
        assert_eq!(
            msg(RulesError::DuplicateDropoffDay {
                weekday: Weekday::Sun
            }),
            "dropoff_days: Sunday is listed more than once"
        );
        assert!(msg(RulesError::Horizon { horizon_days: 0 }).starts_with("horizon_days:"));
        assert!(msg(RulesError::ZeroSlotMinutes).starts_with("slot_minutes:"));
        assert!(
            msg(RulesError::LeadBeyondHorizon {
                min_lead_minutes: 1440,
                horizon_days: 1
            })
            .starts_with("min_lead_minutes: must be less than the 1-day horizon (1440 minutes)")
        );
        assert_eq!(
            msg(RulesError::Overlap {
                first: "a".to_owned(),
                second: "b".to_owned()
            }),
            "windows `a` and `b` overlap"
        );
    }

    // ---- availability ----

    #[test]
    fn availability_from_monday_shows_dropoff_days_only() {
        // Monday 2026-03-02 09:00 EST.
        let now = ny(2026, 3, 2, 9, 0);
        let avail = availability(&rules(), now, none_booked);
        let dates: BTreeSet<NaiveDate> = avail.iter().map(|a| a.date).collect();
        assert_eq!(
            dates.into_iter().collect::<Vec<_>>(),
            [
                d(2026, 3, 3),
                d(2026, 3, 5),
                d(2026, 3, 7),
                d(2026, 3, 8),
                d(2026, 3, 10),
                d(2026, 3, 12),
                d(2026, 3, 14),
                d(2026, 3, 15),
            ]
        );
        assert_eq!(avail.len(), 8 * 3);
        for a in &avail {
            assert!(matches!(
                a.date.weekday(),
                Weekday::Tue | Weekday::Thu | Weekday::Sat | Weekday::Sun
            ));
            assert_eq!((a.capacity, a.booked), (3, 0));
            assert!(
                a.slots
                    .iter()
                    .all(|s| s.date == a.date && s.window_code == a.window_code)
            );
        }
        // In order: date, then window start.
        let first: Vec<_> = avail[..3]
            .iter()
            .map(|a| {
                (
                    a.date,
                    a.window_code.as_str(),
                    a.label.as_str(),
                    a.slots.len(),
                )
            })
            .collect();
        assert_eq!(
            first,
            [
                (d(2026, 3, 3), "morning", "Morning", 2),
                (d(2026, 3, 3), "afternoon", "Afternoon", 3),
                (d(2026, 3, 3), "evening", "Evening", 3),
            ]
        );
        let slot = &avail[0].slots[1];
        assert_eq!(slot.start_local, d(2026, 3, 3).and_time(t(11, 0)));
        assert_eq!(slot.start_utc, utc(2026, 3, 3, 16, 0));
        assert_eq!(slot.end_utc, utc(2026, 3, 3, 17, 0));
        assert!(
            avail.windows(2).all(
                |p| (p[0].date, p[0].slots[0].start_utc) < (p[1].date, p[1].slots[0].start_utc)
            )
        );
    }

    #[test]
    fn availability_lists_windows_in_start_order_whatever_the_rule_order() {
        let mut r = rules();
        r.windows.reverse();
        let avail = availability(&r, ny(2026, 3, 2, 9, 0), none_booked);
        let codes: Vec<_> = avail[..3].iter().map(|a| a.window_code.as_str()).collect();
        assert_eq!(codes, ["morning", "afternoon", "evening"]);
    }

    #[test]
    fn availability_skips_blackouts() {
        let mut r = rules();
        r.blackouts.insert(d(2026, 3, 5));
        let avail = availability(&r, ny(2026, 3, 2, 9, 0), none_booked);
        assert!(avail.iter().all(|a| a.date != d(2026, 3, 5)));
        assert_eq!(avail.len(), 7 * 3);
    }

    #[test]
    fn availability_skips_full_and_closed_windows() {
        let mut r = rules();
        r.windows[2].capacity = 0; // evening closed
        let booked = |date: NaiveDate, code: &str| match (date.day(), code) {
            (5, "afternoon") => 3, // full
            (5, "morning") => 2,   // one place left
            (7, "morning") => 9,   // over capacity (capacity was lowered)
            _ => 0,
        };
        let avail = availability(&r, ny(2026, 3, 2, 9, 0), booked);
        assert!(avail.iter().all(|a| a.window_code != "evening"));
        let on = |day| {
            avail
                .iter()
                .filter(|a| a.date == d(2026, 3, day))
                .map(|a| (a.window_code.as_str(), a.booked))
                .collect::<Vec<_>>()
        };
        assert_eq!(on(5), [("morning", 2)]);
        assert_eq!(on(7), [("afternoon", 0)]);
        assert_eq!(on(3), [("morning", 0), ("afternoon", 0)]);
    }

    #[test]
    fn availability_respects_lead_time_today() {
        // Tuesday 2026-03-03 11:30 EST: morning is gone, 12:00 is within the hour of lead.
        let avail = availability(&rules(), ny(2026, 3, 3, 11, 30), none_booked);
        let today: Vec<_> = avail.iter().filter(|a| a.date == d(2026, 3, 3)).collect();
        assert_eq!(today.len(), 2);
        assert_eq!(today[0].window_code, "afternoon");
        let starts: Vec<_> = today[0]
            .slots
            .iter()
            .map(|s| s.start_local.time())
            .collect();
        assert_eq!(starts, [t(13, 0), t(14, 0)]);
        assert_eq!(today[1].window_code, "evening");
        assert_eq!(today[1].slots.len(), 3);

        // Exactly the lead time away is still bookable.
        let avail = availability(&rules(), ny(2026, 3, 3, 11, 0), none_booked);
        assert_eq!(avail[0].window_code, "afternoon");
        assert_eq!(avail[0].slots[0].start_local.time(), t(12, 0));
        // A minute later it isn't.
        let avail = availability(&rules(), ny(2026, 3, 3, 11, 1), none_booked);
        assert_eq!(avail[0].slots[0].start_local.time(), t(13, 0));

        // Late in the day, today has nothing left; tomorrow (Wed) is closed; Thursday is first.
        let avail = availability(&rules(), ny(2026, 3, 3, 17, 30), none_booked);
        assert_eq!(avail[0].date, d(2026, 3, 5));
        assert_eq!(avail[0].window_code, "morning");
    }

    #[test]
    fn availability_uses_the_local_date_not_the_utc_date() {
        // Monday 2026-03-02 21:00 EST is already Tuesday 02:00 UTC; today is still Monday.
        let now = ny(2026, 3, 2, 21, 0);
        assert_eq!(now.date_naive(), d(2026, 3, 3));
        let avail = availability(&rules(), now, none_booked);
        assert_eq!(avail[0].date, d(2026, 3, 3));
        assert_eq!(avail[0].slots[0].start_local.time(), t(10, 0));
        // Horizon counts from the local date: Monday + 14 = Monday 03-16 (closed), so Sun 03-15.
        assert_eq!(avail.last().unwrap().date, d(2026, 3, 15));
    }

    #[test]
    fn availability_horizon_includes_last_day_only() {
        // Saturday 2026-02-28 08:00 EST: day 14 is Saturday 03-14, day 15 is Sunday 03-15.
        let now = ny(2026, 2, 28, 8, 0);
        let avail = availability(&rules(), now, none_booked);
        assert_eq!(avail[0].date, d(2026, 2, 28));
        assert_eq!(avail.last().unwrap().date, d(2026, 3, 14));
        assert_eq!(avail.last().unwrap().window_code, "evening");
        assert!(avail.iter().all(|a| a.date <= d(2026, 3, 14)));

        let mut short = rules();
        short.horizon_days = 1;
        let avail = availability(&short, now, none_booked);
        let dates: BTreeSet<_> = avail.iter().map(|a| a.date).collect();
        assert_eq!(
            dates.into_iter().collect::<Vec<_>>(),
            [d(2026, 2, 28), d(2026, 3, 1)]
        );
    }

    #[test]
    fn availability_calls_booked_once_per_open_window_and_day() {
        use std::cell::Cell;
        let calls = Cell::new(0u32);
        let avail = availability(&rules(), ny(2026, 3, 2, 9, 0), |_, _| {
            calls.set(calls.get() + 1);
            0
        });
        assert_eq!(calls.get(), 8 * 3);
        assert_eq!(avail.len(), 8 * 3);
    }

    #[test]
    fn availability_with_a_big_booking_map() {
        // 5,000 appointments spread over the year, looked up through a HashMap.
        let r = rules();
        let mut map: HashMap<(NaiveDate, String), u32> = HashMap::new();
        let start = d(2026, 1, 1);
        for i in 0..5_000u32 {
            let date = start + TimeDelta::days(i64::from(i % 365));
            let code = &r.windows[(i % 3) as usize].code;
            *map.entry((date, code.clone())).or_default() += 1;
        }
        let now = ny(2026, 3, 2, 9, 0);
        let avail = availability(&r, now, |date, code| {
            map.get(&(date, code.to_owned())).copied().unwrap_or(0)
        });
        for a in &avail {
            let held = map
                .get(&(a.date, a.window_code.clone()))
                .copied()
                .unwrap_or(0);
            assert_eq!(a.booked, held);
            assert!(a.booked < a.capacity);
        }
        let full = map
            .iter()
            .filter(|((date, _), n)| {
                **n >= 3
                    && *date > d(2026, 3, 2)
                    && *date <= d(2026, 3, 16)
                    && r.dropoff_days.contains(&date.weekday())
            })
            .count();
        assert_eq!(avail.len() + full, 8 * 3);
    }

    // ---- check_slot ----

    #[test]
    fn check_slot_accepts_a_valid_slot() {
        let now = ny(2026, 3, 2, 9, 0);
        let slot = check_slot(&rules(), now, d(2026, 3, 5), "evening", t(17, 0)).unwrap();
        assert_eq!(
            slot,
            Slot {
                date: d(2026, 3, 5),
                window_code: "evening".to_owned(),
                start_local: d(2026, 3, 5).and_time(t(17, 0)),
                start_utc: utc(2026, 3, 5, 22, 0),
                end_utc: utc(2026, 3, 5, 23, 0),
            }
        );
        // The same slot is what availability offers.
        let avail = availability(&rules(), now, none_booked);
        assert!(avail.iter().any(|a| a.slots.contains(&slot)));
    }

    #[test]
    fn check_slot_errors() {
        let r = rules();
        // Tuesday 2026-03-03 11:30 EST.
        let now = ny(2026, 3, 3, 11, 30);
        let check = |date, code, start| check_slot(&r, now, date, code, start);
        let tue = d(2026, 3, 3);

        assert_eq!(check(tue, "morning", t(10, 0)), Err(SlotError::InPast));
        assert_eq!(
            check(d(2026, 3, 1), "evening", t(17, 0)),
            Err(SlotError::InPast)
        );
        assert_eq!(
            check(tue, "afternoon", t(12, 0)),
            Err(SlotError::TooSoon {
                min_lead_minutes: 60
            })
        );
        assert!(check(tue, "afternoon", t(13, 0)).is_ok());
        assert!(check(d(2026, 3, 17), "morning", t(10, 0)).is_ok()); // day 14
        assert_eq!(
            check(d(2026, 3, 19), "morning", t(10, 0)),
            Err(SlotError::TooFarAhead { horizon_days: 14 })
        );
        assert_eq!(
            check(d(2026, 3, 4), "morning", t(10, 0)),
            Err(SlotError::ClosedDay {
                weekday: Weekday::Wed
            })
        );
        assert_eq!(check(tue, "night", t(20, 0)), Err(SlotError::UnknownWindow));
        for bad in [t(10, 30), t(9, 0), t(12, 0), t(11, 59)] {
            assert_eq!(
                check(d(2026, 3, 5), "morning", bad),
                Err(SlotError::NotASlotStart),
                "{bad}"
            );
        }
        let with_seconds = NaiveTime::from_hms_opt(10, 0, 1).unwrap();
        assert_eq!(
            check(d(2026, 3, 5), "morning", with_seconds),
            Err(SlotError::NotASlotStart)
        );

        let mut r = rules();
        r.blackouts.insert(d(2026, 3, 5));
        r.windows[2].capacity = 0;
        assert_eq!(
            check_slot(&r, now, d(2026, 3, 5), "morning", t(10, 0)),
            Err(SlotError::Blackout)
        );
        assert_eq!(
            check_slot(&r, now, d(2026, 3, 7), "evening", t(15, 0)),
            Err(SlotError::WindowClosed)
        );
    }

    #[test]
    fn check_slot_horizon_boundary() {
        // Saturday 2026-02-28 08:00 EST.
        let now = ny(2026, 2, 28, 8, 0);
        assert!(check_slot(&rules(), now, d(2026, 3, 14), "evening", t(17, 0)).is_ok());
        assert_eq!(
            check_slot(&rules(), now, d(2026, 3, 15), "morning", t(10, 0)),
            Err(SlotError::TooFarAhead { horizon_days: 14 })
        );
    }

    #[test]
    fn slot_error_messages_read_well() {
        assert_eq!(
            SlotError::TooSoon {
                min_lead_minutes: 60
            }
            .to_string(),
            "That time is too soon. Please book at least 1 hour ahead."
        );
        assert_eq!(
            SlotError::TooSoon {
                min_lead_minutes: 150
            }
            .to_string(),
            "That time is too soon. Please book at least 2 hours 30 minutes ahead."
        );
        assert_eq!(
            SlotError::TooSoon {
                min_lead_minutes: 1
            }
            .to_string(),
            "That time is too soon. Please book at least 1 minute ahead."
        );
        assert_eq!(
            SlotError::TooFarAhead { horizon_days: 14 }.to_string(),
            "We only take bookings up to 14 days ahead. Please pick an earlier date."
        );
        assert_eq!(
            SlotError::ClosedDay {
                weekday: Weekday::Mon
            }
            .to_string(),
            "We don't take drop-offs on Mondays. Please pick another day."
        );
        for e in [
            SlotError::InPast,
            SlotError::Blackout,
            SlotError::UnknownWindow,
            SlotError::WindowClosed,
            SlotError::NotASlotStart,
            SlotError::DoesNotExist,
        ] {
            let m = e.to_string();
            assert!(m.ends_with('.') && m.len() > 20, "{m}");
        }
    }

    // ---- DST ----

    #[test]
    fn dst_offsets_around_the_2026_changes() {
        let r = rules();
        // Sat 2026-03-07 (EST) and Sun 2026-03-08 (EDT from 02:00).
        let before = ny(2026, 3, 1, 9, 0);
        let at = |now, date, start| check_slot(&r, now, date, "morning", start).unwrap();
        assert_eq!(
            at(before, d(2026, 3, 7), t(10, 0)).start_utc,
            utc(2026, 3, 7, 15, 0)
        );
        assert_eq!(
            at(before, d(2026, 3, 8), t(10, 0)).start_utc,
            utc(2026, 3, 8, 14, 0)
        );
        assert_eq!(
            at(before, d(2026, 3, 8), t(10, 0)).end_utc,
            utc(2026, 3, 8, 15, 0)
        );
        // Sat 2026-10-31 (EDT) and Sun 2026-11-01 (EST from 02:00).
        let before = ny(2026, 10, 25, 9, 0);
        assert_eq!(
            at(before, d(2026, 10, 31), t(10, 0)).start_utc,
            utc(2026, 10, 31, 14, 0)
        );
        assert_eq!(
            at(before, d(2026, 11, 1), t(10, 0)).start_utc,
            utc(2026, 11, 1, 15, 0)
        );

        // availability agrees.
        let avail = availability(&r, ny(2026, 3, 6, 9, 0), none_booked);
        let morning = |date| {
            avail
                .iter()
                .find(|a| a.date == date && a.window_code == "morning")
                .unwrap()
                .slots[0]
                .start_utc
        };
        assert_eq!(morning(d(2026, 3, 7)), utc(2026, 3, 7, 15, 0));
        assert_eq!(morning(d(2026, 3, 8)), utc(2026, 3, 8, 14, 0));
        let avail = availability(&r, ny(2026, 10, 30, 9, 0), none_booked);
        let morning = |date| {
            avail
                .iter()
                .find(|a| a.date == date && a.window_code == "morning")
                .unwrap()
                .slots[0]
                .start_utc
        };
        assert_eq!(morning(d(2026, 10, 31)), utc(2026, 10, 31, 14, 0));
        assert_eq!(morning(d(2026, 11, 1)), utc(2026, 11, 1, 15, 0));
    }

    /// Every day open, one window 01:00–04:00 local that spans the 02:00 clock changes.
    fn night_rules() -> BookingRules {
        let r = BookingRules {
            dropoff_days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            windows: vec![Window {
                code: "night".to_owned(),
                label: "Night".to_owned(),
                start: t(1, 0),
                end: t(4, 0),
                capacity: 3,
            }],
            ..rules()
        };
        assert_eq!(r.validate(), Ok(()));
        r
    }

    #[test]
    fn spring_forward_gap_is_not_a_slot() {
        let r = night_rules();
        let now = ny(2026, 3, 7, 12, 0);
        let sunday = d(2026, 3, 8);
        let avail = availability(&r, now, none_booked);
        let night = avail.iter().find(|a| a.date == sunday).unwrap();
        let starts: Vec<_> = night
            .slots
            .iter()
            .map(|s| (s.start_local.time(), s.start_utc))
            .collect();
        assert_eq!(
            starts,
            [
                (t(1, 0), utc(2026, 3, 8, 6, 0)), // 01:00 EST
                (t(3, 0), utc(2026, 3, 8, 7, 0)), // 03:00 EDT
            ]
        );
        // Other nights have all three.
        let monday = avail.iter().find(|a| a.date == d(2026, 3, 9)).unwrap();
        assert_eq!(monday.slots.len(), 3);

        assert_eq!(
            check_slot(&r, now, sunday, "night", t(2, 0)),
            Err(SlotError::DoesNotExist)
        );
        assert!(check_slot(&r, now, sunday, "night", t(1, 0)).is_ok());
        assert!(check_slot(&r, now, sunday, "night", t(3, 0)).is_ok());
    }

    #[test]
    fn fall_back_ambiguous_time_uses_the_earlier_instant() {
        let r = night_rules();
        let now = ny(2026, 10, 31, 12, 0);
        let sunday = d(2026, 11, 1);
        let slot = check_slot(&r, now, sunday, "night", t(1, 0)).unwrap();
        assert_eq!(slot.start_utc, utc(2026, 11, 1, 5, 0)); // 01:00 EDT, not 01:00 EST
        assert_eq!(slot.end_utc, utc(2026, 11, 1, 6, 0));
        let avail = availability(&r, now, none_booked);
        let night = avail.iter().find(|a| a.date == sunday).unwrap();
        let starts: Vec<_> = night.slots.iter().map(|s| s.start_utc).collect();
        assert_eq!(
            starts,
            [
                utc(2026, 11, 1, 5, 0), // 01:00 EDT
                utc(2026, 11, 1, 7, 0), // 02:00 EST
                utc(2026, 11, 1, 8, 0), // 03:00 EST
            ]
        );
    }

    #[test]
    fn invalid_rules_do_not_panic() {
        let mut r = rules();
        r.slot_minutes = 0;
        r.horizon_days = u32::MAX;
        r.min_lead_minutes = u32::MAX;
        let now = ny(2026, 3, 2, 9, 0);
        assert!(availability(&r, now, none_booked).is_empty());
        assert_eq!(
            check_slot(&r, now, d(2026, 3, 5), "morning", t(10, 0)),
            Err(SlotError::NotASlotStart)
        );
        // 90 minutes doesn't divide the 2-hour morning: only whole slots are offered.
        let mut r = rules();
        r.slot_minutes = 90;
        let avail = availability(&r, now, none_booked);
        let starts: Vec<_> = avail[..3]
            .iter()
            .map(|a| {
                a.slots
                    .iter()
                    .map(|s| s.start_local.time())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            starts,
            [
                vec![t(10, 0)],
                vec![t(12, 0), t(13, 30)],
                vec![t(15, 0), t(16, 30)]
            ]
        );
    }
}
