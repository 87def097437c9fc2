"""make bench: every benchmark in one run, side by side with its baseline, written to BENCHMARKS.md.

    python bench/run.py [--quick]

- image pipeline: Rust vs the seeds' Pillow pipeline vs libvips, each process pinned to one core, on
  the shipped photos: throughput (input megapixels per second, median iteration), output bytes, SSIM
  against a floating-point Lanczos reference resize, peak RSS per image;
- user-api: per-invocation handler overhead over in-process invocations with the in-memory store;
- order-processor: orders per second against the local emulator, AWS calls per order, and the
  handler's own time per batch with the in-memory ports;
- the three functions as Lambda runs them, Rust vs the seeds' Python baselines under awslambdaric, over a
  local Runtime API against the emulator (bench/lambda_bench.py): cold start, warm latency, memory,
  package size and cost;
- charts of the headline figures (bench/charts/*.png).
"""
import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import local_stack  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import lambda_bench  # noqa: E402
from image_quality import (  # noqa: E402
    run_json, luma, ssim, original, reference, pillow_reference,
)

OUT = ROOT / "bench" / "out"
PHOTOS = ROOT / "functions" / "image-compressor" / "testdata" / "good"
IMAGES = [
    "fossa-4096x2304.jpg",
    "garden-2560x1600.jpg",
    "storm-1920x1280.jpg",
    "grey-gray-2560x1600.jpg",
    "spring-rgba-1600x1200.png",
    "wood-4096x4096.webp",
]
# The function's two settings (JPEG_OPTIMIZE=size, the default, and speed), then the baselines.
ENGINES = ("rust", "rust-speed", "pillow", "vips")
SEED_A = "compressed:800"
SEED_B = "thumbnail:150,small:300,medium:600,large:1200"
PY = sys.executable
def images(quick):
    iterations = "1" if quick else "5"
    names = IMAGES[:2] if quick else IMAGES
    rust = ROOT / "target" / "release" / "examples" / "bench_pipeline"
    env = dict(os.environ, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1")
    rows = []
    for name in names:
        path = PHOTOS / name
        for config, label in ((SEED_A, "A"), (SEED_B, "B")):
            for engine in ENGINES:
                out_dir = OUT / engine / name / label
                if engine.startswith("rust"):
                    cmd = [rust, path, config, iterations, out_dir]
                    mode = "speed" if engine == "rust-speed" else "size"
                    # JPEG only, as the baselines write (the modern formats: bench/formats.py).
                    r = run_json([str(c) for c in cmd], env=dict(env, JPEG_OPTIMIZE=mode, FORMATS="jpeg"), pin=True)
                else:
                    cmd = [PY, ROOT / "bench" / "baselines" / "images.py", engine, path, config, iterations, out_dir]
                    r = run_json([str(c) for c in cmd], env=env, pin=True)
                r["engine"] = engine
                scores, scores_pillow = [], []
                for v in r["variants"]:
                    with Image.open(out_dir / f"{v['name']}.jpg") as produced:
                        # Cached: every engine's variant of this image has the same sizes.
                        got, size = luma(produced), tuple(produced.size)
                        scores.append(ssim(got, reference(path, size)))
                        scores_pillow.append(ssim(got, pillow_reference(path, size)))
                r.update(image=name, seed=label, ssim=sum(scores) / len(scores),
                         ssim_pillow_ref=sum(scores_pillow) / len(scores_pillow))
                rows.append(r)
                print(f"  {name:<26} seed {label} {engine:<10} {r['mp_per_s']:8.1f} MP/s {r['output_bytes']:>8} B "
                      f"SSIM {r['ssim']:.4f} RSS {r['peak_rss_kb'] / 1024:6.1f} MiB", flush=True)
    return rows


def handler(quick):
    exe = ROOT / "target" / "release" / "examples" / "bench_handler"
    return run_json([str(exe), "2000" if quick else "10000"])


def orders_in_memory(quick):
    exe = ROOT / "target" / "release" / "examples" / "bench_orders"
    return run_json([str(exe), "--in-memory", "200" if quick else "2000"])


def orders(quick):
    proc = subprocess.Popen([PY, str(ROOT / "tools" / "moto_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"
        stack = local_stack.deploy(endpoint, "bench")
        env_vars, _ = local_stack.function_env(stack)
        env = dict(os.environ, **env_vars)
        exe = ROOT / "target" / "release" / "examples" / "bench_orders"
        return run_json([str(exe), "5" if quick else "30"], env=env)
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)


def ratio(a, b):
    return a / b if b else float("nan")


def lambda_report(lam):
    warm, cold, pkg, costs = lam["warm"], lam["cold"], lam["packages"], lambda_bench.cost(lam)
    fns = lambda_bench.FUNCTIONS
    lines = ["## The functions under a Lambda Runtime API: Rust vs the seeds' Python", "",
             "Each function runs as Lambda runs it: a process talking to a Runtime API (`bench/runtime_api.py`, a "
             "minimal local one that serves events and records timestamps) and to moto with "
             "`template.yaml` deployed into it (`sam deploy`). Rust: the release binaries built for this machine (the arm64 build is the same code "
             "and profile), with span export on as deployed (`Tracing: Active`: spans go to a UDP socket standing where "
             "Lambda's X-Ray daemon is, and every invocation is sampled; the section \"Tracing overhead\" compares "
             "it with export off and with the last build without it). Python: the seeds' handlers in `bench/baselines/lambda_*.py` (boto3, Pillow) under the "
             "AWS runtime interface client `awslambdaric`, clients created at import as the seeds do. Same events, "
             "same emulator, same machine, one run.", "",
             "### Cold start", "",
             f"Fresh processes ({cold[(fns[0], 'rust')]['processes']} per function and language), each serving one "
             "event. Init: process start → first `GET /runtime/invocation/next`. First response: process start → "
             "the first response posted (init + one invocation against the emulator).", "",
             "| function | Rust init p50 ms | p99 | Python init p50 ms | p99 | init ratio (p50) | Rust first response p50 ms | Python | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for fn in fns:
        r, p = cold[(fn, "rust")], cold[(fn, "python")]
        lines.append(f"| {fn} | {r['init_p50']:.1f} | {r['init_p99']:.1f} | {p['init_p50']:.1f} | {p['init_p99']:.1f} | "
                     f"**{ratio(p['init_p50'], r['init_p50']):.0f}x** | {r['first_p50']:.1f} | {p['first_p50']:.1f} | "
                     f"{ratio(p['first_p50'], r['first_p50']):.1f}x |")
    lines += ["", "### Warm latency and memory", "",
              "Per invocation: event handed out → response received, through the Runtime API, against moto (the "
              "emulator's own time is in both columns; in AWS the service calls are faster and the difference is "
              "mostly ours). RSS: after init, after the run, and the peak (VmHWM). user-api serves a `GET /users/{id}`; "
              "order-processor a one-order SQS batch; image-compressor one 1920x1280 JPEG (2.5 MP) into four "
              "variants.", "",
              "| function | invocations (Rust / Python) | Rust p50 ms | Rust p99 ms | Python p50 ms | Python p99 ms | p50 ratio | Rust RSS init / end / peak MiB | Python RSS init / end / peak MiB | peak ratio |",
              "|---|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for fn in fns:
        r, p = warm[(fn, "rust")], warm[(fn, "python")]
        mib = lambda w: f"{w['rss_init_kb'] / 1024:.1f} / {w['rss_end_kb'] / 1024:.1f} / {w['peak_kb'] / 1024:.1f}"
        count = str(r["invocations"]) if r["invocations"] == p["invocations"] else f"{r['invocations']} / {p['invocations']}"
        lines.append(f"| {fn} | {count} | {r['p50']:.2f} | {r['p99']:.2f} | {p['p50']:.2f} | {p['p99']:.2f} | "
                     f"**{ratio(p['p50'], r['p50']):.1f}x** | {mib(r)} | {mib(p)} | {ratio(r['peak_kb'], p['peak_kb']):.2f} |")
    lines += ["", "The order-processor's p99 is the emulator's: moto copies the tables on every DynamoDB transaction, and every few dozen invocations one of its calls takes 130–230 ms on the server (the Rust SDK's debug log of such an invocation shows one attempt, no retry and no new connection, between sending the request and the response); the Rust handler makes four calls per order (the transaction, the payment message, the notification and the record that both side effects are done) where the seed's makes three."]
    lines += ["", "RSS through the user-api run (a leak would grow between the samples; a new X-Ray trace id "
              "with every invocation, as Lambda sends):", "",
              "| language | invocations | after 1 | after 1,000 | after the last | growth 1 → last | growth 1,000 → last |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for lang in ("rust", "python"):
        w = warm[("user-api", lang)]
        samples = w["rss_samples_kb"]
        keys = sorted(samples)
        growth, warm_growth = leak(samples)
        cells = [f"{samples[k] / 1024:.2f} MiB" if k in samples else "-" for k in (1, 1000)]
        last = f"{samples[keys[-1]] / 1024:.2f} MiB" if keys else "-"
        lines.append(f"| {lang} | {w['invocations']} | {cells[0]} | {cells[1]} | {last} | {growth:+.2f} MiB | "
                     f"{warm_growth:+.2f} MiB |")
    lines += ["", "Lambda sends a new X-Ray trace id with every invocation and `lambda_runtime` (1.5) stores it with "
              "`setenv(\"_X_AMZN_TRACE_ID\", ...)` each time. glibc's `setenv` never frees a value it was given, so "
              "glibc's alone keeps about 110 bytes per invocation (+1.0 MiB from invocation 1,000 to 10,000 in the "
              "report of 2026-11-23, while a control run with one fixed trace id stayed flat). "
              "The process has its own `setenv` for that one variable (a fixed buffer "
              "installed with `putenv`; its test fails without it). What grows before invocation 1,000 is the "
              "allocator and the connection pool warming up, not a leak."]
    lines += ["", "### Package size", "",
              "Zipped (deflate, level 9). Rust: the arm64 `bootstrap` from `make build-arm64`. Python: the handler "
              "with its dependencies installed for `manylinux2014_aarch64` / CPython 3.12, with boto3 bundled (as "
              "pinned) and without it (the runtime provides one).", "",
              "| function | Rust arm64 `bootstrap` | Rust arm64 zip | Python zip | Python zip without boto3 |",
              "|---|---:|---:|---:|---:|"]
    for fn in fns:
        e = pkg[fn]
        if "rust_zip" in e:
            binary, rust = f"{e['rust_binary'] / 1e6:.2f} MB", f"{e['rust_zip'] / 1e6:.2f} MB"
        else:
            binary = rust = "not built (`make build-arm64`)"
        lines.append(f"| {fn} | {binary} | {rust} | {e['python_zip'] / 1e6:.2f} MB | {e['python_zip_without_boto3'] / 1e6:.3f} MB |")
    lines += ["", "### Cost model", "",
              "GB-seconds and price per million warm invocations at the template's memory size for both languages, "
              "from the measured mean duration rounded up to the millisecond per invocation (Lambda's billing "
              "granularity), plus the request charge. Cold starts add their init time on the rare invocations that "
              f"have one. {lambda_bench.PRICE_NOTE}.", "",
              "| function | memory MB | Rust GB-s / M | Python GB-s / M | Rust $ / M | Python $ / M | Python ÷ Rust |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for fn in fns:
        r, p = costs[(fn, "rust")], costs[(fn, "python")]
        lines.append(f"| {fn} | {r['memory_mb']} | {r['gb_s_per_million']:.0f} | {p['gb_s_per_million']:.0f} | "
                     f"{r['dollars_per_million']:.2f} | {p['dollars_per_million']:.2f} | "
                     f"{ratio(p['dollars_per_million'], r['dollars_per_million']):.2f}x |")
    lines += ["", "Against the emulator the service calls dominate both languages' durations; with real AWS latencies "
              "the compute share, where Rust's advantage lies, is what these ratios compare.", "",
              "### Charts", "",
              "![cold start](bench/charts/cold-start.png) ![warm latency](bench/charts/warm-latency.png)", "",
              "![peak memory](bench/charts/memory.png) ![package size](bench/charts/package-size.png)", ""]
    return lines


def leak(samples):
    """(growth first -> last, growth from invocation 1,000 -> last) in MiB."""
    keys = sorted(samples)
    if not keys:
        return float("nan"), float("nan")
    warm = [k for k in keys if k >= 1000] or keys
    return (samples[keys[-1]] - samples[keys[0]]) / 1024, (samples[keys[-1]] - samples[warm[0]]) / 1024


def image_goals(rows):
    ok = lambda c: "met" if c else "**not met**"
    out = []
    for engine, label in (("rust", "`JPEG_OPTIMIZE=size` (default)"), ("rust-speed", "`JPEG_OPTIMIZE=speed`")):
        for seed in ("A", "B"):
            r, p, v = (total(rows, e, seed) for e in (engine, "pillow", "vips"))
            vs_p, vs_v = r["mp_per_s"] / p["mp_per_s"], r["mp_per_s"] / v["mp_per_s"]
            out.append(f"| images, seed {seed}, {label}: ≥ 2x Pillow's throughput and ahead of libvips | "
                       f"{vs_p:.2f}x Pillow, {vs_v:.2f}x libvips | {ok(vs_p >= 2 and vs_v > 1)} |")
        for seed in ("A", "B"):
            r, p = total(rows, engine, seed), total(rows, "pillow", seed)
            smaller = r["bytes_opaque"] < p["bytes_opaque"]
            kept = round(r["ssim_opaque"], 4) >= round(p["ssim_opaque"], 4)
            out.append(f"| images, seed {seed}, {label}: fewer bytes than Pillow at an SSIM no lower (opaque images) | "
                       f"{r['bytes_opaque'] / p['bytes_opaque']:.3f} of Pillow's bytes, SSIM {r['ssim_opaque']:.4f} vs "
                       f"{p['ssim_opaque']:.4f} | {ok(smaller and kept)} |")
        big = [x for x in rows if x["engine"] == engine and x["image"] == LARGEST_JPEG]
        if big:
            decoded = max(x["megapixels"] for x in big) * 3 * 1e6 / 2 ** 20
            peak = max(x["peak_rss_kb"] for x in big) / 1024
            out.append(f"| images, {label}: peak RSS for the {LARGEST_JPEG} (either seed) well below its decoded size "
                       f"({decoded:.0f} MiB) | {peak:.0f} MiB, {peak / decoded:.2f} of it | {ok(peak < 0.75 * decoded)} |")
    return out


def goals(lam, api, rows):
    warm, cold = lam["warm"], lam["cold"]
    fns = lambda_bench.FUNCTIONS
    worst_init = max(cold[(f, "rust")]["init_p50"] for f in fns)
    worst_init_p99 = max(cold[(f, "rust")]["init_p99"] for f in fns)
    init_ratio = min(ratio(cold[(f, "python")]["init_p50"], cold[(f, "rust")]["init_p50"]) for f in fns)
    rss_ratio = max(ratio(warm[(f, "rust")]["peak_kb"], warm[(f, "python")]["peak_kb"]) for f in fns)
    samples = warm[("user-api", "rust")]["rss_samples_kb"]
    keys = sorted(samples)
    growth, warm_growth = leak(samples)
    n = warm[("user-api", "rust")]["invocations"]
    per_invocation = warm_growth * 2 ** 20 / max(1, n - 1000)
    ok = lambda c: "met" if c else "**not met**"
    return ["## Goals", "",
            "| goal | measured | |", "|---|---|---|",
            f"| cold-start init ≥ 10x faster than the Python baseline | {init_ratio:.0f}x at the least (p50, per function) | {ok(init_ratio >= 10)} |",
            f"| cold-start init < 50 ms on this machine | p50 ≤ {worst_init:.1f} ms, p99 ≤ {worst_init_p99:.1f} ms | {ok(worst_init < 50)} |",
            f"| API handler overhead p99 < 1 ms (in-memory store) | {api['p99_us']:.1f} µs | {ok(api['p99_us'] < 1000)} |",
            f"| peak RSS ≤ 1/3 of Python's | {rss_ratio:.2f} of Python's at the most | {ok(rss_ratio <= 1 / 3)} |",
            f"| no RSS growth over {n} invocations (user-api, a new trace id each) | {growth:+.2f} MiB from invocation "
            f"{keys[0] if keys else '-'} to {keys[-1] if keys else '-'}; {warm_growth:+.2f} MiB ({per_invocation:.1f} "
            f"bytes per invocation) from 1,000 on | {ok(abs(growth) < 0.5 and abs(warm_growth) < 0.25)} |",
            ] + image_goals(rows) + [""]


def charts(lam, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = ROOT / "bench" / "charts"
    out.mkdir(parents=True, exist_ok=True)
    fns = list(lambda_bench.FUNCTIONS)
    x = np.arange(len(fns))

    def pair(name, title, ylabel, rust, python, log=False):
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        ax.bar(x - 0.2, rust, 0.4, label="Rust", color="#c2410c")
        ax.bar(x + 0.2, python, 0.4, label="Python baseline", color="#2563eb")
        ax.set_xticks(x, fns)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        for i, (a, b) in enumerate(zip(rust, python)):
            ax.annotate(f"{a:.3g}", (i - 0.2, a), ha="center", va="bottom", fontsize=8)
            ax.annotate(f"{b:.3g}", (i + 0.2, b), ha="center", va="bottom", fontsize=8)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)

    cold, warm, pkg = lam["cold"], lam["warm"], lam["packages"]
    pair("cold-start.png", "Cold start: init p50 (ms, log scale)", "ms",
         [cold[(f, "rust")]["init_p50"] for f in fns], [cold[(f, "python")]["init_p50"] for f in fns], log=True)
    pair("warm-latency.png", "Warm latency p50 against the emulator (ms, log scale)", "ms",
         [warm[(f, "rust")]["p50"] for f in fns], [warm[(f, "python")]["p50"] for f in fns], log=True)
    pair("memory.png", "Peak RSS (MiB)", "MiB",
         [warm[(f, "rust")]["peak_kb"] / 1024 for f in fns], [warm[(f, "python")]["peak_kb"] / 1024 for f in fns])
    pair("package-size.png", "Zipped package (MB; Python with boto3 bundled)", "MB",
         [pkg[f].get("rust_zip", 0) / 1e6 for f in fns], [pkg[f]["python_zip"] / 1e6 for f in fns])


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    import PIL
    import pyvips
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, {platform.system()} {platform.release()}; {rustc}; "
            f"Python {platform.python_version()}, Pillow {PIL.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}")


OPAQUE = [n for n in IMAGES if not n.endswith(".png")]
LARGEST_JPEG = "fossa-4096x2304.jpg"


def total(rows, engine, seed):
    picked = [r for r in rows if r["engine"] == engine and r["seed"] == seed]
    opaque = [r["ssim"] for r in picked if r["image"] in OPAQUE]
    opaque_pillow_ref = [r["ssim_pillow_ref"] for r in picked if r["image"] in OPAQUE]
    mp = sum(r["megapixels"] for r in picked)
    seconds = sum(r["seconds"] for r in picked)
    return {
        "mp_per_s": mp / seconds,
        "bytes": sum(r["output_bytes"] for r in picked),
        "bytes_opaque": sum(r["output_bytes"] for r in picked if r["image"] in OPAQUE),
        "ssim": sum(r["ssim"] for r in picked) / len(picked),
        "ssim_opaque": sum(opaque) / len(opaque) if opaque else float("nan"),
        "ssim_opaque_pillow_ref": sum(opaque_pillow_ref) / len(opaque_pillow_ref) if opaque else float("nan"),
    }


def write_report(quick, rows, api, order, lam, elapsed):
    lines = ["# Benchmarks", "",
             f"Written by `make bench{' BENCH_ARGS=--quick' if quick else ''}` (`python bench/run.py{' --quick' if quick else ''}`) on "
             f"{time.strftime('%Y-%m-%d')}, in {elapsed:.0f} s. Every figure is measured in the same run as its baseline.",
             "", f"Machine: {machine()}.", ""] + goals(lam, api, rows) + [
             "## Image pipeline (single-threaded)", "",
             "Seed A: one 800-px variant. Seed B: thumbnail 150, small 300, medium 600, large 1200. `rust` is the "
             "function's default setting (`JPEG_OPTIMIZE=size`: trellis quantisation, JPEGs reduced while decoding "
             "to no less than 1.5 times the largest variant), `rust-speed` is `JPEG_OPTIMIZE=speed` (libjpeg's plain "
             "quantisation, JPEGs reduced down to the largest variant itself); in both, a lossy WebP is decoded to its "
             "YUV planes and each plane resized straight to the largest variant. Baselines: the seeds' Pillow pipeline "
             "(`thumbnail(LANCZOS)`, JPEG q85 `optimize=True`) and libvips (`thumbnail_buffer`, JPEG Q=85), both in "
             "`bench/baselines/images.py`. Every engine runs in its own process pinned to one core (libvips' WebP "
             "loader otherwise runs libwebp with a second thread), and MP/s is from the median of "
             f"{'1' if quick else '5'} timed iterations after a warm-up one.", "",
             "SSIM: mean over variants of the luma SSIM against the original (flattened onto white) resized straight "
             "to the variant's size with a Lanczos-3 filter in floating point (numpy, no JPEG, no rounding between "
             "passes). Reports before 2026-12-02 used Pillow's own 8-bit Lanczos resize as the reference, which is "
             "exactly the Pillow pipeline's image before encoding whenever it decodes at full size, so it favoured "
             "Pillow; the last column keeps that measure for comparison. The seeds' Pillow pipeline converts RGBA to "
             "RGB without flattening, so transparent areas take their hidden colour: its SSIM on the PNG with alpha "
             "is low and its bytes there are not comparable, hence the opaque-only columns.", "",
             "| seed | engine | MP/s | vs Pillow | vs libvips | output bytes | bytes vs Pillow | bytes vs Pillow, opaque | mean SSIM | SSIM, opaque images | SSIM, opaque, Pillow-resize reference |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for seed in ("A", "B"):
        base_p, base_v = total(rows, "pillow", seed), total(rows, "vips", seed)
        for engine in ENGINES:
            t = total(rows, engine, seed)
            lines.append(f"| {seed} | {engine} | {t['mp_per_s']:.1f} | {t['mp_per_s'] / base_p['mp_per_s']:.2f}x | "
                         f"{t['mp_per_s'] / base_v['mp_per_s']:.2f}x | {t['bytes']} | {t['bytes'] / base_p['bytes']:.3f} | "
                         f"{t['bytes_opaque'] / base_p['bytes_opaque']:.3f} | {t['ssim']:.4f} | {t['ssim_opaque']:.4f} | "
                         f"{t['ssim_opaque_pillow_ref']:.4f} |")
    lines += ["", "Per image, seed B (peak RSS of the whole process; Python's includes the interpreter; decoded: the "
              "full picture as 8-bit RGB):", "",
              "| image | MP | decoded MiB | Rust ms | Rust speed ms | Pillow ms | libvips ms | Rust peak RSS MiB | Rust speed MiB | Pillow MiB | libvips MiB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r["image"] for r in rows):
        by = {r["engine"]: r for r in rows if r["image"] == name and r["seed"] == "B"}
        lines.append(f"| {name} | {by['rust']['megapixels']:.1f} | {by['rust']['megapixels'] * 3e6 / 2 ** 20:.0f} | "
                     f"{by['rust']['seconds'] * 1000:.0f} | {by['rust-speed']['seconds'] * 1000:.0f} | "
                     f"{by['pillow']['seconds'] * 1000:.0f} | {by['vips']['seconds'] * 1000:.0f} | "
                     f"{by['rust']['peak_rss_kb'] / 1024:.0f} | {by['rust-speed']['peak_rss_kb'] / 1024:.0f} | "
                     f"{by['pillow']['peak_rss_kb'] / 1024:.0f} | {by['vips']['peak_rss_kb'] / 1024:.0f} |")
    lines += ["", "## user-api handler overhead (in-memory store, no network)", "",
              f"{api['invocations']} in-process invocations of `handle` (event already deserialised): "
              f"p50 {api['p50_us']:.1f} µs, p99 {api['p99_us']:.1f} µs (goal p99 < 200 µs).", "",
              "| route | p50 µs | p99 µs | store calls per request |", "|---|---:|---:|---:|"]
    for r in api["routes"]:
        lines.append(f"| {r['route']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['store_calls']:.0f} |")
    lines += ["", "Store calls map one to one to DynamoDB requests: get 1 `GetItem`, list 1 `Query`, create 1 "
              "`TransactWriteItems`, patch 2 (a `GetItem`, then one conditional write); delete is 2 the same way.", "",
              "## order-processor against the local emulator", "",
              f"{order['orders']:.0f} orders in batches of 10 through `handle_batch` with the real adapters against moto: "
              f"**{order['orders_per_s']:.0f} orders/s** (batch p50 {order['batch_p50_ms']:.0f} ms). The emulator is the "
              "bottleneck here; in AWS the calls of one batch run concurrently against DynamoDB, SQS and SNS.", "",
              "| calls per order | DynamoDB | SQS | SNS |", "|---|---:|---:|---:|",
              f"| happy path | {order['dynamodb_calls_per_order']:.1f} | {order['sqs_calls_per_order']:.1f} | "
              f"{order['sns_calls_per_order']:.1f} |", "",
              "DynamoDB: 1 `TransactWriteItems` (stock for every line + the order) and 1 `UpdateItem` recording the "
              "side effects as done; SQS: 1 payment request; SNS: 1 event.", "",
              f"The handler's own time, with the in-memory ports (no network): {order['in_memory']['batches']} batches "
              f"of 10 three-line orders through `handle_batch`, p50 **{order['in_memory']['batch_p50_us']:.0f} µs**, "
              f"p99 {order['in_memory']['batch_p99_us']:.0f} µs per batch "
              f"({order['in_memory']['batch_p50_us'] / 10:.1f} µs per order at the median), so in the emulator run "
              "above nearly all the time is the emulator's.", ""]
    lines += lambda_report(lam)
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


def summary(lam):
    warm, cold, costs = lam["warm"], lam["cold"], lambda_bench.cost(lam)
    print(f"{'function':<17} {'init ms (Rust/Py)':>20} {'warm p50 ms':>16} {'warm p99 ms':>16} {'peak MiB':>14} {'$/M inv.':>12}")
    for fn in lambda_bench.FUNCTIONS:
        r, p = warm[(fn, "rust")], warm[(fn, "python")]
        cr, cp = cold[(fn, "rust")], cold[(fn, "python")]
        print(f"{fn:<17} {cr['init_p50']:>9.1f}/{cp['init_p50']:<9.1f} {r['p50']:>7.2f}/{p['p50']:<8.2f} "
              f"{r['p99']:>7.2f}/{p['p99']:<8.2f} {r['peak_kb'] / 1024:>6.1f}/{p['peak_kb'] / 1024:<7.1f} "
              f"{costs[(fn, 'rust')]['dollars_per_million']:>5.2f}/{costs[(fn, 'python')]['dollars_per_million']:<5.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer images and iterations (a smoke run)")
    quick = parser.parse_args().quick
    started = time.time()
    print(f"bench: building the release bench programs (at {time.time() - started:.0f} s)", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "image-compressor", "--example", "bench_pipeline"], check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "user-api", "--example", "bench_handler"], check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "order-processor", "--example", "bench_orders"], check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "user-api", "-p", "order-processor", "-p",
                    "image-compressor", "--bins"], check=True, cwd=ROOT)
    print(f"bench: image pipeline (at {time.time() - started:.0f} s)", flush=True)
    rows = images(quick)
    print(f"bench: user-api handler overhead (at {time.time() - started:.0f} s)", flush=True)
    api = handler(quick)
    print(f"  p50 {api['p50_us']:.1f} µs, p99 {api['p99_us']:.1f} µs", flush=True)
    print(f"bench: order-processor against the emulator (at {time.time() - started:.0f} s)", flush=True)
    order = orders(quick)
    print(f"  {order['orders_per_s']:.0f} orders/s", flush=True)
    order["in_memory"] = orders_in_memory(quick)
    mem = order["in_memory"]
    print(f"  in memory: batch of 10 p50 {mem['batch_p50_us']:.0f} µs, p99 {mem['batch_p99_us']:.0f} µs", flush=True)
    print(f"bench: the functions under a Runtime API, Rust vs Python (awslambdaric) (at {time.time() - started:.0f} s)", flush=True)
    lam = lambda_bench.measure(quick)
    charts(lam, rows)
    write_report(quick, rows, api, order, lam, time.time() - started)
    summary(lam)
    for engine in ("rust", "rust-speed"):
        for seed in ("A", "B"):
            r, p, v = (total(rows, e, seed) for e in (engine, "pillow", "vips"))
            print(f"bench: seed {seed} {engine:<9}: {r['mp_per_s'] / p['mp_per_s']:.2f}x Pillow, {r['mp_per_s'] / v['mp_per_s']:.2f}x libvips; "
                  f"opaque bytes {r['bytes_opaque'] / p['bytes_opaque']:.3f} of Pillow's; "
                  f"opaque SSIM {r['ssim_opaque']:.4f} vs {p['ssim_opaque']:.4f} (Pillow), {v['ssim_opaque']:.4f} (libvips)")
    print(f"bench: BENCHMARKS.md written in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
