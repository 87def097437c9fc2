//! The integration-test harness: one real moto server per test binary, SDK configs pointed at it,
//! and uniquely named resources per test.
//!
//! The server is a child process whose stdin we hold open; it exits when that pipe closes, which the
//! OS does when this test process ends however it ends. A `static` is never dropped, so relying on
//! `Drop` would leave orphans.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

pub mod dashboard;
pub mod fault_proxy;
pub mod fixtures;
pub mod template;

pub use template::translated_template;

pub struct Emulator {
    pub endpoint: String,
    _process: Mutex<Child>,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

impl Emulator {
    /// The emulator process's peak resident memory so far, in bytes (Linux `VmHWM`); `None`
    /// where /proc does not say.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let pid = self._process.lock().ok()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// The shared emulator for this test binary, started on first use.
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(start_emulator)
}

fn start_emulator() -> Emulator {
    start_emulator_with(&[])
}

/// A separate emulator with launcher options (`tools/moto_server.py --help`), for a test that needs
/// the emulator to behave differently; it stops when the returned value is dropped.
pub fn start_emulator_with(options: &[&str]) -> Emulator {
    let python = python();
    assert!(
        python.exists(),
        "{} not found: run `make setup` (or set MOTO_PYTHON to a Python with moto[server])",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg(workspace_root().join("tools/moto_server.py"))
        .args(options)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start moto with {}: {e}", python.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the emulator's port");
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("moto launcher printed {line:?}, not a port"));
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_listening(port);
    Emulator {
        endpoint,
        _process: Mutex::new(child),
    }
}

fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto did not listen on port {port} within 20 s");
}

/// Short timeouts so a broken emulator fails a test quickly instead of hanging it.
pub fn test_settings() -> adapters::config::AwsSettings {
    adapters::config::AwsSettings {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_attempts: 3,
    }
}

/// An SDK config pointed at `endpoint` with dummy credentials.
pub async fn sdk_config_for(endpoint: &str, settings: &adapters::config::AwsSettings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(adapters::aws::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .test_credentials()
        .timeout_config(adapters::aws::timeouts(settings))
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(settings.max_attempts),
        )
        .load()
        .await
}

/// An SDK config pointed at the shared emulator.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(&emulator().endpoint, &test_settings()).await
}

/// A name no other test in this run uses (lower case, valid for buckets, tables and queues).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute definition")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema")
}

/// A users table shaped like the template's: `pk` plus the `ByEntity` index.
pub async fn create_users_table(config: &SdkConfig) -> String {
    let name = unique("users");
    let index = GlobalSecondaryIndex::builder()
        .index_name(adapters::dynamo_users::ENTITY_INDEX)
        .key_schema(key("entity", KeyType::Hash))
        .key_schema(key("user_id", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("index");
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("entity"))
        .attribute_definitions(attr("user_id"))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(index)
        .send()
        .await
        .expect("create users table");
    name
}

/// A table with one string partition key.
pub async fn create_simple_table(config: &SdkConfig, prefix: &str, partition_key: &str) -> String {
    let name = unique(prefix);
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(partition_key))
        .key_schema(key(partition_key, KeyType::Hash))
        .send()
        .await
        .expect("create table");
    name
}

pub async fn create_bucket(config: &SdkConfig, prefix: &str) -> String {
    let name = unique(prefix);
    adapters::aws::s3_client(config)
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

/// A queue (FIFO with content-based deduplication off when `fifo`); returns its URL.
pub async fn create_queue(config: &SdkConfig, prefix: &str, fifo: bool) -> String {
    let client = aws_sdk_sqs::Client::new(config);
    let mut request = client.create_queue();
    if fifo {
        request = request
            .queue_name(format!("{}.fifo", unique(prefix)))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
    } else {
        request = request.queue_name(unique(prefix));
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue url")
        .to_string()
}

pub async fn queue_arn(config: &SdkConfig, url: &str) -> String {
    aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn")
}

pub async fn create_topic(config: &SdkConfig, prefix: &str) -> String {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(unique(prefix))
        .send()
        .await
        .expect("create topic")
        .topic_arn()
        .expect("topic arn")
        .to_string()
}

/// Subscribes a queue to a topic with raw delivery off (the SNS envelope keeps message attributes).
pub async fn subscribe_queue(config: &SdkConfig, topic_arn: &str, queue_url: &str) {
    let arn = queue_arn(config, queue_url).await;
    aws_sdk_sns::Client::new(config)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("subscribe");
}

/// Every message currently on a queue (bodies and attributes), deleting what it reads.
pub async fn drain(config: &SdkConfig, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let client = aws_sdk_sqs::Client::new(config);
    let mut all = Vec::new();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("receive");
        let messages = out.messages().to_vec();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        for m in &messages {
            if let Some(handle) = m.receipt_handle() {
                client
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        all.extend(messages);
    }
    all
}

/// order-processor with the AWS adapters.
pub type OrderProcessor = order_processor::Processor<
    adapters::dynamo_orders::DynamoOrderStore,
    adapters::sqs::SqsPaymentQueue,
    adapters::sns::SnsNotifier,
    adapters::sqs::SqsDeadLetters,
>;

/// Sends `body` to `queue` in the X-Ray trace `header` (the `AWSTraceHeader` system attribute).
pub async fn send_traced(config: &SdkConfig, queue: &str, body: &str, header: &str) {
    let trace = aws_sdk_sqs::types::MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(header)
        .build()
        .expect("a string attribute");
    aws_sdk_sqs::Client::new(config)
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .message_system_attributes(
            aws_sdk_sqs::types::MessageSystemAttributeNameForSends::AwsTraceHeader,
            trace,
        )
        .send()
        .await
        .expect("send a traced message");
}

/// order-processor's resources, shaped like the template's: the two tables, the FIFO payment queue,
/// the dead-letter queue, and the events topic with a queue subscribed to read what it published.
pub struct OrderStack {
    pub orders_table: String,
    pub inventory_table: String,
    pub payment_url: String,
    pub dlq_url: String,
    pub topic: String,
    pub events_url: String,
}

pub async fn create_order_stack(config: &SdkConfig) -> OrderStack {
    let orders_table = create_simple_table(config, "orders", "order_id").await;
    let inventory_table = create_simple_table(config, "inventory", "product_id").await;
    let payment_url = create_queue(config, "payments", true).await;
    let dlq_url = create_queue(config, "orders-dlq", false).await;
    let topic = create_topic(config, "order-events").await;
    let events_url = create_queue(config, "order-events-sub", false).await;
    subscribe_queue(config, &topic, &events_url).await;
    OrderStack {
        orders_table,
        inventory_table,
        payment_url,
        dlq_url,
        topic,
        events_url,
    }
}

impl OrderStack {
    /// The order store adapter over this stack's tables (with the client the function builds).
    pub fn store(&self, config: &SdkConfig) -> adapters::dynamo_orders::DynamoOrderStore {
        adapters::dynamo_orders::DynamoOrderStore::new(
            adapters::aws::dynamodb_client(config),
            self.orders_table.clone(),
            self.inventory_table.clone(),
        )
    }

    /// order-processor over this stack, its clients built as its `main` builds them.
    pub fn processor(&self, config: &SdkConfig) -> OrderProcessor {
        let sqs = adapters::aws::sqs_client(config);
        order_processor::Processor::new(
            self.store(config),
            adapters::sqs::SqsPaymentQueue::new(sqs.clone(), &self.payment_url),
            adapters::sns::SnsNotifier::new(adapters::aws::sns_client(config), &self.topic),
            adapters::sqs::SqsDeadLetters::new(sqs, &self.dlq_url),
        )
    }
}

/// The Lambda SQS event a batch of received messages becomes.
pub fn sqs_event(
    messages: &[aws_sdk_sqs::types::Message],
) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    for m in messages {
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.message_id = m.message_id().map(str::to_string);
        record.body = m.body().map(str::to_string);
        // System attributes (AWSTraceHeader among them), as Lambda delivers them.
        for (name, value) in m.attributes().into_iter().flatten() {
            record
                .attributes
                .insert(name.as_str().to_string(), value.clone());
        }
        event.records.push(record);
    }
    event
}
