"""tools/local_gateway.py answers what API Gateway (HTTP API) answers by itself, with its own bodies,
in front of a stub of the Lambda Invoke API."""
import json
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import local_gateway as gw  # noqa: E402

SECRET = "s"


def stub_function(behaviour):
    """An Invoke API whose function answers 200, sleeps past any timeout, or fails."""

    class Invoke(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if behaviour == "slow":
                time.sleep(1.0)
            if behaviour == "error":
                data, extra = b'{"errorMessage":"boom"}', {"X-Amz-Function-Error": "Unhandled"}
            else:
                data, extra = json.dumps({"statusCode": 200, "headers": {"content-type": "application/json"},
                                          "body": "{}"}).encode(), {}
            self.send_response(200)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class GatewayAnswers(unittest.TestCase):
    def start(self, behaviour="ok", **options):
        function = stub_function(behaviour)
        gateway = gw.serve(0, function.server_address[1], SECRET, **options)
        threading.Thread(target=gateway.serve_forever, daemon=True).start()
        for server in (gateway, function):
            self.addCleanup(server.server_close)
            self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{gateway.server_address[1]}"

    def call(self, base, method="GET", token="valid", data=None, headers=None):
        headers = dict(headers or {})
        if token == "valid":
            token = gw.make_token(SECRET, {"sub": "x"})
        if token:
            headers["authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{base}/users", method=method, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def assert_gateway(self, answer, status, message):
        code, headers, body = answer
        self.assertEqual(code, status, body)
        self.assertEqual(headers.get("content-type"), "application/json")
        self.assertEqual(json.loads(body), {"message": message})

    def test_the_authorizer_refuses_no_token_and_a_bad_one_before_the_function(self):
        base = self.start()
        self.assert_gateway(self.call(base, token=None), 401, "Unauthorized")
        forged = gw.make_token("other", {"sub": "x"})
        answer = self.call(base, token=forged)
        self.assert_gateway(answer, 401, "Unauthorized")
        self.assertIn("invalid_token", answer[1].get("www-authenticate", ""))
        self.assertEqual(self.call(base)[0], 200)
        self.assertEqual(self.call(base, method="OPTIONS", token=None)[0], 200, "a preflight needs no token")
        self.assertEqual(self.call(base, method="TRACE", token=None)[0], 200, "no route: the function's 405")
        self.assertEqual(self.call(base, method="PUT", token=None)[0], 200, "no PUT /users route either")

    def test_a_body_over_the_payload_limit_is_413(self):
        base = self.start(max_payload=1024)
        self.assert_gateway(self.call(base, "POST", data=b"x" * 1025), 413, "Request Entity Too Large")
        self.assertEqual(self.call(base, "POST", data=b"x" * 1024)[0], 200)
        self.assertEqual(gw.MAX_PAYLOAD_BYTES, 10 * 1024 * 1024)

    def test_throttling_is_429(self):
        base = self.start(rate=0.001, burst=2)
        self.assertEqual([self.call(base)[0] for _ in range(2)], [200, 200])
        self.assert_gateway(self.call(base), 429, "Too Many Requests")

    def test_an_integration_timeout_is_503_and_a_failed_function_500(self):
        self.assert_gateway(self.call(self.start("slow", integration_timeout=0.2)), 503, "Service Unavailable")
        self.assert_gateway(self.call(self.start("error")), 500, "Internal Server Error")


if __name__ == "__main__":
    unittest.main()
