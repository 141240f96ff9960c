//! The send window: when a message may reach a customer, in the customer's
//! own time zone, on business days only.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::records::SendWindow;

/// How far ahead we look for an open window before giving up (a window with
/// no days, or a year of holidays).
const HORIZON_DAYS: i64 = 400;

/// Whether messages may go out on `date` (a local date).
pub fn is_send_day(window: &SendWindow, holidays: &[Date], date: Date) -> bool {
    window.days.contains(&date.weekday()) && !holidays.contains(&date)
}

/// The first instant at or after `from` inside the window, in zone `tz`.
///
/// Opening and closing times are local wall-clock times. On a day where a
/// DST change makes the opening time not exist (spring forward) it opens at
/// the first valid instant after the gap; where it exists twice (fall back)
/// it opens at the earlier one. `None` if the window never opens within
/// [`HORIZON_DAYS`] (no weekday allowed, or every day a holiday).
pub fn next_send_time(
    window: &SendWindow,
    holidays: &[Date],
    tz: &TimeZone,
    from: Timestamp,
) -> Option<Timestamp> {
    let first = from.to_zoned_datetime(tz.clone()).date();
    for offset in 0..HORIZON_DAYS {
        let date = first.checked_add(offset.days()).ok()?;
        if !is_send_day(window, holidays, date) {
            continue;
        }
        // "compatible" disambiguation: a gap resolves forward, a fold to the earlier instant.
        let open = tz.to_timestamp(date.to_datetime(window.start)).ok()?;
        let close = tz.to_timestamp(date.to_datetime(window.end)).ok()?;
        if from < close {
            return Some(open.max(from));
        }
    }
    None
}

/// Whether `at` is inside the window in zone `tz`.
pub fn in_window(window: &SendWindow, holidays: &[Date], tz: &TimeZone, at: Timestamp) -> bool {
    next_send_time(window, holidays, tz, at) == Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Time, date};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[test]
    fn inside_the_window_sends_now() {
        let w = SendWindow::default();
        // Tuesday 2026-12-01 10:00 in Berlin = 09:00 UTC.
        let now = ts("2026-12-01T09:00:00Z");
        assert_eq!(next_send_time(&w, &[], &berlin(), now), Some(now));
        assert!(in_window(&w, &[], &berlin(), now));
    }

    #[test]
    fn before_opening_waits_for_local_eight() {
        let w = SendWindow::default();
        // 05:00 UTC = 06:00 Berlin on Tuesday → 08:00 Berlin = 07:00 UTC.
        let t = next_send_time(&w, &[], &berlin(), ts("2026-12-01T05:00:00Z"));
        assert_eq!(t, Some(ts("2026-12-01T07:00:00Z")));
    }

    #[test]
    fn after_closing_on_friday_waits_for_monday() {
        let w = SendWindow::default();
        // Friday 2026-12-04 21:30 Berlin (20:30 UTC) → Monday 12-07 08:00 Berlin.
        let t = next_send_time(&w, &[], &berlin(), ts("2026-12-04T20:30:00Z"));
        assert_eq!(t, Some(ts("2026-12-07T07:00:00Z")));
    }

    #[test]
    fn closing_time_is_exclusive() {
        let w = SendWindow::default();
        // Exactly 21:00 Berlin on Tuesday is closed.
        let t = next_send_time(&w, &[], &berlin(), ts("2026-12-01T20:00:00Z"));
        assert_eq!(t, Some(ts("2026-12-02T07:00:00Z")));
    }

    #[test]
    fn holidays_are_skipped() {
        let w = SendWindow::default();
        let holidays = [date(2026, 12, 24), date(2026, 12, 25)];
        // Wednesday 23rd after closing → Thu 24 and Fri 25 holidays, weekend → Mon 28.
        let t = next_send_time(&w, &holidays, &berlin(), ts("2026-12-23T21:00:00Z"));
        assert_eq!(t, Some(ts("2026-12-28T07:00:00Z")));
    }

    #[test]
    fn the_customers_zone_decides_not_utc() {
        let w = SendWindow::default();
        let now = ts("2026-12-01T14:00:00Z"); // 09:00 in New York, 23:00 in Tokyo
        let ny = TimeZone::get("America/New_York").unwrap();
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(next_send_time(&w, &[], &ny, now), Some(now));
        // Tokyo: Tuesday 23:00 closed → Wednesday 08:00 JST = Tuesday 23:00 UTC.
        assert_eq!(
            next_send_time(&w, &[], &tokyo, now),
            Some(ts("2026-12-01T23:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_keeps_local_opening_time() {
        let w = SendWindow::default();
        let ny = TimeZone::get("America/New_York").unwrap();
        // Friday 2026-03-06 after close; DST starts Sunday 03-08. Monday 03-09
        // 08:00 EDT = 12:00 UTC (was 13:00 UTC the week before).
        let t = next_send_time(&w, &[], &ny, ts("2026-03-07T03:00:00Z"));
        assert_eq!(t, Some(ts("2026-03-09T12:00:00Z")));
        let before = next_send_time(&w, &[], &ny, ts("2026-02-28T03:00:00Z"));
        assert_eq!(before, Some(ts("2026-03-02T13:00:00Z")));
    }

    #[test]
    fn an_opening_time_inside_the_dst_gap_moves_forward() {
        // A window opening at 02:30 on the night clocks jump 02:00 → 03:00.
        let w = SendWindow {
            start: Time::constant(2, 30, 0, 0),
            end: Time::constant(21, 0, 0, 0),
            days: SendWindow::default().days,
        };
        let ny = TimeZone::get("America/New_York").unwrap();
        // Monday 2026-03-09 is not the change day (Sunday); use a Sunday-inclusive window.
        let mut w_all = w.clone();
        w_all.days.push(jiff::civil::Weekday::Sunday);
        let t = next_send_time(&w_all, &[], &ny, ts("2026-03-08T05:00:00Z")).unwrap();
        // 02:30 does not exist on 03-08; the compatible instant is 03:30 EDT = 07:30 UTC.
        assert_eq!(t, ts("2026-03-08T07:30:00Z"));
    }

    #[test]
    fn fall_back_opens_at_the_earlier_instant() {
        let w = SendWindow {
            start: Time::constant(1, 30, 0, 0),
            end: Time::constant(21, 0, 0, 0),
            days: vec![jiff::civil::Weekday::Sunday],
        };
        let ny = TimeZone::get("America/New_York").unwrap();
        // 2026-11-01 01:30 happens twice; the first is 05:30 UTC (EDT).
        let t = next_send_time(&w, &[], &ny, ts("2026-11-01T00:00:00Z")).unwrap();
        assert_eq!(t, ts("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn a_window_without_days_never_opens() {
        let w = SendWindow {
            days: vec![],
            ..SendWindow::default()
        };
        assert_eq!(
            next_send_time(&w, &[], &berlin(), ts("2026-12-01T09:00:00Z")),
            None
        );
    }
}
