"""Cold start against the floor: each function's init next to a hello-world `lambda_runtime` function
(bench/hello-world) built with the same release profile, in one run. Rewrites the "Cold start against
a hello-world" section of BENCHMARKS.md (part of `make bench`; alone: `make bench-cold`).

    python bench/cold_start.py [--processes N] [--quick]

Every process is fresh and serves one event through the local Runtime API (bench/runtime_api.py)
against moto with template.yaml deployed (bench/lambda_bench.py), as deployed: span export on (a UDP
socket stands where Lambda's X-Ray daemon is) and user-api's pagination key in Secrets Manager (read
by the first request that pages, which a cold `GET /users/{id}` is not). The functions and the hello-world take turns, so a busy machine slows them alike.
"""
import argparse
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import lambda_bench  # noqa: E402
from lambda_bench import FUNCTIONS, HELLO, percentile  # noqa: E402
from tracing_overhead import write  # noqa: E402

HEADING = "## Cold start against a hello-world"
GOAL = 1.5  # each function's init p50 at most this many times the hello-world's
ZIP_LIMIT = 4 * 1024 * 1024
SETTLEMENT = "order-settlement"
MEASURED = (*FUNCTIONS, SETTLEMENT)
BINS = ["-p", HELLO, *[a for fn in MEASURED for a in ("-p", fn)], "--bins"]
# order-settlement's event: a payment result that names another order's key (read, then skipped).
SETTLEMENT_EVENT = json.loads((ROOT / "events" / SETTLEMENT / "invalid-result.json").read_text())


def events(bench, fn, tag):
    return [SETTLEMENT_EVENT] if fn == SETTLEMENT else bench.events(fn, 1, tag)


def check(bench, fn, responses):
    if fn != SETTLEMENT:
        return bench.check(fn, responses)
    for raw in responses:
        if "batchItemFailures" not in json.loads(raw):
            raise SystemExit(f"cold-start: {fn} answered {raw[:200]}")


# The roots read from a PEM bundle, as crates.io's rustls-native-certs read the system's on Lambda
# (provided.al2023 keeps them in one bundle, Fedora's layout: /etc/pki/tls/certs/ca-bundle.crt) and as
# a function given SSL_CERT_FILE (a private CA) reads its file: every root decoded from base64. The
# events here call the emulator over plain HTTP, but the first request still builds the HTTPS
# connector with its roots, so the first response pays for them as it would in AWS.
BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
BUNDLE = next((b for b in BUNDLES if Path(b).is_file()), None)
ONE_BUNDLE = {"SSL_CERT_FILE": BUNDLE} if BUNDLE else None  # and no SSL_CERT_DIR (lambda_bench drops it)


def measure(bench, processes):
    inits = {fn: [] for fn in (HELLO, *MEASURED)}
    firsts = {fn: [] for fn in inits}
    bundled = {fn: ([], []) for fn in MEASURED}
    for i in range(processes):
        for fn in inits:
            out = bench.run(fn, "rust", events(bench, fn, f"cold-{i}"))
            check(bench, fn, out["responses"])
            inits[fn].append(out["init_ms"])
            firsts[fn].append(out["first_response_ms"])
            if fn in bundled and ONE_BUNDLE:
                out = bench.run(fn, "rust", events(bench, fn, f"cold-bundle-{i}"), extra_env=ONE_BUNDLE)
                check(bench, fn, out["responses"])
                bundled[fn][0].append(out["init_ms"])
                bundled[fn][1].append(out["first_response_ms"])
    results = {}
    for fn in inits:
        init_b, first_b = bundled.get(fn, ([], []))
        results[fn] = {"init_p50": percentile(inits[fn], 50), "init_p99": percentile(inits[fn], 99),
                       "first_p50": percentile(firsts[fn], 50),
                       "bundle_init_p50": percentile(init_b, 50), "bundle_first_p50": percentile(first_b, 50)}
    floor = results[HELLO]["init_p50"]
    for fn, r in results.items():
        r["ratio"] = r["init_p50"] / floor if floor else float("nan")
        print(f"  {fn:<17} init p50 {r['init_p50']:5.2f} ms p99 {r['init_p99']:5.2f} ms ({r['ratio']:.2f}x the "
              f"hello-world), first response p50 {r['first_p50']:6.1f} ms; SSL_CERT_FILE naming a PEM bundle: "
              f"init p50 {r['bundle_init_p50']:5.2f} ms, first response p50 {r['bundle_first_p50']:6.1f} ms",
              flush=True)
    return results


def zipped_bootstrap(fn):
    """Bytes of the arm64 bootstrap of `fn` zipped (deflate, level 9), or None when not built."""
    path = ROOT / "target" / "lambda" / fn / "bootstrap"
    if not path.exists():
        return None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return buffer.tell()


def section(results, processes):
    floor = results[HELLO]
    lines = [HEADING, "",
             f"Written by `bench/cold_start.py` (`make bench-cold`, part of `make bench`) on {time.strftime('%Y-%m-%d')}. "
             f"{processes} fresh processes per function, each serving one event, the functions and a hello-world "
             "`lambda_runtime` function (`bench/hello-world`: same runtime, same single-threaded tokio, same "
             "release profile, never deployed) taking turns in one run. Init: process start → first "
             "`GET /runtime/invocation/next`; first response: process start → the first response posted. As "
             "deployed: spans exported to an X-Ray daemon socket, user-api's pagination key in Secrets Manager "
             "(moto), the release binaries built for this machine. user-api's event is a `GET /users/{id}`.", "",
             "What init does as deployed: logging, metrics and the span exporter installed, configuration read "
             "and validated, the SDK configuration and clients built. user-api reads its pagination key from "
             "Secrets Manager on the first request that signs or verifies a `next_token`, not in init (most "
             "requests never page; in AWS the read is a TLS handshake and a round trip).", "",
             f"| function | init p50 ms | init p99 ms | init p50 vs hello-world (goal ≤ {GOAL}x) | "
             "first response p50 ms | `SSL_CERT_FILE` naming a PEM bundle: init p50 / first response p50 ms | "
             "arm64 bootstrap zipped |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for fn, r in results.items():
        size = zipped_bootstrap(fn) if fn != HELLO else None
        shown = "—" if size is None else f"{size / 2 ** 20:.2f} MiB{'' if size < ZIP_LIMIT else ' (over 4 MB)'}"
        verdict = "floor" if fn == HELLO else f"{r['ratio']:.2f}x {'✅' if r['ratio'] <= GOAL else '❌'}"
        bundle = "—" if r["bundle_init_p50"] != r["bundle_init_p50"] else \
            f"{r['bundle_init_p50']:.2f} ({r['bundle_init_p50'] / floor['init_p50']:.2f}x) / {r['bundle_first_p50']:.1f}"
        lines.append(f"| {fn} | {r['init_p50']:.2f} | {r['init_p99']:.2f} | {verdict} | {r['first_p50']:.1f} | "
                     f"{bundle} | {shown} |")
    worst = max(results[fn]["ratio"] for fn in MEASURED)
    lines += ["", f"Worst function: {worst:.2f}x the hello-world's {floor['init_p50']:.2f} ms "
                  f"({'goal met' if worst <= GOAL else 'goal not met'}). Zipped sizes are of `make build-arm64`'s "
                  "bootstraps when they are built.", "",
              "Where init went beyond the floor. The SDK's HTTPS client takes its root certificates from "
              "rustls-native-certs, which read the platform's PEM bundle (on Lambda's provided.al2023, one "
              "~200 KB file) and decoded every certificate from base64, and the SDK did it at init on purpose: "
              "for each SDK client it built a TLS connector and threw it away, only so that the roots were read "
              "before the first request. That was most of the gap. The workspace now replaces that crate with "
              "`shared/tls-roots` (`[patch.crates-io]`): Mozilla's roots compiled in as DER (Amazon Linux's "
              "bundle is built from the same list), so there is nothing to read, and the throwaway connector "
              "is no longer built (`adapters::aws::https_client`): the first request builds the one connector "
              "it uses and parses the roots into trust anchors once, as it always did. With `SSL_CERT_FILE` or "
              "`SSL_CERT_DIR` set (a private CA, a TLS-inspecting proxy) the PEM files they name are read "
              "instead, by that first request: the column \"`SSL_CERT_FILE` naming a PEM bundle\" is that case "
              "in the same run (this machine's bundle, the same roots as the compiled-in ones): init does the "
              "same work, and the first response also reads and decodes the bundle.", "",
              "The rest: loading a binary 5–14x the hello-world's (relocations and page faults: about 18,500 "
              "load-time relocations against 2,200), building the SDK configuration and clients (each SDK "
              "crate parses its endpoint partition table once), installing logging, metrics and the span "
              "exporter. Loading shrank with the binaries: TLS on ring instead of aws-lc, the log filter "
              "without a regular expression engine, and fat LTO (a fifth fewer relocations than thin LTO) "
              "made the zipped bootstraps 25–27% smaller (image-compressor, with its codecs, 16%). Also removed from init: user-api's Secrets "
              "Manager read and client (built and read by the first request that pages, which most never do), "
              "and the default credentials and region chains (profile files, web identity with its STS client, "
              "container and instance metadata clients) when Lambda's environment already holds the region and "
              "credentials."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=30, help="cold starts per function")
    parser.add_argument("--quick", action="store_true", help="fewer processes (a smoke run)")
    args = parser.parse_args()
    processes = 5 if args.quick else args.processes
    started = time.time()
    subprocess.run(["cargo", "build", "--release", "-q", *BINS], cwd=ROOT, check=True)
    print(f"cold-start: measuring (at {time.time() - started:.0f} s)", flush=True)
    bench = lambda_bench.Bench(args.quick)
    try:
        bench.seed_user()
        bench.seed_stock()
        results = measure(bench, processes)
    finally:
        bench.close()
    write(section(results, processes), heading=HEADING)
    print(f"cold-start: BENCHMARKS.md's \"{HEADING[3:]}\" section written in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
