//! The platform's clock, injected wherever time matters.
//!
//! Freshness checks on envelopes and nonce seeding read time only through
//! [`Clock`], so tests and demos drive time with a [`ManualClock`] instead of
//! sleeping. Times are [`Timestamp`]s: milliseconds since the Unix epoch.
//!
//! Invariant: [`SystemClock`] never panics; a system clock set before 1970
//! reads as `Timestamp(0)`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dtenge_types::Timestamp;

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// Wall-clock time from the operating system.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Timestamp(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to. Shared by `Arc` between the parts
/// of a test or demo that must agree on the time.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Arc<Self> {
        Arc::new(ManualClock { millis: AtomicU64::new(start.millis()) })
    }

    /// Show `t` from now on (may move backwards).
    pub fn set(&self, t: Timestamp) {
        self.millis.store(t.millis(), Ordering::SeqCst);
    }

    /// Move forward by `ms` milliseconds (saturating).
    pub fn advance(&self, ms: u64) {
        // fetch_update with a closure that always returns Some never fails.
        let _ = self.millis.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(ms)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance(500);
        assert_eq!(clock.now(), Timestamp(1_500));
        clock.set(Timestamp(10));
        assert_eq!(clock.now(), Timestamp(10));
        clock.set(Timestamp(u64::MAX - 1));
        clock.advance(5);
        assert_eq!(clock.now(), Timestamp(u64::MAX));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp(1_577_836_800_000));
    }
}
