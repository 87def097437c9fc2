"""make demo: the whole suite end to end on the local emulator, on the stack `sam deploy` created there.

Starts the emulator and `cargo lambda watch`, then tours the three functions with real events and
prints what they did, read back from the emulator. Exits non-zero if any outcome differs from what
is expected; always stops what it started.
"""
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_stack as ls  # noqa: E402
from xray_daemon import XrayDaemon  # noqa: E402
import payment_service  # noqa: E402

ROOT = ls.ROOT
WATCH_PORT = int(os.environ.get("DEMO_WATCH_PORT", "9000"))
PORT = int(os.environ.get("LOCAL_PORT", ls.DEFAULT_PORT))
IMAGES = ROOT / "functions" / "image-compressor" / "testdata"
# The demo lowers the payment timeout (default 900 s) through order-processor's configuration so an
# unpaid order's expiry can be watched.
DEMO_PAYMENT_TIMEOUT_SECS = 20
EVENTS = ROOT / "events"
failures = []


def say(text=""):
    print(text, flush=True)


def check(ok, what):
    say(f"   {'ok ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def invoke(function, payload, timeout=900):
    """Calls the function through cargo lambda's Invoke API; returns (payload, function_error)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{WATCH_PORT}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode()
            error = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as e:
        body, error = e.read().decode(), f"HTTP {e.code}"
    try:
        return json.loads(body), error
    except json.JSONDecodeError:
        return body, error or "unreadable response"


def new_trace_header():
    """A trace as a sender would start it: X-Ray ids begin with the time, in hex."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return root, secrets.token_hex(8), f"Root={root};Parent=PARENT;Sampled=1"


def header_fields(header):
    return dict(part.split("=", 1) for part in (header or "").split(";") if "=" in part)


def start_watch():
    log = open(ls.LOCAL / "watch.log", "w")
    proc = subprocess.Popen(
        ["cargo", "lambda", "watch", "--env-file", str(ls.LOCAL / "env"), "--invoke-port", str(WATCH_PORT),
         "--ignore-changes"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    (ls.LOCAL / "watch.pid").write_text(str(proc.pid))
    deadline = time.time() + 180
    while not ls.port_open(WATCH_PORT):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"cargo lambda watch did not start; see {ls.LOCAL / 'watch.log'}")
        time.sleep(0.2)
    say(f"   cargo lambda watch listening on 127.0.0.1:{WATCH_PORT} (pid {proc.pid})")


def s3_record(bucket, key, size, etag):
    # The emulator's notification shape: form-encoded key, no userIdentity/requestParameters.
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": ls.REGION, "eventName": "ObjectCreated:Put",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": urllib.parse.quote_plus(key), "size": size, "eTag": etag}},
    }


def clear_data(stack, clients):
    """Empties the stack's tables, queues and buckets, so that a tour on a stack that is already
    deployed (and may hold an earlier tour's orders) sees what it expects. The stack stays."""
    for logical, kind in stack["types"].items():
        physical = stack["resources"].get(logical)
        if kind == "AWS::DynamoDB::Table":
            ddb = clients["dynamodb"]
            keys = [k["AttributeName"] for k in ddb.describe_table(TableName=physical)["Table"]["KeySchema"]]
            for page in ddb.get_paginator("scan").paginate(TableName=physical):
                for item in page["Items"]:
                    ddb.delete_item(TableName=physical, Key={k: item[k] for k in keys})
        elif kind == "AWS::SQS::Queue":
            # Received and deleted, not purged: SQS allows one purge a minute per queue.
            sqs = clients["sqs"]
            while messages := sqs.receive_message(QueueUrl=physical, MaxNumberOfMessages=10).get("Messages"):
                for m in messages:
                    sqs.delete_message(QueueUrl=physical, ReceiptHandle=m["ReceiptHandle"])
        elif kind == "AWS::S3::Bucket":
            s3 = clients["s3"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=physical):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=physical, Key=item["Key"])


def tour_images(stack, clients):
    say("\n1. image-compressor: uploads → variants")
    s3 = clients["s3"]
    source, destination = stack["resources"]["SourceBucket"], stack["resources"]["DestinationBucket"]
    uploads = [
        ("good/garden-2560x1600.jpg", "demo/garden.jpg"),
        ("good/spring-rgba-1600x1200.png", "demo/spring with alpha.png"),
        ("good/storm-exif-orientation6-gps.jpg", "demo/rotated exif+gps.jpg"),
        ("bad/text-named.jpg", "demo/not-an-image.jpg"),
        ("bad/garden-truncated-40pct.jpg", "demo/truncated-upload.jpg"),
    ]
    records = []
    for file, key in uploads:
        body = (IMAGES / file).read_bytes()
        etag = s3.put_object(Bucket=source, Key=key, Body=body)["ETag"]
        records.append(s3_record(source, key, len(body), etag.strip('"')))
    started = time.time()
    result, error = invoke("image-compressor", {"Records": records})
    check(error is None, f"invocation succeeded in {time.time() - started:.1f}s (bad files are skipped, not failed): {result}")
    say(f"   {'source':<28} {'variant':<10} {'size':>10} {'bytes':>8} {'ratio':>6}")
    written = 0
    for file, key in uploads:
        original = (IMAGES / file).stat().st_size
        for variant in ("thumbnail", "small", "medium", "large"):
            try:
                # <variant>/<the whole source key>.jpg (functions/image-compressor/README.md)
                head = s3.head_object(Bucket=destination, Key=f"{variant}/{key}.jpg")
            except s3.exceptions.ClientError:
                continue
            meta = head["Metadata"]
            size = int(meta["compressed-size"])
            written += 1
            say(f"   {key:<28} {variant:<10} {meta['width'] + 'x' + meta['height']:>10} {size:>8} {original / size:>5.1f}x")
    check(written == 12, f"12 variants written for the 3 images ({written})")
    listed = s3.list_objects_v2(Bucket=destination).get("Contents", [])
    check(not any("not-an-image" in o["Key"] or "truncated" in o["Key"] for o in listed),
          "no output for the non-image and the truncated upload")
    rotated = s3.head_object(Bucket=destination, Key="large/demo/rotated exif+gps.jpg.jpg")["Metadata"]
    check((rotated["width"], rotated["height"]) == ("800", "1200"), "EXIF orientation applied (800x1200)")
    again, error = invoke("image-compressor", {"Records": records})
    after = len(s3.list_objects_v2(Bucket=destination).get("Contents", []))
    check(error is None and after == written, "a repeated event writes nothing new")


def api_event(name, **changes):
    event = json.loads((EVENTS / "user-api" / name).read_text())
    for key, value in changes.items():
        event[key] = value
    return event


def tour_users():
    say("\n2. user-api: HTTP API events with JWT claims")
    steps = [
        ("create with someone else's email", "create-user-someone-elses-email.json", 403),
        ("create (member, own profile)", "create-user.json", 201),
        ("get", "get-user.json", 200),
        ("list (admin)", "list-users.json", 200),
        ("replace with If-Match: the ETag create answered", "replace-user.json", 200),
        ("patch with a stale If-Match", "patch-user-stale-if-match.json", 412),
        ("create with invalid fields", "create-user-invalid.json", 400),
        ("get without claims", "get-user-no-claims.json", 401),
        ("read someone else's profile", "get-other-user-forbidden.json", 403),
        ("delete", "delete-user.json", 204),
        ("get after delete", "get-user.json", 404),
    ]
    etag = None
    for label, file, expected in steps:
        event = api_event(file)
        if file == "replace-user.json" and etag:
            # An ETag is a digest of the profile, so the sample's If-Match is replaced by the real one.
            event["headers"]["if-match"] = etag
        response, error = invoke("user-api", event)
        if isinstance(response, dict) and file == "create-user.json":
            etag = (response.get("headers") or {}).get("etag")
        status = response.get("statusCode") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        detail = ""
        if body:
            try:
                doc = json.loads(body)
                detail = doc.get("detail") or (f"{len(doc['users'])} user(s)" if "users" in doc else f"version {doc.get('version')}")
            except (json.JSONDecodeError, AttributeError):
                detail = body[:60]
        method = event["requestContext"]["http"]["method"]
        check(error is None and status == expected,
              f"{method:<6} {event['rawPath']:<48} {status} (want {expected})  {label}: {detail}")


def tour_orders(stack, clients, trace):
    say("\n3. order-processor: an SQS batch → stock, orders, payments, events, DLQ")
    ddb, sqs, sns = clients["dynamodb"], clients["sqs"], clients["sns"]
    r = stack["resources"]
    stock = {"widget": 10, "gadget": 10, "gizmo": 5}
    for product, quantity in stock.items():
        ddb.put_item(TableName=r["InventoryTable"], Item={"product_id": {"S": product}, "quantity": {"N": str(quantity)}})
    say(f"   stock before: {stock}")
    # A subscriber for the demo to read notifications from (not part of the template).
    sub_url = sqs.create_queue(QueueName=f"{stack['stack']}-demo-order-events")["QueueUrl"]
    sub_arn = sqs.get_queue_attributes(QueueUrl=sub_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=r["OrderEventsTopic"], Protocol="sqs", Endpoint=sub_arn)
    batch = json.loads((EVENTS / "order-processor" / "mixed-batch.json").read_text())
    # The first message arrives in a trace its sender started, as SQS delivers it to Lambda.
    batch["Records"][0]["attributes"]["AWSTraceHeader"] = trace
    say("   batch: ord-1001, ord-1002 (500 gizmos), ord-1001 again, malformed JSON, an invalid order")
    result, error = invoke("order-processor", batch)
    check(error is None and result == {"batchItemFailures": []}, f"no message left to retry: {result}")
    after = {p: int(ddb.get_item(TableName=r["InventoryTable"], Key={"product_id": {"S": p}}, ConsistentRead=True)["Item"]["quantity"]["N"]) for p in stock}
    say(f"   stock after:  {after}")
    check(after == {"widget": 8, "gadget": 9, "gizmo": 5}, "stock deducted once for ord-1001, untouched by the short order")
    orders = sorted(ddb.scan(TableName=r["OrdersTable"])["Items"], key=lambda o: o["order_id"]["S"])
    for o in orders:
        shorts = [s["S"] for s in o.get("short_items", {}).get("L", [])]
        say(f"   order {o['order_id']['S']}: {o['status']['S']} total {o['total']['S']}"
            f"{' short ' + ','.join(shorts) if shorts else ''} payment_requested={o['payment_requested']['BOOL']}"
            f" notification_sent={o['notification_sent']['BOOL']}")
    check([(o["order_id"]["S"], o["status"]["S"]) for o in orders]
          == [("ord-1001", "PENDING_PAYMENT"), ("ord-1002", "CANCELLED_INSUFFICIENT_INVENTORY")], "one order per id")

    def drain(url):
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                      AttributeNames=["All"]).get("Messages", [])
            if not got:
                return out
            out += got
            for m in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    payment_messages = drain(r["PaymentQueue"])
    payments = [json.loads(m["Body"]) for m in payment_messages]
    sent_on = {"payment message": payment_messages[0].get("Attributes", {}).get("AWSTraceHeader") if payment_messages else None}
    for p in payments:
        say(f"   payment request: order {p['order_id']} amount {p['amount']}")
    check([p["order_id"] for p in payments] == ["ord-1001"], "exactly one payment request, for the pending order")
    events = []
    for m in drain(sub_url):
        envelope = json.loads(m["Body"])
        event = json.loads(envelope["Message"])
        events.append((envelope["MessageAttributes"]["event_type"]["Value"], event["order_id"]))
        if event["order_id"] == "ord-1001":
            sent_on["ORDER_CREATED event"] = envelope["MessageAttributes"].get("AWSTraceHeader", {}).get("Value")
    for kind, order in sorted(events):
        say(f"   notification: {kind} {order}")
    check(sorted(events) == [("ORDER_CANCELLED", "ord-1002"), ("ORDER_CREATED", "ord-1001")],
          "one notification per order, with an event_type attribute")
    parked = drain(r["OrdersDeadLetterQueue"])
    for m in parked:
        a = m["MessageAttributes"]
        say(f"   dead letter: {a['error_code']['StringValue']}: {a['error_reason']['StringValue'][:80]}")
    check(sorted(m["MessageAttributes"]["error_code"]["StringValue"] for m in parked) == ["INVALID_JSON", "INVALID_ORDER"],
          "both poison messages parked with their reason")
    return sent_on


def boto3_client(stack, service):
    import boto3
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=ls.REGION
                                 ).client(service, endpoint_url=stack["endpoint"])


def sqs_records(messages, queue_arn):
    """The SQS event Lambda builds from received messages, with the queue they came from."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": ls.REGION,
    } for m in messages]}


def tour_order_life(stack, clients):
    say("\n5. the order's whole life: paid, declined (stock restored), expired (stock restored)")
    say("   tools/payment_service.py stands in for the external payment service: .13 cents are declined,")
    say(f"   .77 never answered (an abandoned checkout); PAYMENT_TIMEOUT_SECS={DEMO_PAYMENT_TIMEOUT_SECS} for the demo (default 900)")
    ddb, sqs = clients["dynamodb"], clients["sqs"]
    r = stack["resources"]
    arn = {q: sqs.get_queue_attributes(QueueUrl=r[q], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
           for q in ("PaymentResultsQueue", "ExpiryQueue")}

    def stock():
        item = ddb.get_item(TableName=r["InventoryTable"], Key={"product_id": {"S": "gadget"}}, ConsistentRead=True)
        return int(item["Item"]["quantity"]["N"])

    def status(order_id):
        item = ddb.get_item(TableName=r["OrdersTable"], Key={"order_id": {"S": order_id}}, ConsistentRead=True)
        return item["Item"]["status"]["S"]

    def received(url, wait=0):
        out = []
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                         WaitTimeSeconds=wait).get("Messages", []):
            out += got
            wait = 0
        return out

    def settle(url, queue):
        messages = received(url)
        result, error = invoke("order-settlement", sqs_records(messages, arn[queue]))
        check(error is None and result == {"batchItemFailures": []}, f"{len(messages)} {queue} message(s) applied: {result}")
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    # The demo plays Lambda's poller for order-settlement's two queues (the emulator cannot run
    # functions): their event source mappings are paused so the emulator does not try.
    lam = boto3_client(stack, "lambda")
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for m in page["EventSourceMappings"]:
            if m["EventSourceArn"] in arn.values():
                lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
    orders = {"ord-2001": "25.00", "ord-2002": "30.13", "ord-2003": "40.77"}
    before = stock()
    batch = {"Records": [{
        "messageId": f"life-{i}", "receiptHandle": f"life-{i}", "md5OfBody": "0", "attributes": {},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": ls.REGION,
        "body": json.dumps({"order_id": oid, "user_id": "user-7", "total_amount": total,
                            "items": [{"product_id": "gadget", "quantity": 2}]}),
    } for i, (oid, total) in enumerate(orders.items())]}
    result, error = invoke("order-processor", batch)
    check(error is None and result == {"batchItemFailures": []}, "three orders reserved")
    check(stock() == before - 6 and all(status(o) == "PENDING_PAYMENT" for o in orders),
          f"gadget stock {before} → {stock()}, all three PENDING_PAYMENT")
    ledger = payment_service.Ledger()
    for order_id, outcome, _ in payment_service.serve_once(sqs, r["PaymentQueue"], r["PaymentResultsQueue"], ledger):
        say(f"   payment service: {order_id} → {outcome or 'no answer'}")
    settle(r["PaymentResultsQueue"], "PaymentResultsQueue")
    check((status("ord-2001"), status("ord-2002"), status("ord-2003")) == ("PAID", "PAYMENT_FAILED", "PENDING_PAYMENT"),
          "ord-2001 PAID, ord-2002 PAYMENT_FAILED, ord-2003 still waiting")
    check(stock() == before - 4, f"ord-2002's 2 gadgets back on sale: {stock()}")
    say(f"   waiting for ord-2003's expiry on the delay queue (up to {DEMO_PAYMENT_TIMEOUT_SECS} s) ...")
    deadline = time.time() + DEMO_PAYMENT_TIMEOUT_SECS + 15
    while status("ord-2003") == "PENDING_PAYMENT" and time.time() < deadline:
        time.sleep(2)
        if sqs.get_queue_attributes(QueueUrl=r["ExpiryQueue"], AttributeNames=["ApproximateNumberOfMessages"]
                                    )["Attributes"]["ApproximateNumberOfMessages"] != "0":
            settle(r["ExpiryQueue"], "ExpiryQueue")
    check(status("ord-2003") == "EXPIRED", "ord-2003 EXPIRED")
    # ord-1001 (part 3) holds 1 gadget; nobody answered its payment request either, so it expires too.
    check(status("ord-1001") == "EXPIRED", "ord-1001 (part 3, its payment never answered) EXPIRED too")
    check(stock() == before - 2 + 1,
          f"ord-2003's 2 and ord-1001's 1 gadget back on sale: gadget stock {stock()} (only ord-2001's 2 sold)")


def show_trace(daemon, root, sender, sent_on):
    say("\n4. one order's trace, from what order-processor exported (X-Ray segment documents over UDP)")
    time.sleep(0.3)
    docs = [d for d in daemon.documents if d.get("trace_id") == root]
    say(f"   trace {root}: {len(docs)} documents of {len(daemon.documents)} received")
    ms = lambda d: (d["end_time"] - d["start_time"]) * 1000
    orders = [d for d in docs if d.get("type") != "subsegment" and d.get("name") == "order-processor"]
    check(len(orders) == 1 and orders[0].get("parent_id") == sender,
          f"ord-1001 continues its sender's trace as an order-processor segment below span {sender}")
    if not orders:
        return
    order = orders[0]
    notes = order.get("annotations", {})
    say(f"   order-processor  {notes.get('order_id', '?')} {notes.get('outcome', '?'):<10} "
        f"{ms(order):7.1f} ms   segment {order['id']}, parent {order['parent_id']} (the sender)")
    calls = sorted((d for d in docs if d.get("parent_id") == order["id"]), key=lambda d: d["start_time"])
    for i, call in enumerate(calls):
        aws = call.get("aws", {})
        name = f"{call['name']}.{aws.get('operation', '?')}"
        status = call.get("http", {}).get("response", {}).get("status", "")
        offset = (call["start_time"] - order["start_time"]) * 1000
        say(f"     {'└' if i == len(calls) - 1 else '├'} {name:<30} {call.get('annotations', {}).get('outcome', '?'):<4} {status!s:<4}"
            f" +{offset:6.1f} ms {ms(call):7.1f} ms   request-id {aws.get('request_id', '-')[:20]}")
    names = {f"{c['name']}.{c.get('aws', {}).get('operation')}" for c in calls}
    check({"DynamoDB.TransactWriteItems", "SQS.SendMessage", "SNS.Publish"} <= names and
          all(c.get("aws", {}).get("request_id") for c in calls),
          "every AWS call is a span with its request id: the reservation, the payment message, the event")
    for what, header in sent_on.items():
        f = header_fields(header)
        say(f"   {what} carries {header}")
        check(f.get("Root") == root and f.get("Parent") == order["id"],
              f"the {what}'s consumer continues the same trace, below the order's segment")


def main():
    started = time.time()
    say("make demo: the suite on a local AWS emulator (no AWS account)")
    say("\n0. local stack: template.yaml deployed by `sam deploy` into the emulator")
    ls.LOCAL.mkdir(exist_ok=True)
    daemon = None
    reused = False
    try:
        endpoint = f"http://127.0.0.1:{PORT}"
        stack = ls.deployed(endpoint, ls.DEFAULT_STACK) if ls.pid_alive(ls.LOCAL / "moto.pid") else None
        if stack is not None:
            # `make deploy-local` (or `make local-up`) left its stack running: the demo runs on it.
            reused = True
            say(f"   on the stack already deployed at {endpoint}: {stack['stack']} ({stack['status']})")
            ls.write_outputs(stack, ls.LOCAL)
        else:
            stack = ls.up(PORT, ls.DEFAULT_STACK)
        import boto3
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=ls.REGION)
        clients = {name: session.client(name, endpoint_url=stack["endpoint"]) for name in ("s3", "dynamodb", "sqs", "sns")}
        if reused:
            clear_data(stack, clients)
            say("   its tables, queues and buckets emptied for the tour (the stack itself is unchanged)")
        # Spans go where Lambda's X-Ray daemon would be.
        daemon = XrayDaemon()
        with open(ls.LOCAL / "env", "a") as env:
            env.write(f"AWS_XRAY_DAEMON_ADDRESS={daemon.address}\n")
            env.write(f"PAYMENT_TIMEOUT_SECS={DEMO_PAYMENT_TIMEOUT_SECS}\n")
        start_watch()
        say(f"   spans exported to a stand-in X-Ray daemon on udp {daemon.address}")
        say("   (the first invocation of each function compiles it; later ones are instant)")
        tour_images(stack, clients)
        tour_users()
        root, sender, header = new_trace_header()
        sent_on = tour_orders(stack, clients, header.replace("PARENT", sender))
        show_trace(daemon, root, sender, sent_on)
        tour_order_life(stack, clients)
    finally:
        say("\n6. stopping what the demo started")
        if daemon is not None:
            daemon.stop()
        # An emulator the demo found running stays up, with its stack.
        ls.down(keep_emulator=reused)
    say(f"\ndemo: {'all outcomes as expected' if not failures else f'{len(failures)} unexpected outcome(s)'}"
        f" in {time.time() - started:.0f}s")
    for f in failures:
        say(f"   FAIL {f}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
