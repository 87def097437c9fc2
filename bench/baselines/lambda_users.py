"""BASELINE, not part of the product: the seeds' users CRUD handler in Python (boto3), for `make bench`.

API Gateway (HTTP API v2) → DynamoDB, the classic way: a module-level table resource, JSON in and out.
It shares the Rust function's table layout (`pk` = `USER#<id>`) so both run against the same stack.
"""
import json
import os
import time
import uuid

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["USERS_TABLE"])


def respond(status, body=None):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body) if body is not None else "",
    }


def handler(event, context):
    method = event["requestContext"]["http"]["method"]
    parts = [p for p in event.get("rawPath", "/").split("/") if p]
    if parts and parts[0] not in ("users",):
        parts = parts[1:]  # the stage
    try:
        if parts == ["users"] and method == "GET":
            items = TABLE.scan(Limit=50).get("Items", [])
            return respond(200, {"users": [i for i in items if i.get("entity") == "USER"]})
        if parts == ["users"] and method == "POST":
            data = json.loads(event.get("body") or "{}")
            if not data.get("name") or not data.get("email"):
                return respond(400, {"error": "name and email are required"})
            user_id = data.get("user_id") or str(uuid.uuid4())
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            item = {"pk": f"USER#{user_id}", "entity": "USER", "user_id": user_id, "name": data["name"],
                    "email": data["email"].lower(), "created_at": now, "updated_at": now, "version": 1}
            TABLE.put_item(Item=item)
            return respond(201, {k: v for k, v in item.items() if k not in ("pk", "entity")})
        if len(parts) == 2 and parts[0] == "users":
            key = {"pk": f"USER#{parts[1]}"}
            if method == "GET":
                item = TABLE.get_item(Key=key).get("Item")
                if not item:
                    return respond(404, {"error": "not found"})
                item["version"] = int(item.get("version", 1))
                return respond(200, {k: v for k, v in item.items() if k not in ("pk", "entity")})
            if method == "DELETE":
                TABLE.delete_item(Key=key)
                return respond(204)
        return respond(404, {"error": "not found"})
    except json.JSONDecodeError:
        return respond(400, {"error": "invalid JSON"})
