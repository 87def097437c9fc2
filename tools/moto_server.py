"""The project's local AWS: a moto server on a loopback port, used by the tests and the demo.

    python tools/moto_server.py              # free port, printed on stdout; stops when stdin closes
    python tools/moto_server.py --port 4566 --serve-forever   # fixed port, stops on SIGTERM
    python tools/moto_server.py --sqs-dedup-seconds 3        # FIFO dedup window shortened for a test

Stopping when stdin closes means a test binary that holds the pipe can never leave an orphan: when it
exits, however it exits, the OS closes the pipe and this server shuts down.

DynamoDB requests are executed one at a time. moto implements TransactWriteItems by copying the whole
table and restoring the copy when the transaction is cancelled, so a write that lands in between from
another thread would be silently undone. Real DynamoDB isolates each request; serialising DynamoDB
requests inside the emulator restores that guarantee while clients stay fully concurrent. Other
services (SQS long polls, S3 uploads) keep running in parallel.
"""
import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class SerialiseDynamoDB:
    """WSGI middleware: one DynamoDB request at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialise the response inside the lock: the work happens while it is produced.
            return list(self.app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serve-forever", action="store_true", help="ignore stdin; stop on SIGTERM")
    parser.add_argument(
        "--sqs-dedup-seconds",
        type=int,
        help="FIFO deduplication window (AWS: 300 s), shortened so a test can outlive it",
    )
    args = parser.parse_args()
    if args.sqs_dedup_seconds is not None:
        import moto.sqs.models

        moto.sqs.models.DEDUPLICATION_TIME_IN_SECONDS = args.sqs_dedup_seconds

    app = SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.serve_forever:
        stop.wait()
    else:
        watcher = threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True)
        watcher.start()
        stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
