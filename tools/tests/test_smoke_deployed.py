"""tools/smoke_deployed.py offline: its checks against fake AWS clients that answer as a healthy or
a broken stack would (the script itself needs an account)."""
import io
import json
import sys
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import smoke_deployed as smoke  # noqa: E402

OUTPUTS = {"UsersApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com/dev",
           "OrdersQueueUrl": "https://sqs.us-east-1.amazonaws.com/1/rust-suite-dev-OrdersQueue-X",
           "OrdersTableName": "rust-suite-dev-OrdersTable-X"}


class FakeStack:
    """The clients of a deployed stack. healthy=False: user-api answers 500 and the order is never
    consumed."""

    def __init__(self, healthy=True, polls_before_recorded=2):
        self.healthy = healthy
        self.polls_before_recorded = polls_before_recorded
        self.sent = []
        self.invoked = []
        self.polls = 0

    def client(self, name):
        return self

    # cloudformation
    def describe_stacks(self, StackName):
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()]}]}

    def describe_stack_resource(self, StackName, LogicalResourceId):
        return {"StackResourceDetail": {"PhysicalResourceId": f"{StackName}-{LogicalResourceId}-X"}}

    # lambda
    def invoke(self, FunctionName, Qualifier, Payload):
        self.invoked.append((FunctionName, Qualifier))
        if "UserApi" in FunctionName:
            status = 401 if self.healthy else 500
            body = {"statusCode": status, "headers": {"Content-Type": "application/problem+json"}, "body": "{}"}
        else:
            body = None
        return {"Payload": io.BytesIO(json.dumps(body).encode())}

    # sqs
    def send_message(self, QueueUrl, MessageBody):
        self.sent.append((QueueUrl, json.loads(MessageBody)))

    # dynamodb
    def get_item(self, TableName, Key, ConsistentRead):
        self.polls += 1
        order_id = Key["order_id"]["S"]
        consumed = self.healthy and self.polls > self.polls_before_recorded
        if consumed and any(body["order_id"] == order_id for _, body in self.sent):
            return {"Item": {"order_id": {"S": order_id}, "status": {"S": smoke.CANCELLED}}}
        return {}


def run(stack, api_status=401, timeout=60):
    """smoke.run on a simulated clock: its sleeps pass no real time."""
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with mock.patch.object(smoke, "http_status", return_value=api_status) as http, \
            mock.patch.object(smoke.time, "sleep", sleep), mock.patch.object(smoke.time, "monotonic", lambda: now[0]), \
            mock.patch("builtins.print"):
        failed = smoke.run(stack, "rust-suite-dev", timeout=timeout)
    return failed, http


class SmokeChecks(unittest.TestCase):
    def test_a_healthy_stack_passes_every_check(self):
        stack = FakeStack()
        failed, http = run(stack)
        self.assertEqual(failed, [])
        http.assert_called_once_with(OUTPUTS["UsersApiUrl"] + "/users")
        self.assertEqual(stack.invoked, [("rust-suite-dev-UserApiFunction-X", "live"),
                                         ("rust-suite-dev-ImageCompressorFunction-X", "live")])
        (queue, order), = stack.sent
        self.assertEqual(queue, OUTPUTS["OrdersQueueUrl"])
        self.assertGreater(stack.polls, stack.polls_before_recorded, "it waited for the order to be recorded")

    def test_an_open_api_a_failing_function_and_an_unconsumed_order_each_fail(self):
        failed, _ = run(FakeStack(healthy=False), api_status=200)
        self.assertEqual(len(failed), 3, failed)
        self.assertTrue(any("GET /users" in f for f in failed))
        self.assertTrue(any("user-api:live" in f for f in failed))
        self.assertTrue(any("order-processor consumed" in f for f in failed))


class Helpers(unittest.TestCase):
    def test_the_stack_and_region_of_a_samconfig_environment(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('version = 0.1\n[default.global.parameters]\nstack_name = "s-dev"\nregion = "eu-west-1"\n'
                    '[prod.global.parameters]\nstack_name = "s-prod"\n')
        self.assertEqual(smoke.samconfig_stack("default", Path(f.name)), ("s-dev", "eu-west-1"))
        self.assertEqual(smoke.samconfig_stack("prod", Path(f.name)), ("s-prod", None))
        Path(f.name).unlink()

    def test_the_smoke_order_is_valid_and_touches_no_real_product(self):
        a, b = smoke.smoke_order("n1"), smoke.smoke_order("n2")
        self.assertNotEqual(a["items"][0]["product_id"], b["items"][0]["product_id"])
        for order in (a, b):
            self.assertTrue(1 <= len(order["order_id"]) <= 128 and 1 <= len(order["user_id"]) <= 128)
            self.assertEqual(order["total_amount"], "0.01")

    def test_problem_status(self):
        self.assertEqual(smoke.problem_status({"statusCode": 401, "headers": {"content-type": "application/problem+json"}}),
                         (401, True))
        self.assertEqual(smoke.problem_status({"statusCode": 200, "headers": {"content-type": "application/json"}}),
                         (200, False))
        self.assertEqual(smoke.problem_status("Internal error"), (None, False))

    def test_wait_for_gives_up_at_the_timeout(self):
        now = [0.0]
        calls = []

        def sleep(s):
            now[0] += s

        value = smoke.wait_for(lambda: calls.append(now[0]), timeout=12, interval=5,
                               clock=lambda: now[0], sleep=sleep)
        self.assertIsNone(value)
        self.assertEqual(calls, [0.0, 5.0, 10.0, 15.0])


if __name__ == "__main__":
    unittest.main()
