//! Chaos soak for order-processor (`make chaos`): worker processes are killed at random points and
//! restarted while SQS on the moto server redelivers what they held. Then every reserved order ends:
//! the payment service's answers (approved, declined, none) and expiries are applied by
//! order-settlement concurrently, each delivered twice, with expiries racing payments and late
//! successes. At the end every order must be in a final state, stock = initial − the quantities of
//! `PAID` orders exactly, exactly one payment request per reserved order, one announcement per order
//! and transition (after deduplication by event id), and a refund asked for every success that
//! arrived after its order had ended.
//!
//! `chaos [--orders N] [--workers W] [--kill-rate P]`: the supervisor. `chaos worker`: one worker,
//! configured by the supervisor through `CHAOS_*` environment variables.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adapters::config::AwsSettings;
use adapters::dynamo_orders::DynamoOrderStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use domain::order::{Order, OrderEvent, OrderStatus, PaymentRequest, Reservation};
use domain::ports::{Notifier, OrderStore, PaymentQueue, TraceHeader};
use domain::PortError;
use integration_tests as h;
use order_processor::Processor;
use order_settlement::{Outcome as Settled, Settler};
use serde_json::json;

type Failure = Box<dyn std::error::Error>;

/// Exit codes a worker dies with at each kill point (the supervisor's SIGKILLs come on top).
const KILL_POINTS: [(&str, i32); 4] = [
    ("after the stock transaction", 81),
    ("after the payment request", 82),
    ("after the notification", 83),
    ("before acknowledging the batch", 84),
];
const VISIBILITY_SECONDS: &str = "3";

#[tokio::main]
async fn main() -> ExitCode {
    let result = if std::env::args().nth(1).as_deref() == Some("worker") {
        worker().await
    } else {
        supervisor().await
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::FAILURE
        }
    }
}

fn var(name: &str) -> Result<String, Failure> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// A small xorshift generator: no dependency, seeded per process.
struct Dice(AtomicU64);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(AtomicU64::new(seed | 1))
    }
    fn next(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        x
    }
    fn chance(&self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Wraps a port and kills this process right after the wrapped call succeeded, with probability
/// `rate`: the effect happened, nobody recorded it.
struct Killer<T> {
    inner: T,
    dice: &'static Dice,
    rate: f64,
    code: i32,
}

impl<T> Killer<T> {
    fn maybe_die(&self) {
        if self.dice.chance(self.rate) {
            std::process::exit(self.code);
        }
    }
}

impl<O: OrderStore> OrderStore for Killer<O> {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        let r = self.inner.reserve(order).await?;
        self.maybe_die();
        Ok(r)
    }
    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        let r = self.inner.record(order).await?;
        self.maybe_die();
        Ok(r)
    }
    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        self.inner.get(order_id).await
    }
    async fn mark_done(&self, order_id: &str, paid: bool, notified: bool) -> Result<(), PortError> {
        self.inner.mark_done(order_id, paid, notified).await
    }
}

impl<Q: PaymentQueue> PaymentQueue for Killer<Q> {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.inner.request_payment(request, trace).await?;
        self.maybe_die();
        Ok(())
    }
}

impl<N: Notifier> Notifier for Killer<N> {
    async fn publish(
        &self,
        event: &OrderEvent,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.inner.publish(event, trace).await?;
        self.maybe_die();
        Ok(())
    }
}

fn settings() -> AwsSettings {
    AwsSettings {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_attempts: 3,
    }
}

async fn worker() -> Result<ExitCode, Failure> {
    let config = h::sdk_config_for(&var("CHAOS_ENDPOINT")?, &settings()).await;
    let rate: f64 = var("CHAOS_KILL_RATE")?.parse()?;
    let dice: &'static Dice = Box::leak(Box::new(Dice::new(seed())));
    let sqs = aws_sdk_sqs::Client::new(&config);
    let processor = Processor::new(
        Killer {
            inner: DynamoOrderStore::new(
                aws_sdk_dynamodb::Client::new(&config),
                var("CHAOS_ORDERS_TABLE")?,
                var("CHAOS_INVENTORY_TABLE")?,
            ),
            dice,
            rate,
            code: KILL_POINTS[0].1,
        },
        Killer {
            inner: SqsPaymentQueue::new(sqs.clone(), &var("CHAOS_PAYMENTS")?),
            dice,
            rate,
            code: KILL_POINTS[1].1,
        },
        Killer {
            inner: SnsNotifier::new(aws_sdk_sns::Client::new(&config), &var("CHAOS_TOPIC")?),
            dice,
            rate,
            code: KILL_POINTS[2].1,
        },
        SqsDeadLetters::new(sqs.clone(), &var("CHAOS_DLQ")?),
    );
    let queue = var("CHAOS_QUEUE")?;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages().to_vec(),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let response = processor.handle_batch(h::sqs_event(&messages)).await;
        if dice.chance(rate) {
            std::process::exit(KILL_POINTS[3].1);
        }
        let failed: BTreeSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        // What Lambda does with a partial batch response: delete the rest. A stale handle (the
        // message timed out and went to another worker) is that worker's to acknowledge.
        for m in &messages {
            if failed.contains(m.message_id().unwrap_or_default()) {
                continue;
            }
            if let Some(handle) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&queue)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

struct Options {
    orders: usize,
    workers: usize,
    kill_rate: f64,
}

fn options() -> Result<Options, Failure> {
    let mut o = Options {
        orders: 2000,
        workers: 4,
        kill_rate: 0.01,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).ok_or("every option takes a value")?;
        match args[i].as_str() {
            "--orders" => o.orders = value.parse()?,
            "--workers" => o.workers = value.parse()?,
            "--kill-rate" => o.kill_rate = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    Ok(o)
}

async fn supervisor() -> Result<ExitCode, Failure> {
    let o = options()?;
    let started = Instant::now();
    let config = h::sdk_config().await;
    let stack = h::create_order_stack(&config).await;
    let queue = h::create_queue(&config, "orders", false).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(QueueAttributeName::VisibilityTimeout, VISIBILITY_SECONDS)
        .send()
        .await?;
    let store = stack.store(&config);

    // Demand averages 3 units per order over 8 products; stock covers about 80% of it.
    const PRODUCTS: usize = 8;
    let initial = (o.orders as i64 * 3 * 8 / 10 / PRODUCTS as i64).max(1);
    for p in 0..PRODUCTS {
        store.set_stock(&format!("p{p}"), initial).await?;
    }
    let mut lines_of: BTreeMap<String, Vec<(usize, u32)>> = BTreeMap::new();
    let mut bodies = Vec::new();
    for i in 0..o.orders {
        let id = format!("chaos-{i:05}");
        let mut lines = vec![(i % PRODUCTS, (i % 3 + 1) as u32)];
        if i % 2 == 0 && (i / 2 + 1) % PRODUCTS != i % PRODUCTS {
            lines.push(((i / 2 + 1) % PRODUCTS, 1));
        }
        let items: Vec<_> = lines
            .iter()
            .map(|(p, q)| json!({"product_id": format!("p{p}"), "quantity": q}))
            .collect();
        let body = json!({"order_id": id, "user_id": format!("user-{}", i % 97), "items": items, "total_amount": "12.50"}).to_string();
        if i % 10 == 0 {
            bodies.push(body.clone()); // a duplicate delivery from the producer
        }
        bodies.push(body);
        lines_of.insert(id, lines);
    }
    for chunk in bodies.chunks(10) {
        let mut batch = sqs.send_message_batch().queue_url(&queue);
        for (n, body) in chunk.iter().enumerate() {
            batch = batch.entries(
                SendMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .message_body(body)
                    .build()?,
            );
        }
        batch.send().await?;
    }

    let exe = std::env::current_exe()?;
    let spawn = || -> Result<Child, Failure> {
        Ok(Command::new(&exe)
            .arg("worker")
            .env("CHAOS_ENDPOINT", &h::emulator().endpoint)
            .env("CHAOS_ORDERS_TABLE", &stack.orders_table)
            .env("CHAOS_INVENTORY_TABLE", &stack.inventory_table)
            .env("CHAOS_QUEUE", &queue)
            .env("CHAOS_PAYMENTS", &stack.payment_url)
            .env("CHAOS_TOPIC", &stack.topic)
            .env("CHAOS_DLQ", &stack.dlq_url)
            .env("CHAOS_KILL_RATE", o.kill_rate.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?)
    };
    let mut workers: Vec<Child> = (0..o.workers).map(|_| spawn()).collect::<Result<_, _>>()?;
    let mut kills: BTreeMap<String, u64> = BTreeMap::new();
    let dice = Dice::new(seed());
    let deadline = started + Duration::from_secs(30 * 60);
    let mut quiet_polls = 0;
    while quiet_polls < 3 {
        if Instant::now() > deadline {
            return Err("the queue did not drain within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A SIGKILL from outside, at any point, now and then.
        if dice.chance(0.15) {
            let victim = (dice.next() as usize) % workers.len();
            let _ = workers[victim].kill();
        }
        for w in workers.iter_mut() {
            if let Some(status) = w.try_wait()? {
                let point = match status.code() {
                    Some(code) => KILL_POINTS
                        .iter()
                        .find(|(_, c)| *c == code)
                        .map(|(name, _)| name.to_string())
                        .ok_or_else(|| format!("a worker failed on its own: {status}"))?,
                    None => "SIGKILL from the supervisor".to_string(),
                };
                *kills.entry(point).or_default() += 1;
                *w = spawn()?;
            }
        }
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let pending: u64 = attributes
            .attributes()
            .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(1);
        quiet_polls = if pending == 0 { quiet_polls + 1 } else { 0 };
    }
    for w in workers.iter_mut() {
        let _ = w.kill();
        let _ = w.wait();
    }

    let order_phase = started.elapsed().as_secs_f64();

    // The books.
    let mut lost = Vec::new();
    let mut double = Vec::new();
    let mut deducted = [0i64; PRODUCTS];
    let (mut confirmed, mut cancelled) = (BTreeSet::new(), 0usize);
    for (id, lines) in &lines_of {
        match store.get(id).await? {
            None => lost.push(format!("{id}: no order")),
            Some(order) if !order.notification_sent => lost.push(format!("{id}: not announced")),
            Some(order) if order.status == OrderStatus::PendingPayment => {
                if !order.payment_requested {
                    lost.push(format!("{id}: payment not requested"));
                }
                confirmed.insert(id.clone());
                for (p, q) in lines {
                    deducted[*p] += i64::from(*q);
                }
            }
            Some(_) => cancelled += 1,
        }
    }
    for (p, used) in deducted.iter().enumerate() {
        let left = store.stock(&format!("p{p}")).await?.unwrap_or(i64::MIN);
        if left != initial - used {
            double.push(format!("p{p}: stock {left}, expected {}", initial - used));
        }
    }
    let mut paid: BTreeMap<String, usize> = BTreeMap::new();
    for m in h::drain(&config, &stack.payment_url).await {
        let request: PaymentRequest = serde_json::from_str(m.body().unwrap_or_default())?;
        *paid.entry(request.order_id).or_default() += 1;
    }
    for id in &confirmed {
        match paid.get(id) {
            None => lost.push(format!("{id}: no payment message")),
            Some(1) => {}
            Some(n) => double.push(format!("{id}: {n} payment messages")),
        }
    }
    double.extend(
        paid.keys()
            .filter(|id| !confirmed.contains(*id))
            .map(|id| format!("{id}: paid but not confirmed")),
    );
    let mut announced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut notifications = 0;
    for m in h::drain(&config, &stack.events_url).await {
        let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default())?;
        let event: OrderEvent =
            serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())?;
        announced
            .entry(event.order_id)
            .or_default()
            .insert(event.event_id);
        notifications += 1;
    }
    for id in lines_of.keys() {
        match announced.get(id).map(BTreeSet::len) {
            None => lost.push(format!("{id}: no notification received")),
            Some(1) => {}
            Some(n) => double.push(format!("{id}: {n} different events")),
        }
    }
    let parked = h::drain(&config, &stack.dlq_url).await.len();
    if parked > 0 {
        lost.push(format!("{parked} messages parked on the dead-letter queue"));
    }

    let settled_in = Instant::now();
    let sale = settle_the_sale(&config, &stack, &confirmed, &dice).await?;
    let settling = settled_in.elapsed().as_secs_f64();
    let mut paid_quantity = [0i64; PRODUCTS];
    let mut ended: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut should_refund = BTreeSet::new();
    for id in &confirmed {
        let order = store.get(id).await?.ok_or("a reserved order vanished")?;
        *ended.entry(order.status.as_str()).or_default() += 1;
        match order.status {
            OrderStatus::Paid => {
                for (p, q) in &lines_of[id] {
                    paid_quantity[*p] += i64::from(*q);
                }
            }
            OrderStatus::PendingPayment => {
                lost.push(format!("{id}: still pending after settlement"))
            }
            _ if sale.succeeded.contains(id) => {
                should_refund.insert(id.clone());
            }
            _ => {}
        }
    }
    for (p, sold) in paid_quantity.iter().enumerate() {
        let left = store.stock(&format!("p{p}")).await?.unwrap_or(i64::MIN);
        if left != initial - sold {
            double.push(format!(
                "p{p}: stock {left} after settlement, expected {} (initial − paid)",
                initial - sold
            ));
        }
    }
    let mut refunds = BTreeSet::new();
    let mut outcomes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in h::drain(&config, &stack.events_url).await {
        let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default())?;
        let event: OrderEvent =
            serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())?;
        if event.event_type == domain::order::EventType::PaymentRefundRequired {
            refunds.insert(event.order_id);
        } else {
            outcomes
                .entry(event.order_id)
                .or_default()
                .insert(event.event_id);
        }
    }
    if refunds != should_refund {
        lost.push(format!(
            "refunds asked for {} orders, {} successes arrived after their order ended",
            refunds.len(),
            should_refund.len()
        ));
    }
    for id in &confirmed {
        if outcomes.get(id).map(BTreeSet::len) != Some(1) {
            double.push(format!("{id}: {:?} outcome events", outcomes.get(id)));
        }
    }

    let total_kills: u64 = kills.values().sum();
    println!(
        "messages: {} ({} duplicates); workers: {}; kills: {} ({}); confirmed: {}, cancelled: {}; \
         payment messages: {}; notifications: {} for {} orders; order phase {:.0} s",
        bodies.len(),
        bodies.len() - o.orders,
        o.workers,
        total_kills,
        kills
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        confirmed.len(),
        cancelled,
        paid.values().sum::<usize>(),
        notifications,
        announced.len(),
        order_phase
    );
    println!(
        "settlement: {} results and expiries applied (each twice) in {settling:.0} s ({:.0} messages/s); \
         ended: {}; refunds asked: {}; whole sale {:.0} s, {:.1} orders/s end to end",
        sale.messages,
        sale.messages as f64 / settling.max(0.001),
        ended
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        refunds.len(),
        started.elapsed().as_secs_f64(),
        o.orders as f64 / started.elapsed().as_secs_f64()
    );
    for problem in lost.iter().chain(&double).take(20) {
        println!("  {problem}");
    }
    match h::emulator().peak_rss_bytes() {
        Some(bytes) => println!(
            "emulator peak memory (VmHWM of the moto process): {:.0} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        ),
        None => println!("emulator peak memory: not available on this system"),
    }
    println!(
        "chaos: {} orders, {} lost, {} double-applied",
        o.orders,
        lost.len(),
        double.len()
    );
    Ok(if lost.is_empty() && double.is_empty() && total_kills > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the settlement phase did.
struct Sale {
    /// Orders for which a `SUCCEEDED` result was delivered.
    succeeded: BTreeSet<String>,
    messages: usize,
}

/// The payment service answers every reserved order (7 in 10 approved, 2 declined, 1 never
/// answered and expired), and order-settlement applies each message twice, 8 at a time in random
/// order: an expiry races one approved order in 5, and a late success follows one expired order
/// in 3.
async fn settle_the_sale(
    config: &aws_config::SdkConfig,
    stack: &h::OrderStack,
    reserved: &BTreeSet<String>,
    dice: &Dice,
) -> Result<Sale, Failure> {
    use futures::StreamExt;
    let settler = Settler::new(
        stack.store(config),
        SnsNotifier::new(aws_sdk_sns::Client::new(config), &stack.topic),
        "arn:aws:sqs:us-east-1:123456789012:payment-results",
        "arn:aws:sqs:us-east-1:123456789012:expiries",
    );
    let due =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let result = |id: &str, outcome: &str| {
        (
            true,
            json!({"order_id": id, "idempotency_key": id, "outcome": outcome}).to_string(),
        )
    };
    let expiry = |id: &str| {
        (
            false,
            json!({"order_id": id, "expires_at": due}).to_string(),
        )
    };
    let mut messages = Vec::new();
    let mut succeeded = BTreeSet::new();
    for (n, id) in reserved.iter().enumerate() {
        match dice.next() % 10 {
            0..=6 => {
                messages.push(result(id, "SUCCEEDED"));
                succeeded.insert(id.clone());
                if n % 5 == 0 {
                    messages.push(expiry(id));
                }
            }
            7 | 8 => messages.push(result(id, "FAILED")),
            _ => {
                messages.push(expiry(id));
                if n % 3 == 0 {
                    messages.push(result(id, "SUCCEEDED"));
                    succeeded.insert(id.clone());
                }
            }
        }
    }
    let mut deliveries: Vec<(u64, &(bool, String))> = messages
        .iter()
        .chain(&messages)
        .map(|m| (dice.next(), m))
        .collect();
    deliveries.sort_by_key(|(order, _)| *order);
    let outcomes: Vec<Settled> =
        futures::stream::iter(deliveries.iter().map(|(_, (is_result, body))| {
            let settler = &settler;
            async move {
                // A failed dependency is delivered again, as SQS would.
                loop {
                    let outcome = if *is_result {
                        settler.apply_payment_result(body, None).await
                    } else {
                        settler.apply_expiry(body, None).await
                    };
                    if !matches!(outcome, Settled::Retry(_)) {
                        return outcome;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    if let Some(bad) = outcomes
        .iter()
        .find(|o| matches!(o, Settled::Invalid(_) | Settled::Early))
    {
        return Err(format!("a settlement message was not applied: {bad:?}").into());
    }
    Ok(Sale {
        succeeded,
        messages: deliveries.len(),
    })
}
