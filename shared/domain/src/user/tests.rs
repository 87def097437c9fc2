//! Users: parsing, validation and access rules.

use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::validation::ValidationErrors;

fn fields(e: &ValidationErrors) -> Vec<(&str, &str)> {
    e.errors
        .iter()
        .map(|f| (f.field.as_str(), f.message.as_str()))
        .collect()
}

#[test]
fn create_normalises_name_and_email() {
    let u = parse_new_user(br#"{"name":"  Ada Lovelace ","email":" Ada@Example.COM "}"#).unwrap();
    assert_eq!(u.name, "Ada Lovelace");
    assert_eq!(u.email, "ada@example.com");
    assert_eq!(u.user_id, None);
}

#[test]
fn create_reports_every_bad_field_by_name() {
    let e =
        parse_new_user(br#"{"name":"","email":"nope","role":"admin","version":3}"#).unwrap_err();
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
