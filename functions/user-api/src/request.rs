//! What a request says: the verified caller from the authorizer's claims, its headers
//! (`Content-Type`, `If-Match`, `Idempotency-Key`), its body within the size limit, and the id in
//! its path.

use domain::idempotency;
use domain::user::{Caller, MAX_BODY_BYTES};
use domain::validation::ValidationErrors;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;
use uuid::Uuid;

use crate::problem::ApiError;

/// `cognito:groups` as API Gateway passes it on: a JSON array (a direct invocation), the HTTP API's
/// rendering of an array as `[admin staff]`, or the REST API's plain string for one group.
///
/// Cognito group names may contain commas, quotes and brackets but never whitespace, so the only
/// separator is whitespace: a group named `x,admin` or `"admin"` is that group, never `admin`.
/// Nothing is parsed as JSON from inside a string, since a group name could make it look like JSON.
pub fn parse_groups(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::String(text) => {
            let text = text.trim();
            let inner = text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(text);
            inner.split_whitespace().map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

/// The `email` claim, only when the identity provider says it was verified (`email_verified`
/// `true`, as a boolean or, flattened by API Gateway, as a string). Normalised like a profile email.
pub(crate) fn verified_email(email: Option<&str>, verified: Option<&str>) -> Option<String> {
    (verified == Some("true"))
        .then_some(email?)
        .and_then(|e| domain::user::validate_email(e).ok())
}

/// The verified caller from the authorizer's claims (HTTP API JWT or REST Cognito authorizer).
pub fn caller(request: &Request) -> Option<Caller> {
    let (sub, groups, verified_email) = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => {
            let claims = &ctx.authorizer.as_ref()?.jwt.as_ref()?.claims;
            let groups = claims
                .get("cognito:groups")
                .map(|g| parse_groups(&Value::String(g.clone())))
                .unwrap_or_default();
            let email = verified_email(
                claims.get("email").map(String::as_str),
                claims.get("email_verified").map(String::as_str),
            );
            (claims.get("sub")?.clone(), groups, email)
        }
        RequestContext::ApiGatewayV1(ctx) => {
            let claims = ctx.authorizer.fields.get("claims")?;
            let sub = claims.get("sub")?.as_str()?.to_string();
            let groups = claims
                .get("cognito:groups")
                .map(parse_groups)
                .unwrap_or_default();
            let verified = match claims.get("email_verified") {
                Some(Value::Bool(true)) => Some("true"),
                Some(Value::String(s)) => Some(s.as_str()),
                _ => None,
            };
            let email = verified_email(claims.get("email").and_then(Value::as_str), verified);
            (sub, groups, email)
        }
        _ => return None,
    };
    let subject = sub.trim().to_string();
    (!subject.is_empty()).then_some(Caller {
        subject,
        groups,
        verified_email,
    })
}

pub(crate) fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn require_json(request: &Request) -> Result<(), ApiError> {
    let media = header(request, "content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

pub(crate) fn body_bytes(request: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        Err(ApiError::PayloadTooLarge)
    } else {
        Ok(bytes)
    }
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ValidationErrors::single("id", "must be a UUID").into())
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// No `If-Match`: the write is unconditional.
    None,
    /// `If-Match: *`: any current representation.
    Any,
    /// The opaque parts of the strong entity tags listed. Weak tags (`W/"..."`) and anything that
    /// is not a quoted tag are left out: RFC 9110 compares If-Match strongly, so they never match.
    Strong(Vec<String>),
}

/// `If-Match`, every field line of it. A value that is not visible ASCII is refused (400), never
/// read as an absent header, which would turn a conditional write into an unconditional one.
pub(crate) fn if_match(request: &Request) -> Result<Precondition, ApiError> {
    let mut lines = request.headers().get_all("if-match").iter().peekable();
    if lines.peek().is_none() {
        return Ok(Precondition::None);
    }
    let mut tags = Vec::new();
    for line in lines {
        let text = line
            .to_str()
            .ok()
            .filter(|t| {
                t.bytes()
                    .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ValidationErrors::single(
                    "If-Match",
                    "must be \"*\" or a list of entity tags in visible ASCII",
                )
            })?;
        for tag in text.split(',').map(str::trim) {
            if tag == "*" {
                return Ok(Precondition::Any);
            }
            if let Some(opaque) = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
            {
                tags.push(opaque.to_string());
            }
        }
    }
    Ok(Precondition::Strong(tags))
}

/// `Idempotency-Key`, `None` when absent; 400 when it is not 1 to 255 bytes of visible ASCII.
pub(crate) fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(raw) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    raw.to_str()
        .ok()
        .filter(|k| idempotency::valid_key(k))
        .map(|k| Some(k.to_string()))
        .ok_or_else(|| {
            ValidationErrors::single(
                "Idempotency-Key",
                format!(
                    "must be 1 to {} characters of visible ASCII",
                    idempotency::MAX_KEY_BYTES
                ),
            )
            .into()
        })
}
