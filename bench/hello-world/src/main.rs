//! The smallest `lambda_runtime` function: answers every event with the event itself. Same runtime
//! and runtime flavour as the functions, so its cold start is the floor theirs are measured against.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
