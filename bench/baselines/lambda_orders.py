"""BASELINE, not part of the product: the seeds' order processor in Python (boto3), for `make bench`.

SQS batch → per message: check stock, deduct it and create the order in one transaction, send a
payment message, publish an SNS notification; failed messages are reported in `batchItemFailures`.
"""
import json
import os
import time
from decimal import Decimal

import boto3

DYNAMODB = boto3.client("dynamodb")
SQS = boto3.client("sqs")
SNS = boto3.client("sns")
ORDERS = os.environ["ORDERS_TABLE"]
INVENTORY = os.environ["INVENTORY_TABLE"]
PAYMENTS = os.environ["PAYMENT_QUEUE_URL"]
TOPIC = os.environ["ORDER_EVENTS_TOPIC_ARN"]


def process(order):
    items = order["items"]
    updates = [{
        "Update": {
            "TableName": INVENTORY,
            "Key": {"product_id": {"S": line["product_id"]}},
            "UpdateExpression": "SET quantity = quantity - :q",
            "ConditionExpression": "quantity >= :q",
            "ExpressionAttributeValues": {":q": {"N": str(int(line["quantity"]))}},
        }
    } for line in items]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    updates.append({
        "Put": {
            "TableName": ORDERS,
            "Item": {"order_id": {"S": order["order_id"]}, "user_id": {"S": order["user_id"]},
                     "status": {"S": "CONFIRMED"}, "total": {"S": str(Decimal(order["total_amount"]))},
                     "created_at": {"S": now}},
            "ConditionExpression": "attribute_not_exists(order_id)",
        }
    })
    DYNAMODB.transact_write_items(TransactItems=updates)
    SQS.send_message(QueueUrl=PAYMENTS, MessageBody=json.dumps(
        {"order_id": order["order_id"], "amount": order["total_amount"], "user_id": order["user_id"]}),
        MessageGroupId=order["order_id"], MessageDeduplicationId=order["order_id"])
    SNS.publish(TopicArn=TOPIC, Message=json.dumps({"event_type": "ORDER_CREATED", "order_id": order["order_id"]}),
                MessageAttributes={"event_type": {"DataType": "String", "StringValue": "ORDER_CREATED"}})


def handler(event, context):
    failures = []
    for record in event.get("Records", []):
        try:
            process(json.loads(record["body"]))
        except Exception:  # noqa: BLE001 - the seed's approach: any failure is retried
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
