//! The ports the processor works through, built once per cold start, and its settings.

use std::time::Duration;

use domain::ports::{ExpiryQueue, TraceHeader};
use domain::settlement::{OrderExpiry, MAX_EXPIRY_DELAY_SECS};
use domain::PortError;
use time::OffsetDateTime;

/// The ports the processor works through, built once per cold start.
pub struct Processor<O, P, N, D, E = ExpiryNotScheduled> {
    pub orders: O,
    pub payments: P,
    pub notifier: N,
    pub dead_letters: D,
    pub expiries: E,
    pub clock: fn() -> OffsetDateTime,
    /// How long a pending order waits for its payment before it expires (`PAYMENT_TIMEOUT_SECS`).
    pub payment_timeout: Duration,
}

/// Fifteen minutes: a checkout's usual hold, and the longest delay an SQS message can carry.
pub const DEFAULT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(MAX_EXPIRY_DELAY_SECS);

/// The expiry port of a processor built without one (`Processor::new`): tools and tests that
/// look only at how orders are created. The function itself always has a queue (`with_expiry`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpiryNotScheduled;

impl ExpiryQueue for ExpiryNotScheduled {
    async fn schedule_expiry(
        &self,
        _: &OrderExpiry,
        _: Duration,
        _: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        Ok(())
    }
}

impl<O, P, N, D> Processor<O, P, N, D> {
    pub fn new(orders: O, payments: P, notifier: N, dead_letters: D) -> Self {
        Self {
            orders,
            payments,
            notifier,
            dead_letters,
            expiries: ExpiryNotScheduled,
            clock: OffsetDateTime::now_utc,
            payment_timeout: DEFAULT_PAYMENT_TIMEOUT,
        }
    }
}

impl<O, P, N, D, E> Processor<O, P, N, D, E> {
    /// The same processor, scheduling each pending order's expiry on `expiries`.
    pub fn with_expiry<X: ExpiryQueue>(self, expiries: X) -> Processor<O, P, N, D, X> {
        Processor {
            orders: self.orders,
            payments: self.payments,
            notifier: self.notifier,
            dead_letters: self.dead_letters,
            expiries,
            clock: self.clock,
            payment_timeout: self.payment_timeout,
        }
    }

    /// The same processor with another payment timeout (validated by `Config`).
    pub fn with_payment_timeout(mut self, timeout: Duration) -> Self {
        self.payment_timeout = timeout;
        self
    }
}
