//! user-api: a users REST API behind API Gateway (HTTP API v2 or REST v1), over a `UserStore`.
//!
//! `handle` is a plain async function from a request to a response: every outcome, including every
//! error, is a response with CORS headers; errors are `application/problem+json`. Only a failing
//! dependency produces a 5xx.
//!
//! - `http`: the request in, the response out; `routes`: path and method to an operation;
//!   `request`: what the request says (caller, headers, body, id); `responses` and `cors`: what
//!   goes back.
//! - `handlers`: list, create (with `Idempotency-Key`), get, update (PUT replaces, PATCH merges),
//!   delete, over the ports.
//! - `page_tokens`: the `next_token` signer, its key read from its secret on the first request
//!   that pages.
//! - `telemetry`: the request's span, metrics and log line, recorded in one place.

mod api;
pub mod budget;
pub mod config;
mod cors;
mod handlers;
mod http;
pub mod page_tokens;
pub mod problem;
mod request;
mod responses;
mod routes;
mod telemetry;

pub use api::{Api, DEFAULT_PAGE_SIZE, IN_PROGRESS_WITHOUT_DEADLINE_SECONDS, MAX_PAGE_SIZE};
pub use http::{handle, handle_by};
pub use problem::ApiError;
pub use request::{caller, parse_groups};
pub use responses::etag;
pub use routes::{route, Route, COLLECTION_METHODS, ITEM_METHODS};
