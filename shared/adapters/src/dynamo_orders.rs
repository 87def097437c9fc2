//! `OrderStore` on DynamoDB: the `Inventory` table (`product_id` → `quantity`) and the `Orders` table
//! (`order_id` → the order with its side-effect flags).

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use domain::order::{Money, Order, OrderLine, OrderStatus, Reservation};
use domain::ports::{OrderSettlement, OrderStore};
use domain::settlement::{Settled, Settlement};
use domain::PortError;

use crate::dynamo::{
    build, get_bool, get_n, get_s, number_attr, string_attr, transact, Item, TxFailure,
};
use crate::errors::classify;

fn order_item(order: &Order) -> Item {
    let lines = order
        .items
        .iter()
        .map(|l| {
            AttributeValue::M(Item::from([
                ("product_id".to_string(), string_attr(&l.product_id)),
                ("quantity".to_string(), number_attr(l.quantity)),
            ]))
        })
        .collect();
    Item::from([
        ("order_id".to_string(), string_attr(&order.order_id)),
        ("user_id".to_string(), string_attr(&order.user_id)),
        ("items".to_string(), AttributeValue::L(lines)),
        ("total_minor".to_string(), number_attr(order.total.0)),
        ("total".to_string(), string_attr(order.total.to_string())),
        ("status".to_string(), string_attr(order.status.as_str())),
        (
            "short_items".to_string(),
            AttributeValue::L(order.short_items.iter().map(string_attr).collect()),
        ),
        ("created_at".to_string(), string_attr(&order.created_at)),
        (
            "payment_requested".to_string(),
            AttributeValue::Bool(order.payment_requested),
        ),
        (
            "notification_sent".to_string(),
            AttributeValue::Bool(order.notification_sent),
        ),
        (
            "outcome_notified".to_string(),
            AttributeValue::Bool(order.outcome_notified),
        ),
    ])
}

fn order_from_item(item: &Item) -> Result<Order, PortError> {
    let bad =
        |f: &str| PortError::Rejected(format!("dynamodb: stored order has a malformed `{f}`"));
    let items = match item.get("items") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::M(m) => Ok(OrderLine {
                    product_id: get_s(m, "order line", "product_id")?.to_string(),
                    quantity: get_n(m, "order line", "quantity")?,
                }),
                _ => Err(bad("items")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("items")),
    };
    let short_items = match item.get("short_items") {
        Some(AttributeValue::L(list)) => {
            list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
        }
        _ => Vec::new(),
    };
    Ok(Order {
        order_id: get_s(item, "order", "order_id")?.to_string(),
        user_id: get_s(item, "order", "user_id")?.to_string(),
        items,
        total: Money(get_n(item, "order", "total_minor")?),
        status: OrderStatus::parse(get_s(item, "order", "status")?).ok_or_else(|| bad("status"))?,
        short_items,
        created_at: get_s(item, "order", "created_at")?.to_string(),
        payment_requested: get_bool(item, "payment_requested"),
        notification_sent: get_bool(item, "notification_sent"),
        outcome_notified: get_bool(item, "outcome_notified"),
    })
}

/// IAM actions the order processor performs on the orders table through this adapter (the
/// reservation transaction's `Put` is authorised as `PutItem`; `mark_done` updates, `get` reads).
/// The settlement (`OrderSettlement`) needs `SETTLEMENT_ORDERS_TABLE_ACTIONS` and
/// `INVENTORY_TABLE_ACTIONS`.
pub const ORDERS_TABLE_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
];

/// IAM actions on the inventory table: the reservation transaction's `Update` per line. (`set_stock`
/// and `stock` are seeding tools run with an operator's credentials, not the function's.)
pub const INVENTORY_TABLE_ACTIONS: &[&str] = &["dynamodb:UpdateItem"];

/// IAM actions of `OrderSettlement` on the orders table: it reads the order, then changes its
/// status (an `Update` in the restoring transaction, authorised as `UpdateItem`).
pub const SETTLEMENT_ORDERS_TABLE_ACTIONS: &[&str] = &["dynamodb:GetItem", "dynamodb:UpdateItem"];

#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: aws_sdk_dynamodb::Client,
    orders_table: String,
    inventory_table: String,
}

impl DynamoOrderStore {
    /// Sets flags of an existing order to true (`assignments` such as `payment_sent = :t`); an
    /// order that is not there is `NotFound`.
    async fn set_true(&self, order_id: &str, assignments: &str) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.orders_table)
            .key("order_id", string_attr(order_id))
            .update_expression(format!("SET {assignments}"))
            .condition_expression("attribute_exists(order_id)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(PortError::NotFound)
            }
            Err(e) => Err(classify("dynamodb", &e)),
        }
    }

    pub fn new(
        client: aws_sdk_dynamodb::Client,
        orders_table: impl Into<String>,
        inventory_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            orders_table: orders_table.into(),
            inventory_table: inventory_table.into(),
        }
    }

    /// Sets a product's stock (seeding for local runs and tests).
    pub async fn set_stock(&self, product_id: &str, quantity: i64) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.inventory_table)
            .item("product_id", string_attr(product_id))
            .item("quantity", number_attr(quantity))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("dynamodb", &e))
    }

    /// A product's current stock (strongly consistent), `None` if unknown.
    pub async fn stock(&self, product_id: &str) -> Result<Option<i64>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.inventory_table)
            .key("product_id", string_attr(product_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", &e))?;
        out.item()
            .map(|i| get_n(i, "inventory", "quantity"))
            .transpose()
    }

    fn put_order(&self, order: &Order) -> Result<TransactWriteItem, PortError> {
        let put = build(
            Put::builder()
                .table_name(&self.orders_table)
                .set_item(Some(order_item(order)))
                .condition_expression("attribute_not_exists(order_id)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl OrderStore for DynamoOrderStore {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        let mut actions = Vec::with_capacity(order.items.len() + 1);
        for line in &order.items {
            let update = build(
                Update::builder()
                    .table_name(&self.inventory_table)
                    .key("product_id", string_attr(&line.product_id))
                    .update_expression("SET quantity = quantity - :q")
                    .condition_expression("attribute_exists(product_id) AND quantity >= :q")
                    .expression_attribute_values(":q", number_attr(line.quantity))
                    .build(),
            )?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        actions.push(self.put_order(order)?);
        let order_index = order.items.len();
        match transact(
            &self.client,
            actions,
            Some(telemetry::metric_catalog::STOCK_RESERVATION_CONFLICTS),
        )
        .await
        {
            Ok(()) => Ok(Reservation::Reserved),
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, order_index) => {
                Ok(Reservation::AlreadyExists)
            }
            Err(TxFailure::Cancelled(r)) => {
                let short: Vec<String> = order
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| TxFailure::condition_failed(&r, *i))
                    .map(|(_, l)| l.product_id.clone())
                    .collect();
                if short.is_empty() {
                    Err(TxFailure::other_reasons(&r))
                } else {
                    Ok(Reservation::InsufficientStock(short))
                }
            }
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.orders_table)
            .set_item(Some(order_item(order)))
            .condition_expression("attribute_not_exists(order_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("dynamodb", &e)),
        }
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.orders_table)
            .key("order_id", string_attr(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", &e))?;
        out.item().map(order_from_item).transpose()
    }

    async fn mark_done(
        &self,
        order_id: &str,
        payment_requested: bool,
        notification_sent: bool,
    ) -> Result<(), PortError> {
        let mut sets = Vec::new();
        if payment_requested {
            sets.push("payment_requested = :t");
        }
        if notification_sent {
            sets.push("notification_sent = :t");
        }
        if sets.is_empty() {
            return Ok(());
        }
        self.set_true(order_id, &sets.join(", ")).await
    }
}

impl DynamoOrderStore {
    /// The conditional status change out of `PENDING_PAYMENT`.
    fn status_change(&self, order_id: &str, to: Settlement) -> Result<Update, PortError> {
        build(
            Update::builder()
                .table_name(&self.orders_table)
                .key("order_id", string_attr(order_id))
                .update_expression("SET #status = :to")
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":to", string_attr(to.status().as_str()))
                .expression_attribute_values(
                    ":pending",
                    string_attr(OrderStatus::PendingPayment.as_str()),
                )
                .build(),
        )
    }

    /// The order as it is now, for an answer of `Unchanged` (or `NotFound` when it is gone).
    async fn unchanged(&self, order_id: &str) -> Result<Settled, PortError> {
        Ok(match self.get(order_id).await? {
            Some(order) => Settled::Unchanged(order),
            None => Settled::NotFound,
        })
    }
}

impl OrderSettlement for DynamoOrderStore {
    async fn settle(&self, order_id: &str, to: Settlement) -> Result<Settled, PortError> {
        // The lines to give back are read from the record; the write below only commits while
        // the record is still pending, so the read cannot be stale for a write that happens.
        let Some(mut order) = self.get(order_id).await? else {
            return Ok(Settled::NotFound);
        };
        if order.status != OrderStatus::PendingPayment {
            return Ok(Settled::Unchanged(order));
        }
        let status = self.status_change(order_id, to)?;
        if !to.restores_stock() {
            let result = self
                .client
                .update_item()
                .table_name(&self.orders_table)
                .key("order_id", string_attr(order_id))
                .update_expression("SET #status = :to")
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":to", string_attr(to.status().as_str()))
                .expression_attribute_values(
                    ":pending",
                    string_attr(OrderStatus::PendingPayment.as_str()),
                )
                .send()
                .await;
            return match result {
                Ok(_) => {
                    order.status = to.status();
                    Ok(Settled::Applied(order))
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                {
                    self.unchanged(order_id).await
                }
                Err(e) => Err(classify("dynamodb", &e)),
            };
        }
        // Status change and stock restored in one transaction: both or neither, once.
        let mut actions = vec![TransactWriteItem::builder().update(status).build()];
        for line in &order.items {
            let restore = build(
                Update::builder()
                    .table_name(&self.inventory_table)
                    .key("product_id", string_attr(&line.product_id))
                    .update_expression("ADD quantity :q")
                    .expression_attribute_values(":q", number_attr(line.quantity))
                    .build(),
            )?;
            actions.push(TransactWriteItem::builder().update(restore).build());
        }
        match transact(
            &self.client,
            actions,
            Some(telemetry::metric_catalog::STOCK_RESERVATION_CONFLICTS),
        )
        .await
        {
            Ok(()) => {
                order.status = to.status();
                Ok(Settled::Applied(order))
            }
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, 0) => {
                self.unchanged(order_id).await
            }
            Err(TxFailure::Cancelled(r)) => Err(TxFailure::other_reasons(&r)),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    async fn mark_outcome_notified(&self, order_id: &str) -> Result<(), PortError> {
        self.set_true(order_id, "outcome_notified = :t").await
    }
}
