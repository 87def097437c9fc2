//! user-api: a users REST API behind API Gateway (HTTP API v2 or REST v1), over a `UserStore`.
//!
//! `handle` is a plain async function from a request to a response: every outcome, including every
//! error, is a response with CORS headers; errors are `application/problem+json`. Only a failing
//! dependency produces a 5xx.

pub mod budget;
pub mod config;
pub mod problem;

use std::time::Instant;

use domain::idempotency::{self, Claim, StoredResponse};
use domain::page_token::PageTokens;
use domain::ports::{IdempotencyStore, NoIdempotency, UserStore};
use domain::user::{
    authorize, authorize_email, parse_new_user, parse_patch, parse_replacement, timestamp, Caller,
    User, UserAction, UserChanges, MAX_BODY_BYTES,
};
use domain::validation::ValidationErrors;
use domain::PortError;
use http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use telemetry::metric_catalog as catalog;
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

pub use problem::ApiError;

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub const COLLECTION_METHODS: &[&str] = &["GET", "POST", "OPTIONS"];
pub const ITEM_METHODS: &[&str] = &["GET", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// How long a claimed `Idempotency-Key` stays `IN_PROGRESS` when the request has no deadline (a
/// direct call in a test or a tool). Under Lambda the claim ends at the invocation's deadline, that
/// is at most the function's `Timeout` after it started, so a crashed request frees its key then.
pub const IN_PROGRESS_WITHOUT_DEADLINE_SECONDS: i64 = 10;

/// Everything a request needs, built once per cold start.
pub struct Api<S, I = NoIdempotency> {
    pub store: S,
    pub allowed_origins: Vec<String>,
    pub tokens: PageTokens,
    pub clock: fn() -> OffsetDateTime,
    /// Where `POST /users` records its `Idempotency-Key`s.
    pub idempotency: I,
    /// How long a completed create's answer is replayed for its key, in seconds.
    pub idempotency_ttl_seconds: i64,
}

impl<S: UserStore> Api<S> {
    pub fn new(store: S, allowed_origins: Vec<String>, page_token_secret: &str) -> Self {
        Self {
            store,
            allowed_origins,
            tokens: PageTokens::new(page_token_secret),
            clock: OffsetDateTime::now_utc,
            idempotency: NoIdempotency,
            idempotency_ttl_seconds: 0,
        }
    }
}

impl<S: UserStore, I> Api<S, I> {
    /// The same API, recording `Idempotency-Key`s in `store` for `ttl_seconds`.
    pub fn with_idempotency<J: IdempotencyStore>(self, store: J, ttl_seconds: i64) -> Api<S, J> {
        Api {
            store: self.store,
            allowed_origins: self.allowed_origins,
            tokens: self.tokens,
            clock: self.clock,
            idempotency: store,
            idempotency_ttl_seconds: ttl_seconds,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Collection,
    Item(String),
}

/// Which resource a path names, ignoring the stage prefix API Gateway keeps in the path.
pub fn route(path: &str, stage: Option<&str>) -> Option<Route> {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(stage) = stage.filter(|s| *s != "$default") {
        if segments.first() == Some(&stage) && segments.get(1) == Some(&"users") {
            segments.remove(0);
        }
    }
    match segments.as_slice() {
        ["users"] => Some(Route::Collection),
        ["users", id] => Some(Route::Item((*id).to_string())),
        _ => None,
    }
}

fn stage(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.stage.clone(),
        RequestContext::ApiGatewayV1(ctx) => ctx.stage.clone(),
        _ => None,
    }
}

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
fn verified_email(email: Option<&str>, verified: Option<&str>) -> Option<String> {
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

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn require_json(request: &Request) -> Result<(), ApiError> {
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

fn body_bytes(request: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        Err(ApiError::PayloadTooLarge)
    } else {
        Ok(bytes)
    }
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ValidationErrors::single("id", "must be a UUID").into())
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Precondition {
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
fn if_match(request: &Request) -> Result<Precondition, ApiError> {
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

fn check_if_match(precondition: &Precondition, current: &User) -> Result<(), ApiError> {
    let current_tag = etag(current);
    let current_opaque = current_tag.trim_matches('"');
    match precondition {
        Precondition::None | Precondition::Any => Ok(()),
        Precondition::Strong(tags) if tags.iter().any(|t| t == current_opaque) => Ok(()),
        Precondition::Strong(_) => Err(ApiError::PreconditionFailed),
    }
}

/// The stored user, if it exists and matches the request's `If-Match` (404 / 412 otherwise).
async fn current_matching<S: UserStore, I: IdempotencyStore>(
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

/// The user's strong entity tag: its version and a digest of its whole representation.
///
/// The digest covers `created_at`, so a profile deleted and created again at the same id (which
/// starts again at version 1) never answers to an ETag a client cached for the old one; two equal
/// tags mean byte-equal representations, as a strong validator must.
pub fn etag(user: &User) -> String {
    let representation = serde_json::to_vec(user).unwrap_or_default();
    let digest = Sha256::digest(&representation);
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{}-{hex}\"", user.version)
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn user_response(status: u16, user: &User) -> Response<Body> {
    let mut response = json_response(status, &json!(user));
    if let Ok(tag) = HeaderValue::from_str(&etag(user)) {
        response.headers_mut().insert("etag", tag);
    }
    response
}

fn problem_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status().as_u16(), &error.body());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    match error {
        ApiError::MethodNotAllowed(allowed) => {
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                headers.insert("allow", v);
            }
        }
        ApiError::Unavailable { retry_after, .. } => {
            headers.insert("retry-after", HeaderValue::from(*retry_after));
        }
        ApiError::IdempotencyInProgress => {
            headers.insert("retry-after", HeaderValue::from_static("1"));
        }
        ApiError::Unauthorized => {
            headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

fn apply_cors(response: &mut Response<Body>, origin: Option<&str>, allowed: &[String]) {
    let headers = response.headers_mut();
    let allow = if allowed.iter().any(|o| o == "*") {
        Some("*".to_string())
    } else {
        origin
            .map(|o| o.trim_end_matches('/'))
            .filter(|o| allowed.iter().any(|a| a == o))
            .map(str::to_string)
    };
    headers.insert("vary", HeaderValue::from_static("Origin"));
    if let Some(value) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert("access-control-allow-origin", value);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("ETag, Location, Retry-After"),
        );
    }
}

fn preflight(methods: &[&str]) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
        headers.insert("access-control-allow-methods", v);
    }
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization, content-type, if-match, idempotency-key"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("600"));
    response
}

/// Handles one request. Never fails: every outcome is a response.
pub async fn handle<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: Request,
) -> Response<Body> {
    handle_by(api, request, None).await
}

/// Handles one request whose answer is due by `deadline` (the invocation's): work still running
/// `budget::ANSWER_RESERVE` before it is stopped and answered 503 with `Retry-After`.
pub async fn handle_by<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: Request,
    deadline: Option<domain::Deadline>,
) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = route(request.uri().path(), stage(&request).as_deref());
    // The user id is personal data: the span carries a pseudonym, enough to group one user's requests.
    let span = tracing::info_span!(
        "api_request",
        http.request.method = %method,
        http.route = route_name(route.as_ref()),
        user = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(Route::Item(id)) = &route {
        span.record("user", telemetry::xray::pseudonym(id).as_str());
    }
    tracing::debug!(parent: &span, method = %method, route = route_name(route.as_ref()), "request routed");
    let result = budget::within(
        deadline,
        (api.clock)(),
        dispatch(api, &request, route.as_ref(), deadline).instrument(span.clone()),
    )
    .await;
    let _inside = span.enter();
    if let Some(origin) = result
        .as_ref()
        .err()
        .and_then(ApiError::cause)
        .and_then(PortError::origin)
    {
        // Where the failure came from, for a fix or a support case: never the message or the input.
        tracing::error!(
            aws_service = origin.service,
            error_code = origin.code,
            aws_request_id = origin.request_id,
            "a dependency failed the request"
        );
    }
    let mut response = result.unwrap_or_else(|e| problem_response(&e));
    apply_cors(
        &mut response,
        header(&request, "origin"),
        &api.allowed_origins,
    );
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    let route_name = route_name(route.as_ref());
    let status_class = match status {
        500.. => "5xx",
        400..=499 => "4xx",
        300..=399 => "3xx",
        _ => "2xx",
    };
    metrics::counter!(catalog::API_REQUESTS, catalog::ROUTE => route_name, catalog::STATUS_CLASS => status_class)
        .increment(1);
    metrics::histogram!(catalog::API_LATENCY, catalog::ROUTE => route_name)
        .record(started.elapsed().as_secs_f64() * 1000.0);
    tracing::info!(
        method = %method,
        route = route_name,
        status,
        duration_us = started.elapsed().as_micros() as u64,
        "request handled"
    );
    response
}

fn route_name(route: Option<&Route>) -> &'static str {
    match route {
        Some(Route::Collection) => "/users",
        Some(Route::Item(_)) => "/users/{id}",
        None => "unknown",
    }
}

async fn dispatch<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: &Request,
    route: Option<&Route>,
    deadline: Option<domain::Deadline>,
) -> Result<Response<Body>, ApiError> {
    let route = route.ok_or(ApiError::NotFound("no such resource"))?;
    let method = request.method().as_str();
    let allowed = match route {
        Route::Collection => COLLECTION_METHODS,
        Route::Item(_) => ITEM_METHODS,
    };
    if !allowed.contains(&method) {
        return Err(ApiError::MethodNotAllowed(allowed));
    }
    if method == "OPTIONS" {
        // A preflight for a resource that cannot exist is refused like the request itself would be.
        if let Route::Item(id) = route {
            parse_id(id)?;
        }
        return Ok(preflight(allowed));
    }
    let caller = caller(request).ok_or(ApiError::Unauthorized)?;
    match (route, method) {
        (Route::Collection, "GET") => list(api, request, &caller).await,
        (Route::Collection, _) => create_idempotent(api, request, &caller, deadline).await,
        (Route::Item(id), "GET") => get(api, &caller, parse_id(id)?).await,
        (Route::Item(id), "PUT") => {
            update(api, request, &caller, parse_id(id)?, Update::Replace).await
        }
        (Route::Item(id), "PATCH") => {
            update(api, request, &caller, parse_id(id)?, Update::Merge).await
        }
        (Route::Item(id), _) => delete(api, request, &caller, parse_id(id)?).await,
    }
}

/// A store error as the caller may see it: an address held by another profile is named only to
/// admins, who can list every user anyway; a member is not told whose address it is, or that
/// another profile exists at all.
fn store_error(caller: &Caller, e: PortError) -> ApiError {
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

/// How a write over an existing profile reads its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Update {
    /// `PUT`: the body is the whole profile, every field required.
    Replace,
    /// `PATCH`: a JSON merge patch; only the fields it names change.
    Merge,
}

/// The caller may do `action`, or the request ends with its 403.
fn require_permission(caller: &Caller, action: UserAction) -> Result<(), ApiError> {
    Ok(authorize(caller, action)?)
}

async fn list<S: UserStore, I: IdempotencyStore>(
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
    let next_token = page.next_cursor.map(|c| api.tokens.sign(&c.to_string()));
    Ok(json_response(
        200,
        &json!({ "users": page.users, "next_token": next_token }),
    ))
}

/// `POST /users` with an optional `Idempotency-Key`: the same key (per caller) with the same payload
/// gets the first successful answer again while its record lives; with another payload, 422; while
/// the first request still runs, 409 with `Retry-After`. A request that did not succeed releases
/// its key, so a retry runs again.
async fn create_idempotent<S: UserStore, I: IdempotencyStore>(
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

/// `Idempotency-Key`, `None` when absent; 400 when it is not 1 to 255 bytes of visible ASCII.
fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
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

/// The headers of a create's answer that a replay repeats.
const REPLAYED_HEADERS: [&str; 3] = ["location", "etag", "content-type"];

fn stored(response: &Response<Body>) -> StoredResponse {
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    StoredResponse {
        status: response.status().as_u16(),
        headers: REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        body,
    }
}

fn replay(stored: &StoredResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(stored.body.clone()));
    *response.status_mut() =
        http::StatusCode::from_u16(stored.status).unwrap_or(http::StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

async fn create<S: UserStore, I: IdempotencyStore>(
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

async fn get<S: UserStore, I: IdempotencyStore>(
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

async fn update<S: UserStore, I: IdempotencyStore>(
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

async fn delete<S: UserStore, I: IdempotencyStore>(
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
