//! order-processor against the moto server through the real adapters: the full flow, and a
//! concurrency test with duplicates, injected transient failures and SQS redelivery.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::dynamo_orders::DynamoOrderStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use aws_lambda_events::event::sqs::SqsEvent;
use domain::order::{Order, OrderEvent, OrderStatus, PaymentRequest, Reservation};
use domain::ports::{Notifier, OrderStore, PaymentQueue, TraceHeader};
use domain::PortError;
use integration_tests as h;
use order_processor::Processor;
use serde_json::json;

struct Stack {
    config: aws_config::SdkConfig,
    store: DynamoOrderStore,
    resources: h::OrderStack,
}

async fn stack() -> Stack {
    let config = h::sdk_config().await;
    let resources = h::create_order_stack(&config).await;
    let store = resources.store(&config);
    Stack {
        config,
        store,
        resources,
    }
}

#[tokio::test]
async fn sample_batch_flows_through_every_adapter() {
    let s = stack().await;
    for (p, q) in [("widget", 10), ("gadget", 10), ("gizmo", 5)] {
        s.store.set_stock(p, q).await.unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&s.config);
    let processor = Processor::new(
        s.store.clone(),
        SqsPaymentQueue::new(sqs.clone(), &s.resources.payment_url),
        SnsNotifier::new(aws_sdk_sns::Client::new(&s.config), &s.resources.topic),
        SqsDeadLetters::new(sqs, &s.resources.dlq_url),
    );
    let event: SqsEvent =
        serde_json::from_str(&h::fixtures::event("order-processor", "mixed-batch.json")).unwrap();
    let response = processor.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty());

    assert_eq!(s.store.stock("widget").await.unwrap(), Some(8));
    assert_eq!(s.store.stock("gadget").await.unwrap(), Some(9));
    assert_eq!(s.store.stock("gizmo").await.unwrap(), Some(5));
    let confirmed = s.store.get("ord-1001").await.unwrap().unwrap();
    assert!(confirmed.payment_requested && confirmed.notification_sent);
    assert_eq!(
        s.store.get("ord-1002").await.unwrap().unwrap().status,
        OrderStatus::CancelledInsufficientInventory
    );

    let payments = h::drain(&s.config, &s.resources.payment_url).await;
    assert_eq!(payments.len(), 1);
    let payment: PaymentRequest = serde_json::from_str(payments[0].body().unwrap()).unwrap();
    assert_eq!(
        (payment.order_id.as_str(), payment.amount.as_str()),
        ("ord-1001", "59.90")
    );

    let mut received: Vec<(String, String)> = h::drain(&s.config, &s.resources.events_url)
        .await
        .iter()
        .map(|m| {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let event: OrderEvent =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            let attribute = envelope["MessageAttributes"]["event_type"]["Value"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(attribute, event.event_type.as_str());
            (attribute, event.order_id)
        })
        .collect();
    received.sort();
    assert_eq!(
        received,
        [
            ("ORDER_CANCELLED".to_string(), "ord-1002".to_string()),
            ("ORDER_CREATED".to_string(), "ord-1001".to_string())
        ]
    );

    let parked = h::drain(&s.config, &s.resources.dlq_url).await;
    let mut codes: Vec<String> = parked
        .iter()
        .map(|m| {
            m.message_attributes().unwrap()["error_code"]
                .string_value()
                .unwrap()
                .to_string()
        })
        .collect();
    codes.sort();
    assert_eq!(codes, ["INVALID_JSON", "INVALID_ORDER"]);
}

/// Fails every `every`-th call before it reaches the dependency, and every `every`-th call after it
/// succeeded (the effect happened, the caller never heard): the two ways a network call fails.
struct Flaky<T> {
    inner: T,
    calls: AtomicU64,
    every: u64,
    injected: AtomicU64,
}

impl<T> Flaky<T> {
    fn new(inner: T, every: u64) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
            every,
            injected: AtomicU64::new(0),
        }
    }
    fn fault(&self) -> Result<(), PortError> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % self.every == self.every - 1 {
            self.injected.fetch_add(1, Ordering::Relaxed);
            Err(PortError::Throttled("injected".into()))
        } else {
            Ok(())
        }
    }
}

impl<O: OrderStore> OrderStore for Flaky<O> {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        self.fault()?;
        let r = self.inner.reserve(order).await?;
        self.fault()?;
        Ok(r)
    }
    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        self.fault()?;
        self.inner.record(order).await
    }
    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        self.inner.get(order_id).await
    }
    async fn mark_done(&self, order_id: &str, paid: bool, notified: bool) -> Result<(), PortError> {
        self.fault()?;
        let r = self.inner.mark_done(order_id, paid, notified).await;
        self.fault()?;
        r
    }
}

impl<Q: PaymentQueue> PaymentQueue for Flaky<Q> {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.fault()?;
        self.inner.request_payment(request, trace).await?;
        self.fault()
    }
}

impl<N: Notifier> Notifier for Flaky<N> {
    async fn publish(
        &self,
        event: &OrderEvent,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.fault()?;
        self.inner.publish(event, trace).await?;
        self.fault()
    }
}

#[tokio::test]
async fn concurrent_workers_with_duplicates_and_failures_never_oversell_or_double_apply() {
    let s = stack().await;
    concurrency_run(s, 250).await;
}

/// Eight workers drain a queue of orders (every fifth sent twice) through processors whose store,
/// payment queue and notifier fail now and then before and after their calls commit, and SQS
/// redelivers what failed.
async fn concurrency_run(s: Stack, orders: usize) {
    const PRODUCTS: usize = 5;
    const WORKERS: usize = 8;
    let stock_each = (orders * 9 / 25) as i64; // about two thirds of the orders fit
    for p in 0..PRODUCTS {
        s.store
            .set_stock(&format!("p{p}"), stock_each)
            .await
            .unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&s.config);
    let queue = h::create_queue(&s.config, "orders", false).await;
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "2",
        )
        .send()
        .await
        .unwrap();

    // 250 orders of 1-2 lines, plus every 5th sent twice: 300 messages, 20% of them duplicates.
    let mut lines_of: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    let mut bodies = Vec::new();
    for i in 0..orders {
        let id = format!("order-{i:04}");
        let mut lines = vec![(format!("p{}", i % PRODUCTS), (i % 3 + 1) as u32)];
        if i % 2 == 0 {
            lines.push((format!("p{}", (i / 2 + 1) % PRODUCTS), 1));
            lines.dedup_by(|a, b| a.0 == b.0);
        }
        let items: Vec<_> = lines
            .iter()
            .map(|(p, q)| json!({"product_id": p, "quantity": q}))
            .collect();
        let body = json!({"order_id": id, "user_id": format!("user-{}", i % 37), "items": items, "total_amount": "9.99"}).to_string();
        bodies.push(body.clone());
        if i % 5 == 0 {
            bodies.push(body);
        }
        lines_of.insert(id, lines);
    }
    let total_messages = bodies.len();
    assert_eq!(total_messages, orders + orders.div_ceil(5));
    for chunk in bodies.chunks(10) {
        let mut batch = sqs.send_message_batch().queue_url(&queue);
        for (n, body) in chunk.iter().enumerate() {
            batch = batch.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .message_body(body)
                    .build()
                    .unwrap(),
            );
        }
        batch.send().await.unwrap();
    }

    let processor = Processor::new(
        Flaky::new(s.store.clone(), 29),
        Flaky::new(
            SqsPaymentQueue::new(sqs.clone(), &s.resources.payment_url),
            23,
        ),
        Flaky::new(
            SnsNotifier::new(aws_sdk_sns::Client::new(&s.config), &s.resources.topic),
            19,
        ),
        SqsDeadLetters::new(sqs.clone(), &s.resources.dlq_url),
    );
    let processor = Arc::new(processor);
    let acknowledged = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let retried = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (processor, sqs, queue) = (processor.clone(), sqs.clone(), queue.clone());
        let (acknowledged, retried) = (acknowledged.clone(), retried.clone());
        workers.push(tokio::spawn(async move {
            while acknowledged.lock().unwrap().len() < total_messages {
                assert!(
                    Instant::now() < deadline,
                    "workers did not drain the queue in time"
                );
                let out = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .unwrap();
                let messages = out.messages().to_vec();
                if messages.is_empty() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                let response = processor.handle_batch(h::sqs_event(&messages)).await;
                let failed: BTreeSet<String> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.clone())
                    .collect();
                retried.fetch_add(failed.len() as u64, Ordering::Relaxed);
                // What Lambda does with a partial batch response: delete the rest, leave the failed
                // ones to reappear after the visibility timeout.
                // A handle goes stale if the message timed out and was received again elsewhere; that
                // copy is then processed (idempotently) and deleted by whoever holds it.
                for m in &messages {
                    let id = m.message_id().unwrap_or_default();
                    if failed.contains(id) {
                        continue;
                    }
                    let handle = m.receipt_handle().unwrap();
                    match sqs
                        .delete_message()
                        .queue_url(&queue)
                        .receipt_handle(handle)
                        .send()
                        .await
                    {
                        Ok(_) => {
                            acknowledged.lock().unwrap().insert(id.to_string());
                        }
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|se| se.is_receipt_handle_is_invalid()) => {}
                        Err(e) => panic!("delete failed: {e:?}"),
                    }
                }
            }
        }));
    }
    for w in futures::future::join_all(workers).await {
        w.unwrap();
    }
    let injected = processor.orders.injected.load(Ordering::Relaxed)
        + processor.payments.injected.load(Ordering::Relaxed)
        + processor.notifier.injected.load(Ordering::Relaxed);
    assert!(
        injected > 0 && retried.load(Ordering::Relaxed) > 0,
        "faults were injected and retried"
    );

    // Every order is stored once, in a final state, with its side effects recorded.
    let mut deducted = [0i64; PRODUCTS];
    let mut confirmed = BTreeSet::new();
    for (id, lines) in &lines_of {
        let order = s
            .store
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} missing"));
        assert!(order.notification_sent, "{id} not announced: {order:?}");
        if order.status == OrderStatus::PendingPayment {
            assert!(order.payment_requested, "{id} payment not requested");
            confirmed.insert(id.clone());
            for (p, q) in lines {
                deducted[p[1..].parse::<usize>().unwrap()] += i64::from(*q);
            }
        } else {
            assert!(!order.short_items.is_empty());
        }
    }
    for (p, used) in deducted.iter().enumerate() {
        let left = s.store.stock(&format!("p{p}")).await.unwrap().unwrap();
        assert!(left >= 0, "p{p} oversold: {left}");
        assert_eq!(left, stock_each - used, "p{p}: stock = initial - accepted");
    }
    assert!(
        confirmed.len() > orders / 5 && confirmed.len() < orders,
        "stock was limited: {} confirmed",
        confirmed.len()
    );

    // Never two payment requests for an order, after the FIFO queue's deduplication; exactly one
    // for every order whose record says it was requested.
    let payments = h::drain(&s.config, &s.resources.payment_url).await;
    let mut per_order: BTreeMap<String, usize> = BTreeMap::new();
    for m in &payments {
        let p: PaymentRequest = serde_json::from_str(m.body().unwrap()).unwrap();
        *per_order.entry(p.order_id).or_default() += 1;
    }
    assert!(
        per_order.values().all(|n| *n == 1),
        "duplicate payment requests: {per_order:?}"
    );
    let paid: BTreeSet<String> = per_order.keys().cloned().collect();
    assert_eq!(
        paid, confirmed,
        "one payment request for every reserved order"
    );
    assert!(
        h::drain(&s.config, &s.resources.dlq_url).await.is_empty(),
        "nothing parked: every message was valid"
    );
    println!(
        "orders: {} messages, {} orders, {} reserved, {} injected faults, {} retried messages",
        total_messages,
        orders,
        confirmed.len(),
        injected,
        retried.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn the_order_trace_reaches_the_payment_message_and_the_event() {
    let s = stack().await;
    s.store.set_stock("widget", 5).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&s.config);
    let orders = h::create_queue(&s.config, "orders-traced", false).await;
    let header = "Root=1-6740f1a2-4b8c1d2e3f4a5b6c7d8e9f01;Parent=53995c3f42cd8ad8;Sampled=1";
    let body = json!({"order_id": "ord-traced", "user_id": "u1",
        "items": [{"product_id": "widget", "quantity": 1}], "total_amount": "2.50"});
    h::send_traced(&s.config, &orders, &body.to_string(), header).await;
    let received = h::drain(&s.config, &orders).await;
    let event = h::sqs_event(&received);
    assert_eq!(event.records[0].attributes["AWSTraceHeader"], header);

    let processor = Processor::new(
        s.store.clone(),
        SqsPaymentQueue::new(sqs.clone(), &s.resources.payment_url),
        SnsNotifier::new(aws_sdk_sns::Client::new(&s.config), &s.resources.topic),
        SqsDeadLetters::new(sqs, &s.resources.dlq_url),
    );
    assert!(processor
        .handle_batch(event)
        .await
        .batch_item_failures
        .is_empty());

    let payments = h::drain(&s.config, &s.resources.payment_url).await;
    assert_eq!(payments.len(), 1);
    let system = payments[0].attributes().expect("system attributes");
    assert_eq!(
        system
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader)
            .map(String::as_str),
        Some(header),
        "the payment consumer continues the order's trace"
    );
    let events = h::drain(&s.config, &s.resources.events_url).await;
    assert_eq!(events.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(events[0].body().unwrap()).unwrap();
    assert_eq!(
        envelope["MessageAttributes"][adapters::sns::TRACE_ATTRIBUTE]["Value"],
        header,
        "the event's subscribers continue it too: {envelope}"
    );
}
