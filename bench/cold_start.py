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


# The platform's root certificates, hidden: rustls-native-certs reads these variables instead of the
# system store, so the SDK finds none. The SDK loads the roots when it builds its clients, before the
# first event; the events here call the emulator over plain HTTP, so they still succeed and the
# difference is what loading the roots costs init.
NO_ROOTS = {"SSL_CERT_FILE": "/dev/null", "SSL_CERT_DIR": "/nonexistent"}
# The same roots from one bundle file alone, as Lambda's provided.al2023 keeps them (Fedora's layout:
# /etc/pki/tls/certs/ca-bundle.crt, where /etc/ssl/certs holds only that bundle and its trust
# variant): the SDK reads and parses each root once. Debian's store is that bundle plus one file per
# certificate, which the SDK reads and parses again.
BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
BUNDLE = next((b for b in BUNDLES if Path(b).is_file()), None)
ONE_BUNDLE = {"SSL_CERT_FILE": BUNDLE} if BUNDLE else None  # and no SSL_CERT_DIR (lambda_bench drops it)


def measure(bench, processes):
    inits = {fn: [] for fn in (HELLO, *MEASURED)}
    firsts = {fn: [] for fn in inits}
    bare = {fn: [] for fn in MEASURED}
    bundled = {fn: [] for fn in MEASURED}
    for i in range(processes):
        for fn in inits:
            out = bench.run(fn, "rust", events(bench, fn, f"cold-{i}"))
            check(bench, fn, out["responses"])
            inits[fn].append(out["init_ms"])
            firsts[fn].append(out["first_response_ms"])
            if fn in bare:
                out = bench.run(fn, "rust", events(bench, fn, f"cold-bare-{i}"), extra_env=NO_ROOTS)
                check(bench, fn, out["responses"])
                bare[fn].append(out["init_ms"])
                if ONE_BUNDLE:
                    out = bench.run(fn, "rust", events(bench, fn, f"cold-bundle-{i}"), extra_env=ONE_BUNDLE)
                    check(bench, fn, out["responses"])
                    bundled[fn].append(out["init_ms"])
    results = {}
    for fn in inits:
        results[fn] = {"init_p50": percentile(inits[fn], 50), "init_p99": percentile(inits[fn], 99),
                       "first_p50": percentile(firsts[fn], 50),
                       "bare_p50": percentile(bare[fn], 50) if fn in bare else float("nan"),
                       "bundle_p50": percentile(bundled[fn], 50) if bundled.get(fn) else float("nan")}
    floor = results[HELLO]["init_p50"]
    for fn, r in results.items():
        r["ratio"] = r["init_p50"] / floor if floor else float("nan")
        print(f"  {fn:<17} init p50 {r['init_p50']:5.2f} ms p99 {r['init_p99']:5.2f} ms ({r['ratio']:.2f}x the "
              f"hello-world); roots from one bundle {r['bundle_p50']:5.2f} ms; without root certificates "
              f"{r['bare_p50']:5.2f} ms; first response p50 "
              f"{r['first_p50']:6.1f} ms", flush=True)
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
             "init p50, roots from one bundle (AL2023's layout) | init p50 without the root certificates | "
             "of which loading them | first response p50 ms | arm64 bootstrap zipped |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for fn, r in results.items():
        size = zipped_bootstrap(fn) if fn != HELLO else None
        shown = "—" if size is None else f"{size / 2 ** 20:.2f} MiB{'' if size < ZIP_LIMIT else ' (over 4 MB)'}"
        verdict = "floor" if fn == HELLO else f"{r['ratio']:.2f}x {'✅' if r['ratio'] <= GOAL else '❌'}"
        if fn == HELLO:
            bundle, bare, roots = "—", "—", "—"
        else:
            bundle = "—" if r["bundle_p50"] != r["bundle_p50"] else \
                f"{r['bundle_p50']:.2f} ms ({r['bundle_p50'] / floor['init_p50']:.2f}x)"
            bare = f"{r['bare_p50']:.2f} ms ({r['bare_p50'] / floor['init_p50']:.2f}x)"
            roots = f"{r['init_p50'] - r['bare_p50']:.2f} ms"
        lines.append(f"| {fn} | {r['init_p50']:.2f} | {r['init_p99']:.2f} | {verdict} | {bundle} | {bare} | {roots} | "
                     f"{r['first_p50']:.1f} | {shown} |")
    worst = max(results[fn]["ratio"] for fn in MEASURED)
    lines += ["", f"Worst function: {worst:.2f}x the hello-world's {floor['init_p50']:.2f} ms "
                  f"({'goal met' if worst <= GOAL else 'goal not met'}). Zipped sizes are of `make build-arm64`'s "
                  "bootstraps when they are built.", "",
              "Where init goes beyond the floor. The SDK loads and parses the platform's root certificates "
              "while it builds its clients, so the first request does not wait for them (aws-smithy-http-client "
              "does this on purpose); the column \"of which loading them\" is that cost, measured by hiding the "
              "certificate store (`SSL_CERT_FILE=/dev/null`, `SSL_CERT_DIR` absent) in the same run: on this "
              "machine's Debian store it is most of the gap. That store is a bundle plus one file per "
              "certificate, and the SDK reads and parses every root twice; Lambda's provided.al2023 keeps them "
              "in one bundle (Fedora's layout), so the column \"roots from one bundle\" (`SSL_CERT_FILE` set to "
              "this machine's bundle alone: the same roots, each read once) is nearer what a deployed cold start "
              "pays. The rest is loading a "
              "binary 5–10x the hello-world's (relocations and page faults), building the SDK configuration "
              "and clients (each SDK crate parses its endpoint partition table once), installing logging, "
              "metrics and the span exporter.", "",
              "Removed from init: user-api's Secrets Manager read (now on first use); the SDK checked its HTTP client once per client it built, each check "
              "building a throwaway TLS connector (now one shared client, checked once: "
              "`adapters::aws::https_client`), and the default credentials and region chains (profile files, "
              "web identity with its STS client, container and instance metadata clients) are not built when "
              "Lambda's environment already holds the region and credentials. Left in init on purpose: the "
              "root certificates, which the first event's TLS handshake needs. Compiled-in roots "
              "(webpki-roots) would remove the file reads and PEM parsing, but the SDK's TLS settings take "
              "extra roots only as PEM, and they would stop honouring the OS store and `SSL_CERT_FILE` "
              "(a private CA, a TLS-inspecting proxy)."]
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
