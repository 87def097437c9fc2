//! Orders per second through the handler against a real endpoint (the local emulator), batches of
//! 10, and AWS calls per order; prints one JSON line (used by `make bench`):
//!
//!     bench_orders [batches]      (reads ORDERS_TABLE, INVENTORY_TABLE, PAYMENT_QUEUE_URL, ...)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use adapters::dynamo_orders::DynamoOrderStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use adapters::Env;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use domain::order::{Order, OrderEvent, PaymentRequest, Reservation};
use domain::ports::{Notifier, OrderStore, PaymentQueue};
use domain::PortError;
use order_processor::config::Config;
use order_processor::Processor;
use serde_json::json;

/// Counts calls that reach the wrapped adapter.
struct Counting<T> {
    inner: T,
    calls: AtomicUsize,
}

impl<T> Counting<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
        }
    }
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl<O: OrderStore> OrderStore for Counting<O> {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        self.tick();
        self.inner.reserve(order).await
    }
    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        self.tick();
        self.inner.record(order).await
    }
    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        self.tick();
        self.inner.get(order_id).await
    }
    async fn mark_done(&self, id: &str, paid: bool, notified: bool) -> Result<(), PortError> {
        self.tick();
        self.inner.mark_done(id, paid, notified).await
    }
}

impl<Q: PaymentQueue> PaymentQueue for Counting<Q> {
    async fn request_payment(&self, request: &PaymentRequest) -> Result<(), PortError> {
        self.tick();
        self.inner.request_payment(request).await
    }
}

impl<N: Notifier> Notifier for Counting<N> {
    async fn publish(&self, event: &OrderEvent) -> Result<(), PortError> {
        self.tick();
        self.inner.publish(event).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let config = Config::from_env(&Env::process())?;
    let sdk = adapters::aws::load_sdk_config(&config.aws).await;
    let sqs = adapters::aws::sqs_client(&sdk);
    let store = DynamoOrderStore::new(
        adapters::aws::dynamodb_client(&sdk),
        &config.orders_table,
        &config.inventory_table,
    );
    for p in 0..20 {
        store.set_stock(&format!("bench-{p}"), 1_000_000).await?;
    }
    let processor = Processor::new(
        Counting::new(store),
        Counting::new(SqsPaymentQueue::new(sqs.clone(), &config.payment_queue_url)),
        Counting::new(SnsNotifier::new(
            adapters::aws::sns_client(&sdk),
            &config.order_events_topic_arn,
        )),
        SqsDeadLetters::new(sqs, &config.orders_dlq_url),
    );
    let run = std::process::id();
    let mut batch_ms = Vec::new();
    let started = Instant::now();
    for b in 0..batches {
        let mut event = SqsEvent::default();
        for i in 0..10 {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m-{b}-{i}"));
            let items: Vec<_> = (0..3)
                .map(
                    |k| json!({"product_id": format!("bench-{}", (b + i + k) % 20), "quantity": 1}),
                )
                .collect();
            m.body = Some(json!({"order_id": format!("bench-{run}-{b}-{i}"), "user_id": "u", "items": items, "total_amount": "19.99"}).to_string());
            event.records.push(m);
        }
        let t = Instant::now();
        let response = processor.process_batch(event).await;
        batch_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !response.batch_item_failures.is_empty() {
            return Err(format!(
                "batch {b} had failures: {:?}",
                response.batch_item_failures.len()
            )
            .into());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let orders = (batches * 10) as f64;
    batch_ms.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "batches": batches,
            "orders": orders,
            "orders_per_s": orders / seconds,
            "batch_p50_ms": batch_ms[batch_ms.len() / 2],
            "dynamodb_calls_per_order": processor.orders.calls.load(Ordering::Relaxed) as f64 / orders,
            "sqs_calls_per_order": processor.payments.calls.load(Ordering::Relaxed) as f64 / orders,
            "sns_calls_per_order": processor.notifier.calls.load(Ordering::Relaxed) as f64 / orders,
        })
    );
    Ok(())
}
