"""A minimal local Lambda Runtime API for the benchmarks: serves a list of events to one function
process and records when things happen.

The process under test gets `AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>`. It asks for its first event
when its init is done (`GET /runtime/invocation/next`), posts each response, asks again. The server
records, against `time.perf_counter()`:

- `first_next`: the first `next` request (process start → ready: the init duration);
- per invocation, the time from handing out the event to receiving its response;
- the process's RSS (`VmRSS`, and the high-water mark `VmHWM`) when init finished and at chosen
  invocation counts, read from /proc while the process waits for its next event.

When the events run out the `next` request is held open (as Lambda freezes an idle instance) until
`close()`.
"""
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process in KiB."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


class RuntimeAPI:
    def __init__(self, events, sample_rss_at=()):
        self.events = list(events)
        self.sample_rss_at = set(sample_rss_at)
        self.pid = None
        self.started = None
        self.first_next = None
        self.first_response = None
        self.handed_out = {}
        self.latencies = []
        self.responses = []
        self.errors = []
        self.rss = {}
        self.done = threading.Event()
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.next_index = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: with Nagle's algorithm on, the body waits for
            # the client's delayed ACK (~40 ms per invocation), which would be measured as latency.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self.reply(404, b"{}")
                now = time.perf_counter()
                with api.lock:
                    if api.first_next is None:
                        api.first_next = now
                        if api.pid:
                            api.rss["init"] = rss_kib(api.pid)
                    index = api.next_index
                    api.next_index += 1
                if index >= len(api.events):
                    api.done.set()
                    api.closing.wait()
                    return self.reply(410, b"{}")
                request_id = str(uuid.uuid4())
                body = json.dumps(api.events[index]).encode()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 300_000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    # A fresh X-Ray trace per invocation, as Lambda sends it (the id starts with the time),
                    # sampled: with tracing on, every invocation's spans are exported (the worst case).
                    "Lambda-Runtime-Trace-Id": (f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                                                f"Parent={uuid.uuid4().hex[:16]};Sampled=1"),
                    "Content-Type": "application/json",
                }
                with api.lock:
                    api.handed_out[request_id] = time.perf_counter()
                self.reply(200, body, headers)

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                data = self.rfile.read(length) if length else b""
                now = time.perf_counter()
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    api.errors.append(("init", data.decode(errors="replace")))
                    api.done.set()
                    return self.reply(202, b"{}")
                if len(parts) == 3 and parts[0] == "invocation":
                    request_id, kind = parts[1], parts[2]
                    with api.lock:
                        started = api.handed_out.pop(request_id, None)
                        if api.first_response is None:
                            api.first_response = now
                        if started is not None:
                            api.latencies.append(now - started)
                        count = len(api.latencies)
                        if kind == "error":
                            api.errors.append((request_id, data.decode(errors="replace")))
                        else:
                            api.responses.append(data)
                    if count in api.sample_rss_at and api.pid:
                        api.rss[count] = rss_kib(api.pid)
                    return self.reply(202, b"{}")
                self.reply(404, b"{}")

            def reply(self, status, body, headers=None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the process is gone (killed at the end of a run)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def wait(self, timeout):
        return self.done.wait(timeout)

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
