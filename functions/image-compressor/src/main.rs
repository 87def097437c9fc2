//! image-compressor entry point: configuration and clients once per cold start, then the runtime loop.
#![recursion_limit = "256"]

use adapters::s3::S3ObjectStore;
use image_compressor::config::Config;
use image_compressor::Compressor;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use settings::Env;
use telemetry::{report_cold_start, Telemetry};

// One thread: Lambda runs one invocation at a time per process, and its work waits on AWS (the
// image pipeline runs on the blocking pool). No worker threads to start, no stacks or malloc arenas
// of theirs in memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let telemetry = Telemetry::init("image-compressor");
    // lambda_runtime stores each invocation's trace id with setenv: this process's setenv keeps it in
    // one buffer, where glibc's would keep every value for the life of the process.
    telemetry::trace_id_env::check_setenv_replaced();
    image_compressor::allocator::keep_freed_memory();
    let config = report_cold_start(Config::from_env(&Env::from_process()))?;
    let sdk = adapters::aws::load_sdk_config(&config.aws).await;
    let compressor = Compressor::new(
        S3ObjectStore::new(adapters::aws::s3_client(&sdk)),
        config.settings,
    );
    let (compressor, telemetry) = (&compressor, &telemetry);
    // The event is taken as plain JSON: S3 shapes vary (the local emulator omits fields), and a
    // shape we do not know is ignored rather than failed.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let outcomes = telemetry
            .invocation(
                &event.context.request_id,
                event.context.xray_trace_id.as_deref(),
                compressor.handle(event.payload),
            )
            .await?;
        Ok::<_, Error>(serde_json::json!({ "records": outcomes.len() }))
    }))
    .await
}
