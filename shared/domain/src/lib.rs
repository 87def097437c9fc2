//! The suite's domain: types, validation, business rules, port traits and errors.
//!
//! Nothing here knows about AWS. Adapters (in `shared/adapters`) implement the ports with the AWS SDK;
//! the functions' handlers are plain async functions over the ports, so unit tests drive them with the
//! in-memory implementations behind the `testing` feature.

pub mod deadline;
pub mod error;
pub mod idempotency;
pub mod image;
pub mod order;
pub mod page_token;
pub mod ports;
pub mod settlement;
pub mod user;
pub mod validation;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use deadline::Deadline;
pub use error::PortError;
