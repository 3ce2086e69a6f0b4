//! The weeks a report covers, one calendar for every service that reports (jobs, billing), so
//! their figures line up week by week on the owner's page.
//!
//! A week is an ISO week: Monday 00:00 to the next Monday 00:00, **UTC** (the zone every
//! timestamp is stored in). Monday 00:00 UTC is Sunday 19:00/20:00 in Baltimore, after the shop
//! closes, so a week holds one business week of the shop. A report covers the last `n` weeks,
//! the current (partial) week last.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime};

use crate::error::DomainError;

/// Weeks a report covers when the request says 0 (not given).
pub const DEFAULT_WEEKS: u32 = 12;
/// The most weeks one report covers.
pub const MAX_WEEKS: u32 = 52;

/// `n` consecutive weeks, the first starting on `first` (a Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weeks {
    first: NaiveDate,
    count: u32,
}

impl Weeks {
    /// The `n` weeks (0 = [`DEFAULT_WEEKS`]) ending with the week that holds `now`; more than
    /// [`MAX_WEEKS`] is refused with a sentence for people.
    pub fn ending(n: u32, now: NaiveDateTime) -> Result<Weeks, DomainError> {
        let count = if n == 0 { DEFAULT_WEEKS } else { n };
        if count > MAX_WEEKS {
            return Err(DomainError::invalid(format!(
                "A report covers 1 to {MAX_WEEKS} weeks, not {n}."
            )));
        }
        let today = now.date();
        let back = u64::from(today.weekday().num_days_from_monday()) + 7 * u64::from(count - 1);
        let first = today
            .checked_sub_days(Days::new(back))
            .ok_or_else(|| DomainError::invalid("That is too far back for a report."))?;
        Ok(Weeks { first, count })
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The Monday week `i` starts on.
    pub fn monday(&self, i: usize) -> NaiveDate {
        self.first
            .checked_add_days(Days::new(7 * i as u64))
            .unwrap_or(NaiveDate::MAX)
    }

    /// Every week's Monday, oldest first.
    pub fn mondays(&self) -> Vec<NaiveDate> {
        (0..self.len()).map(|i| self.monday(i)).collect()
    }

    /// When week `i` starts (Monday 00:00 UTC); `i == len()` is the end of the last week.
    pub fn start_of(&self, i: usize) -> NaiveDateTime {
        self.monday(i).and_time(NaiveTime::MIN)
    }

    /// The start of the first week.
    pub fn start(&self) -> NaiveDateTime {
        self.start_of(0)
    }

    /// The end of the last week (the next Monday 00:00), exclusive.
    pub fn end(&self) -> NaiveDateTime {
        self.start_of(self.len())
    }

    /// The week `at` falls in, if any.
    pub fn index(&self, at: NaiveDateTime) -> Option<usize> {
        if at < self.start() || at >= self.end() {
            return None;
        }
        let days = (at.date() - self.first).num_days();
        usize::try_from(days / 7).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn weeks_start_on_monday_and_end_with_the_current_one() {
        // Wednesday 2025-06-11.
        let w = Weeks::ending(3, at("2025-06-11 15:00:00")).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(
            w.mondays(),
            vec![
                NaiveDate::from_ymd_opt(2025, 5, 26).unwrap(),
                NaiveDate::from_ymd_opt(2025, 6, 2).unwrap(),
                NaiveDate::from_ymd_opt(2025, 6, 9).unwrap(),
            ]
        );
        assert_eq!(w.start(), at("2025-05-26 00:00:00"));
        assert_eq!(w.end(), at("2025-06-16 00:00:00"));
        assert_eq!(w.index(at("2025-05-25 23:59:59")), None);
        assert_eq!(w.index(at("2025-05-26 00:00:00")), Some(0));
        assert_eq!(w.index(at("2025-06-08 23:59:59")), Some(1));
        assert_eq!(w.index(at("2025-06-09 00:00:00")), Some(2));
        assert_eq!(w.index(at("2025-06-16 00:00:00")), None);
        // On a Monday the current week starts that day; on a Sunday it started six days ago.
        let monday = Weeks::ending(1, at("2025-06-09 00:00:00")).unwrap();
        assert_eq!(monday.start(), at("2025-06-09 00:00:00"));
        let sunday = Weeks::ending(1, at("2025-06-15 23:00:00")).unwrap();
        assert_eq!(sunday.start(), at("2025-06-09 00:00:00"));
    }

    #[test]
    fn zero_means_the_default_and_too_many_is_refused() {
        let now = at("2025-06-11 15:00:00");
        assert_eq!(Weeks::ending(0, now).map(|w| w.len()).ok(), Some(12));
        assert_eq!(Weeks::ending(52, now).map(|w| w.len()).ok(), Some(52));
        let e = Weeks::ending(53, now).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("A report covers 1 to 52 weeks, not 53."));
        assert_eq!(
            Weeks::ending(53, now).err().map(|e| e.code()),
            Some(tonic::Code::InvalidArgument)
        );
    }
}
