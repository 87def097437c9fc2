//! order-processor entry point: configuration and clients once per cold start, then the runtime loop.

use adapters::dynamo_orders::DynamoOrderStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsExpiryQueue, SqsPaymentQueue};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use order_processor::config::Config;
use order_processor::Processor;
use settings::Env;
use telemetry::{report_cold_start, Telemetry};

// One thread: Lambda runs one invocation at a time per process, and its work waits on AWS. No
// worker threads to start, no stacks or malloc arenas of theirs in memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let telemetry = Telemetry::init("order-processor");
    // lambda_runtime stores each invocation's trace id with setenv: this process's setenv keeps it in
    // one buffer, where glibc's would keep every value for the life of the process.
    telemetry::trace_id_env::check_setenv_replaced();
    let config = report_cold_start(Config::from_env(&Env::from_process()))?;
    let sdk = adapters::aws::load_sdk_config(&config.aws).await;
    let sqs = adapters::aws::sqs_client(&sdk);
    let processor = Processor::new(
        DynamoOrderStore::new(
            adapters::aws::dynamodb_client(&sdk),
            &config.orders_table,
            &config.inventory_table,
        ),
        SqsPaymentQueue::new(sqs.clone(), &config.payment_queue_url),
        SnsNotifier::new(
            adapters::aws::sns_client(&sdk),
            &config.order_events_topic_arn,
        ),
        SqsDeadLetters::new(sqs.clone(), &config.orders_dlq_url),
    )
    .with_expiry(SqsExpiryQueue::new(sqs, &config.expiry_queue_url))
    .with_payment_timeout(config.payment_timeout);
    let (processor, telemetry) = (&processor, &telemetry);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = domain::Deadline::from_epoch_ms(event.context.deadline);
        let response: SqsBatchResponse = telemetry
            .invocation(
                &event.context.request_id,
                event.context.xray_trace_id.as_deref(),
                processor.handle_batch_within(event.payload, deadline),
            )
            .await;
        Ok::<_, Error>(response)
    }))
    .await
}
