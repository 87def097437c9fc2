//! Orders through the handler in batches of 10 (three lines each); prints one JSON line (used by
//! `make bench`):
//!
//!     bench_orders [batches]                  against a real endpoint (the local emulator): orders
//!                                             per second and AWS calls per order (reads
//!                                             ORDERS_TABLE, INVENTORY_TABLE, PAYMENT_QUEUE_URL, ...)
//!     bench_orders --in-memory [batches]      the in-memory ports: the handler's own time per batch

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use adapters::dynamo_orders::DynamoOrderStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use domain::order::{Order, OrderEvent, PaymentRequest, Reservation};
use domain::ports::{DeadLetters, Notifier, OrderStore, PaymentQueue, TraceHeader};
use domain::testing::{
    InMemoryOrderStore, RecordingDeadLetters, RecordingNotifier, RecordingPaymentQueue,
};
use domain::PortError;
use order_processor::config::Config;
use order_processor::Processor;
use serde_json::json;
use settings::Env;

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
    async fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.tick();
        self.inner.request_payment(request, trace).await
    }
}

impl<N: Notifier> Notifier for Counting<N> {
    async fn publish(
        &self,
        event: &OrderEvent,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.tick();
        self.inner.publish(event, trace).await
    }
}

/// Ten orders of three lines each over `products` products, with ids unique to this run.
fn batch(run: u32, b: usize, products: usize) -> SqsEvent {
    let mut event = SqsEvent::default();
    for i in 0..10 {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m-{b}-{i}"));
        let items: Vec<_> = (0..3)
            .map(|k| json!({"product_id": format!("bench-{}", (b + i + k) % products), "quantity": 1}))
            .collect();
        m.body = Some(json!({"order_id": format!("bench-{run}-{b}-{i}"), "user_id": "u", "items": items, "total_amount": "19.99"}).to_string());
        event.records.push(m);
    }
    event
}

/// Batches `first..first + batches` through `handle_batch` (new order ids each); the time of each
/// in milliseconds, sorted.
async fn run_batches<O, P, N, D>(
    processor: &Processor<O, P, N, D>,
    first: usize,
    batches: usize,
) -> Result<Vec<f64>, Box<dyn std::error::Error>>
where
    O: OrderStore,
    P: PaymentQueue,
    N: Notifier,
    D: DeadLetters,
{
    let run = std::process::id();
    let mut batch_ms = Vec::with_capacity(batches);
    for b in first..first + batches {
        let event = batch(run, b, 20);
        let t = Instant::now();
        let response = processor.handle_batch(event).await;
        batch_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !response.batch_item_failures.is_empty() {
            return Err(format!(
                "batch {b} had failures: {:?}",
                response.batch_item_failures.len()
            )
            .into());
        }
    }
    batch_ms.sort_by(f64::total_cmp);
    Ok(batch_ms)
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

const WARM_UP: usize = 50;

async fn in_memory(batches: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = InMemoryOrderStore::default();
    for p in 0..20 {
        store.set_stock(&format!("bench-{p}"), 1_000_000);
    }
    let processor = Processor::new(
        store,
        RecordingPaymentQueue::default(),
        RecordingNotifier::default(),
        RecordingDeadLetters::default(),
    );
    // Warm-up: allocator, tracing, first-use paths.
    run_batches(&processor, 0, WARM_UP).await?;
    let started = Instant::now();
    let batch_ms = run_batches(&processor, WARM_UP, batches).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "batches": batches,
            "orders": batches * 10,
            "orders_per_s": (batches * 10) as f64 / seconds,
            "batch_p50_us": percentile(&batch_ms, 50) * 1000.0,
            "batch_p99_us": percentile(&batch_ms, 99) * 1000.0,
        })
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let memory = args.first().is_some_and(|a| a == "--in-memory");
    if memory {
        args.remove(0);
    }
    let batches: usize = args
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if memory { 2000 } else { 30 })
        .max(1);
    if memory {
        return in_memory(batches).await;
    }
    let config = Config::from_env(&Env::from_process())?;
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
    let started = Instant::now();
    let batch_ms = run_batches(&processor, 0, batches).await?;
    let seconds = started.elapsed().as_secs_f64();
    let orders = (batches * 10) as f64;
    println!(
        "{}",
        json!({
            "batches": batches,
            "orders": orders,
            "orders_per_s": orders / seconds,
            "batch_p50_ms": percentile(&batch_ms, 50),
            "dynamodb_calls_per_order": processor.orders.calls.load(Ordering::Relaxed) as f64 / orders,
            "sqs_calls_per_order": processor.payments.calls.load(Ordering::Relaxed) as f64 / orders,
            "sns_calls_per_order": processor.notifier.calls.load(Ordering::Relaxed) as f64 / orders,
        })
    );
    Ok(())
}
