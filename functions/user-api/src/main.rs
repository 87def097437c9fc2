//! user-api entry point: configuration and clients once per cold start, then the runtime loop.

use adapters::dynamo_users::DynamoUserStore;
use adapters::telemetry::{report_cold_start, Telemetry};
use adapters::Env;
use lambda_http::{service_fn, Request, RequestExt};
use user_api::config::Config;
use user_api::{handle, Api};

// One thread: Lambda runs one invocation at a time per process, and its work waits on AWS. No
// worker threads to start, no stacks or malloc arenas of theirs in memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let telemetry = Telemetry::init("user-api");
    let config = report_cold_start(Config::from_env(&Env::process()))?;
    let sdk = adapters::aws::load_sdk_config(&config.aws).await;
    let store = DynamoUserStore::new(adapters::aws::dynamodb_client(&sdk), &config.users_table);
    let api = Api::new(store, config.allowed_origins, &config.page_token_secret);
    let (api, telemetry) = (&api, &telemetry);
    lambda_http::run(service_fn(move |request: Request| async move {
        let context = request.lambda_context();
        let response = telemetry
            .invocation(
                &context.request_id,
                context.xray_trace_id.as_deref(),
                handle(api, request),
            )
            .await;
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
}
