"""Boots each arm64 release `bootstrap` under qemu-aarch64 against a minimal Lambda Runtime API and
checks it answers one event (make smoke-arm64; needs `make build-arm64` and Debian's qemu-user and
libc6-arm64-cross, which the Makefile target installs).

Events are chosen to need no AWS service: an S3 test event, an unknown API route, an empty batch.
"""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSROOT = "/usr/aarch64-linux-gnu"
CASES = {
    "image-compressor": ({"DESTINATION_BUCKET": "out", "SOURCE_BUCKET": "in"},
                         json.loads((ROOT / "events/image-compressor/s3-test-event.json").read_text()),
                         lambda r: r == {"records": 0}),
    "user-api": ({"USERS_TABLE": "users", "ALLOWED_ORIGINS": "https://app.example.com"},
                 json.loads((ROOT / "events/user-api/unknown-route.json").read_text()),
                 lambda r: r.get("statusCode") == 404),
    "order-processor": ({"ORDERS_TABLE": "o", "INVENTORY_TABLE": "i",
                         "PAYMENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/p.fifo",
                         "ORDER_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
                         "ORDERS_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/1/d"},
                        {"Records": []},
                        lambda r: r == {"batchItemFailures": []}),
}


def runtime_api(event, result):
    """Serves one invocation, records the response, then tells the function nothing more is coming."""
    served = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.endswith("/invocation/next") and not served.is_set():
                served.set()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "smoke-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:1:function:smoke")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                # Hold the second poll until the test is done with the process.
                threading.Event().wait(30)
                self.send_response(500)
                self.end_headers()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            result["path"] = self.path
            result["body"] = self.rfile.read(length).decode()
            self.send_response(202)
            self.end_headers()
            result["done"].set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    failures = 0
    for fn, (env, event, expected) in CASES.items():
        binary = ROOT / "target" / "lambda" / fn / "bootstrap"
        if not binary.exists():
            sys.exit(f"{binary} is missing: run make build-arm64")
        result = {"done": threading.Event()}
        server = runtime_api(event, result)
        environment = dict(os.environ, **env, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x",
                           AWS_SECRET_ACCESS_KEY="x", AWS_LAMBDA_FUNCTION_NAME=fn,
                           AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                           AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
        proc = subprocess.Popen(["qemu-aarch64", "-L", SYSROOT, str(binary)], env=environment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        answered = result["done"].wait(60)
        proc.kill()
        proc.wait()
        server.shutdown()
        ok = answered and result["path"].endswith("/response") and expected(json.loads(result["body"]))
        print(f"smoke-arm64: {fn:<17} {'answered' if ok else 'FAILED'} {result.get('body', '')[:80]}")
        failures += 0 if ok else 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
