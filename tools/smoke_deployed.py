"""Smoke check of a deployed stack (needs AWS credentials; the deploy workflow runs it after `dev`).

    python tools/smoke_deployed.py --config-env default [--timeout 180]
    python tools/smoke_deployed.py --stack rust-suite-dev --region us-east-1

Reads the stack's outputs and resources, then checks, leaving no stock or payment behind:
- the users API answers an unauthenticated `GET /users` with 401 (the stage is deployed and its JWT
  authorizer is in front of every route);
- user-api's `live` alias, invoked with a request that carries no claims, answers 401 with a
  problem+json body (the arm64 bootstrap starts, reads its secret and serves);
- image-compressor's `live` alias accepts S3's test event (it starts and skips it, writing nothing);
- an order sent to the orders queue is consumed: order-processor records it as
  CANCELLED_INSUFFICIENT_INVENTORY, its one product being one that no inventory holds.
Prints one line per check and exits non-zero if any fails.
"""
import argparse
import json
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
CANCELLED = "CANCELLED_INSUFFICIENT_INVENTORY"


def samconfig_stack(config_env, path=ROOT / "samconfig.toml"):
    """(stack name, region) of a samconfig.toml environment."""
    with open(path, "rb") as f:
        params = tomllib.load(f)[config_env]["global"]["parameters"]
    return params["stack_name"], params.get("region")


def outputs_of(stack):
    """The `Outputs` of a describe_stacks stack as {key: value}."""
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def smoke_order(nonce):
    """An order no inventory can fill: its product id is unique to this check, so the function
    cancels it without touching stock or requesting a payment."""
    return {
        "order_id": f"smoke-{nonce}",
        "user_id": "smoke-check",
        "items": [{"product_id": f"smoke-check-absent-{nonce}", "quantity": 1}],
        "total_amount": "0.01",
    }


def problem_status(payload):
    """(status, is problem+json) of an API Gateway v2 response returned by a direct invoke."""
    if not isinstance(payload, dict):
        return None, False
    headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
    return payload.get("statusCode"), headers.get("content-type", "").startswith("application/problem+json")


def order_state(item):
    """The status of an OrdersTable item as GetItem returns it, None when absent."""
    if not item:
        return None
    return (item.get("status") or {}).get("S")


def wait_for(probe, timeout, interval=5.0, clock=None, sleep=None):
    """Calls probe() until it returns something other than None or timeout seconds pass; returns
    the last value (None on timeout)."""
    clock, sleep = clock or time.monotonic, sleep or time.sleep
    deadline = clock() + timeout
    while True:
        value = probe()
        if value is not None or clock() >= deadline:
            return value
        sleep(interval)


class Checks:
    def __init__(self):
        self.failed = []

    def check(self, ok, what, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what}{f': {detail}' if detail and not ok else ''}", flush=True)
        if not ok:
            self.failed.append(what)


def http_status(url, timeout=10):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def invoke_live(lam, function_name, event):
    r = lam.invoke(FunctionName=function_name, Qualifier="live", Payload=json.dumps(event).encode())
    body = r["Payload"].read().decode()
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        payload = body
    return r.get("FunctionError"), payload


def run(session, stack_name, timeout):
    cfn, lam = session.client("cloudformation"), session.client("lambda")
    sqs, ddb = session.client("sqs"), session.client("dynamodb")
    out = outputs_of(cfn.describe_stacks(StackName=stack_name)["Stacks"][0])

    def function(logical_id):
        return cfn.describe_stack_resource(StackName=stack_name, LogicalResourceId=logical_id)[
            "StackResourceDetail"]["PhysicalResourceId"]

    checks = Checks()
    status = http_status(out["UsersApiUrl"].rstrip("/") + "/users")
    checks.check(status == 401, "users API: GET /users without a token is refused with 401", f"got {status}")

    event = json.loads((EVENTS / "user-api" / "get-user-no-claims.json").read_text())
    error, payload = invoke_live(lam, function("UserApiFunction"), event)
    code, problem = problem_status(payload)
    checks.check(error is None and code == 401 and problem,
                 "user-api:live answers a request without claims with 401 problem+json",
                 f"error {error}, payload {str(payload)[:300]}")

    event = json.loads((EVENTS / "image-compressor" / "s3-test-event.json").read_text())
    error, payload = invoke_live(lam, function("ImageCompressorFunction"), event)
    checks.check(error is None, "image-compressor:live starts and skips S3's test event", f"{error}: {str(payload)[:300]}")

    order = smoke_order(uuid.uuid4().hex[:12])
    sqs.send_message(QueueUrl=out["OrdersQueueUrl"], MessageBody=json.dumps(order))

    def recorded():
        item = ddb.get_item(TableName=out["OrdersTableName"], Key={"order_id": {"S": order["order_id"]}},
                            ConsistentRead=True).get("Item")
        return order_state(item)

    state = wait_for(recorded, timeout)
    checks.check(state == CANCELLED,
                 f"order-processor consumed {order['order_id']} from the queue and recorded it {CANCELLED}",
                 f"status after {timeout} s: {state}")
    return checks.failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="the stack's name")
    target.add_argument("--config-env", help="the samconfig.toml environment whose stack and region to check")
    parser.add_argument("--region", help="with --stack (default: the AWS configuration's)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for the order to be recorded (default 180)")
    args = parser.parse_args(argv)
    import boto3  # only where an account is used: the offline tests do not need it

    stack, region = samconfig_stack(args.config_env) if args.config_env else (args.stack, args.region)
    failed = run(boto3.Session(region_name=region), stack, args.timeout)
    print(f"smoke: {'all checks passed' if not failed else f'{len(failed)} check(s) failed'} on {stack}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
