//! Time budgets at the deployed settings: the longest path of each function, at the SDK timeouts
//! and attempts `template.yaml` deploys, is longer than the function's `Timeout`, so each function
//! stops its own work from the invocation's deadline and still answers properly (user-api: 503
//! with `Retry-After`, problem+json and CORS; order-processor and order-settlement: every
//! unfinished message reported for redelivery). Every number here is read from `template.yaml` or from the code's constants.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapters::config::AwsSettings;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::order::{Money, Order, OrderLine, OrderStatus, Reservation};
use domain::ports::{OrderSettlement, OrderStore, UserPage, UserStore};
use domain::settlement::{Settled, Settlement};
use domain::testing::{
    InMemoryOrderStore, RecordingDeadLetters, RecordingNotifier, RecordingPaymentQueue,
};
use domain::user::User;
use domain::{Deadline, PortError};
use integration_tests as h;
use integration_tests::fault_proxy::{Fault, FaultProxy};
use integration_tests::fixtures::api_event;
use lambda_http::Body;
use order_processor::Processor;
use order_settlement::Settler;
use serde_json::{json, Value};
use serde_yaml::Value as Yaml;
use settings::Env;
use time::OffsetDateTime;
use uuid::Uuid;

fn template() -> Yaml {
    let text =
        std::fs::read_to_string(h::workspace_root().join("template.yaml")).expect("template");
    serde_yaml::from_str(&text).expect("template is YAML")
}

/// The SDK settings every function gets, parsed from the Globals environment as the code parses it.
fn deployed_sdk_settings(t: &Yaml) -> AwsSettings {
    let vars: Vec<(String, String)> = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("Globals environment")
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    AwsSettings::from_env(&Env::from_pairs(&pairs)).expect("deployed SDK settings are valid")
}

/// The function resource whose build binary is `binary`.
fn function<'a>(t: &'a Yaml, binary: &str) -> &'a Yaml {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function builds {binary}"))
}

fn timeout_of(f: &Yaml) -> Duration {
    Duration::from_secs(
        f["Properties"]["Timeout"]
            .as_u64()
            .expect("explicit Timeout"),
    )
}

/// The SQS event source of a function: (BatchSize, the queue's VisibilityTimeout).
fn sqs_source(t: &Yaml, f: &Yaml) -> (u64, Duration) {
    let event = f["Properties"]["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .find(|e| e["Type"].as_str() == Some("SQS"))
        .expect("an SQS event source");
    let batch = event["Properties"]["BatchSize"]
        .as_u64()
        .expect("explicit BatchSize");
    let queue = match &event["Properties"]["Queue"] {
        Yaml::Tagged(tagged) => tagged
            .value
            .as_str()
            .expect("queue")
            .trim_end_matches(".Arn")
            .to_string(),
        other => panic!("queue {other:?}"),
    };
    let visibility = t["Resources"][queue.as_str()]["Properties"]["VisibilityTimeout"]
        .as_u64()
        .expect("explicit VisibilityTimeout");
    (batch, Duration::from_secs(visibility))
}

/// One dependency call at worst: the operation timeout bounds every attempt and backoff of a call.
fn worst_call(s: &AwsSettings) -> Duration {
    s.operation_timeout
        .min(s.attempt_timeout * s.max_attempts + Duration::from_secs(20) * (s.max_attempts - 1))
}

/// user-api's longest path: read the user, write the transaction, read again to tell 404 from 412.
const USER_API_CALLS: u32 = 3;
/// order-processor's calls for one message at most: reserve, read the existing order, request the
/// payment, publish the event, record what was done (and a read and a park on the rarest paths).
const ORDER_CALLS_PER_MESSAGE: u32 = 5;

#[test]
fn the_worst_paths_outlast_the_timeouts_and_the_answer_reserves_fit() {
    let t = template();
    let sdk = deployed_sdk_settings(&t);
    let call = worst_call(&sdk);

    let api = timeout_of(function(&t, "user-api"));
    let api_worst = call * USER_API_CALLS;
    assert!(
        api_worst > api,
        "user-api's worst path {api_worst:?} fits its {api:?} timeout: the deadline logic is moot"
    );
    let reserve = user_api::budget::ANSWER_RESERVE;
    assert!(
        reserve < api,
        "the answer reserve {reserve:?} leaves no work time in {api:?}"
    );
    assert!(
        api - reserve >= call,
        "a request's budget {:?} must hold at least one whole dependency call {call:?}",
        api - reserve
    );

    let processor = function(&t, "order-processor");
    let orders = timeout_of(processor);
    let (batch, visibility) = sqs_source(&t, processor);
    // Copies of one order in a batch run one after another: the whole batch in series at worst.
    let orders_worst = call * ORDER_CALLS_PER_MESSAGE * batch as u32;
    assert!(
        orders_worst > orders,
        "order-processor's worst batch {orders_worst:?} fits its {orders:?} timeout"
    );
    let reserve = order_processor::REPORT_RESERVE;
    assert!(reserve < orders);
    assert!(
        orders - reserve >= call,
        "a batch's budget {:?} must hold at least one whole dependency call {call:?}",
        orders - reserve
    );
    // AWS's recommendation for an SQS event source: at least six times the function timeout.
    assert!(
        visibility >= orders * 6,
        "visibility {visibility:?} < 6 x timeout {orders:?}"
    );
}

/// A user store whose every call answers only just inside the deployed operation timeout.
struct Slow<S> {
    inner: S,
    delay: Duration,
}

impl<S: UserStore> UserStore for Slow<S> {
    async fn create(&self, user: &User) -> Result<(), PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.create(user).await
    }
    async fn get(&self, id: Uuid) -> Result<Option<User>, PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get(id).await
    }
    async fn list(&self, limit: u32, after: Option<Uuid>) -> Result<UserPage, PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list(limit, after).await
    }
    async fn update(&self, previous: &User, updated: &User) -> Result<(), PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.update(previous, updated).await
    }
    async fn delete(&self, user: &User) -> Result<(), PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.delete(user).await
    }
}

const ORIGIN: &str = "https://app.example.com";

fn assert_503_problem_with_cors(response: &lambda_http::Response<Body>) {
    assert_eq!(response.status().as_u16(), 503);
    let headers = response.headers();
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry >= 1);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );
    let body: Value = match response.body() {
        Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("body {other:?}"),
    };
    assert_eq!(body["status"], 503);
    assert_eq!(body["type"], "urn:problem:user-api:unavailable");
}

/// A change whose dependency calls each take the deployed operation timeout outlasts the deployed
/// function timeout; the function answers 503 before its deadline instead of being killed.
#[tokio::test]
async fn user_api_answers_503_before_the_deadline_at_the_deployed_timeouts() {
    let t = template();
    let sdk = deployed_sdk_settings(&t);
    let timeout = timeout_of(function(&t, "user-api"));
    let direct = h::sdk_config().await;
    let table = h::create_users_table(&direct).await;
    let proxy = FaultProxy::start(&h::emulator().endpoint).await;
    let through = h::sdk_config_for(&proxy.endpoint, &sdk).await;
    let client = aws_sdk_dynamodb::Client::new(&through);
    let store = adapters::dynamo_users::DynamoUserStore::new(client.clone(), table.clone());
    let me = Uuid::new_v4().to_string();
    let created = json!({"name": "Ada", "email": format!("{me}@example.com")}).to_string();
    let api = user_api::Api::new(store, vec![ORIGIN.into()], "secret");
    let request = |event: Value| lambda_http::request::from_str(&event.to_string()).expect("event");
    let response = user_api::handle(
        &api,
        request(api_event(
            "POST",
            "/users",
            Some(&created),
            Some(&me),
            false,
        )),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201);

    // Every call answers at the last moment the SDK allows: two calls already outlast the timeout.
    let slow = user_api::Api::new(
        Slow {
            inner: adapters::dynamo_users::DynamoUserStore::new(client, table),
            delay: sdk.operation_timeout - Duration::from_millis(100),
        },
        vec![ORIGIN.into()],
        "secret",
    );
    let path = format!("/users/{me}");
    let patch = json!({"name": "Ada L."}).to_string();
    let started = Instant::now();
    let deadline = Deadline::after(OffsetDateTime::now_utc(), timeout);
    let response = user_api::handle_by(
        &slow,
        request(api_event("PATCH", &path, Some(&patch), Some(&me), false)),
        Some(deadline),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < timeout,
        "answered after the {timeout:?} deadline: {took:?}"
    );
    assert_503_problem_with_cors(&response);

    // A hung dependency: each call ends at the SDK's operation timeout, inside the budget.
    proxy.set(Fault::Hang);
    let started = Instant::now();
    let deadline = Deadline::after(OffsetDateTime::now_utc(), timeout);
    let response = user_api::handle_by(
        &api,
        request(api_event("PATCH", &path, Some(&patch), Some(&me), false)),
        Some(deadline),
    )
    .await;
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
    assert_503_problem_with_cors(&response);
    proxy.set(Fault::None);
}

fn failed(response: &SqsBatchResponse) -> BTreeSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// An order store whose every call answers only just inside the deployed operation timeout.
struct SlowOrders<S> {
    inner: S,
    delay: Duration,
}

impl<S: OrderStore> OrderStore for SlowOrders<S> {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.reserve(order).await
    }
    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.record(order).await
    }
    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get(order_id).await
    }
    async fn mark_done(&self, order_id: &str, paid: bool, notified: bool) -> Result<(), PortError> {
        tokio::time::sleep(self.delay).await;
        self.inner.mark_done(order_id, paid, notified).await
    }
}

/// A batch of copies of one order (they run in series) whose store calls each take the deployed
/// operation timeout outlasts the function timeout: the batch answers before its deadline, the
/// copies it finished acknowledged and every other one reported; redelivered once the store is
/// quick again, the order is applied exactly once. Through the fault proxy, with the deployed SDK
/// settings.
#[tokio::test]
async fn order_processor_reports_every_unfinished_message_before_the_deadline() {
    let t = template();
    let sdk = deployed_sdk_settings(&t);
    let f = function(&t, "order-processor");
    let timeout = timeout_of(f);
    let (batch_size, _) = sqs_source(&t, f);
    let direct = h::sdk_config().await;
    let stack = h::create_order_stack(&direct).await;
    let product = h::unique("p");
    let store = stack.store(&direct);
    store.set_stock(&product, 100).await.expect("stock");
    let proxy = FaultProxy::start(&h::emulator().endpoint).await;
    let through = h::sdk_config_for(&proxy.endpoint, &sdk).await;
    let quick = stack.processor(&through);
    let slow = Processor::new(
        SlowOrders {
            inner: stack.store(&through),
            delay: sdk.operation_timeout - Duration::from_millis(100),
        },
        quick.payments.clone(),
        quick.notifier.clone(),
        quick.dead_letters.clone(),
    );
    let order_id = h::unique("o");
    let body = json!({"order_id": order_id, "user_id": "u-1", "items": [{"product_id": product, "quantity": 1}], "total_amount": "5.00"}).to_string();
    let mut event = SqsEvent::default();
    let ids: Vec<String> = (0..batch_size).map(|i| format!("m-{i}")).collect();
    for id in &ids {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.clone());
        record.body = Some(body.clone());
        event.records.push(record);
    }

    let started = Instant::now();
    let deadline = Deadline::after(OffsetDateTime::now_utc(), timeout);
    let response = slow
        .handle_batch_within(event.clone(), Some(deadline))
        .await;
    let took = started.elapsed();
    assert!(
        took < timeout,
        "answered after the {timeout:?} deadline: {took:?}"
    );
    // Copies run in order: the reported ones are every copy from the first unfinished one on.
    let reported = failed(&response);
    let first = ids
        .iter()
        .position(|id| reported.contains(id))
        .expect("some copies reported");
    assert_eq!(
        reported,
        ids[first..].iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(
        first >= 1,
        "the first copy fits the budget and is acknowledged"
    );

    let deadline = Deadline::after(OffsetDateTime::now_utc(), timeout);
    let response = quick.handle_batch_within(event, Some(deadline)).await;
    assert!(failed(&response).is_empty(), "{response:?}");
    assert_eq!(
        store.stock(&product).await.expect("stock"),
        Some(99),
        "applied exactly once"
    );
}

/// The simulated wall clock of `order_processor_starts_no_message_once_the_budget_is_spent`.
static SIMULATED_MS: AtomicI64 = AtomicI64::new(1_700_000_000_000);

fn simulated_now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(SIMULATED_MS.load(Ordering::SeqCst)) * 1_000_000,
    )
    .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// An order store where every call takes `step` of simulated time, counting reservations.
struct Ticking {
    inner: InMemoryOrderStore,
    step: Duration,
    reservations: AtomicUsize,
}

impl Ticking {
    fn tick(&self) {
        SIMULATED_MS.fetch_add(self.step.as_millis() as i64, Ordering::SeqCst);
    }
}

impl OrderStore for Ticking {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        self.reservations.fetch_add(1, Ordering::SeqCst);
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
    async fn mark_done(&self, order_id: &str, paid: bool, notified: bool) -> Result<(), PortError> {
        self.tick();
        self.inner.mark_done(order_id, paid, notified).await
    }
}

/// With a simulated clock: a batch of `BatchSize` copies of one order whose store calls each take
/// the deployed operation timeout, against a deadline of the deployed `Timeout`. No copy starts
/// once the budget is spent, and every copy that did not start is reported for redelivery.
#[tokio::test]
async fn order_processor_starts_no_message_once_the_budget_is_spent() {
    let t = template();
    let sdk = deployed_sdk_settings(&t);
    let f = function(&t, "order-processor");
    let timeout = timeout_of(f);
    let (batch_size, _) = sqs_source(&t, f);
    let store = Ticking {
        inner: InMemoryOrderStore::default(),
        step: worst_call(&sdk),
        reservations: AtomicUsize::new(0),
    };
    store.inner.set_stock("widget", 100);
    let mut processor = Processor::new(
        store,
        RecordingPaymentQueue::default(),
        RecordingNotifier::default(),
        RecordingDeadLetters::default(),
    );
    processor.clock = simulated_now;
    let body = json!({"order_id": "o-1", "user_id": "u-1", "items": [{"product_id": "widget", "quantity": 1}], "total_amount": "5.00"}).to_string();
    let mut event = SqsEvent::default();
    let ids: Vec<String> = (0..batch_size).map(|i| format!("m-{i}")).collect();
    for id in &ids {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.clone());
        record.body = Some(body.clone());
        event.records.push(record);
    }
    let start = simulated_now();
    let deadline = Deadline::after(start, timeout);
    let response = processor.handle_batch_within(event, Some(deadline)).await;

    let budget = timeout - order_processor::REPORT_RESERVE;
    let started = processor.orders.reservations.load(Ordering::SeqCst);
    assert!(
        started >= 1 && started < ids.len(),
        "{started} copies started"
    );
    // Each copy takes two store calls (the first: reserve, record what was sent; the others:
    // reserve, read the existing order): a copy starts at each multiple of that inside the budget.
    let per_copy = worst_call(&sdk) * 2;
    let expected = budget.as_millis().div_ceil(per_copy.as_millis()) as usize;
    assert_eq!(started, expected.min(ids.len()));
    assert_eq!(
        failed(&response),
        ids[started..].iter().cloned().collect::<BTreeSet<_>>(),
        "every copy not started is reported"
    );
    assert_eq!(processor.orders.inner.stock("widget"), Some(99));
}

/// An order store for order-settlement where each settlement takes `step` of simulated time.
struct TickingSettlements {
    inner: InMemoryOrderStore,
    step: Duration,
    settlements: AtomicUsize,
}

impl OrderSettlement for TickingSettlements {
    async fn settle(&self, order_id: &str, to: Settlement) -> Result<Settled, PortError> {
        self.settlements.fetch_add(1, Ordering::SeqCst);
        SIMULATED_MS.fetch_add(self.step.as_millis() as i64, Ordering::SeqCst);
        self.inner.settle(order_id, to).await
    }
    async fn mark_outcome_notified(&self, order_id: &str) -> Result<(), PortError> {
        self.inner.mark_outcome_notified(order_id).await
    }
}

/// With a simulated clock: a batch of `BatchSize` payment results (the payment results queue's
/// source), each settlement taking the deployed operation timeout, against a deadline of the
/// deployed `Timeout`. No result is applied once the budget is spent, and every one not applied is
/// reported for redelivery, its order still pending.
#[tokio::test]
async fn order_settlement_starts_no_message_once_the_budget_is_spent() {
    const RESULTS: &str = "arn:aws:sqs:us-east-1:123456789012:payment-results";
    let t = template();
    let sdk = deployed_sdk_settings(&t);
    let f = function(&t, "order-settlement");
    let timeout = timeout_of(f);
    let (batch_size, _) = sqs_source(&t, f);
    let store = TickingSettlements {
        inner: InMemoryOrderStore::default(),
        step: worst_call(&sdk),
        settlements: AtomicUsize::new(0),
    };
    store.inner.set_stock("widget", 100);
    let ids: Vec<String> = (0..batch_size).map(|i| format!("o-{i}")).collect();
    let mut event = SqsEvent::default();
    for id in &ids {
        let order = Order {
            order_id: id.clone(),
            user_id: "u-1".into(),
            items: vec![OrderLine {
                product_id: "widget".into(),
                quantity: 1,
            }],
            total: Money(500),
            status: OrderStatus::PendingPayment,
            short_items: vec![],
            created_at: "2026-12-01T10:00:00Z".into(),
            payment_requested: true,
            notification_sent: true,
            outcome_notified: false,
        };
        store.inner.reserve(&order).await.expect("reserve");
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("m-{id}"));
        record.event_source_arn = Some(RESULTS.into());
        record.body =
            Some(json!({"order_id": id, "idempotency_key": id, "outcome": "FAILED"}).to_string());
        event.records.push(record);
    }
    let mut settler = Settler::new(
        store,
        RecordingNotifier::default(),
        RESULTS,
        "arn:aws:sqs:us-east-1:123456789012:expiries",
    );
    settler.clock = simulated_now;
    let deadline = Deadline::after(simulated_now(), timeout);
    let response = settler.handle_batch_within(event, Some(deadline)).await;

    let budget = timeout - order_settlement::REPORT_RESERVE;
    let started = settler.orders.settlements.load(Ordering::SeqCst);
    let expected = budget.as_millis().div_ceil(worst_call(&sdk).as_millis()) as usize;
    assert!(
        started >= 1 && started < ids.len(),
        "{started} results applied"
    );
    assert_eq!(started, expected.min(ids.len()));
    assert_eq!(
        failed(&response),
        ids[started..]
            .iter()
            .map(|id| format!("m-{id}"))
            .collect::<BTreeSet<_>>(),
        "every result not applied is reported"
    );
    // The stock of each applied failure is back; the others' is still reserved.
    assert_eq!(
        settler.orders.inner.stock("widget"),
        Some(100 - (ids.len() - started) as i64)
    );
}
