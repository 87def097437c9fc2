"""make bench-aws: cold and warm starts of the deployed functions, from Lambda's own REPORT lines.

    python bench/aws_bench.py --config-env default [--cold 10] [--warm 50]
    python bench/aws_bench.py --stack rust-suite-dev --region us-east-1

Needs AWS credentials allowed to read the stack, update and invoke its functions, write to its
upload bucket and read its payment-results queue's ARN. For each function, `--cold` times: a new
value of the environment variable BENCH_COLD_START on `$LATEST` (Lambda starts a new execution
environment for every configuration change), then one invocation, which is a cold start; after the last cold start, `--warm`
invocations in a row on that environment. `$LATEST` holds the code and configuration the `live`
alias was published from. With JSON logs, the same update raises the system log level to INFO:
Lambda writes the `platform.report` record at INFO, and the template keeps system logs at WARN. At
the end the function's environment and logging configuration are put back as they were deployed
(the next deploy would reset them anyway).

Each invocation asks for its log tail (`LogType=Tail`) and reads the platform's report from it:
`Init Duration` (cold only), `Duration`, `Max Memory Used`, as the text REPORT line or, with
`LogFormat: JSON` as deployed, the `platform.report` record. The table has the shape of the local
cold-start table in BENCHMARKS.md, with the figures that public cold-start tables quote (Lambda's
Init Duration).

Events: user-api a `GET /users/{id}` (a DynamoDB read); order-processor a one-order SQS batch for a
product no inventory holds (recorded as cancelled: no stock or payment); image-compressor the S3
event of a 1920x1280 JPEG uploaded once under `bench-aws/` in the upload bucket (four variants);
order-settlement a failed payment result from the payment-results queue for an order that does not
exist (one orders-table read, then reported as a batch item failure: invoked directly, nothing is
delivered again and no order or stock changes).
"""
import argparse
import base64
import json
import math
import re
import sys
import time
import tomllib
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
PHOTO = ROOT / "functions" / "image-compressor" / "testdata" / "good" / "storm-1920x1280.jpg"
FUNCTIONS = {"user-api": "UserApiFunction", "order-processor": "OrderProcessorFunction",
             "image-compressor": "ImageCompressorFunction", "order-settlement": "OrderSettlementFunction"}
COLD_VARIABLE = "BENCH_COLD_START"

_TEXT_FIELDS = {
    "duration_ms": re.compile(r"(?<!Billed )(?<!Init )Duration: ([0-9.]+) ms"),
    "billed_ms": re.compile(r"Billed Duration: ([0-9.]+) ms"),
    "memory_size_mb": re.compile(r"Memory Size: ([0-9]+) MB"),
    "max_memory_mb": re.compile(r"Max Memory Used: ([0-9]+) MB"),
    "init_ms": re.compile(r"Init Duration: ([0-9.]+) ms"),
}
_REQUEST_ID = re.compile(r"REPORT RequestId: (\S+)")
_JSON_METRICS = {"duration_ms": "durationMs", "billed_ms": "billedDurationMs", "memory_size_mb": "memorySizeMB",
                 "max_memory_mb": "maxMemoryUsedMB", "init_ms": "initDurationMs"}


def parse_report(line):
    """One report as a dict (request_id, duration_ms, billed_ms, memory_size_mb, max_memory_mb,
    init_ms: None without a cold start), from a text `REPORT RequestId: ...` line or a JSON
    `platform.report` record; None for any other line."""
    line = line.strip()
    if line.startswith("{"):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or doc.get("type") != "platform.report":
            return None
        record = doc.get("record") or {}
        metrics = record.get("metrics") or {}
        if "durationMs" not in metrics:
            return None
        report = {"request_id": record.get("requestId")}
        for key, name in _JSON_METRICS.items():
            report[key] = float(metrics[name]) if metrics.get(name) is not None else None
        return report
    found = _REQUEST_ID.search(line)
    if not found:
        return None
    report = {"request_id": found.group(1)}
    for key, pattern in _TEXT_FIELDS.items():
        match = pattern.search(line)
        report[key] = float(match.group(1)) if match else None
    if report["duration_ms"] is None:
        return None
    return report


def reports_in(text):
    """Every report in a log text (a tail or a file of log lines), in order."""
    return [r for r in map(parse_report, text.splitlines()) if r is not None]


def percentile(values, p):
    """The nearest-rank percentile, as the local bench computes it (bench/lambda_bench.py)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def summarize(cold, warm):
    """Figures for one function from its cold and warm reports. A "cold" report without an Init
    Duration was not a cold start (Lambda reused an environment): it is counted apart, not as 0."""
    inits = [r["init_ms"] for r in cold if r.get("init_ms") is not None]
    cold_durations = [r["duration_ms"] for r in cold if r.get("init_ms") is not None]
    warm_durations = [r["duration_ms"] for r in warm]
    memory = [r["max_memory_mb"] for r in cold + warm if r.get("max_memory_mb") is not None]
    sizes = {r["memory_size_mb"] for r in cold + warm if r.get("memory_size_mb") is not None}
    return {
        "memory_size_mb": max(sizes) if sizes else None,
        "cold_starts": len(inits),
        "not_cold": len(cold) - len(inits),
        "init_p50": percentile(inits, 50),
        "init_p99": percentile(inits, 99),
        "cold_duration_p50": percentile(cold_durations, 50),
        "warm": len(warm_durations),
        "warm_p50": percentile(warm_durations, 50),
        "warm_p99": percentile(warm_durations, 99),
        "max_memory_mb": max(memory) if memory else None,
    }


def _num(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if digits else f"{value:.0f}"


def table(rows):
    """Markdown table, one row per function: rows is [(function, summarize(...))]."""
    lines = [
        "| function | memory MB | cold starts | Init Duration p50 ms | p99 | cold Duration p50 ms "
        "| warm invocations | warm Duration p50 ms | p99 | Max Memory Used MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows:
        cold = f"{s['cold_starts']}" + (f" (+{s['not_cold']} warm)" if s["not_cold"] else "")
        lines.append(
            f"| {name} | {_num(s['memory_size_mb'], 0)} | {cold} | {_num(s['init_p50'])} | {_num(s['init_p99'])} "
            f"| {_num(s['cold_duration_p50'])} | {s['warm']} | {_num(s['warm_p50'], 2)} | {_num(s['warm_p99'], 2)} "
            f"| {_num(s['max_memory_mb'], 0)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- against an account


class Deployment:
    def __init__(self, session, stack_name):
        self.session = session
        self.stack = stack_name
        self.cfn = session.client("cloudformation")
        self.lam = session.client("lambda")
        self.outputs = {o["OutputKey"]: o["OutputValue"]
                        for o in self.cfn.describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])}

    def function_name(self, logical_id):
        return self.cfn.describe_stack_resource(StackName=self.stack, LogicalResourceId=logical_id)[
            "StackResourceDetail"]["PhysicalResourceId"]

    def events(self, function):
        """A function of the invocation number giving that invocation's event."""
        if function == "user-api":
            event = json.loads((EVENTS / "user-api" / "get-user.json").read_text())
            return lambda i: event
        if function == "order-processor":
            batch = json.loads((EVENTS / "order-processor" / "single-order.json").read_text())

            def order(i):
                nonce = uuid.uuid4().hex[:12]
                body = {"order_id": f"bench-{nonce}", "user_id": "bench-aws",
                        "items": [{"product_id": f"bench-absent-{nonce}", "quantity": 1}], "total_amount": "0.01"}
                record = dict(batch["Records"][0], messageId=str(uuid.uuid4()), body=json.dumps(body))
                return {"Records": [record]}
            return order
        if function == "order-settlement":
            return self.settlement_events()
        bucket = self.outputs["SourceBucketName"]
        key = f"bench-aws/{uuid.uuid4().hex[:8]}-{PHOTO.name}"
        self.session.client("s3").put_object(Bucket=bucket, Key=key, Body=PHOTO.read_bytes())
        event = json.loads((EVENTS / "image-compressor" / "s3-put.json").read_text())
        record = event["Records"][0]
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        record["s3"]["object"]["key"] = key
        record["s3"]["object"]["size"] = PHOTO.stat().st_size
        return lambda i: event

    def settlement_events(self):
        """A failed payment result for an order nobody placed, as the payment-results queue delivers it
        (order-settlement tells its two queues apart by the record's source ARN)."""
        batch = json.loads((EVENTS / "order-settlement" / "payment-failed.json").read_text())
        arn = self.session.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs["PaymentResultsQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        def result(i):
            nonce = uuid.uuid4().hex[:12]
            body = dict(json.loads(batch["Records"][0]["body"]), order_id=f"bench-absent-{nonce}",
                        idempotency_key=f"bench-absent-{nonce}")
            record = dict(batch["Records"][0], messageId=str(uuid.uuid4()), body=json.dumps(body),
                          eventSourceARN=arn)
            return {"Records": [record]}
        return result

    def wait_updated(self, name):
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name)

    def configuration(self, name):
        """(environment variables, logging configuration) of $LATEST."""
        c = self.lam.get_function_configuration(FunctionName=name)
        return dict(c.get("Environment", {}).get("Variables", {})), dict(c.get("LoggingConfig") or {})

    def _update(self, name, variables, logging):
        update = {"Environment": {"Variables": variables}}
        if logging:
            update["LoggingConfig"] = logging
        self.lam.update_function_configuration(FunctionName=name, **update)
        self.wait_updated(name)

    def start_cold(self, name, deployed, nonce):
        """A new value of BENCH_COLD_START (so a new execution environment) and, with JSON logs,
        system logs at INFO (so the report is written)."""
        variables, logging = deployed
        if logging.get("LogFormat") == "JSON":
            logging = dict(logging, SystemLogLevel="INFO")
        self._update(name, dict(variables, **{COLD_VARIABLE: nonce}), logging)

    def restore(self, name, deployed):
        self._update(name, *deployed)

    def invoke(self, name, event):
        r = self.lam.invoke(FunctionName=name, Qualifier="$LATEST", LogType="Tail",
                            Payload=json.dumps(event).encode())
        r["Payload"].read()
        if r.get("FunctionError"):
            raise SystemExit(f"{name}: the function failed ({r['FunctionError']}): see its logs")
        reports = reports_in(base64.b64decode(r.get("LogResult", "")).decode(errors="replace"))
        if not reports:
            raise SystemExit(f"{name}: no REPORT in the invocation's log tail")
        return reports[-1]


def measure(deployment, function, cold_runs, warm_runs):
    name = deployment.function_name(FUNCTIONS[function])
    event = deployment.events(function)
    deployed = deployment.configuration(name)
    cold, warm = [], []
    try:
        for i in range(cold_runs):
            deployment.start_cold(name, deployed, f"{int(time.time())}-{i}")
            cold.append(deployment.invoke(name, event(i)))
        for i in range(warm_runs):
            warm.append(deployment.invoke(name, event(cold_runs + i)))
    finally:
        deployment.restore(name, deployed)
    return summarize(cold, warm)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="the stack's name")
    target.add_argument("--config-env", help="the samconfig.toml environment whose stack and region to measure")
    target.add_argument("--reports", help="print the table of the REPORT lines in this file instead (no account)")
    parser.add_argument("--region", help="with --stack (default: the AWS configuration's)")
    parser.add_argument("--cold", type=int, default=10, help="cold starts per function (default 10)")
    parser.add_argument("--warm", type=int, default=50, help="warm invocations per function (default 50)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated (default: all four)")
    args = parser.parse_args(argv)
    if args.reports:
        reports = reports_in(Path(args.reports).read_text())
        cold = [r for r in reports if r["init_ms"] is not None]
        print(table([(Path(args.reports).name, summarize(cold, [r for r in reports if r["init_ms"] is None]))]))
        return 0
    import boto3  # only with an account: the offline tests do not need it

    if args.config_env:
        with open(ROOT / "samconfig.toml", "rb") as f:
            params = tomllib.load(f)[args.config_env]["global"]["parameters"]
        stack, region = params["stack_name"], params.get("region")
    else:
        stack, region = args.stack, args.region
    deployment = Deployment(boto3.Session(region_name=region), stack)
    rows = []
    for function in args.functions.split(","):
        print(f"  {function}: {args.cold} cold starts, {args.warm} warm invocations ...", file=sys.stderr, flush=True)
        rows.append((function, measure(deployment, function, args.cold, args.warm)))
    print(f"\nDeployed stack {stack} ({region}), arm64, figures from Lambda's REPORT lines:\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
