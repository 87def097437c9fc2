//! order-settlement entry point: configuration and clients once per cold start, then the runtime loop.

// The SDK clients and the runtime loop nest deep futures.
#![recursion_limit = "256"]

use adapters::dynamo_orders::DynamoOrderStore;
use adapters::sns::SnsNotifier;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use order_settlement::config::Config;
use order_settlement::Settler;
use settings::Env;
use telemetry::{report_cold_start, Telemetry};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let telemetry = Telemetry::init("order-settlement");
    // lambda_runtime stores each invocation's trace id with setenv: this process's setenv keeps it in
    // one buffer, where glibc's would keep every value for the life of the process.
    telemetry::trace_id_env::check_setenv_replaced();
    let config = report_cold_start(Config::from_env(&Env::from_process()))?;
    let sdk = adapters::aws::load_sdk_config(&config.aws).await;
    let settler = Settler::new(
        DynamoOrderStore::new(
            adapters::aws::dynamodb_client(&sdk),
            &config.orders_table,
            &config.inventory_table,
        ),
        SnsNotifier::new(
            adapters::aws::sns_client(&sdk),
            &config.order_events_topic_arn,
        ),
        &config.payment_results_queue_arn,
        &config.expiry_queue_arn,
    );
    let (settler, telemetry) = (&settler, &telemetry);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = domain::Deadline::from_epoch_ms(event.context.deadline);
        let response: SqsBatchResponse = telemetry
            .invocation(
                &event.context.request_id,
                event.context.xray_trace_id.as_deref(),
                settler.handle_batch_within(event.payload, deadline),
            )
            .await;
        Ok::<_, Error>(response)
    }))
    .await
}
