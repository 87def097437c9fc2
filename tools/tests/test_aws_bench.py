"""bench/aws_bench.py offline: its REPORT parsing and table on report lines in the formats Lambda
writes (fixtures/report_lines.log: text REPORT lines with and without Init Duration and XRAY
TraceId, JSON platform.report records, and lines that are not reports)."""
import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "bench"))
import aws_bench  # noqa: E402

FIXTURE = (HERE / "fixtures" / "report_lines.log").read_text()


class ParseReport(unittest.TestCase):
    def test_every_report_of_the_fixture_and_nothing_else(self):
        reports = aws_bench.reports_in(FIXTURE)
        self.assertEqual([r["request_id"][:8] for r in reports],
                         ["6d3f8c1a", "9a0b1c2d", "0c1d2e3f", "1d2e3f4a", "2e3f4a5b", "3f4a5b6c", "4a5b6c7d"])

    def test_text_report_with_init_duration_and_xray_trace(self):
        line = next(l for l in FIXTURE.splitlines() if l.startswith("REPORT RequestId: 6d3f8c1a"))
        self.assertEqual(aws_bench.parse_report(line), {
            "request_id": "6d3f8c1a-7b2e-4f0a-9c55-1e2d3c4b5a01", "duration_ms": 38.72, "billed_ms": 72.0,
            "memory_size_mb": 256.0, "max_memory_mb": 21.0, "init_ms": 32.91})

    def test_duration_is_not_read_from_billed_or_init_duration(self):
        r = aws_bench.parse_report("REPORT RequestId: x\tInit Duration: 7.25 ms\tBilled Duration: 9 ms\tDuration: 8.5 ms\tMemory Size: 128 MB"
                                   "\tMax Memory Used: 17 MB")
        self.assertEqual((r["duration_ms"], r["billed_ms"], r["init_ms"]), (8.5, 9.0, 7.25))

    def test_text_report_without_init_duration_is_warm(self):
        line = next(l for l in FIXTURE.splitlines() if l.startswith("REPORT RequestId: 0c1d2e3f"))
        r = aws_bench.parse_report(line)
        self.assertIsNone(r["init_ms"])
        self.assertEqual((r["duration_ms"], r["max_memory_mb"]), (3.87, 22.0))

    def test_json_platform_report(self):
        r = [r for r in aws_bench.reports_in(FIXTURE) if r["request_id"].startswith("3f4a5b6c")][0]
        self.assertEqual((r["duration_ms"], r["init_ms"], r["max_memory_mb"], r["memory_size_mb"], r["billed_ms"]),
                         (40.118, 30.457, 22.0, 256.0, 71.0))
        warm = [r for r in aws_bench.reports_in(FIXTURE) if r["request_id"].startswith("4a5b6c7d")][0]
        self.assertIsNone(warm["init_ms"])

    def test_other_lines_are_not_reports(self):
        for line in ("START RequestId: a Version: $LATEST", "END RequestId: a", "",
                     '{"type":"platform.start","record":{"requestId":"a"}}',
                     '{"level":"INFO","message":"REPORT RequestId: a Duration: 1 ms"}', "{not json",
                     "REPORT RequestId: a\tMemory Size: 128 MB"):
            self.assertIsNone(aws_bench.parse_report(line), line)


class Summary(unittest.TestCase):
    def setUp(self):
        reports = aws_bench.reports_in(FIXTURE)
        self.cold = [r for r in reports if r["init_ms"] is not None]
        self.warm = [r for r in reports if r["init_ms"] is None]

    def test_figures(self):
        s = aws_bench.summarize(self.cold, self.warm)
        # inits 32.91, 35.12, 30.457: nearest-rank p50 is the 2nd of 3, p99 the 3rd
        self.assertEqual((s["cold_starts"], s["not_cold"], s["init_p50"], s["init_p99"]), (3, 0, 32.91, 35.12))
        self.assertEqual(s["cold_duration_p50"], 40.118)
        # warm 4.21, 3.87, 5.02, 3.512
        self.assertEqual((s["warm"], s["warm_p50"], s["warm_p99"]), (4, 3.87, 5.02))
        self.assertEqual((s["max_memory_mb"], s["memory_size_mb"]), (23.0, 256.0))

    def test_a_cold_run_that_reused_an_environment_is_counted_apart(self):
        s = aws_bench.summarize(self.cold + self.warm[:1], [])
        self.assertEqual((s["cold_starts"], s["not_cold"], s["init_p50"]), (3, 1, 32.91))

    def test_table_has_the_local_tables_shape(self):
        text = aws_bench.table([("user-api", aws_bench.summarize(self.cold, self.warm)),
                                ("order-processor", aws_bench.summarize([], []))])
        header, rule, first, empty = text.splitlines()
        self.assertEqual(header.count("|"), rule.count("|"))
        self.assertEqual(first.count("|"), header.count("|"))
        self.assertEqual([c.strip() for c in first.strip("|").split("|")],
                         ["user-api", "256", "3", "32.9", "35.1", "40.1", "4", "3.87", "5.02", "23"])
        self.assertIn("| order-processor | – | 0 | – |", empty)


if __name__ == "__main__":
    unittest.main()


DEPLOYED_LOGGING = {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN",
                    "LogGroup": "/aws/lambda/stack-UserApiFunction-X"}


class FakeLambda:
    """Lambda as bench-aws sees it: a configuration change starts a new execution environment, so the
    next invocation reports an Init Duration; later ones on it do not. As deployed, JSON logs with
    system logs at WARN: no report is written unless the system log level is INFO or DEBUG."""

    def __init__(self, fail_on=None):
        self.variables = {"USERS_TABLE": "users"}
        self.logging = dict(DEPLOYED_LOGGING)
        self.fresh = True
        self.invocations = []
        self.fail_on = fail_on

    def get_function_configuration(self, FunctionName):
        return {"Environment": {"Variables": dict(self.variables)}, "LoggingConfig": dict(self.logging)}

    def update_function_configuration(self, FunctionName, Environment, LoggingConfig=None):
        self.variables = dict(Environment["Variables"])
        if LoggingConfig is not None:
            self.logging = dict(LoggingConfig)
        self.fresh = True

    def get_waiter(self, name):
        assert name == "function_updated_v2"
        return self

    def wait(self, FunctionName):
        pass

    def invoke(self, FunctionName, Qualifier, LogType, Payload):
        import base64
        import io
        self.invocations.append((FunctionName, Qualifier, LogType))
        init = "\tInit Duration: 31.50 ms" if self.fresh else ""
        self.fresh = False
        n = len(self.invocations)
        report = (f"REPORT RequestId: r{n}\tDuration: {n}.25 ms\tBilled Duration: {n + 1} ms\tMemory Size: 256 MB"
                  f"\tMax Memory Used: 20 MB{init}\n")
        if self.logging.get("SystemLogLevel") not in ("INFO", "DEBUG"):
            report = ""
        answer = {"Payload": io.BytesIO(b"{}"), "LogResult": base64.b64encode(report.encode()).decode()}
        if self.fail_on == n:
            answer["FunctionError"] = "Unhandled"
        return answer


def deployment_with(lam):
    d = object.__new__(aws_bench.Deployment)
    d.lam = lam
    d.function_name = lambda logical_id: f"stack-{logical_id}-X"
    d.events = lambda function: (lambda i: {"n": i})
    return d


class Measure(unittest.TestCase):
    def test_each_cold_run_is_a_new_environment_and_the_configuration_is_restored(self):
        lam = FakeLambda()
        s = aws_bench.measure(deployment_with(lam), "user-api", cold_runs=3, warm_runs=4)
        self.assertEqual((s["cold_starts"], s["not_cold"], s["warm"]), (3, 0, 4))
        self.assertEqual(s["init_p50"], 31.5)
        self.assertEqual(set(lam.invocations), {("stack-UserApiFunction-X", "$LATEST", "Tail")})
        self.assertEqual(lam.variables, {"USERS_TABLE": "users"}, "the variable is removed, the others kept")
        self.assertEqual(lam.logging, DEPLOYED_LOGGING, "system logs back at the deployed level")

    def test_a_failed_invocation_stops_the_run_and_still_restores_the_configuration(self):
        lam = FakeLambda(fail_on=2)
        with self.assertRaises(SystemExit):
            aws_bench.measure(deployment_with(lam), "order-processor", cold_runs=3, warm_runs=1)
        self.assertEqual(lam.variables, {"USERS_TABLE": "users"})
        self.assertEqual(lam.logging, DEPLOYED_LOGGING)


class FakeSqs:
    def __init__(self):
        self.asked = []

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        self.asked.append((QueueUrl, tuple(AttributeNames)))
        return {"Attributes": {"QueueArn": "arn:aws:sqs:eu-west-1:111122223333:stack-PaymentResultsQueue-X"}}


class FakeSession:
    def __init__(self):
        self.sqs = FakeSqs()

    def client(self, name):
        assert name == "sqs", name
        return self.sqs


class Events(unittest.TestCase):
    def test_every_function_of_the_template_is_measured(self):
        import re
        template = (HERE.parent.parent / "template.yaml").read_text()
        functions = set(re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function", template, re.M))
        self.assertEqual(set(aws_bench.FUNCTIONS.values()), functions)

    def test_settlement_gets_a_payment_result_from_the_deployed_queue_for_an_order_nobody_placed(self):
        d = object.__new__(aws_bench.Deployment)
        d.session = FakeSession()
        d.outputs = {"PaymentResultsQueueUrl": "https://sqs.eu-west-1.amazonaws.com/111122223333/results"}
        event = d.events("order-settlement")
        first, second = event(0), event(1)
        self.assertEqual(d.session.sqs.asked, [(d.outputs["PaymentResultsQueueUrl"], ("QueueArn",))])
        sample = json.loads((HERE.parent.parent / "events" / "order-settlement" / "payment-failed.json").read_text())
        bodies = []
        for batch in (first, second):
            [record] = batch["Records"]
            self.assertEqual(record["eventSourceARN"], "arn:aws:sqs:eu-west-1:111122223333:stack-PaymentResultsQueue-X")
            body = json.loads(record["body"])
            self.assertEqual(set(body), set(json.loads(sample["Records"][0]["body"])), "the fields a result has")
            self.assertEqual(body["idempotency_key"], body["order_id"])
            self.assertTrue(body["order_id"].startswith("bench-absent-"))
            bodies.append(body["order_id"])
        self.assertNotEqual(bodies[0], bodies[1], "each invocation names its own order")
        self.assertNotEqual(first["Records"][0]["messageId"], second["Records"][0]["messageId"])
