//! Users: the record, input parsing with per-field validation, and who may do what.

mod access;
mod input;
mod record;

pub use access::{authorize, authorize_email, Caller, Forbidden, UserAction, ADMIN_GROUP};
pub use input::{
    parse_new_user, parse_patch, parse_replacement, validate_email, validate_name, EMAIL_MAX_CHARS,
    MAX_BODY_BYTES, NAME_MAX_CHARS,
};
pub use record::{timestamp, NewUser, User, UserChanges};

#[cfg(test)]
mod tests;
