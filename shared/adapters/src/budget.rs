//! How much of an invocation a batch of messages may use: until a reserve before the deadline
//! Lambda gives, so the function still answers with its per-message report.

use std::future::Future;
use std::time::Duration;

use domain::Deadline;
use time::OffsetDateTime;
use tokio::time::Instant;

/// Time kept back from the invocation's deadline to return the batch response: building the list
/// of failures, the telemetry of the batch and the post to the runtime API are local work
/// (milliseconds); the rest is room for a slow scheduler on a busy host. Past the deadline Lambda
/// kills the invocation and SQS redelivers the whole batch, the finished messages with the rest.
pub const REPORT_RESERVE: Duration = Duration::from_secs(1);

/// The time a batch has, fixed when it starts: by the wall clock (`clock`, simulated in tests)
/// before each message, and by the runtime's timer for work in flight.
pub struct BatchBudget {
    deadline: Option<Deadline>,
    clock: fn() -> OffsetDateTime,
    reserve: Duration,
    /// The runtime's timer for cutting work in flight, from the wall clock once.
    cutoff: Option<Instant>,
}

impl BatchBudget {
    /// Without a deadline the batch has all the time it needs.
    pub fn start(
        deadline: Option<Deadline>,
        clock: fn() -> OffsetDateTime,
        reserve: Duration,
    ) -> Self {
        let cutoff = deadline.map(|d| Instant::now() + d.budget(clock(), reserve));
        Self {
            deadline,
            clock,
            reserve,
            cutoff,
        }
    }

    /// Whether another message may start.
    pub fn time_left(&self) -> bool {
        match (self.deadline, self.cutoff) {
            (Some(d), Some(cutoff)) => {
                !d.budget((self.clock)(), self.reserve).is_zero() && Instant::now() < cutoff
            }
            _ => true,
        }
    }

    /// Runs `work` to its end, or until the budget is spent: `None` when it was dropped there.
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        match self.cutoff {
            Some(cutoff) => tokio::time::timeout_at(cutoff, work).await.ok(),
            None => Some(work.await),
        }
    }
}
