"""Boots each arm64 release `bootstrap` under qemu-aarch64 against a minimal Lambda Runtime API and
checks it answers one event (make smoke-arm64; needs `make build-arm64` and Debian's qemu-user,
libc6-arm64-cross and binutils-aarch64-linux-gnu, which the Makefile target installs).

Every bootstrap must run on the oldest Graviton Lambda uses, so qemu emulates a Neoverse N1
(Graviton2: Armv8.2-A with crc, lse, rcpc, dotprod, fp16), not its default `max` CPU that accepts
every instruction. First tools/arm64_baseline.py disassembles each bootstrap and fails on any
instruction an N1 lacks outside the functions selected at run time by a CPU-feature check, including
code no event below reaches. Then one event per function that needs no AWS service: an S3 test
event, an unknown API route, an empty batch. Then the image codecs' arm64 code (mozjpeg's, libwebp's
and libaom's NEON paths, compiled by zig): the arm64 image-compressor turns real uploads of every
format it reads (JPEG baseline, progressive, CMYK, grey and EXIF-rotated; PNG 8-bit RGBA, 16-bit,
16-bit RGBA and palette; GIF; WebP lossy and lossless; BMP; TIFF) in the local emulator into JPEG
variants and, where smaller, AVIF and WebP ones, and each large variant must be, pixel for pixel,
close to Pillow's own Lanczos resize of the source (an AVIF only where Pillow reads AVIF).
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSROOT = "/usr/aarch64-linux-gnu"
# Graviton2, the oldest CPU Lambda's arm64 functions run on.
QEMU_CPU = "neoverse-n1"
CASES = {
    "image-compressor": ({"DESTINATION_BUCKET": "out", "SOURCE_BUCKET": "in"},
                         json.loads((ROOT / "events/image-compressor/s3-test-event.json").read_text()),
                         lambda r: r == {"records": 0}),
    "user-api": ({"USERS_TABLE": "users", "ALLOWED_ORIGINS": "https://app.example.com",
                  "PAGE_TOKEN_SECRET": "arm64-smoke-key"},
                 json.loads((ROOT / "events/user-api/unknown-route.json").read_text()),
                 lambda r: r.get("statusCode") == 404),
    "order-processor": ({"ORDERS_TABLE": "o", "INVENTORY_TABLE": "i",
                         "PAYMENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/p.fifo",
                         "ORDER_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
                         "ORDERS_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/1/d",
                         "EXPIRY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/e"},
                        {"Records": []},
                        lambda r: r == {"batchItemFailures": []}),
    "order-settlement": ({"ORDERS_TABLE": "o", "INVENTORY_TABLE": "i",
                          "ORDER_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
                          "PAYMENT_RESULTS_QUEUE_ARN": "arn:aws:sqs:us-east-1:1:r",
                          "EXPIRY_QUEUE_ARN": "arn:aws:sqs:us-east-1:1:e"},
                         {"Records": []},
                         lambda r: r == {"batchItemFailures": []}),
}
# Variables a case leaves to the function's default (the template sets them from parameters), or
# replaces for a local run: tools/tests/test_arm64_smoke.py checks every other variable the template
# gives a function is set, so a setting a function starts to require cannot fail the boot unexplained.
LEFT_TO_DEFAULTS = {
    "image-compressor": {"VARIANTS", "JPEG_QUALITY", "JPEG_OPTIMIZE", "FORMATS", "WEBP_QUALITY", "AVIF_QUALITY",
                         "MAX_OBJECT_BYTES", "MAX_PIXELS"},
    # The key itself stands in for the secret Secrets Manager holds when deployed.
    "user-api": {"PAGE_TOKEN_SECRET_ARN", "IDEMPOTENCY_TTL_SECONDS"},
    "order-processor": set(),
    "order-settlement": set(),
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


def run_bootstrap(fn, env, event, timeout=60):
    """Runs the arm64 `bootstrap` of `fn` for one event; returns the response body, or None after
    printing what the function reported instead (an init or invocation error) or its last log lines."""
    binary = ROOT / "target" / "lambda" / fn / "bootstrap"
    if not binary.exists():
        sys.exit(f"{binary} is missing: run make build-arm64")
    result = {"done": threading.Event()}
    server = runtime_api(event, result)
    environment = dict(os.environ, **env, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x",
                       AWS_SECRET_ACCESS_KEY="x", AWS_LAMBDA_FUNCTION_NAME=fn,
                       AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                       AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    # Logs go to a file: a pipe nobody reads would stall a chatty function once it fills.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(["qemu-aarch64", "-cpu", QEMU_CPU, "-L", SYSROOT, str(binary)], env=environment,
                                stdout=log, stderr=log)
        answered = result["done"].wait(timeout)
        proc.kill()
        proc.wait()
        log.seek(0)
        stderr = log.read()
    server.shutdown()
    if not (answered and result["path"].endswith("/response")):
        reported = f"posted {result['path']}: {result['body'][:500]}" if answered else f"no answer in {timeout} s"
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        print(f"smoke-arm64: {fn} {reported}" + "".join(f"\n    {line[:300]}" for line in tail))
        return None
    return json.loads(result["body"])


TESTDATA = ROOT / "functions" / "image-compressor" / "testdata"
CORPUS = ROOT / "bench" / "corpus"
# One upload per format and flavour the pipeline reads, and one it must skip.
UPLOADS = {
    "photos/garden.jpg": TESTDATA / "good/garden-2560x1600.jpg",
    "photos/rotated.jpg": TESTDATA / "good/storm-exif-orientation6-gps.jpg",
    "photos/progressive.jpeg": TESTDATA / "good/video-001-progressive.jpeg",
    "photos/cmyk.jpeg": TESTDATA / "good/video-001-cmyk.jpeg",
    "photos/grey.jpg": TESTDATA / "good/grey-gray-2560x1600.jpg",
    "photos/wood.webp": TESTDATA / "good/wood-4096x4096.webp",
    "photos/flower-lossy.webp": CORPUS / "pillow-flower.webp",
    "photos/card-lossless.webp": CORPUS / "pillow-test-card-lossless.webp",
    # White drawn with varying alpha: flattened on white it must come out white (a diff near 0).
    "photos/spring.png": TESTDATA / "good/spring-rgba-1600x1200.png",
    "photos/rgb16.png": TESTDATA / "good/pngsuite-basn2c16-16bit.png",
    "photos/rgba16.png": TESTDATA / "good/pngsuite-basn6a16-rgba16.png",
    "photos/palette.png": TESTDATA / "good/pngsuite-basn3p08-palette.png",
    "photos/triangle.gif": TESTDATA / "good/triangle-001.gif",
    "photos/storm.bmp": TESTDATA / "good/storm-960x640.bmp",
    "photos/storm.tiff": TESTDATA / "good/storm-960x640.tiff",
    "photos/cut.jpg": TESTDATA / "bad/garden-truncated-40pct.jpg",
}


# Qualities set on both sides: the function's encoders, and Pillow's encode of its own resize that
# measures what each codec alone costs on a file (its floor).
QUALITY = {"jpg": None, "webp": 90, "avif": 70}
PIL_FORMAT = {"jpg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
# Mean |diff| allowed against Pillow's resize: 4.0, or 1.25x the codec's own loss where that is more
# (a 32x32 palette image of single-pixel detail loses about 5 to JPEG at quality 85 in Pillow too).
TOLERANCE, CODEC_MARGIN = 4.0, 1.25


def template_jpeg_quality():
    """The JpegQuality parameter's default in template.yaml: what a deployment encodes with."""
    text = (ROOT / "template.yaml").read_text()
    block = text[text.index("\n  JpegQuality:"):]
    return int(next(line.split(":", 1)[1] for line in block.splitlines()[1:] if line.strip().startswith("Default:")))


def codec_floor(reference, ext, quality):
    """Mean |diff| of Pillow's own encode of `reference` in the format at `quality`."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    reference.save(buffer, PIL_FORMAT[ext], quality=quality)
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return float(np.abs(np.asarray(decoded, dtype=np.float64) - np.asarray(reference, dtype=np.float64)).mean())


def images_case():
    """The arm64 codecs on real files, through S3 on the local emulator."""
    import io

    import boto3
    import numpy as np
    from PIL import Image, ImageOps, features

    moto = subprocess.Popen([sys.executable, str(ROOT / "tools" / "moto_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        endpoint = f"http://127.0.0.1:{int(moto.stdout.readline())}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
        for bucket in ("smoke-in", "smoke-out"):
            s3.create_bucket(Bucket=bucket)
        records = []
        for key, file in UPLOADS.items():
            s3.put_object(Bucket="smoke-in", Key=key, Body=file.read_bytes())
            records.append({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                            "s3": {"bucket": {"name": "smoke-in"}, "object": {"key": key}}})
        problems = []
        for optimize in ("speed", "size"):
            quality = dict(QUALITY, jpg=template_jpeg_quality())
            env = {"DESTINATION_BUCKET": "smoke-out", "SOURCE_BUCKET": "smoke-in", "AWS_ENDPOINT_URL": endpoint,
                   "JPEG_OPTIMIZE": optimize, "FORMATS": "avif,webp,jpeg", "VARIANTS": "small:300,large:1200",
                   "JPEG_QUALITY": str(quality["jpg"]), "WEBP_QUALITY": str(quality["webp"]),
                   "AVIF_QUALITY": str(quality["avif"])}
            for obj in s3.list_objects_v2(Bucket="smoke-out").get("Contents", []):
                s3.delete_object(Bucket="smoke-out", Key=obj["Key"])
            response = run_bootstrap("image-compressor", env, {"Records": records}, timeout=300)
            if response != {"records": len(records)}:
                problems.append(f"{optimize}: response {response}")
                continue
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="smoke-out").get("Contents", [])
                          if not o["Key"].startswith("manifest/"))
            good = [k for k in UPLOADS if not k.endswith("cut.jpg")]
            # Every JPEG; an AVIF and a WebP where each was smaller (which, the sizes decide).
            jpegs = sorted(f"{v}/{k}.jpg" for k in good for v in ("small", "large"))
            allowed = {f"{v}/{k}.{ext}" for k in good for v in ("small", "large") for ext in ("jpg", "webp", "avif")}
            if [k for k in keys if k.endswith(".jpg")] != jpegs or not set(keys) <= allowed \
                    or not any(k.endswith(".avif") for k in keys):
                problems.append(f"{optimize}: outputs {keys}, expected {jpegs} and AVIF, WebP where smaller")
                continue
            for key in good:
                with Image.open(UPLOADS[key]) as src:
                    src = ImageOps.exif_transpose(src)
                    if src.mode in ("RGBA", "LA", "P"):
                        src = src.convert("RGBA")
                        src = Image.alpha_composite(Image.new("RGBA", src.size, (255, 255, 255, 255)), src)
                    src = src.convert("RGB")
                    for ext in ("jpg", "webp", "avif"):
                        if f"large/{key}.{ext}" not in keys or (ext == "avif" and not features.check("avif")):
                            continue
                        obj = s3.get_object(Bucket="smoke-out", Key=f"large/{key}.{ext}")
                        out = Image.open(io.BytesIO(obj["Body"].read())).convert("RGB")
                        meta = obj["Metadata"]
                        if out.size != (int(meta["width"]), int(meta["height"])):
                            problems.append(f"{optimize} {key}.{ext}: {out.size} but metadata says {meta}")
                            continue
                        resized = src.resize(out.size, Image.LANCZOS)
                        reference = np.asarray(resized, dtype=np.float64)
                        diff = float(np.abs(np.asarray(out, dtype=np.float64) - reference).mean())
                        floor = codec_floor(resized, ext, quality[ext])
                        limit = max(TOLERANCE, CODEC_MARGIN * floor)
                        print(f"smoke-arm64: image-compressor {optimize:<5} large/{key}.{ext:<4} {out.size[0]}x{out.size[1]} "
                              f"mean |diff| vs Pillow {diff:.2f} (Pillow's own {ext} loss {floor:.2f}, limit {limit:.2f})")
                        if diff > limit:
                            problems.append(f"{optimize} {key}.{ext}: mean |diff| {diff:.2f} vs Pillow's resize "
                                            f"(limit {limit:.2f})")
        return problems
    finally:
        moto.stdin.close()
        moto.wait(timeout=20)


FUNCTIONS = ("image-compressor", "user-api", "order-processor", "order-settlement")


def text_section(path):
    """The bytes of an ELF file's .text section (what strip leaves untouched)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "text"
        subprocess.run(["aarch64-linux-gnu-objcopy", "-O", "binary", "--only-section=.text", str(path), str(out)],
                       check=True)
        return out.read_bytes()


def main():
    import arm64_baseline

    failures = 0
    for fn in FUNCTIONS:
        binary = ROOT / "target" / "lambda" / fn / "bootstrap"
        symbols = ROOT / "target" / "lambda-symbols" / fn
        if not binary.exists() or not symbols.exists():
            sys.exit(f"{binary} or {symbols} is missing: run make build-arm64")
        # The copy with symbols is checked; it must hold the very code the stripped bootstrap ships.
        if text_section(symbols) != text_section(binary):
            print(f"smoke-arm64: {fn:<17} FAILED: {symbols} is not the code of {binary}")
            failures += 1
            continue
        outside = arm64_baseline.check_file(symbols)
        failures += 0 if outside == 0 else 1
    for fn, (env, event, expected) in CASES.items():
        response = run_bootstrap(fn, env, event)
        ok = response is not None and expected(response)
        print(f"smoke-arm64: {fn:<17} {'answered' if ok else 'FAILED'} {json.dumps(response)[:80]}")
        failures += 0 if ok else 1
    problems = images_case()
    for p in problems:
        print(f"smoke-arm64: image-compressor FAILED: {p}")
    print(f"smoke-arm64: image codecs on arm64 ({QEMU_CPU}) {'FAILED' if problems else 'match Pillow'}")
    sys.exit(1 if failures or problems else 0)


if __name__ == "__main__":
    main()
