//! Who may do what: the verified caller, the actions on users, and the rule that only admins act
//! on profiles other than their own.

use uuid::Uuid;

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
