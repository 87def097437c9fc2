//! Which resource a path names and which handler a method on it reaches.

use domain::ports::{IdempotencyStore, UserStore};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::api::Api;
use crate::cors::preflight;
use crate::handlers::{create_idempotent, delete, get, list, update, Update};
use crate::problem::ApiError;
use crate::request::{caller, parse_id};

pub const COLLECTION_METHODS: &[&str] = &["GET", "POST", "OPTIONS"];

pub const ITEM_METHODS: &[&str] = &["GET", "PUT", "PATCH", "DELETE", "OPTIONS"];

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

pub(crate) fn stage(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.stage.clone(),
        RequestContext::ApiGatewayV1(ctx) => ctx.stage.clone(),
        _ => None,
    }
}

pub(crate) fn route_name(route: Option<&Route>) -> &'static str {
    match route {
        Some(Route::Collection) => "/users",
        Some(Route::Item(_)) => "/users/{id}",
        None => "unknown",
    }
}

pub(crate) async fn dispatch<S: UserStore, I: IdempotencyStore>(
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
