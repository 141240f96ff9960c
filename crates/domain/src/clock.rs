//! Time is injected: the domain never reads the system clock.

use jiff::Timestamp;

/// A source of "now". The binary passes the system clock; tests pass a fixed one.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
