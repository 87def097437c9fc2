//! The order message from SQS: its wire shape, the limits it must keep, and its validation into an
//! `OrderRequest` or the reason it never can be one (a poison message).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashSet;

use super::money::Money;
use crate::validation::ValidationErrors;

pub const MAX_ITEMS: usize = 50;

pub const MAX_QUANTITY: u32 = 1000;

pub const MAX_ID_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: String,
    pub quantity: u32,
}

/// A validated order request, as parsed from one SQS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total: Money,
}

#[derive(Deserialize)]
struct WireOrder<'a> {
    order_id: Option<serde_json::Value>,
    user_id: Option<serde_json::Value>,
    items: Option<serde_json::Value>,
    #[serde(borrow)]
    total_amount: Option<&'a RawValue>,
}

/// Why a message can never be processed (it goes to the dead-letter queue, not back to the queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoisonReason {
    InvalidJson(String),
    InvalidOrder(ValidationErrors),
}

impl PoisonReason {
    pub fn code(&self) -> &'static str {
        match self {
            PoisonReason::InvalidJson(_) => "INVALID_JSON",
            PoisonReason::InvalidOrder(_) => "INVALID_ORDER",
        }
    }
}

impl std::fmt::Display for PoisonReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoisonReason::InvalidJson(m) => write!(f, "message body is not valid JSON: {m}"),
            PoisonReason::InvalidOrder(e) => write!(f, "invalid order: {e}"),
        }
    }
}

/// Parses and validates one order message. Unknown fields are ignored (producers may add some).
pub fn parse_order_message(body: &str) -> Result<OrderRequest, PoisonReason> {
    let wire: WireOrder = serde_json::from_str(body).map_err(|e| {
        PoisonReason::InvalidJson(format!(
            "{} at line {}, column {}",
            classify(&e),
            e.line(),
            e.column()
        ))
    })?;
    let mut errors = ValidationErrors::new();
    let order_id = id_field(wire.order_id.as_ref(), "order_id", &mut errors);
    let user_id = id_field(wire.user_id.as_ref(), "user_id", &mut errors);
    let items = items_field(wire.items.as_ref(), &mut errors);
    let total = match wire.total_amount {
        None => {
            errors.add("total_amount", "is required");
            None
        }
        Some(raw) => {
            let text = raw.get();
            let parsed =
                if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Money::parse_decimal(inner)
                } else if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    Money::parse_decimal(text)
                } else {
                    Err("must be a number or a string holding a decimal amount".to_string())
                };
            match parsed {
                Ok(m) => Some(m),
                Err(message) => {
                    errors.add("total_amount", message);
                    None
                }
            }
        }
    };
    match (order_id, user_id, items, total) {
        (Some(order_id), Some(user_id), Some(items), Some(total)) if errors.is_empty() => {
            Ok(OrderRequest {
                order_id,
                user_id,
                items,
                total,
            })
        }
        _ => Err(PoisonReason::InvalidOrder(errors)),
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Data => "not an order object",
        serde_json::error::Category::Eof => "unexpected end of input",
        _ => "syntax error",
    }
}

fn id_field(
    value: Option<&serde_json::Value>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<String> {
    match value {
        None | Some(serde_json::Value::Null) => {
            errors.add(field, "is required");
            None
        }
        Some(serde_json::Value::String(s)) => match validate_id(s) {
            Ok(()) => Some(s.clone()),
            Err(m) => {
                errors.add(field, m);
                None
            }
        },
        Some(_) => {
            errors.add(field, "must be a string");
            None
        }
    }
}

/// Ids are 1–128 visible characters (they become DynamoDB keys and SQS deduplication ids).
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!("must be at most {MAX_ID_CHARS} characters"));
    }
    if !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must contain only visible ASCII characters".into());
    }
    Ok(())
}

fn items_field(
    value: Option<&serde_json::Value>,
    errors: &mut ValidationErrors,
) -> Option<Vec<OrderLine>> {
    let list = match value {
        Some(serde_json::Value::Array(list)) => list,
        None | Some(serde_json::Value::Null) => {
            errors.add("items", "is required");
            return None;
        }
        Some(_) => {
            errors.add("items", "must be an array");
            return None;
        }
    };
    if list.is_empty() || list.len() > MAX_ITEMS {
        errors.add("items", format!("must hold 1 to {MAX_ITEMS} items"));
        return None;
    }
    let mut lines = Vec::with_capacity(list.len());
    let mut seen = HashSet::new();
    let before = errors.errors.len();
    for (i, item) in list.iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        let Some(obj) = item.as_object() else {
            errors.add(&format!("items[{i}]"), "must be an object");
            continue;
        };
        let product_id = id_field(obj.get("product_id"), &at("product_id"), errors);
        let quantity = match obj.get("quantity").and_then(|q| q.as_u64()) {
            Some(q) if (1..=u64::from(MAX_QUANTITY)).contains(&q) => Some(q as u32),
            _ => {
                errors.add(
                    &at("quantity"),
                    format!("must be a whole number from 1 to {MAX_QUANTITY}"),
                );
                None
            }
        };
        if let Some(pid) = &product_id {
            if !seen.insert(pid.clone()) {
                errors.add(&at("product_id"), "appears more than once in the order");
            }
        }
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(OrderLine {
                product_id,
                quantity,
            });
        }
    }
    (errors.errors.len() == before).then_some(lines)
}
