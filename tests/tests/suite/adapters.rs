//! Each adapter against the moto server, through the real AWS SDK over HTTP.

use std::collections::BTreeMap;

use adapters::dynamo_orders::DynamoOrderStore;
use adapters::dynamo_users::DynamoUserStore;
use adapters::s3::S3ObjectStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use domain::order::{
    Money, Order, OrderEvent, OrderLine, OrderStatus, PaymentRequest, Reservation,
};
use domain::ports::{
    DeadLetters, NewObject, Notifier, ObjectStore, OrderStore, PaymentQueue, UserStore,
};
use domain::user::{NewUser, UserChanges};
use domain::PortError;
use integration_tests as h;
use uuid::Uuid;

fn user(email: &str) -> domain::user::User {
    NewUser {
        user_id: None,
        name: "Ada".into(),
        email: email.into(),
    }
    .into_user(
        Uuid::new_v4(),
        domain::user::timestamp(time::OffsetDateTime::now_utc()),
    )
}

#[tokio::test]
async fn s3_put_head_get_with_metadata_and_size_limit() {
    let config = h::sdk_config().await;
    let bucket = h::create_bucket(&config, "objects").await;
    let store = S3ObjectStore::new(adapters::aws::s3_client(&config));
    let key = "photos/été 2024/cat+dog.jpg";
    assert_eq!(store.head(&bucket, key).await.unwrap(), None);
    store
        .put(NewObject {
            bucket: bucket.clone(),
            key: key.into(),
            body: b"0123456789".to_vec(),
            content_type: "image/jpeg".into(),
            cache_control: "max-age=60".into(),
            metadata: BTreeMap::from([("source-etag".to_string(), "\"abc\"".to_string())]),
        })
        .await
        .unwrap();
    let info = store
        .head(&bucket, key)
        .await
        .unwrap()
        .expect("object exists");
    assert_eq!(info.size, 10);
    assert_eq!(
        info.metadata.get("source-etag").map(String::as_str),
        Some("\"abc\"")
    );
    assert!(!info.etag.is_empty());
    assert_eq!(
        store.get(&bucket, key, 10, None).await.unwrap(),
        b"0123456789"
    );
    assert!(matches!(
        store.get(&bucket, key, 9, None).await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        store.get(&bucket, "missing", 10, None).await,
        Err(PortError::NotFound)
    );
    // Conditioned on the ETag: the object as it was, or `VersionMismatch` once it is replaced.
    assert_eq!(
        store.get(&bucket, key, 10, Some(&info.etag)).await.unwrap(),
        b"0123456789"
    );
    store
        .put(NewObject {
            bucket: bucket.clone(),
            key: key.into(),
            body: b"replaced".to_vec(),
            content_type: "image/jpeg".into(),
            cache_control: "max-age=60".into(),
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.get(&bucket, key, 10, Some(&info.etag)).await,
        Err(PortError::VersionMismatch)
    );
}

#[tokio::test]
async fn dynamodb_users_are_unique_by_email_and_versioned() {
    let config = h::sdk_config().await;
    let table = h::create_users_table(&config).await;
    let store = DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let ada = user("ada@example.com");
    store.create(&ada).await.unwrap();
    assert_eq!(store.get(ada.user_id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        store.create(&user("ada@example.com")).await,
        Err(PortError::AlreadyExists("email".into()))
    );
    let now = domain::user::timestamp(time::OffsetDateTime::now_utc());
    let renamed = ada.with_changes(
        &UserChanges {
            name: None,
            email: Some("lovelace@example.com".into()),
        },
        now,
    );
    store.update(&ada, &renamed).await.unwrap();
    // The old email is free again, the new one taken; a stale version is refused.
    store.create(&user("ada@example.com")).await.unwrap();
    assert_eq!(
        store.update(&ada, &renamed).await,
        Err(PortError::VersionMismatch)
    );
    assert_eq!(store.delete(&ada).await, Err(PortError::VersionMismatch));
    store.delete(&renamed).await.unwrap();
    assert_eq!(store.get(ada.user_id).await.unwrap(), None);
    assert_eq!(store.delete(&renamed).await, Err(PortError::NotFound));
    store.create(&user("lovelace@example.com")).await.unwrap();
}

/// A write meant for a profile never lands on another created at the same id after it was deleted,
/// though both are at version 1.
#[tokio::test]
async fn dynamodb_writes_never_land_on_a_profile_created_again_at_the_same_id() {
    let config = h::sdk_config().await;
    let table = h::create_users_table(&config).await;
    let store = DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let first = user("grace@example.com");
    store.create(&first).await.unwrap();
    store.delete(&first).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = domain::user::User {
        created_at: domain::user::timestamp(time::OffsetDateTime::now_utc()),
        name: "Grace".into(),
        ..first.clone()
    };
    assert_eq!(
        (again.user_id, again.version),
        (first.user_id, first.version)
    );
    store.create(&again).await.unwrap();
    let now = domain::user::timestamp(time::OffsetDateTime::now_utc());
    let meant_for_first = first.with_changes(
        &UserChanges {
            name: Some("Hopper".into()),
            email: None,
        },
        now,
    );
    assert_eq!(
        store.update(&first, &meant_for_first).await,
        Err(PortError::VersionMismatch)
    );
    assert_eq!(store.delete(&first).await, Err(PortError::VersionMismatch));
    assert_eq!(store.get(again.user_id).await.unwrap(), Some(again));
}

#[tokio::test]
async fn dynamodb_orders_reserve_atomically() {
    let config = h::sdk_config().await;
    let orders = h::create_simple_table(&config, "orders", "order_id").await;
    let inventory = h::create_simple_table(&config, "inventory", "product_id").await;
    let store = DynamoOrderStore::new(aws_sdk_dynamodb::Client::new(&config), &orders, &inventory);
    store.set_stock("apple", 5).await.unwrap();
    store.set_stock("pear", 1).await.unwrap();
    let order = |id: &str, pear: u32| Order {
        order_id: id.into(),
        user_id: "u1".into(),
        items: vec![
            OrderLine {
                product_id: "apple".into(),
                quantity: 2,
            },
            OrderLine {
                product_id: "pear".into(),
                quantity: pear,
            },
        ],
        total: Money(1999),
        status: OrderStatus::PendingPayment,
        short_items: vec![],
        created_at: "2026-01-01T00:00:00Z".into(),
        payment_requested: false,
        outcome_notified: false,
        notification_sent: false,
    };
    assert_eq!(
        store.reserve(&order("o1", 1)).await.unwrap(),
        Reservation::Reserved
    );
    assert_eq!(
        store.reserve(&order("o1", 1)).await.unwrap(),
        Reservation::AlreadyExists
    );
    assert_eq!(
        store.reserve(&order("o2", 1)).await.unwrap(),
        Reservation::InsufficientStock(vec!["pear".into()])
    );
    assert_eq!(store.stock("apple").await.unwrap(), Some(3));
    assert_eq!(store.stock("pear").await.unwrap(), Some(0));
    let stored = store.get("o1").await.unwrap().expect("order stored");
    assert_eq!(stored, order("o1", 1));
    store.mark_done("o1", true, false).await.unwrap();
    let stored = store.get("o1").await.unwrap().unwrap();
    assert!(stored.payment_requested && !stored.notification_sent);
    assert_eq!(
        store.mark_done("nope", true, true).await,
        Err(PortError::NotFound)
    );
    let mut cancelled = order("o3", 9);
    cancelled.status = OrderStatus::CancelledInsufficientInventory;
    cancelled.short_items = vec!["pear".into()];
    assert!(store.record(&cancelled).await.unwrap());
    assert!(!store.record(&cancelled).await.unwrap());
    assert_eq!(store.get("o3").await.unwrap(), Some(cancelled));
}

/// Racing settlements of one pending order: exactly one applies, and stock comes back exactly
/// once (with the status change, in one transaction) or not at all.
#[tokio::test]
async fn dynamodb_settlements_apply_once_and_restore_stock_once() {
    use domain::ports::OrderSettlement;
    use domain::settlement::{Settled, Settlement};
    let config = h::sdk_config().await;
    let stack = h::create_order_stack(&config).await;
    let store = stack.store(&config);
    for round in 0..6 {
        store.set_stock("plum", 10).await.unwrap();
        let id = format!("o-race-{round}");
        let order = Order {
            order_id: id.clone(),
            user_id: "u1".into(),
            items: vec![OrderLine {
                product_id: "plum".into(),
                quantity: 4,
            }],
            total: Money(400),
            status: OrderStatus::PendingPayment,
            short_items: vec![],
            created_at: "2026-01-01T00:00:00Z".into(),
            payment_requested: true,
            outcome_notified: false,
            notification_sent: true,
        };
        assert_eq!(store.reserve(&order).await.unwrap(), Reservation::Reserved);
        assert_eq!(store.stock("plum").await.unwrap(), Some(6));
        let targets = [
            Settlement::Expired,
            Settlement::PaymentFailed,
            Settlement::Paid,
            Settlement::Expired,
        ];
        let results =
            futures::future::join_all(targets.iter().cycle().skip(round).take(8).map(|to| {
                let (store, id) = (store.clone(), id.clone());
                async move { (*to, store.settle(&id, *to).await.unwrap()) }
            }))
            .await;
        let applied: Vec<Settlement> = results
            .iter()
            .filter(|(_, r)| matches!(r, Settled::Applied(_)))
            .map(|(to, _)| *to)
            .collect();
        assert_eq!(applied.len(), 1, "round {round}: {results:?}");
        let stored = store.get(&id).await.unwrap().unwrap();
        assert_eq!(stored.status, applied[0].status());
        let expected = if applied[0].restores_stock() { 10 } else { 6 };
        assert_eq!(
            store.stock("plum").await.unwrap(),
            Some(expected),
            "round {round}"
        );
        // A repeat after the race changes nothing and says what the order is.
        assert_eq!(
            store.settle(&id, Settlement::Expired).await.unwrap(),
            Settled::Unchanged(stored)
        );
        assert_eq!(store.stock("plum").await.unwrap(), Some(expected));
    }
    assert_eq!(
        store
            .settle("no-such-order", Settlement::Paid)
            .await
            .unwrap(),
        Settled::NotFound
    );
    store.mark_outcome_notified("o-race-0").await.unwrap();
    assert!(
        store
            .get("o-race-0")
            .await
            .unwrap()
            .unwrap()
            .outcome_notified
    );
}

#[tokio::test]
async fn sqs_payment_requests_are_deduplicated_by_order_on_fifo() {
    let config = h::sdk_config().await;
    let url = h::create_queue(&config, "payments", true).await;
    let queue = SqsPaymentQueue::new(aws_sdk_sqs::Client::new(&config), &url);
    let request = PaymentRequest {
        order_id: "o-1".into(),
        idempotency_key: "o-1".into(),
        user_id: "u".into(),
        amount_minor: 5990,
        amount: "59.90".into(),
    };
    queue.request_payment(&request, None).await.unwrap();
    queue.request_payment(&request, None).await.unwrap();
    let messages = h::drain(&config, &url).await;
    assert_eq!(messages.len(), 1, "the duplicate send was dropped");
    let body: PaymentRequest = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(body, request);
    let attributes = messages[0].message_attributes().unwrap();
    assert_eq!(
        attributes["idempotency_key"].string_value(),
        Some("o-1"),
        "the payment service can deduplicate without parsing the body"
    );
}

#[tokio::test]
async fn expiry_messages_are_held_back_by_their_delay() {
    use adapters::sqs::SqsExpiryQueue;
    use domain::ports::ExpiryQueue;
    use domain::settlement::OrderExpiry;
    let config = h::sdk_config().await;
    let url = h::create_queue(&config, "expiries", false).await;
    let queue = SqsExpiryQueue::new(aws_sdk_sqs::Client::new(&config), &url);
    let expiry = OrderExpiry {
        order_id: "o-late".into(),
        expires_at: "2026-01-01T00:15:00Z".into(),
    };
    queue
        .schedule_expiry(&expiry, std::time::Duration::from_millis(1500), None)
        .await
        .unwrap();
    assert!(
        h::drain(&config, &url).await.is_empty(),
        "not delivered before its delay"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let messages = h::drain(&config, &url).await;
    assert_eq!(messages.len(), 1);
    let body: OrderExpiry = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(body, expiry);
}

#[tokio::test]
async fn sqs_dead_letters_carry_the_reason() {
    let config = h::sdk_config().await;
    let url = h::create_queue(&config, "dlq", false).await;
    let dlq = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&config), &url);
    dlq.park(
        "{broken",
        "m-1",
        "INVALID_JSON",
        "message body is not valid JSON",
    )
    .await
    .unwrap();
    let messages = h::drain(&config, &url).await;
    assert_eq!(messages.len(), 1);
    let attrs = messages[0].message_attributes().unwrap();
    assert_eq!(attrs["error_code"].string_value(), Some("INVALID_JSON"));
    assert_eq!(attrs["source_message_id"].string_value(), Some("m-1"));
    assert_eq!(messages[0].body(), Some("{broken"));
}

#[tokio::test]
async fn sns_events_reach_a_subscribed_queue_with_attributes() {
    let config = h::sdk_config().await;
    let topic = h::create_topic(&config, "order-events").await;
    let url = h::create_queue(&config, "subscriber", false).await;
    h::subscribe_queue(&config, &topic, &url).await;
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&config), &topic);
    let event = OrderEvent {
        event_id: "ORDER_CREATED:o-9".into(),
        event_type: domain::order::EventType::OrderCreated,
        order_id: "o-9".into(),
        user_id: "u".into(),
        status: OrderStatus::PendingPayment,
        reason: None,
        total: "1.00".into(),
        items: vec![],
        short_items: vec![],
    };
    notifier.publish(&event, None).await.unwrap();
    let messages = h::drain(&config, &url).await;
    assert_eq!(messages.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(
        envelope["MessageAttributes"]["event_type"]["Value"],
        "ORDER_CREATED"
    );
    let inner: OrderEvent = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(inner, event);
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_not_a_hang() {
    // A port nothing listens on: connection refused, retried, then reported as transient.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = h::test_settings();
    settings.max_attempts = 2;
    let config = h::sdk_config_for(&format!("http://127.0.0.1:{port}"), &settings).await;
    let store = DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&config), "t");
    let err = store.get(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_service_error_names_its_service_code_and_request_id() {
    let config = h::sdk_config().await;
    let store = DynamoUserStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        h::unique("no-such-table"),
    );
    let error = store.get(Uuid::new_v4()).await.unwrap_err();
    let origin = error.origin().expect("a dependency failure");
    assert_eq!(
        (origin.service, origin.code),
        ("dynamodb", "ResourceNotFoundException"),
        "{error}"
    );
    assert_ne!(origin.request_id, "-", "the emulator's request id: {error}");
}
