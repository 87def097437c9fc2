//! The time an invocation must have answered by, and how much of it a piece of work may use.
//!
//! Lambda gives each invocation a deadline in milliseconds since the Unix epoch; past it the
//! runtime is stopped and the caller gets the platform's error instead of the function's answer.
//! A handler turns the deadline into a budget once, at the start, with its own clock, so tests
//! drive it with a simulated one.

use std::time::Duration;

use time::OffsetDateTime;

/// 2001-09-09T01:46:40Z: no Lambda deadline is earlier.
const NOT_BEFORE_EPOCH_MS: u64 = 1_000_000_000_000;

/// When the current invocation is cut off (wall-clock time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    epoch_ms: u64,
}

impl Deadline {
    /// A deadline in milliseconds since the Unix epoch, as the Lambda runtime reports it. A value
    /// that cannot be a wall-clock time of this century means the runtime gave none: zero in a
    /// hand-built context, and `cargo lambda watch`'s Runtime API, which sends a constant 600000
    /// (ten minutes as a duration, 1970 as a time) that would make every invocation look late.
    pub fn from_epoch_ms(epoch_ms: u64) -> Option<Self> {
        (epoch_ms >= NOT_BEFORE_EPOCH_MS).then_some(Self { epoch_ms })
    }

    /// The deadline `after` from `now`.
    pub fn after(now: OffsetDateTime, after: Duration) -> Self {
        let now_ms = epoch_ms(now);
        Self {
            epoch_ms: now_ms.saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// Time left at `now`; zero once the deadline has passed.
    pub fn remaining(&self, now: OffsetDateTime) -> Duration {
        Duration::from_millis(self.epoch_ms.saturating_sub(epoch_ms(now)))
    }

    /// Time left at `now` for work that must leave `reserve` to answer: zero when the reserve
    /// already takes all of it.
    pub fn budget(&self, now: OffsetDateTime, reserve: Duration) -> Duration {
        self.remaining(now).saturating_sub(reserve)
    }
}

/// Milliseconds since the Unix epoch; zero for a time before it.
fn epoch_ms(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
    }

    #[test]
    fn zero_or_a_duration_means_no_deadline() {
        assert_eq!(Deadline::from_epoch_ms(0), None);
        // What `cargo lambda watch` sends in `Lambda-Runtime-Deadline-Ms`.
        assert_eq!(Deadline::from_epoch_ms(600_000), None);
        assert_eq!(Deadline::from_epoch_ms(NOT_BEFORE_EPOCH_MS - 1), None);
        assert_eq!(
            Deadline::from_epoch_ms(1_700_000_010_000).map(|d| d.epoch_ms()),
            Some(1_700_000_010_000)
        );
    }

    #[test]
    fn remaining_counts_down_with_the_clock_and_stops_at_zero() {
        let start = 1_700_000_000_000;
        let deadline = Deadline::after(at(start), Duration::from_secs(10));
        assert_eq!(deadline.epoch_ms(), 1_700_000_010_000);
        assert_eq!(deadline.remaining(at(start)), Duration::from_secs(10));
        assert_eq!(
            deadline.remaining(at(start + 7_250)),
            Duration::from_millis(2_750)
        );
        assert_eq!(deadline.remaining(at(start + 10_000)), Duration::ZERO);
        assert_eq!(deadline.remaining(at(start + 60_000)), Duration::ZERO);
    }

    #[test]
    fn the_budget_leaves_the_reserve_and_is_never_negative() {
        let start = 1_700_000_000_000;
        let deadline = Deadline::after(at(start), Duration::from_secs(10));
        let reserve = Duration::from_millis(1_500);
        assert_eq!(
            deadline.budget(at(start), reserve),
            Duration::from_millis(8_500)
        );
        assert_eq!(deadline.budget(at(start + 8_500), reserve), Duration::ZERO);
        assert_eq!(deadline.budget(at(start + 9_999), reserve), Duration::ZERO);
    }
}
