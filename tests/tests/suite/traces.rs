//! Spans reach an X-Ray daemon, and one order's trace runs from its message to the payment message
//! and the event: the real exporter writing UDP to a socket that reads the daemon's protocol, the
//! real SDK against the emulator.

use std::net::UdpSocket;
use std::time::Duration;

use integration_tests as h;
use serde_json::{json, Value};
use telemetry::xray::SpanExport;
use tracing_subscriber::layer::SubscriberExt;

const SENDER: &str = "53995c3f42cd8ad8";

/// A trace id of now: X-Ray refuses ids whose time part is more than 30 days old.
fn root() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("1-{now:08x}-4b8c1d2e3f4a5b6c7d8e9f01")
}

/// A stand-in for the X-Ray daemon: the segment documents sent to it, each after its
/// `{"format": "json", "version": 1}` header line.
struct Daemon(UdpSocket);

impl Daemon {
    fn start() -> Daemon {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        Daemon(socket)
    }

    fn documents(&self) -> Vec<Value> {
        let mut buffer = vec![0u8; 65536];
        let mut documents = Vec::new();
        while let Ok(n) = self.0.recv(&mut buffer) {
            let text = std::str::from_utf8(&buffer[..n]).unwrap();
            let (header, body) = text
                .split_once('\n')
                .expect("header line, then the document");
            let header: Value = serde_json::from_str(header).unwrap();
            assert_eq!(header, json!({"format": "json", "version": 1}));
            documents.push(serde_json::from_str(body).unwrap());
        }
        documents
    }
}

/// The X-Ray header's fields.
fn fields(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

struct Run {
    documents: Vec<Value>,
    payment_header: String,
    event_header: String,
}

/// One order, sent with `header`, processed with spans exported; what the daemon and the two
/// downstream queues received.
async fn process_traced_order(header: &str, order_id: &str) -> Run {
    let config = h::sdk_config().await;
    let resources = h::create_order_stack(&config).await;
    resources
        .store(&config)
        .set_stock("widget", 5)
        .await
        .unwrap();
    let orders = h::create_queue(&config, "orders-traced", false).await;
    let body = json!({"order_id": order_id, "user_id": "u1",
        "items": [{"product_id": "widget", "quantity": 1}], "total_amount": "2.50"});
    h::send_traced(&config, &orders, &body.to_string(), header).await;
    let event = h::sqs_event(&h::drain(&config, &orders).await);

    let daemon = Daemon::start();
    let export =
        SpanExport::to_daemon(daemon.0.local_addr().unwrap(), "order-processor", None).unwrap();
    let subscriber = tracing_subscriber::registry().with(export.layer());
    let processor = resources.processor(&config);
    let failures = {
        let _guard = tracing::subscriber::set_default(subscriber);
        processor.handle_batch(event).await.batch_item_failures
    };
    assert!(failures.is_empty(), "{failures:?}");
    let documents = daemon.documents();

    let payments = h::drain(&config, &resources.payment_url).await;
    assert_eq!(payments.len(), 1);
    let payment_header = payments[0]
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader))
        .expect("the payment message carries a trace header")
        .clone();
    let events = h::drain(&config, &resources.events_url).await;
    assert_eq!(events.len(), 1);
    let envelope: Value = serde_json::from_str(events[0].body().unwrap()).unwrap();
    let event_header = envelope["MessageAttributes"][adapters::sns::TRACE_ATTRIBUTE]["Value"]
        .as_str()
        .expect("the event carries a trace header")
        .to_string();
    Run {
        documents,
        payment_header,
        event_header,
    }
}

#[tokio::test]
async fn one_order_is_one_trace_from_its_message_to_the_payment_message_and_the_event() {
    let root = root();
    let header = format!("Root={root};Parent={SENDER};Sampled=1");
    let run = process_traced_order(&header, "ord-spans").await;
    // The order continues the sender's trace: a segment of its own below the sender's span.
    let order = run
        .documents
        .iter()
        .find(|d| d["name"] == "order-processor" && d.get("type").is_none())
        .unwrap_or_else(|| panic!("an order segment in {:#?}", run.documents));
    assert_eq!(order["trace_id"], root);
    assert_eq!(order["parent_id"], SENDER);
    assert_eq!(order["annotations"]["order_id"], "ord-spans", "{order}");
    assert_eq!(order["annotations"]["outcome"], "reserved", "{order}");
    let order_id = order["id"].as_str().unwrap();

    // Every AWS call is a subsegment of the order, with its service, operation and request id.
    let calls: Vec<&Value> = run
        .documents
        .iter()
        .filter(|d| d["namespace"] == "aws")
        .collect();
    let mut seen: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["name"].as_str().unwrap(),
                c["aws"]["operation"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    for expected in [
        "DynamoDB.TransactWriteItems",
        "SNS.Publish",
        "SQS.SendMessage",
    ] {
        assert!(seen.iter().any(|s| s == expected), "{expected} in {seen:?}");
    }
    for call in &calls {
        assert_eq!(call["trace_id"], root, "{call}");
        assert_eq!(call["parent_id"], order_id, "{call}");
        assert_eq!(call["type"], "subsegment", "{call}");
        assert_eq!(call["annotations"]["outcome"], "ok", "{call}");
        assert_eq!(call["http"]["response"]["status"], 200, "{call}");
        assert!(
            call["aws"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "the call's request id: {call}"
        );
        assert!(call["end_time"].as_f64().unwrap() >= call["start_time"].as_f64().unwrap());
    }

    // The consumers of the payment message and the event continue the same trace, below the order.
    for sent in [&run.payment_header, &run.event_header] {
        let f = fields(sent);
        assert_eq!(field(&f, "Root"), root, "{sent}");
        assert_eq!(field(&f, "Sampled"), "1", "{sent}");
        assert_eq!(field(&f, "Parent"), order_id, "{sent}");
    }
}

#[tokio::test]
async fn an_unsampled_trace_exports_nothing_and_passes_its_decision_on() {
    let root = root();
    let header = format!("Root={root};Parent={SENDER};Sampled=0");
    let run = process_traced_order(&header, "ord-unsampled").await;
    assert!(run.documents.is_empty(), "{:#?}", run.documents);
    for sent in [&run.payment_header, &run.event_header] {
        let f = fields(sent);
        assert_eq!(field(&f, "Root"), root, "{sent}");
        assert_eq!(field(&f, "Sampled"), "0", "{sent}");
    }
}

#[tokio::test]
async fn an_api_request_is_a_span_naming_its_route_and_a_pseudonym_never_the_user() {
    let config = h::sdk_config().await;
    let table = h::create_users_table(&config).await;
    let store = adapters::dynamo_users::DynamoUserStore::new(
        adapters::aws::dynamodb_client(&config),
        table,
    );
    let api = user_api::Api::new(store, vec!["https://app.example.com".into()], "secret");
    let me = uuid::Uuid::new_v4().to_string();
    let email = "span.secret@example.com";
    let body = json!({"name": "Span Secret", "email": email}).to_string();
    let event = h::fixtures::api_event("POST", "/users", Some(&body), Some(&me), false);

    let daemon = Daemon::start();
    let export = SpanExport::to_daemon(daemon.0.local_addr().unwrap(), "user-api", None).unwrap();
    let subscriber = tracing_subscriber::registry().with(export.layer());
    let root = root();
    let invocation = format!("Root={root};Parent={SENDER};Sampled=1");
    let status = {
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut statuses = Vec::new();
        for event in [
            event,
            h::fixtures::api_event("GET", &format!("/users/{me}"), None, Some(&me), false),
        ] {
            // As the invocation span does with Lambda's trace header.
            let span = tracing::info_span!(target: "telemetry::invocation", "invocation");
            telemetry::xray::continue_trace(&span, &invocation);
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response =
                tracing::Instrument::instrument(user_api::handle(&api, request), span).await;
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    assert_eq!(status, [201, 200]);
    let documents = daemon.documents();
    let text = serde_json::to_string(&documents).unwrap();
    assert!(
        !text.contains(&me) && !text.contains(email) && !text.contains("Span Secret"),
        "{text}"
    );

    let requests: Vec<&Value> = documents
        .iter()
        .filter(|d| d["name"] == "api_request")
        .collect();
    assert_eq!(requests.len(), 2, "{documents:#?}");
    let get = requests
        .iter()
        .find(|d| d["http"]["request"]["method"] == "GET")
        .unwrap_or_else(|| panic!("the GET request's span in {requests:#?}"));
    assert_eq!(get["annotations"]["http_route"], "/users/{id}", "{get}");
    assert_eq!(
        get["annotations"]["user"],
        telemetry::xray::pseudonym(&me).as_str(),
        "{get}"
    );
    for request in &requests {
        assert_eq!(request["trace_id"], root.as_str());
    }
    let gets: Vec<&Value> = documents
        .iter()
        .filter(|d| d["aws"]["operation"] == "GetItem")
        .collect();
    assert_eq!(gets.len(), 1, "{documents:#?}");
    assert_eq!(
        gets[0]["parent_id"], get["id"],
        "the read is a part of the GET request"
    );
}

#[tokio::test]
async fn an_upload_is_a_span_naming_its_key_and_outcome_with_its_s3_calls_below() {
    let config = h::sdk_config().await;
    let s3 = adapters::aws::s3_client(&config);
    let source = h::create_bucket(&config, "traced-uploads").await;
    let destination = h::create_bucket(&config, "traced-variants").await;
    let uploads = [
        ("photos/spring.png", "good/spring-rgba-1600x1200.png"),
        ("photos/broken.jpg", "bad/garden-truncated-40pct.jpg"),
    ];
    let mut records = Vec::new();
    for (key, file) in uploads {
        let body = h::fixtures::test_image(file);
        s3.put_object()
            .bucket(&source)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        records.push(
            json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": source}, "object": {"key": key, "size": body.len()}}}),
        );
    }
    let compressor = image_compressor::Compressor::new(
        adapters::s3::S3ObjectStore::new(s3),
        h::fixtures::compressor_settings(&destination),
    );

    let daemon = Daemon::start();
    let export =
        SpanExport::to_daemon(daemon.0.local_addr().unwrap(), "image-compressor", None).unwrap();
    let subscriber = tracing_subscriber::registry().with(export.layer());
    let root = root();
    let invocation = format!("Root={root};Parent={SENDER};Sampled=1");
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        let span = tracing::info_span!(target: "telemetry::invocation", "invocation");
        telemetry::xray::continue_trace(&span, &invocation);
        let outcomes =
            tracing::Instrument::instrument(compressor.handle(json!({ "Records": records })), span)
                .await
                .unwrap();
        assert_eq!(outcomes.len(), 2);
    }
    let documents = daemon.documents();
    let image = |key: &str| {
        documents
            .iter()
            .find(|d| d["name"] == "image" && d["annotations"]["key"] == key)
            .unwrap_or_else(|| panic!("the span of {key} in {documents:#?}"))
    };
    let (written, skipped) = (image("photos/spring.png"), image("photos/broken.jpg"));
    assert_eq!(written["annotations"]["outcome"], "written", "{written}");
    assert_eq!(
        written["annotations"]["bucket"],
        source.as_str(),
        "{written}"
    );
    assert_eq!(skipped["annotations"]["outcome"], "skipped", "{skipped}");
    let below = |parent: &Value, operation: &str| {
        documents
            .iter()
            .filter(|d| d["parent_id"] == parent["id"] && d["aws"]["operation"] == operation)
            .count()
    };
    assert_eq!(below(written, "GetObject"), 1, "{documents:#?}");
    assert_eq!(
        below(written, "PutObject"),
        4 + 1,
        "one write per variant, then the manifest"
    );
    assert_eq!(below(skipped, "GetObject"), 1);
    assert_eq!(below(skipped, "PutObject"), 0);
    assert!(documents.iter().all(|d| d["trace_id"] == root.as_str()));
}
