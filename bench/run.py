"""make bench: every benchmark in one run, side by side with its baseline, written to BENCHMARKS.md.

    python bench/run.py [--quick]

- image pipeline: Rust vs the seeds' Pillow pipeline vs libvips, single-threaded, on the shipped photos:
  throughput (input megapixels per second), output bytes, SSIM against a high-quality reference
  resize, peak RSS per image;
- user-api: per-invocation handler overhead over in-process invocations with the in-memory store;
- order-processor: orders per second against the local emulator, and AWS calls per order;
- arm64 release binary sizes, where `make build-arm64` has produced them.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import local_stack  # noqa: E402

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
SEED_A = "compressed:800"
SEED_B = "thumbnail:150,small:300,medium:600,large:1200"
PY = sys.executable


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def luma(img):
    a = np.asarray(img.convert("RGB"), dtype=np.float64)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def ssim(a, b, k=7):
    """Mean SSIM of two luma images over k x k windows (Wang et al. 2004 constants)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def box(x):
        s = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)

    ma, mb = box(a), box(b)
    va, vb, cov = box(a * a) - ma ** 2, box(b * b) - mb ** 2, box(a * b) - ma * mb
    return float((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))).mean())


def reference(path, size):
    """The original, upright, resized with Lanczos straight to `size`: no JPEG, no shortcuts."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        return luma(img.convert("RGB").resize(size, Image.LANCZOS))


def images(quick):
    iterations = "1" if quick else "3"
    names = IMAGES[:2] if quick else IMAGES
    rust = ROOT / "target" / "release" / "examples" / "bench_pipeline"
    env = dict(os.environ, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1")
    rows = []
    for name in names:
        path = PHOTOS / name
        for config, label in ((SEED_A, "A"), (SEED_B, "B")):
            for engine in ("rust", "pillow", "vips"):
                out_dir = OUT / engine / name / label
                if engine == "rust":
                    cmd = [rust, path, config, iterations, out_dir]
                else:
                    cmd = [PY, ROOT / "bench" / "baselines" / "images.py", engine, path, config, iterations, out_dir]
                r = run_json([str(c) for c in cmd], env=env)
                scores = []
                for v in r["variants"]:
                    with Image.open(out_dir / f"{v['name']}.jpg") as produced:
                        scores.append(ssim(luma(produced), reference(path, produced.size)))
                r.update(image=name, seed=label, ssim=sum(scores) / len(scores))
                rows.append(r)
                print(f"  {name:<26} seed {label} {engine:<6} {r['mp_per_s']:8.1f} MP/s {r['output_bytes']:>8} B "
                      f"SSIM {r['ssim']:.4f} RSS {r['peak_rss_kb'] / 1024:6.1f} MiB", flush=True)
    return rows


def handler(quick):
    exe = ROOT / "target" / "release" / "examples" / "bench_handler"
    return run_json([str(exe), "2000" if quick else "10000"])


def orders(quick):
    proc = subprocess.Popen([PY, str(ROOT / "tools" / "moto_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"
        stack = local_stack.provision(endpoint, "bench")
        env_vars, _ = local_stack.function_env(stack, endpoint)
        env = dict(os.environ, **env_vars)
        exe = ROOT / "target" / "release" / "examples" / "bench_orders"
        return run_json([str(exe), "5" if quick else "30"], env=env)
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)


def binaries():
    sizes = {}
    for fn in ("image-compressor", "user-api", "order-processor"):
        b = ROOT / "target" / "lambda" / fn / "bootstrap"
        if b.exists():
            sizes[fn] = b.stat().st_size
    return sizes


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    import PIL
    import pyvips
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, {platform.system()} {platform.release()}; {rustc}; "
            f"Python {platform.python_version()}, Pillow {PIL.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}")


OPAQUE = [n for n in IMAGES if not n.endswith(".png")]


def total(rows, engine, seed):
    picked = [r for r in rows if r["engine"] == engine and r["seed"] == seed]
    opaque = [r["ssim"] for r in picked if r["image"] in OPAQUE]
    mp = sum(r["megapixels"] for r in picked)
    seconds = sum(r["seconds"] for r in picked)
    return {
        "mp_per_s": mp / seconds,
        "bytes": sum(r["output_bytes"] for r in picked),
        "ssim": sum(r["ssim"] for r in picked) / len(picked),
        "ssim_opaque": sum(opaque) / len(opaque) if opaque else float("nan"),
    }


def write_report(quick, rows, api, order, sizes, elapsed):
    lines = ["# Benchmarks", "",
             f"Written by `make bench{' BENCH_ARGS=--quick' if quick else ''}` (`python bench/run.py{' --quick' if quick else ''}`) on "
             f"{time.strftime('%Y-%m-%d')}, in {elapsed:.0f} s. Every figure is measured in the same run as its baseline.",
             "", f"Machine: {machine()}.", "",
             "## Image pipeline (single-threaded)", "",
             "Seed A: one 800-px variant. Seed B: thumbnail 150, small 300, medium 600, large 1200. Baselines: the "
             "seeds' Pillow pipeline (`thumbnail(LANCZOS)`, JPEG q85 `optimize=True`) and libvips "
             "(`thumbnail_buffer`, JPEG Q=85), both in `bench/baselines/images.py`. SSIM: mean over variants of the "
             "luma SSIM against the original resized straight to the same size with Lanczos (no JPEG) and flattened "
             "onto white. The seeds' Pillow pipeline converts RGBA to RGB without flattening, so transparent areas "
             "take their hidden colour: that is why its SSIM on the PNG with alpha is low, and why the opaque-only "
             "mean is shown too.", "",
             "| seed | engine | MP/s | vs Pillow | vs libvips | output bytes | bytes vs Pillow | bytes vs libvips | mean SSIM | SSIM, opaque images |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for seed in ("A", "B"):
        base_p, base_v = total(rows, "pillow", seed), total(rows, "vips", seed)
        for engine in ("rust", "pillow", "vips"):
            t = total(rows, engine, seed)
            lines.append(f"| {seed} | {engine} | {t['mp_per_s']:.1f} | {t['mp_per_s'] / base_p['mp_per_s']:.2f}x | "
                         f"{t['mp_per_s'] / base_v['mp_per_s']:.2f}x | {t['bytes']} | {t['bytes'] / base_p['bytes']:.2f} | "
                         f"{t['bytes'] / base_v['bytes']:.2f} | {t['ssim']:.4f} | {t['ssim_opaque']:.4f} |")
    lines += ["", "Per image, seed B (peak RSS of the whole process; Python's includes the interpreter):", "",
              "| image | MP | Rust ms | Pillow ms | libvips ms | Rust peak RSS MiB | Pillow MiB | libvips MiB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r["image"] for r in rows):
        by = {r["engine"]: r for r in rows if r["image"] == name and r["seed"] == "B"}
        lines.append(f"| {name} | {by['rust']['megapixels']:.1f} | {by['rust']['seconds'] * 1000:.0f} | "
                     f"{by['pillow']['seconds'] * 1000:.0f} | {by['vips']['seconds'] * 1000:.0f} | "
                     f"{by['rust']['peak_rss_kb'] / 1024:.0f} | {by['pillow']['peak_rss_kb'] / 1024:.0f} | {by['vips']['peak_rss_kb'] / 1024:.0f} |")
    lines += ["", "## user-api handler overhead (in-memory store, no network)", "",
              f"{api['invocations']} in-process invocations of `handle` (event already deserialised): "
              f"p50 {api['p50_us']:.1f} µs, p99 {api['p99_us']:.1f} µs (goal p99 < 200 µs).", "",
              "| route | p50 µs | p99 µs | store calls per request |", "|---|---:|---:|---:|"]
    for r in api["routes"]:
        lines.append(f"| {r['route']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['store_calls']:.0f} |")
    lines += ["", "Store calls map one to one to DynamoDB requests: get 1 `GetItem`, list 1 `Query`, create 1 "
              "`TransactWriteItems`, patch 2 (a `GetItem`, then one conditional write); delete is 2 the same way.", "",
              "## order-processor against the local emulator", "",
              f"{order['orders']:.0f} orders in batches of 10 through `process_batch` with the real adapters against moto: "
              f"**{order['orders_per_s']:.0f} orders/s** (batch p50 {order['batch_p50_ms']:.0f} ms). The emulator is the "
              "bottleneck here; in AWS the calls of one batch run concurrently against DynamoDB, SQS and SNS.", "",
              "| calls per order | DynamoDB | SQS | SNS |", "|---|---:|---:|---:|",
              f"| happy path | {order['dynamodb_calls_per_order']:.1f} | {order['sqs_calls_per_order']:.1f} | "
              f"{order['sns_calls_per_order']:.1f} |", "",
              "DynamoDB: 1 `TransactWriteItems` (stock for every line + the order) and 1 `UpdateItem` recording the "
              "side effects as done; SQS: 1 payment request; SNS: 1 event.", ""]
    if sizes:
        lines += ["## arm64 release binaries", "", "| function | bootstrap bytes |", "|---|---:|"]
        lines += [f"| {fn} | {size} |" for fn, size in sizes.items()]
        lines.append("")
    else:
        lines += ["## arm64 release binaries", "", "Not measured in this run: `make build-arm64` first.", ""]
    lines += ["## Not measured yet", "",
              "Cold start against a local Runtime API, warm latency against the emulator, memory growth over 10,000 "
              "invocations, Python Lambda baselines under `awslambdaric`, the cost model and charts.", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer images and iterations (a smoke run)")
    quick = parser.parse_args().quick
    started = time.time()
    print("bench: building the release bench programs", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "image-compressor", "--example", "bench_pipeline"], check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "user-api", "--example", "bench_handler"], check=True, cwd=ROOT)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "order-processor", "--example", "bench_orders"], check=True, cwd=ROOT)
    print("bench: image pipeline", flush=True)
    rows = images(quick)
    print("bench: user-api handler overhead", flush=True)
    api = handler(quick)
    print(f"  p50 {api['p50_us']:.1f} µs, p99 {api['p99_us']:.1f} µs", flush=True)
    print("bench: order-processor against the emulator", flush=True)
    order = orders(quick)
    print(f"  {order['orders_per_s']:.0f} orders/s", flush=True)
    write_report(quick, rows, api, order, binaries(), time.time() - started)
    for seed in ("A", "B"):
        r, p, v = (total(rows, e, seed) for e in ("rust", "pillow", "vips"))
        print(f"bench: seed {seed}: Rust {r['mp_per_s'] / p['mp_per_s']:.2f}x Pillow, {r['mp_per_s'] / v['mp_per_s']:.2f}x libvips; "
              f"bytes {r['bytes'] / p['bytes']:.2f} of Pillow's, {r['bytes'] / v['bytes']:.2f} of libvips'; "
              f"opaque SSIM {r['ssim_opaque']:.4f} vs {p['ssim_opaque']:.4f} (Pillow), {v['ssim_opaque']:.4f} (libvips)")
    print(f"bench: BENCHMARKS.md written in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
