"""What span export costs: cold start, warm latency and memory of each function, side by side in one run,
for the current build with span export on (as deployed: `Tracing: Active`, every invocation sampled),
the same build with it off (`OTEL_SDK_DISABLED=true`), and a baseline commit built from git (default: the
last one without span export). Rewrites the "Tracing overhead" section of BENCHMARKS.md.

    python bench/tracing_overhead.py [--baseline REV] [--processes N] [--quick]
"""
import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import lambda_bench  # noqa: E402
from lambda_bench import FUNCTIONS, percentile  # noqa: E402

DEFAULT_BASELINE = "728f525"  # the last commit before spans were exported
BARS = 1.10  # no worse than the baseline by more than 10%
VARIANTS = ("rust", "rust-untraced", "rust-baseline")
LABEL = {"rust": "spans exported", "rust-untraced": "export off", "rust-baseline": "baseline"}
BINS = ["-p", "user-api", "-p", "order-processor", "-p", "image-compressor", "--bins"]


def build_baseline(rev, cargo_args=BINS, into="tracing-baseline"):
    """The baseline's release binaries, built from a git worktree into a target directory of its own."""
    base = ROOT / "target" / into
    src, target = base / f"{rev}-src", base / f"{rev}-target"
    if not src.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(src), rev], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    print(f"bench: building {rev} (release) in {src.relative_to(ROOT)}", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", *cargo_args], cwd=src, check=True,
                   env=dict(os.environ, CARGO_TARGET_DIR=str(target)))
    return target / "release"


def warm_count(fn, quick):
    return {"user-api": 2000, "order-processor": 300, "image-compressor": 50}[fn] // (5 if quick else 1)


def measure(bench, processes, quick):
    results = {}
    for fn in FUNCTIONS:
        for variant in VARIANTS:
            if fn == "order-processor":
                bench.fresh_orders_table(variant)
            n = warm_count(fn, quick)
            before = bench.sink.received
            out = bench.run(fn, variant, bench.events(fn, n, f"{variant}-warm"))
            bench.check(fn, out["responses"])
            spans = bench.sink.received - before
            lat = out["latencies_ms"][1:] or out["latencies_ms"]
            inits = []
            for _ in range(processes):
                cold = bench.run(fn, variant, bench.events(fn, 1, f"{variant}-cold"))
                bench.check(fn, cold["responses"])
                inits.append(cold["init_ms"])
            r = results[(fn, variant)] = {
                "init_p50": percentile(inits, 50), "init_p99": percentile(inits, 99),
                "warm_p50": percentile(lat, 50), "warm_p99": percentile(lat, 99),
                "rss_init_kb": out["rss"].get("init", (0, 0))[0], "peak_kb": out["end_rss"][1],
                "invocations": n, "spans": spans,
            }
            print(f"  {fn:<17} {variant:<14} cold init p50 {r['init_p50']:6.1f} ms; warm p50 {r['warm_p50']:7.2f} ms; "
                  f"peak RSS {r['peak_kb'] / 1024:5.1f} MiB; {spans} span documents", flush=True)
    return results


def section(results, rev, processes):
    lines = ["## Tracing overhead", "",
             f"Written by `bench/tracing_overhead.py` (part of `make bench`) on {time.strftime('%Y-%m-%d')}. Each "
             "function's current release build with span export on (`AWS_XRAY_DAEMON_ADDRESS` pointing at a UDP "
             "socket that stands where Lambda's X-Ray daemon is, and every invocation sampled: the worst case; "
             "X-Ray's default rule samples one request a second and 5% of the rest), the same build with export "
             f"off (`OTEL_SDK_DISABLED=true`), and the baseline `{rev}` (the last commit before spans were "
             "exported), all in one run, under the same local Runtime API and emulator as above. The current build "
             "also runs tokio on one thread where the baseline started a worker per core, which saves about a "
             "megabyte; \"export off\" is that build without export, so the two rows of the current build "
             "show what export itself costs. Cold init: "
             f"{processes} fresh processes each; warm: one process serving the invocations listed; peak RSS "
             "is that process's VmHWM.", "",
             "| function | build | cold init p50 / p99 ms | warm p50 / p99 ms | peak RSS MiB | span documents | "
             "cold p50 vs baseline | peak RSS vs baseline |",
             "|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for fn in FUNCTIONS:
        base = results[(fn, "rust-baseline")]
        for variant in VARIANTS:
            r = results[(fn, variant)]
            cold_ratio = r["init_p50"] / base["init_p50"]
            rss_ratio = r["peak_kb"] / base["peak_kb"]
            lines.append(f"| {fn} | {LABEL[variant]} | {r['init_p50']:.1f} / {r['init_p99']:.1f} | "
                         f"{r['warm_p50']:.2f} / {r['warm_p99']:.2f} | {r['peak_kb'] / 1024:.1f} | "
                         f"{r['spans']} in {r['invocations']} invocations | {cold_ratio:.2f} | {rss_ratio:.2f} |")
            if variant == "rust":
                verdicts.append((fn, cold_ratio, rss_ratio))
    lines += ["", "| goal | measured | |", "|---|---|---|"]
    for fn, cold_ratio, rss_ratio in verdicts:
        ok = "met" if cold_ratio <= BARS and rss_ratio <= BARS else "**not met**"
        lines.append(f"| {fn}: cold-start p50 and peak RSS with spans exported within {BARS - 1:.0%} of `{rev}` | "
                     f"cold p50 {cold_ratio:.2f}x, peak RSS {rss_ratio:.2f}x | {ok} |")
    return "\n".join(lines) + "\n"


def write(text, heading="## Tracing overhead"):
    """Replaces the section of BENCHMARKS.md under `heading` (up to the next one) with `text`."""
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(heading) + r"\n.*?(?=\n## |\Z)", re.S)
    if pattern.search(current):
        current = pattern.sub(lambda _: text.rstrip("\n") + "\n", current)
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="the git revision to compare with")
    parser.add_argument("--processes", type=int, default=20, help="cold starts per function and build")
    parser.add_argument("--quick", action="store_true", help="fewer invocations and processes (a smoke run)")
    args = parser.parse_args()
    processes = 5 if args.quick else args.processes
    started = time.time()
    subprocess.run(["cargo", "build", "--release", "-q", *BINS], cwd=ROOT, check=True)
    baseline = build_baseline(args.baseline)
    print(f"tracing: measuring (at {time.time() - started:.0f} s)", flush=True)
    bench = lambda_bench.Bench(args.quick, baseline_dir=baseline)
    try:
        bench.seed_user()
        bench.seed_stock()
        results = measure(bench, processes, args.quick)
    finally:
        bench.close()
    write(section(results, args.baseline, processes))
    print(f"tracing: BENCHMARKS.md's Tracing overhead section written in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
