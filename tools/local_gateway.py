"""A local stand-in for API Gateway's HTTP API with a JWT authorizer, in front of `cargo lambda watch`.

    python tools/local_gateway.py --port 8080 --invoke-port 9000 --secret local-dev-secret

Each HTTP request becomes an API Gateway v2 event and is sent to user-api through cargo lambda's
Invoke API; the function's response becomes the HTTP response. A bearer token is verified the way
the authorizer would (HS256 signature with the local secret, `exp`), and only then are its claims
put in `requestContext.authorizer.jwt.claims`, flattened to strings as API Gateway does (a list
becomes `[a b]`).

What API Gateway (HTTP API) answers by itself, before or instead of the function, is answered here
the same way, with its own `{"message": ...}` JSON bodies (`GATEWAY_ANSWERS`): 401 when the JWT
authorizer refuses the request (no token or an invalid one; CORS preflights pass without one), 413
for a body over the 10 MB payload limit, 429 when the stage's throttling (token bucket, `rate` and
`burst` as `ThrottlingRateLimit` / `ThrottlingBurstLimit`; off unless given) refuses it, 503 when the
integration does not answer within its timeout (`integration_timeout`, 30 s as deployed), and 500
when the function fails (an error or its own timeout).

Function URLs carry no authorizer claims, which is why this gateway exists: it lets the API's
authorisation be tested locally exactly as it runs behind API Gateway.
"""
import argparse
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, claims: dict) -> str:
    """An HS256 JWT for local use (tests and the contract run mint their callers' tokens with it)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"exp": int(time.time()) + 3600, **claims}).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def verify_token(secret: str, token: str):
    """The token's claims if it is a well-formed, correctly signed, unexpired HS256 JWT; else None."""
    try:
        header, payload, signature = token.split(".")
        if json.loads(unb64url(header)).get("alg") != "HS256":
            return None
        expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, unb64url(signature)):
            return None
        claims = json.loads(unb64url(payload))
        if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
            return None
        return claims
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def flatten(value):
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def build_event(method, target, headers, body, claims, stage="$default"):
    path, _, query = target.partition("?")
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if body:
        try:
            event["body"] = body.decode()
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    if claims is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {"claims": {k: flatten(v) for k, v in claims.items()}, "scopes": None}
        }
    return event


# API Gateway HTTP API's own answers: (status, body, extra headers).
GATEWAY_ANSWERS = {
    "unauthorized": (401, {"message": "Unauthorized"}),
    "too_large": (413, {"message": "Request Entity Too Large"}),
    "throttled": (429, {"message": "Too Many Requests"}),
    "integration_timeout": (503, {"message": "Service Unavailable"}),
    "integration_failed": (500, {"message": "Internal Server Error"}),
}
# The template's routes, each behind the JWT authorizer. Anything else (OPTIONS, a method no route
# has, which the function answers 405, an unknown path) goes to the function without a token.
AUTHORIZED_ROUTES = {"collection": {"GET", "POST"}, "item": {"GET", "PUT", "PATCH", "DELETE"}}


def authorized_route(method, target):
    """Whether `method` on `target` is one of the template's routes (and so behind the authorizer)."""
    segments = [s for s in target.partition("?")[0].split("/") if s]
    kind = {1: "collection", 2: "item"}.get(len(segments)) if segments[:1] == ["users"] else None
    return kind is not None and method in AUTHORIZED_ROUTES[kind]
# HTTP API's payload limit.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


class TokenBucket:
    """API Gateway's throttling: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate, burst):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.at = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def serve(port, invoke_port, secret, function="user-api", rate=None, burst=None,
          integration_timeout=30.0, max_payload=MAX_PAYLOAD_BYTES):
    invoke_url = f"http://127.0.0.1:{invoke_port}/2015-03-31/functions/{function}/invocations"
    bucket = TokenBucket(rate, burst) if rate is not None and burst is not None else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def gateway_answer(self, name, headers=None):
            status, body = GATEWAY_ANSWERS[name]
            self.reply(status, {"content-type": "application/json", **(headers or {})},
                       json.dumps(body, separators=(",", ":")).encode())

        def handle_any(self):
            if bucket is not None and not bucket.take():
                self.close_connection = True
                self.gateway_answer("throttled")
                return
            length = int(self.headers.get("content-length") or 0)
            if length > max_payload:
                # Refused before the body is read, as API Gateway does.
                self.close_connection = True
                self.gateway_answer("too_large")
                return
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            claims = None
            auth = self.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                claims = verify_token(secret, auth[7:].strip())
            if claims is None and authorized_route(self.command, self.path):
                # The JWT authorizer refuses the request; the function never runs.
                challenge = 'Bearer error="invalid_token"' if auth else "Bearer"
                self.gateway_answer("unauthorized", {"www-authenticate": challenge})
                return
            event = build_event(self.command, self.path, headers, body, claims)
            request = urllib.request.Request(
                invoke_url, data=json.dumps(event).encode(), headers={"content-type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=integration_timeout) as response:
                    result = json.loads(response.read())
                    failed = response.headers.get("X-Amz-Function-Error")
            except (TimeoutError, socket.timeout):
                self.gateway_answer("integration_timeout")
                return
            except urllib.error.URLError as e:
                if isinstance(e.reason, (TimeoutError, socket.timeout)):
                    self.gateway_answer("integration_timeout")
                    return
                result, failed = {"errorMessage": str(e)}, "Unhandled"
            except json.JSONDecodeError as e:
                result, failed = {"errorMessage": str(e)}, "Unhandled"
            if failed or not isinstance(result, dict) or "statusCode" not in result:
                # What API Gateway answers when the integration fails.
                self.gateway_answer("integration_failed")
                return
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self.reply(int(result["statusCode"]), result.get("headers") or {}, data)

        def reply(self, status, headers, data):
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def __getattr__(self, name):
            # Every method, standard or not (QUERY, FOO...), goes to the function, as an ANY route does.
            if name.startswith("do_"):
                return self.handle_any
            raise AttributeError(name)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--invoke-port", type=int, default=9000)
    parser.add_argument("--secret", default="local-dev-secret")
    parser.add_argument("--rate", type=float, help="throttling: requests per second (ThrottlingRateLimit)")
    parser.add_argument("--burst", type=float, help="throttling: bucket size (ThrottlingBurstLimit)")
    parser.add_argument("--integration-timeout", type=float, default=30.0)
    args = parser.parse_args()
    server = serve(args.port, args.invoke_port, args.secret, rate=args.rate, burst=args.burst,
                   integration_timeout=args.integration_timeout)
    print(f"local gateway on http://127.0.0.1:{args.port} -> user-api via :{args.invoke_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
