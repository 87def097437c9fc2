//! user-api entry point: configuration and clients once per cold start, then the runtime loop.

use std::sync::OnceLock;

use adapters::dynamo_idempotency::DynamoIdempotencyStore;
use adapters::dynamo_users::DynamoUserStore;
use adapters::secrets::read_configured_secret;
use lambda_http::{service_fn, Request, RequestExt};
use settings::Env;
use telemetry::{report_cold_start, Telemetry};
use user_api::config::{Config, PageTokenKey, PAGE_TOKEN_SECRET_ARN};
use user_api::page_tokens::LazyPageTokens;
use user_api::{handle_by, Api};

// One thread: Lambda runs one invocation at a time per process, and its work waits on AWS. No
// worker threads to start, no stacks or malloc arenas of theirs in memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let telemetry = Telemetry::init("user-api");
    // lambda_runtime stores each invocation's trace id with setenv: this process's setenv keeps it in
    // one buffer, where glibc's would keep every value for the life of the process.
    telemetry::trace_id_env::check_setenv_replaced();
    let config = report_cold_start(Config::from_env(&Env::from_process()))?;
    let sdk = adapters::aws::load_sdk_config(&config.aws).await;
    // The pagination-token key: read from its secret by the first request that pages (most never
    // do), so a cold start makes no Secrets Manager call. That request builds the Secrets Manager
    // client too: building one parses the service's endpoint rules, init work a `GET` never needs.
    let page_tokens = match config.page_token_key {
        PageTokenKey::Secret(arn) => {
            let (sdk, secrets) = (sdk.clone(), OnceLock::new());
            LazyPageTokens::read_on_first_use(move || {
                let secrets = secrets
                    .get_or_init(|| adapters::aws::secrets_client(&sdk))
                    .clone();
                let arn = arn.clone();
                async move { read_configured_secret(&secrets, PAGE_TOKEN_SECRET_ARN, &arn).await }
            })
        }
        PageTokenKey::Local(key) => LazyPageTokens::ready(key),
    };
    let dynamodb = adapters::aws::dynamodb_client(&sdk);
    let store = DynamoUserStore::new(dynamodb.clone(), &config.users_table);
    // Idempotency records live in the users table under their own key prefix.
    let keys = DynamoIdempotencyStore::new(dynamodb, &config.users_table);
    let api = Api::with_page_tokens(store, config.allowed_origins, page_tokens)
        .with_idempotency(keys, config.idempotency_ttl_seconds);
    let (api, telemetry) = (&api, &telemetry);
    lambda_http::run(service_fn(move |request: Request| async move {
        let context = request.lambda_context();
        let deadline = domain::Deadline::from_epoch_ms(context.deadline);
        let response = telemetry
            .invocation(
                &context.request_id,
                context.xray_trace_id.as_deref(),
                handle_by(api, request, deadline),
            )
            .await;
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
}
