//! A request's time budget: its work stops in time for the function to answer before the
//! invocation's deadline.
//!
//! The SDK's per-operation timeout bounds one dependency call, not a request: the longest path
//! (read, transaction, read again) at the deployed timeouts is longer than the function's timeout.
//! Past the deadline Lambda kills the invocation and API Gateway answers a bare 500 with neither
//! CORS headers nor a problem document, so the request's work runs under a timeout that ends
//! `ANSWER_RESERVE` before the deadline, and a request cut by it is answered 503 with `Retry-After`.

use std::future::Future;
use std::time::Duration;

use domain::{Deadline, PortError};
use time::OffsetDateTime;

use crate::ApiError;

/// Time kept back from the deadline to write the answer: the problem document, the CORS headers,
/// the telemetry of the request and the post to the runtime API, all local work (milliseconds),
/// with room for a slow scheduler on a busy host.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(500);

/// What a request cut by its budget tells the client: retry after this many seconds, when a
/// dependency that was slow has had time to recover.
pub const RETRY_AFTER_SECS: u32 = 2;

/// The error of a request whose work ran out of time.
pub fn out_of_time() -> ApiError {
    ApiError::Unavailable {
        retry_after: RETRY_AFTER_SECS,
        cause: PortError::Unavailable(
            "the request's time budget ran out before its dependencies answered".into(),
        ),
    }
}

/// Runs `work` until `ANSWER_RESERVE` before `deadline` (measured from `now`); without a deadline
/// it runs to the end. A cut request is dropped where it stands: each step it may have left half
/// done is a single conditional write, applied wholly or not at all, so a retry sees either
/// state and gets a precise answer (the new ETag, 404, 409 or 412).
pub async fn within<T, F>(
    deadline: Option<Deadline>,
    now: OffsetDateTime,
    work: F,
) -> Result<T, ApiError>
where
    F: Future<Output = Result<T, ApiError>>,
{
    let Some(deadline) = deadline else {
        return work.await;
    };
    let budget = deadline.budget(now, ANSWER_RESERVE);
    if budget.is_zero() {
        tracing::warn!("request refused: no time left before the invocation's deadline");
        return Err(out_of_time());
    }
    match tokio::time::timeout(budget, work).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "request stopped before the invocation's deadline"
            );
            Err(out_of_time())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn work_that_outlasts_the_budget_is_cut_with_the_reserve_left() {
        let now = OffsetDateTime::now_utc();
        let deadline = Deadline::after(now, ANSWER_RESERVE + Duration::from_millis(300));
        let started = Instant::now();
        let result: Result<(), ApiError> = within(Some(deadline), now, async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        })
        .await;
        assert_eq!(result, Err(out_of_time()));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(
            took < Duration::from_millis(300) + ANSWER_RESERVE,
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn work_that_fits_keeps_its_own_answer_and_none_starts_without_time() {
        let now = OffsetDateTime::now_utc();
        let deadline = Deadline::after(now, Duration::from_secs(10));
        let result = within(Some(deadline), now, async { Ok::<_, ApiError>(7) }).await;
        assert_eq!(result, Ok(7));
        let late = Deadline::after(now, ANSWER_RESERVE / 2);
        let result = within(Some(late), now, async { Ok::<_, ApiError>(7) }).await;
        assert_eq!(result, Err(out_of_time()), "no time left: nothing starts");
        let result = within(None, now, async { Ok::<_, ApiError>(7) }).await;
        assert_eq!(result, Ok(7));
    }
}
