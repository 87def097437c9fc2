//! `UserStore` on DynamoDB.
//!
//! One table, partition key `pk`:
//! - user items `pk = "USER#<id>"` with `entity = "USER"` (listed in id order through the sparse
//!   global secondary index `ByEntity`: hash `entity`, range `user_id`);
//! - email reservations `pk = "EMAIL#<email>"` holding `user_id`, written in the same transaction as the
//!   user so an email can never belong to two users.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use domain::ports::{UserPage, UserStore};
use domain::user::User;
use domain::PortError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dynamo::{build, get_n, get_s, number_attr, string_attr, transact, Item, TxFailure};
use crate::errors::classify;

pub const ENTITY_INDEX: &str = "ByEntity";
const USER_ENTITY: &str = "USER";

fn user_pk(id: Uuid) -> String {
    format!("USER#{id}")
}

fn email_pk(email: &str) -> String {
    format!("EMAIL#{email}")
}

/// The condition of a write over a profile that was read: the same version of the same profile. A
/// profile deleted and created again at the same id starts at version 1 again, so the version alone
/// would let a write meant for the old profile land on the new one; its `created_at` (milliseconds)
/// tells them apart.
const SAME_PROFILE: &str = "version = :v AND created_at = :created";

fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn user_item(user: &User) -> Item {
    Item::from([
        ("pk".to_string(), string_attr(user_pk(user.user_id))),
        ("entity".to_string(), string_attr(USER_ENTITY)),
        ("user_id".to_string(), string_attr(user.user_id.to_string())),
        ("name".to_string(), string_attr(&user.name)),
        ("email".to_string(), string_attr(&user.email)),
        (
            "created_at".to_string(),
            string_attr(format_time(user.created_at)),
        ),
        (
            "updated_at".to_string(),
            string_attr(format_time(user.updated_at)),
        ),
        ("version".to_string(), number_attr(user.version)),
    ])
}

fn user_from_item(item: &Item) -> Result<User, PortError> {
    let time = |field: &str| -> Result<OffsetDateTime, PortError> {
        OffsetDateTime::parse(get_s(item, "user", field)?, &Rfc3339).map_err(|_| {
            PortError::Rejected(format!("dynamodb: stored user has a malformed `{field}`"))
        })
    };
    Ok(User {
        user_id: Uuid::parse_str(get_s(item, "user", "user_id")?).map_err(|_| {
            PortError::Rejected("dynamodb: stored user has a malformed `user_id`".into())
        })?,
        name: get_s(item, "user", "name")?.to_string(),
        email: get_s(item, "user", "email")?.to_string(),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        version: get_n(item, "user", "version")?,
    })
}

/// IAM actions this adapter performs on the table (`Put` and `Delete` inside transactions are
/// authorised per contained action).
pub const DYNAMO_USER_TABLE_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
];

/// IAM actions on the `ByEntity` index (`list`).
pub const DYNAMO_USER_INDEX_ACTIONS: &[&str] = &["dynamodb:Query"];

#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoUserStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn put_email(&self, email: &str, id: Uuid) -> Result<TransactWriteItem, PortError> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .item("pk", string_attr(email_pk(email)))
                .item("user_id", string_attr(id.to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Releases an email reservation, if it is still this user's.
    fn delete_email(&self, email: &str, id: Uuid) -> Result<TransactWriteItem, PortError> {
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", string_attr(email_pk(email)))
                .condition_expression("attribute_not_exists(pk) OR user_id = :id")
                .expression_attribute_values(":id", string_attr(id.to_string()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// After a failed version condition: was the user gone, or changed?
    async fn missing_or_changed(&self, id: Uuid) -> PortError {
        match self.get(id).await {
            Ok(None) => PortError::NotFound,
            Ok(Some(_)) => PortError::VersionMismatch,
            Err(e) => e,
        }
    }
}

impl UserStore for DynamoUserStore {
    async fn create(&self, user: &User) -> Result<(), PortError> {
        let put_user = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(user_item(user)))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().put(put_user).build(),
            self.put_email(&user.email, user.user_id)?,
        ];
        match transact(&self.client, items, None).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, 0) => {
                Err(PortError::AlreadyExists("user_id".into()))
            }
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, 1) => {
                Err(PortError::AlreadyExists("email".into()))
            }
            Err(TxFailure::Cancelled(r)) => Err(TxFailure::other_reasons(&r)),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<User>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", string_attr(user_pk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", &e))?;
        out.item().map(user_from_item).transpose()
    }

    async fn list(&self, limit: u32, after: Option<Uuid>) -> Result<UserPage, PortError> {
        // One extra item tells whether another page exists (see UserPage::from_overfetch).
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ENTITY_INDEX)
            .key_condition_expression("entity = :entity")
            .expression_attribute_values(":entity", string_attr(USER_ENTITY))
            .limit(limit as i32 + 1);
        if let Some(after) = after {
            query = query
                .exclusive_start_key("entity", string_attr(USER_ENTITY))
                .exclusive_start_key("user_id", string_attr(after.to_string()))
                .exclusive_start_key("pk", string_attr(user_pk(after)));
        }
        let out = query.send().await.map_err(|e| classify("dynamodb", &e))?;
        let users = out
            .items()
            .iter()
            .map(user_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UserPage::from_overfetch(users, limit))
    }

    async fn update(&self, previous: &User, updated: &User) -> Result<(), PortError> {
        let put_user = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(user_item(updated)))
                .condition_expression(SAME_PROFILE)
                .expression_attribute_values(":v", number_attr(previous.version))
                .expression_attribute_values(
                    ":created",
                    string_attr(format_time(previous.created_at)),
                )
                .build(),
        )?;
        let mut items = vec![TransactWriteItem::builder().put(put_user).build()];
        if updated.email != previous.email {
            items.push(self.delete_email(&previous.email, previous.user_id)?);
            items.push(self.put_email(&updated.email, updated.user_id)?);
        }
        match transact(&self.client, items, None).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, 0) => {
                Err(self.missing_or_changed(previous.user_id).await)
            }
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, 2) => {
                Err(PortError::AlreadyExists("email".into()))
            }
            Err(TxFailure::Cancelled(r)) => Err(TxFailure::other_reasons(&r)),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    async fn delete(&self, user: &User) -> Result<(), PortError> {
        let delete_user = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", string_attr(user_pk(user.user_id)))
                .condition_expression(SAME_PROFILE)
                .expression_attribute_values(":v", number_attr(user.version))
                .expression_attribute_values(":created", string_attr(format_time(user.created_at)))
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().delete(delete_user).build(),
            self.delete_email(&user.email, user.user_id)?,
        ];
        match transact(&self.client, items, None).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(r)) if TxFailure::condition_failed(&r, 0) => {
                Err(self.missing_or_changed(user.user_id).await)
            }
            Err(TxFailure::Cancelled(r)) => Err(TxFailure::other_reasons(&r)),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }
}
