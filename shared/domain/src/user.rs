//! Users: the record, input parsing with per-field validation, and who may do what.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::validation::ValidationErrors;

pub const NAME_MAX_CHARS: usize = 100;
pub const EMAIL_MAX_CHARS: usize = 254;
/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Starts at 1, grows by one on every change; the API's `ETag`.
    pub version: u64,
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Chosen by the caller (a member creates their own profile under their subject id), else generated.
    pub user_id: Option<Uuid>,
    pub name: String,
    pub email: String,
}

/// A validated change: `PUT` sets both fields, `PATCH` one or both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl NewUser {
    pub fn into_user(self, user_id: Uuid, now: OffsetDateTime) -> User {
        User {
            user_id,
            name: self.name,
            email: self.email,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

impl User {
    /// The user after `changes`, one version on. Unchanged fields keep their value.
    pub fn with_changes(&self, changes: &UserChanges, now: OffsetDateTime) -> User {
        User {
            user_id: self.user_id,
            name: changes.name.clone().unwrap_or_else(|| self.name.clone()),
            email: changes.email.clone().unwrap_or_else(|| self.email.clone()),
            created_at: self.created_at,
            updated_at: now,
            version: self.version + 1,
        }
    }
}

/// Timestamps are stored and shown in UTC with millisecond precision.
pub fn timestamp(now: OffsetDateTime) -> OffsetDateTime {
    let utc = now.to_offset(time::UtcOffset::UTC);
    let millis = utc.nanosecond() / 1_000_000 * 1_000_000;
    utc.replace_nanosecond(millis).unwrap_or(utc)
}

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

/// The verified identity behind a request (from the JWT authorizer's claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub groups: Vec<String>,
    /// The identity provider's verified e-mail address (the `email` claim when `email_verified` is
    /// true), normalised like a profile's; `None` when the token carries no verified address.
    pub verified_email: Option<String>,
}

pub const ADMIN_GROUP: &str = "admin";

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMIN_GROUP)
    }

    /// Whether the caller is the user `id` (their subject is that UUID).
    pub fn owns(&self, id: Uuid) -> bool {
        Uuid::parse_str(&self.subject).is_ok_and(|sub| sub == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    List,
    Create(Uuid),
    Read(Uuid),
    Change(Uuid),
    Delete(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub &'static str);

/// Admins may do everything; anyone else only acts on the profile whose id is their own subject.
pub fn authorize(caller: &Caller, action: UserAction) -> Result<(), Forbidden> {
    if caller.is_admin() {
        return Ok(());
    }
    match action {
        UserAction::List => Err(Forbidden("only administrators may list users")),
        UserAction::Create(id) if !caller.owns(id) => Err(Forbidden(
            "you may only create your own profile (user_id must be your subject id)",
        )),
        UserAction::Read(id) | UserAction::Change(id) | UserAction::Delete(id)
            if !caller.owns(id) =>
        {
            Err(Forbidden("you may only access your own profile"))
        }
        _ => Ok(()),
    }
}

/// Members may give their profile only the address they proved they own; admins any address.
///
/// This is what stops a member from reserving someone else's address (squatting it) and from
/// probing which addresses are taken: the only address a member can ever be told about is their own.
pub fn authorize_email(caller: &Caller, email: &str) -> Result<(), Forbidden> {
    if caller.is_admin() || caller.verified_email.as_deref() == Some(email) {
        Ok(())
    } else {
        Err(Forbidden(
            "your profile's email must be the verified email of your sign-in (the email claim of your ID token)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: &ValidationErrors) -> Vec<(&str, &str)> {
        e.errors
            .iter()
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect()
    }

    #[test]
    fn create_normalises_name_and_email() {
        let u =
            parse_new_user(br#"{"name":"  Ada Lovelace ","email":" Ada@Example.COM "}"#).unwrap();
        assert_eq!(u.name, "Ada Lovelace");
        assert_eq!(u.email, "ada@example.com");
        assert_eq!(u.user_id, None);
    }

    #[test]
    fn create_reports_every_bad_field_by_name() {
        let e = parse_new_user(br#"{"name":"","email":"nope","role":"admin","version":3}"#)
            .unwrap_err();
        assert_eq!(
            fields(&e),
            vec![
                ("role", "is not a known field"),
                ("version", "is read-only"),
                ("name", "must not be empty"),
                ("email", "must be a valid e-mail address"),
            ]
        );
    }

    #[test]
    fn create_requires_name_and_email() {
        let e = parse_new_user(b"{}").unwrap_err();
        assert_eq!(
            fields(&e),
            vec![("name", "is required"), ("email", "is required")]
        );
    }

    #[test]
    fn malformed_and_non_object_bodies_are_document_errors() {
        let e = parse_new_user(b"{\"name\":").unwrap_err();
        assert_eq!(e.errors[0].field, "");
        assert!(e.errors[0].message.starts_with("body is not valid JSON"));
        let e = parse_new_user(b"[1,2]").unwrap_err();
        assert_eq!(fields(&e), vec![("", "body must be a JSON object")]);
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(parse_new_user(&big).unwrap_err().errors[0]
            .message
            .contains("at most"));
    }

    #[test]
    fn wrong_types_are_named() {
        let e = parse_new_user(br#"{"name":"A","email":"a@b.co","user_id":null}"#).unwrap_err();
        assert_eq!(
            fields(&e),
            vec![("user_id", "must be a string holding a UUID")]
        );
        let e = parse_new_user(br#"{"name":5,"email":null,"user_id":"x"}"#).unwrap_err();
        assert_eq!(
            fields(&e),
            vec![
                ("user_id", "must be a UUID"),
                ("name", "must be a string"),
                ("email", "must be a string")
            ]
        );
    }

    #[test]
    fn name_length_counts_characters_after_trimming() {
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert!(validate_name(&format!("  {}  ", "a".repeat(100))).is_ok());
        assert_eq!(
            validate_name(&"a".repeat(101)).unwrap_err(),
            "must be at most 100 characters"
        );
        assert!(validate_name("a\u{0}b").is_err());
        assert!(validate_name("   ").is_err());
    }

    #[test]
    fn email_rules() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y@ex-ample.io",
        ] {
            assert!(validate_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a..b@ex.com",
            ".a@ex.com",
            "a@-ex.com",
            "a@ex..com",
            "a b@ex.com",
            "a@b@ex.com",
            "a@ex.c0m",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert!(validate_email(&long).is_err());
    }

    #[test]
    fn patch_needs_a_change_and_put_needs_both_fields() {
        assert_eq!(
            fields(&parse_patch(b"{}").unwrap_err()),
            vec![("", "a patch must change at least one of: name, email")]
        );
        let p = parse_patch(br#"{"name":"B"}"#).unwrap();
        assert_eq!(
            p,
            UserChanges {
                name: Some("B".into()),
                email: None
            }
        );
        assert_eq!(
            fields(&parse_replacement(br#"{"name":"B"}"#).unwrap_err()),
            vec![("email", "is required")]
        );
        assert_eq!(
            fields(&parse_patch(br#"{"user_id":"abc"}"#).unwrap_err()),
            vec![("user_id", "is read-only")]
        );
    }

    #[test]
    fn changes_bump_the_version_and_keep_creation_time() {
        let t0 = timestamp(OffsetDateTime::UNIX_EPOCH);
        let t1 = t0 + time::Duration::seconds(5);
        let user = NewUser {
            user_id: None,
            name: "A".into(),
            email: "a@b.co".into(),
        }
        .into_user(Uuid::nil(), t0);
        let changed = user.with_changes(
            &UserChanges {
                name: Some("B".into()),
                email: None,
            },
            t1,
        );
        assert_eq!(changed.version, 2);
        assert_eq!(changed.name, "B");
        assert_eq!(changed.email, "a@b.co");
        assert_eq!(changed.created_at, t0);
        assert_eq!(changed.updated_at, t1);
    }

    #[test]
    fn timestamps_are_utc_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        let s = timestamp(t);
        assert_eq!(s.offset(), time::UtcOffset::UTC);
        assert_eq!(s.nanosecond(), 123_000_000);
    }

    #[test]
    fn authorisation_matrix() {
        let me = Uuid::new_v4();
        let other = Uuid::new_v4();
        let member = Caller {
            subject: me.to_string(),
            groups: vec!["staff".into()],
            verified_email: Some("me@example.com".into()),
        };
        let admin = Caller {
            subject: "someone".into(),
            groups: vec!["admin".into()],
            verified_email: None,
        };
        for action in [
            UserAction::List,
            UserAction::Create(other),
            UserAction::Read(other),
            UserAction::Change(other),
            UserAction::Delete(other),
        ] {
            assert!(authorize(&admin, action).is_ok());
            assert!(authorize(&member, action).is_err(), "{action:?}");
        }
        for action in [
            UserAction::Create(me),
            UserAction::Read(me),
            UserAction::Change(me),
            UserAction::Delete(me),
        ] {
            assert!(authorize(&member, action).is_ok(), "{action:?}");
        }
        let not_uuid = Caller {
            subject: "not-a-uuid".into(),
            groups: vec![],
            verified_email: None,
        };
        assert!(authorize(&not_uuid, UserAction::Read(me)).is_err());

        assert!(authorize_email(&member, "me@example.com").is_ok());
        assert!(authorize_email(&member, "someone.else@example.com").is_err());
        assert!(authorize_email(&not_uuid, "me@example.com").is_err());
        assert!(authorize_email(&admin, "anyone@example.com").is_ok());
    }
}
