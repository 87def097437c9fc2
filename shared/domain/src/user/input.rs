//! Request bodies into users: per-field validation, read-only and unknown fields refused, every
//! problem reported at once.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::record::{NewUser, UserChanges};
use crate::validation::ValidationErrors;

pub const NAME_MAX_CHARS: usize = 100;
pub const EMAIL_MAX_CHARS: usize = 254;
/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const READ_ONLY: [&str; 4] = ["created_at", "updated_at", "version", "user_id"];

pub fn parse_new_user(body: &[u8]) -> Result<NewUser, ValidationErrors> {
    let object = parse_object(body)?;
    let mut errors = ValidationErrors::new();
    reject_unknown(&object, &["user_id", "name", "email"], &mut errors);
    // Absent means "mine" (or a new id for an admin); `null` is not a UUID and is refused.
    let user_id = match object.get("user_id") {
        None => None,
        Some(Value::String(s)) => match Uuid::parse_str(s.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("user_id", "must be a UUID");
                None
            }
        },
        Some(_) => {
            errors.add("user_id", "must be a string holding a UUID");
            None
        }
    };
    let name = required(&object, "name", validate_name, &mut errors);
    let email = required(&object, "email", validate_email, &mut errors);
    match (name, email) {
        (Some(name), Some(email)) if errors.is_empty() => Ok(NewUser {
            user_id,
            name,
            email,
        }),
        _ => Err(errors),
    }
}

/// `PUT`: every mutable field is required.
pub fn parse_replacement(body: &[u8]) -> Result<UserChanges, ValidationErrors> {
    let object = parse_object(body)?;
    let mut errors = ValidationErrors::new();
    reject_unknown(&object, &["name", "email"], &mut errors);
    let name = required(&object, "name", validate_name, &mut errors);
    let email = required(&object, "email", validate_email, &mut errors);
    errors.into_result(UserChanges { name, email })
}

/// `PATCH`: any mutable field, at least one.
pub fn parse_patch(body: &[u8]) -> Result<UserChanges, ValidationErrors> {
    let object = parse_object(body)?;
    let mut errors = ValidationErrors::new();
    reject_unknown(&object, &["name", "email"], &mut errors);
    let name = optional(&object, "name", validate_name, &mut errors);
    let email = optional(&object, "email", validate_email, &mut errors);
    if errors.is_empty() && name.is_none() && email.is_none() {
        errors.add("", "a patch must change at least one of: name, email");
    }
    errors.into_result(UserChanges { name, email })
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ValidationErrors> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ValidationErrors::single(
            "",
            format!("body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ValidationErrors::single("", "body must be a JSON object")),
        Err(e) => Err(ValidationErrors::single(
            "",
            format!(
                "body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}

fn reject_unknown(object: &Map<String, Value>, allowed: &[&str], errors: &mut ValidationErrors) {
    let mut keys: Vec<&String> = object
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    keys.sort();
    // Read-only fields are a known, bounded set; anything else is the client's own name, echoed
    // only in part (see `ValidationErrors::add_unknown`).
    let (read_only, unknown): (Vec<&String>, Vec<&String>) = keys
        .into_iter()
        .partition(|k| READ_ONLY.contains(&k.as_str()));
    errors.add_unknown(unknown.iter().map(|k| k.as_str()), "is not a known field");
    for key in read_only {
        errors.add(key, "is read-only");
    }
}

fn required(
    object: &Map<String, Value>,
    field: &str,
    validate: fn(&str) -> Result<String, String>,
    errors: &mut ValidationErrors,
) -> Option<String> {
    if !object.contains_key(field) {
        errors.add(field, "is required");
        return None;
    }
    optional(object, field, validate, errors)
}

fn optional(
    object: &Map<String, Value>,
    field: &str,
    validate: fn(&str) -> Result<String, String>,
    errors: &mut ValidationErrors,
) -> Option<String> {
    match object.get(field)? {
        Value::String(s) => match validate(s) {
            Ok(v) => Some(v),
            Err(message) => {
                errors.add(field, message);
                None
            }
        },
        _ => {
            errors.add(field, "must be a string");
            None
        }
    }
}

/// A display name: 1–100 characters after trimming, no control characters.
pub fn validate_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > NAME_MAX_CHARS {
        return Err(format!("must be at most {NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

/// An e-mail address in the common `local@domain.tld` form, normalised to lower case.
pub fn validate_email(raw: &str) -> Result<String, String> {
    const INVALID: &str = "must be a valid e-mail address";
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("must not be empty".into());
    }
    if email.chars().count() > EMAIL_MAX_CHARS {
        return Err(format!("must be at most {EMAIL_MAX_CHARS} characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(INVALID.into());
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if local_ok && domain_ok {
        Ok(email)
    } else {
        Err(INVALID.into())
    }
}
