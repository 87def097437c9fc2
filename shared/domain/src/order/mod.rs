//! Orders: the SQS message, exact money, validation and the order record with its side-effect progress.

mod event_type;
mod events;
mod message;
mod money;
mod record;

pub use event_type::EventType;
pub use events::{OrderEvent, PaymentRequest};
pub use message::{
    parse_order_message, validate_id, OrderLine, OrderRequest, PoisonReason, MAX_ID_CHARS,
    MAX_ITEMS, MAX_QUANTITY,
};
pub use money::{Money, MAX_MINOR_UNITS};
pub use record::{Order, OrderStatus, ParkReason, Reservation};

#[cfg(test)]
mod tests;
