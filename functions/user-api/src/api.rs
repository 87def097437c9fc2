//! Everything a request needs, built once per cold start, and the API's limits.

use domain::ports::{IdempotencyStore, NoIdempotency, UserStore};
use time::OffsetDateTime;

use crate::page_tokens::LazyPageTokens;

pub const DEFAULT_PAGE_SIZE: u32 = 20;

pub const MAX_PAGE_SIZE: u32 = 100;

/// How long a claimed `Idempotency-Key` stays `IN_PROGRESS` when the request has no deadline (a
/// direct call in a test or a tool). Under Lambda the claim ends at the invocation's deadline, that
/// is at most the function's `Timeout` after it started, so a crashed request frees its key then.
pub const IN_PROGRESS_WITHOUT_DEADLINE_SECONDS: i64 = 10;

/// Everything a request needs, built once per cold start.
pub struct Api<S, I = NoIdempotency> {
    pub store: S,
    pub allowed_origins: Vec<String>,
    /// Signs and verifies `next_token`; its key is read on the first request that pages.
    pub tokens: LazyPageTokens,
    pub clock: fn() -> OffsetDateTime,
    /// Where `POST /users` records its `Idempotency-Key`s.
    pub idempotency: I,
    /// How long a completed create's answer is replayed for its key, in seconds.
    pub idempotency_ttl_seconds: i64,
}

impl<S: UserStore> Api<S> {
    /// The API with the page-token key at hand (local runs and tests).
    pub fn new(store: S, allowed_origins: Vec<String>, page_token_secret: &str) -> Self {
        Self::with_page_tokens(
            store,
            allowed_origins,
            LazyPageTokens::ready(page_token_secret),
        )
    }

    /// The API signing page tokens with the key `tokens` holds or reads when first needed.
    pub fn with_page_tokens(
        store: S,
        allowed_origins: Vec<String>,
        tokens: LazyPageTokens,
    ) -> Self {
        Self {
            store,
            allowed_origins,
            tokens,
            clock: OffsetDateTime::now_utc,
            idempotency: NoIdempotency,
            idempotency_ttl_seconds: 0,
        }
    }
}

impl<S: UserStore, I> Api<S, I> {
    /// The same API, recording `Idempotency-Key`s in `store` for `ttl_seconds`.
    pub fn with_idempotency<J: IdempotencyStore>(self, store: J, ttl_seconds: i64) -> Api<S, J> {
        Api {
            store: self.store,
            allowed_origins: self.allowed_origins,
            tokens: self.tokens,
            clock: self.clock,
            idempotency: store,
            idempotency_ttl_seconds: ttl_seconds,
        }
    }
}
