//! The five operations on users, each a plain async function over the ports: the caller's
//! permission, the input checked, the store called, the response built.

use domain::idempotency::{self, Claim};
use domain::ports::{IdempotencyStore, UserStore};
use domain::user::{
    authorize, authorize_email, parse_new_user, parse_patch, parse_replacement, timestamp, Caller,
    User, UserAction, UserChanges,
};
use domain::validation::ValidationErrors;
use domain::PortError;
use http::header::HeaderValue;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use uuid::Uuid;

use crate::api::{Api, DEFAULT_PAGE_SIZE, IN_PROGRESS_WITHOUT_DEADLINE_SECONDS, MAX_PAGE_SIZE};
use crate::problem::ApiError;
use crate::request::{body_bytes, idempotency_key, if_match, require_json, Precondition};
use crate::responses::{etag, json_response, replay, stored, user_response};

pub(crate) async fn list<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    require_permission(caller, UserAction::List)?;
    let mut errors = ValidationErrors::new();
    let params = request.query_string_parameters_ref();
    let mut limit = DEFAULT_PAGE_SIZE;
    let mut after = None;
    if let Some(params) = params {
        let mut unknown: Vec<&str> = params
            .iter()
            .map(|(name, _)| name)
            .filter(|name| *name != "limit" && *name != "next_token")
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        errors.add_unknown(
            unknown,
            "is not a known query parameter (use limit, next_token)",
        );
        if let Some(raw) = params.first("limit") {
            match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => limit = n,
                _ => errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                ),
            }
        }
        if let Some(token) = params.first("next_token") {
            match api
                .tokens
                .get()
                .await?
                .verify(token)
                .ok()
                .and_then(|c| Uuid::parse_str(&c).ok())
            {
                Some(cursor) => after = Some(cursor),
                None => errors.add("next_token", "is not a token this API issued"),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let page = api.store.list(limit, after).await?;
    let next_token = match page.next_cursor {
        Some(cursor) => Some(api.tokens.get().await?.sign(&cursor.to_string())),
        None => None,
    };
    Ok(json_response(
        200,
        &json!({ "users": page.users, "next_token": next_token }),
    ))
}

/// `POST /users` with an optional `Idempotency-Key`: the same key (per caller) with the same payload
/// gets the first successful answer again while its record lives; with another payload, 422; while
/// the first request still runs, 409 with `Retry-After`. A request that did not succeed releases
/// its key, so a retry runs again.
pub(crate) async fn create_idempotent<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    caller: &Caller,
    deadline: Option<domain::Deadline>,
) -> Result<Response<Body>, ApiError> {
    let Some(key) = idempotency_key(request)? else {
        return create(api, request, caller).await;
    };
    let record = idempotency::record_key(&caller.subject, &key);
    let payload = idempotency::payload_hash(
        request.method().as_str(),
        request.uri().path(),
        request.body().as_ref(),
    );
    let now = (api.clock)().unix_timestamp();
    let in_progress_until = deadline
        .map(|d| (d.epoch_ms() as i64 + 999) / 1000)
        .unwrap_or(now + IN_PROGRESS_WITHOUT_DEADLINE_SECONDS);
    match api
        .idempotency
        .claim(&record, &payload, now, in_progress_until)
        .await?
    {
        Claim::Completed(stored) => Ok(replay(&stored)),
        Claim::InProgress => Err(ApiError::IdempotencyInProgress),
        Claim::PayloadMismatch => Err(ApiError::IdempotencyKeyReused),
        Claim::Claimed => {
            let result = create(api, request, caller).await;
            let outcome = match &result {
                Ok(response) if response.status().is_success() => {
                    api.idempotency
                        .complete(
                            &record,
                            &payload,
                            &stored(response),
                            now + api.idempotency_ttl_seconds,
                        )
                        .await
                }
                _ => api.idempotency.release(&record).await,
            };
            if let Err(e) = outcome {
                // The create's own answer stands; the key frees itself when its record expires.
                tracing::warn!(error = %e, "the idempotency record could not be updated");
            }
            result
        }
    }
}

pub(crate) async fn create<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    require_json(request)?;
    let new_user = parse_new_user(body_bytes(request)?)?;
    let user_id = match new_user.user_id {
        Some(id) => id,
        None if caller.is_admin() => Uuid::new_v4(),
        // A member's profile lives under their own subject id.
        None => Uuid::parse_str(&caller.subject).map_err(|_| {
            ApiError::Forbidden("your identity has no UUID subject to create a profile under")
        })?,
    };
    require_permission(caller, UserAction::Create(user_id))?;
    authorize_email(caller, &new_user.email)?;
    let user = new_user.into_user(user_id, timestamp((api.clock)()));
    api.store
        .create(&user)
        .await
        .map_err(|e| store_error(caller, e))?;
    let mut response = user_response(201, &user);
    let location = format!("{}/{}", request.uri().path().trim_end_matches('/'), user_id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert("location", v);
    }
    Ok(response)
}

pub(crate) async fn get<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    caller: &Caller,
    id: Uuid,
) -> Result<Response<Body>, ApiError> {
    require_permission(caller, UserAction::Read(id))?;
    let user = api
        .store
        .get(id)
        .await?
        .ok_or(ApiError::NotFound("no user with this id"))?;
    Ok(user_response(200, &user))
}

pub(crate) async fn update<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    caller: &Caller,
    id: Uuid,
    how: Update,
) -> Result<Response<Body>, ApiError> {
    require_permission(caller, UserAction::Change(id))?;
    require_json(request)?;
    let body = body_bytes(request)?;
    let changes: UserChanges = match how {
        Update::Merge => parse_patch(body)?,
        Update::Replace => parse_replacement(body)?,
    };
    if let Some(email) = &changes.email {
        authorize_email(caller, email)?;
    }
    let current = current_matching(api, request, id).await?;
    let updated = current.with_changes(&changes, timestamp((api.clock)()));
    api.store
        .update(&current, &updated)
        .await
        .map_err(|e| store_error(caller, e))?;
    Ok(user_response(200, &updated))
}

pub(crate) async fn delete<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    caller: &Caller,
    id: Uuid,
) -> Result<Response<Body>, ApiError> {
    require_permission(caller, UserAction::Delete(id))?;
    let current = current_matching(api, request, id).await?;
    api.store.delete(&current).await?;
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    Ok(response)
}

/// How a write over an existing profile reads its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// `PUT`: the body is the whole profile, every field required.
    Replace,
    /// `PATCH`: a JSON merge patch; only the fields it names change.
    Merge,
}

/// The caller may do `action`, or the request ends with its 403.
pub(crate) fn require_permission(caller: &Caller, action: UserAction) -> Result<(), ApiError> {
    Ok(authorize(caller, action)?)
}

/// A store error as the caller may see it: an address held by another profile is named only to
/// admins, who can list every user anyway; a member is not told whose address it is, or that
/// another profile exists at all.
pub(crate) fn store_error(caller: &Caller, e: PortError) -> ApiError {
    match e {
        PortError::AlreadyExists(what) if what == "email" && !caller.is_admin() => {
            ApiError::Conflict(
                "your profile cannot be saved with this email; an administrator can resolve it"
                    .into(),
            )
        }
        other => other.into(),
    }
}

pub(crate) fn check_if_match(precondition: &Precondition, current: &User) -> Result<(), ApiError> {
    let current_tag = etag(current);
    let current_opaque = current_tag.trim_matches('"');
    match precondition {
        Precondition::None | Precondition::Any => Ok(()),
        Precondition::Strong(tags) if tags.iter().any(|t| t == current_opaque) => Ok(()),
        Precondition::Strong(_) => Err(ApiError::PreconditionFailed),
    }
}

/// The stored user, if it exists and matches the request's `If-Match` (404 / 412 otherwise).
pub(crate) async fn current_matching<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    id: Uuid,
) -> Result<User, ApiError> {
    let precondition = if_match(request)?;
    let current = api
        .store
        .get(id)
        .await?
        .ok_or(ApiError::NotFound("no user with this id"))?;
    check_if_match(&precondition, &current)?;
    Ok(current)
}
