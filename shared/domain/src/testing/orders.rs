//! Orders and stock in memory: the reservation and the settlement as one step each.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::order::OrderStatus;
use crate::order::{Order, Reservation};
use crate::ports::{OrderSettlement, OrderStore};
use crate::settlement::{Settled, Settlement};
use crate::PortError;

use super::faults::{lock, Faults};

#[derive(Default, Debug)]
struct OrderState {
    stock: HashMap<String, i64>,
    orders: HashMap<String, Order>,
}

#[derive(Default, Debug)]
pub struct InMemoryOrderStore {
    state: Mutex<OrderState>,
    pub faults: Faults,
}

impl InMemoryOrderStore {
    pub fn set_stock(&self, product_id: &str, quantity: i64) {
        lock(&self.state)
            .stock
            .insert(product_id.to_string(), quantity);
    }

    pub fn stock(&self, product_id: &str) -> Option<i64> {
        lock(&self.state).stock.get(product_id).copied()
    }

    pub fn order(&self, order_id: &str) -> Option<Order> {
        lock(&self.state).orders.get(order_id).cloned()
    }

    pub fn order_count(&self) -> usize {
        lock(&self.state).orders.len()
    }
}

impl OrderStore for InMemoryOrderStore {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        self.faults.enter("reserve")?;
        let mut s = lock(&self.state);
        if s.orders.contains_key(&order.order_id) {
            return Ok(Reservation::AlreadyExists);
        }
        let short: Vec<String> = order
            .items
            .iter()
            .filter(|l| s.stock.get(&l.product_id).copied().unwrap_or(0) < i64::from(l.quantity))
            .map(|l| l.product_id.clone())
            .collect();
        if !short.is_empty() {
            return Ok(Reservation::InsufficientStock(short));
        }
        for line in &order.items {
            if let Some(q) = s.stock.get_mut(&line.product_id) {
                *q -= i64::from(line.quantity);
            }
        }
        s.orders.insert(order.order_id.clone(), order.clone());
        Ok(Reservation::Reserved)
    }

    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        self.faults.enter("record")?;
        let mut s = lock(&self.state);
        if s.orders.contains_key(&order.order_id) {
            return Ok(false);
        }
        s.orders.insert(order.order_id.clone(), order.clone());
        Ok(true)
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        self.faults.enter("get")?;
        Ok(lock(&self.state).orders.get(order_id).cloned())
    }

    async fn mark_done(
        &self,
        order_id: &str,
        payment_requested: bool,
        notification_sent: bool,
    ) -> Result<(), PortError> {
        self.faults.enter("mark_done")?;
        let mut s = lock(&self.state);
        let order = s.orders.get_mut(order_id).ok_or(PortError::NotFound)?;
        order.payment_requested |= payment_requested;
        order.notification_sent |= notification_sent;
        Ok(())
    }
}

impl OrderSettlement for InMemoryOrderStore {
    async fn settle(&self, order_id: &str, to: Settlement) -> Result<Settled, PortError> {
        self.faults.enter("settle")?;
        // One lock for the status check, the status change and the stock: one atomic step, as
        // the DynamoDB transaction is.
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        let Some(order) = s.orders.get_mut(order_id) else {
            return Ok(Settled::NotFound);
        };
        if order.status != OrderStatus::PendingPayment {
            return Ok(Settled::Unchanged(order.clone()));
        }
        order.status = to.status();
        if to.restores_stock() {
            for line in &order.items {
                *s.stock.entry(line.product_id.clone()).or_default() += i64::from(line.quantity);
            }
        }
        Ok(Settled::Applied(order.clone()))
    }

    async fn mark_outcome_notified(&self, order_id: &str) -> Result<(), PortError> {
        self.faults.enter("mark_outcome_notified")?;
        let mut s = lock(&self.state);
        let order = s.orders.get_mut(order_id).ok_or(PortError::NotFound)?;
        order.outcome_notified = true;
        Ok(())
    }
}
