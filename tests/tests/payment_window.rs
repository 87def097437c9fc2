//! A payment request is never sent twice, even when the flag recording it keeps failing past the
//! payment queue's deduplication window. Against its own moto server whose FIFO window is shortened
//! to 3 s (AWS: 5 minutes), with the processor's send window shortened to 2 s (default: 4 minutes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use domain::order::{Order, PaymentRequest, Reservation};
use domain::ports::{OrderStore, PaymentQueue};
use domain::PortError;
use integration_tests as h;
use order_processor::{Outcome, Processor};
use serde_json::json;

const DEDUP_SECS: u64 = 3;

/// The real store, except that recording finished side effects fails while `failing` is set.
struct FlagWriteFails<O> {
    store: O,
    failing: AtomicBool,
}

impl<O: OrderStore> OrderStore for FlagWriteFails<O> {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        self.store.reserve(order).await
    }
    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        self.store.record(order).await
    }
    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        self.store.get(order_id).await
    }
    async fn mark_done(&self, id: &str, paid: bool, notified: bool) -> Result<(), PortError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable(
                "dynamodb: injected flag-write failure".into(),
            ));
        }
        self.store.mark_done(id, paid, notified).await
    }
}

fn error_code(message: &aws_sdk_sqs::types::Message) -> String {
    message.message_attributes().unwrap()["error_code"]
        .string_value()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn no_second_payment_request_after_the_queue_forgets_the_first() {
    let emulator = h::start_emulator_with(&["--sqs-dedup-seconds", &DEDUP_SECS.to_string()]);
    let config = h::sdk_config_for(&emulator.endpoint, &h::test_settings()).await;
    let stack = h::create_order_stack(&config).await;
    let store = stack.store(&config);
    store.set_stock("widget", 5).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let payments = SqsPaymentQueue::new(sqs.clone(), &stack.payment_url);

    // Control: past the shortened window the queue accepts a repeat as a new message, so the
    // assertion below can fail.
    let control = PaymentRequest {
        order_id: "control".into(),
        user_id: "u".into(),
        amount_minor: 100,
        amount: "1.00".into(),
    };
    payments.request_payment(&control, None).await.unwrap();
    payments.request_payment(&control, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(DEDUP_SECS * 1000 + 500)).await;
    payments.request_payment(&control, None).await.unwrap();
    assert_eq!(
        h::drain(&config, &stack.payment_url).await.len(),
        2,
        "the emulator deduplicates inside its window and forgets after it"
    );

    let processor = Processor::new(
        FlagWriteFails {
            store: store.clone(),
            failing: AtomicBool::new(true),
        },
        payments,
        SnsNotifier::new(aws_sdk_sns::Client::new(&config), &stack.topic),
        SqsDeadLetters::new(sqs, &stack.dlq_url),
    )
    .with_payment_window(Duration::from_secs(DEDUP_SECS - 1));
    let body = json!({"order_id": "ord-w1", "user_id": "u1",
        "items": [{"product_id": "widget", "quantity": 2}], "total_amount": "4.00"})
    .to_string();
    // First delivery: stock reserved and the payment sent, but the flag write fails.
    assert!(matches!(
        processor.process_message("m1", &body).await,
        Outcome::Retry(_)
    ));
    // Redelivered after the queue's window: sending now would be a second charge.
    tokio::time::sleep(Duration::from_millis(DEDUP_SECS * 1000 + 500)).await;
    processor.orders.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        processor.process_message("m1", &body).await,
        Outcome::Parked
    );

    let sent = h::drain(&config, &stack.payment_url).await;
    assert_eq!(sent.len(), 1, "exactly one payment request for the order");
    let parked = h::drain(&config, &stack.dlq_url).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(error_code(&parked[0]), "PAYMENT_UNCONFIRMED");
    assert_eq!(parked[0].body(), Some(body.as_str()));
    assert_eq!(
        store.stock("widget").await.unwrap(),
        Some(3),
        "deducted once"
    );
    let order = store.get("ord-w1").await.unwrap().unwrap();
    assert!(
        !order.payment_requested,
        "the record still shows the payment as unconfirmed"
    );
}
