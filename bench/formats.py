#!/usr/bin/env python3
"""The modern formats (`FORMATS`): what AVIF and WebP cost in time and save in bytes, against the
seeds' Pillow JPEG and sharp writing the same three formats; and what an upload costs on Lambda with
and without them. Writes BENCHMARKS.md's "Modern formats" section.

    python bench/formats.py [--quick]

Files: the image benchmark's six (testdata/good) and one in three of the corpus's wallpaper photos
and PNGs (bench/corpus), seed B (four variants: 150, 300, 600, 1200), each engine in its own process pinned to
one core, the median of 3 timed iterations after a warm-up one (1 with --quick, on fewer files).

Engines: `rust-jpeg` (FORMATS=jpeg), `rust` (the default FORMATS=avif,webp,jpeg: AVIF and WebP
written only where smaller than the JPEG), `pillow` (the seeds' JPEG pipeline), `sharp-jpeg` (sharp's
JPEG alone) and `sharp` (sharp writing JPEG, WebP and AVIF of every variant, as the AWS solution
serves them, at SHARP_WEBP_QUALITY / SHARP_AVIF_QUALITY and its default effort 4).

Bytes to a browser: per variant, what it is sent: the AVIF if one was written, else the WebP, else
the JPEG (an AVIF browser), the WebP else the JPEG (a WebP-only one), the JPEG (any other). SSIM: the
luma SSIM of each file sent against the original resized straight to its size in floating point
(bench/run.py's reference), averaged over variants, the same measure as the other sections. AVIF and
WebP files are decoded to PNG by sharp (bench/baselines/to_png.mjs) for it.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import run as bench  # noqa: E402
import image_quality as quality  # noqa: E402
import tracing_overhead  # noqa: E402

HEADING = "## Modern formats"
OUT = ROOT / "bench" / "out" / "formats"
SEED_B = bench.SEED_B
GOOD = ROOT / "functions" / "image-compressor" / "testdata" / "good"
CORPUS = ROOT / "bench" / "corpus"
ENGINES = ("rust-jpeg", "rust", "pillow", "sharp-jpeg", "sharp")
SHARP_WEBP_QUALITY = os.environ.get("SHARP_WEBP_QUALITY", "90")
SHARP_AVIF_QUALITY = os.environ.get("SHARP_AVIF_QUALITY", "64")
# AWS Lambda arm64, us-east-1, first tier (the figures the cost model of BENCHMARKS.md states).
PRICE_GB_SECOND = 0.0000133334
PRICE_REQUEST = 0.20 / 1e6
# S3 Standard PUT requests, us-east-1: $0.005 per 1,000 (one per object written).
PRICE_PUT = 0.005 / 1000
# Lambda gives a function one vCPU at 1769 MB and a share in proportion below it.
FULL_CPU_MB = 1769
# What the S3 requests of one upload added to the image-compressor's warm latency against the
# emulator (BENCHMARKS.md, "Warm latency": 56 ms per invocation, 32 ms of it the pipeline).
S3_MS = 25


def files(quick):
    picked = [GOOD / name for name in bench.IMAGES]
    photos = sorted(p for p in CORPUS.iterdir()
                    if p.name.split("-")[0] in ("plasma", "lomiri", "mate", "flightgear"))
    # One wallpaper in three: with sharp's AVIF (effort 4) the whole set takes over half an hour.
    picked += photos[::3]
    return picked[::4] if quick else picked


def template_memory_mb():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    return int(template["Resources"]["ImageCompressorFunction"]["Properties"]["MemorySize"])


def run_engine(engine, path, iterations):
    out_dir = OUT / engine / path.name
    env = dict(os.environ, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1", UV_THREADPOOL_SIZE="1")
    if engine.startswith("rust"):
        cmd = [ROOT / "target" / "release" / "examples" / "bench_pipeline", path, SEED_B, iterations, out_dir]
        env["FORMATS"] = "jpeg" if engine == "rust-jpeg" else "avif,webp,jpeg"
    elif engine.startswith("sharp"):
        cmd = ["node", ROOT / "bench" / "baselines" / "sharp.mjs", path, SEED_B, iterations, out_dir]
        if engine == "sharp":
            env.update(WEBP_QUALITY=SHARP_WEBP_QUALITY, AVIF_QUALITY=SHARP_AVIF_QUALITY)
    else:
        cmd = [sys.executable, ROOT / "bench" / "baselines" / "images.py", engine, path, SEED_B, iterations, out_dir]
    r = quality.run_json([str(c) for c in cmd], env=env, pin=True)
    r["out_dir"] = str(out_dir)
    return r


def decoded(path):
    if path.suffix == ".jpg":
        return Image.open(path)
    png = path.with_suffix(path.suffix + ".png")
    subprocess.run(["node", ROOT / "bench" / "baselines" / "to_png.mjs", path, png], check=True)
    return Image.open(png)


def score(path, variant, file):
    with decoded(file) as img:
        return quality.ssim(quality.luma(img), quality.reference(path, (variant["width"], variant["height"])))


def sent(r, path):
    """Per browser: the bytes sent and their mean SSIM."""
    out = Path(r["out_dir"])
    result = {}
    for browser, order in (("avif", ("avif", "webp", "jpg")), ("webp", ("webp", "jpg")), ("jpeg", ("jpg",))):
        total, scores = 0, []
        for v in r["variants"]:
            for ext in order:
                file = out / f"{v['name']}.{ext}"
                if file.exists():
                    total += file.stat().st_size
                    scores.append(score(path, v, file))
                    break
        result[browser] = {"bytes": total, "ssim": sum(scores) / len(scores)}
    return result


def measure(quick):
    iterations = "1" if quick else "3"
    rows = []
    for i, path in enumerate(files(quick)):
        row = {"file": path.name, "megapixels": None}
        for engine in ENGINES:
            r = run_engine(engine, path, iterations)
            row["megapixels"] = r["megapixels"]
            row[engine] = {"seconds": r["seconds"], "sent": sent(r, path),
                           "kept": {ext: sum(1 for v in r["variants"] if (Path(r["out_dir"]) / f"{v['name']}.{ext}").exists())
                                    for ext in ("avif", "webp")}}
        rows.append(row)
        print(f"  [{i + 1}] {path.name:<50} " + "  ".join(f"{e} {row[e]['seconds'] * 1000:7.1f} ms" for e in ENGINES),
              flush=True)
    return rows


def opaque(name):
    """The seeds' Pillow pipeline converts RGBA to RGB without flattening (transparent areas take
    their hidden colour), so its SSIM there is not comparable: the goals are over opaque files."""
    path = next(p for p in files(False) if p.name == name)
    with Image.open(path) as img:
        return not (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info)


def report(rows, quick, elapsed, memory_mb):
    n = len(rows)
    solid = [r for r in rows if opaque(r["file"])]
    total = {e: sum(r[e]["seconds"] for r in rows) for e in ENGINES}
    pillow_bytes = sum(r["pillow"]["sent"]["jpeg"]["bytes"] for r in rows)

    def browser(e, b):
        return (sum(r[e]["sent"][b]["bytes"] for r in rows), sum(r[e]["sent"][b]["ssim"] for r in rows) / n)

    variants = 4 * n
    kept = {ext: sum(r["rust"]["kept"][ext] for r in rows) for ext in ("avif", "webp")}
    lines = [HEADING, "",
             f"Written by `python bench/formats.py{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d')}, "
             f"in {elapsed:.0f} s: {n} files (the image benchmark's six and one in three of the corpus's wallpaper "
             f"photos and PNGs: sharp's AVIF at its default effort takes seconds a file), seed B (150, 300, 600, 1200), "
             f"one core per engine, the median of {'1' if quick else '3'} timed iterations. `rust` is the default "
             "`FORMATS=avif,webp,jpeg` (AVIF and WebP written only where smaller than the JPEG), `rust-jpeg` is "
             f"`FORMATS=jpeg`; `sharp` writes JPEG, WebP (quality {SHARP_WEBP_QUALITY}) and AVIF (quality "
             f"{SHARP_AVIF_QUALITY}, effort 4, its default) of every variant. Bytes sent: per variant the AVIF, "
             "else the WebP, else the JPEG for a browser that reads AVIF (every current one), and so on; SSIM "
             "as in the other sections (luma, against a floating-point Lanczos resize of the original; the "
             "Pillow pipeline's is low on the PNG with alpha, which it does not flatten, hence the goal over "
             "opaque files).", "",
             f"AVIF kept (smaller than the JPEG) for {kept['avif']} of {variants} variants, WebP for "
             f"{kept['webp']}.", "",
             "| engine | total s | vs sharp (same formats) | AVIF browser: bytes | vs Pillow JPEG | SSIM | "
             "WebP-only browser: bytes | SSIM | JPEG: bytes | SSIM |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    same = {"rust": "sharp", "rust-jpeg": "sharp-jpeg", "pillow": "sharp-jpeg", "sharp": "sharp",
            "sharp-jpeg": "sharp-jpeg"}
    for e in ENGINES:
        a, w, j = browser(e, "avif"), browser(e, "webp"), browser(e, "jpeg")
        lines.append(f"| {e} | {total[e]:.2f} | {total[same[e]] / total[e]:.2f}x | {a[0]} | "
                     f"{a[0] / pillow_bytes:.3f} | {a[1]:.4f} | {w[0]} | {w[1]:.4f} | {j[0]} | {j[1]:.4f} |")
    def opaque_total(e, b):
        return (sum(r[e]["sent"][b]["bytes"] for r in solid), sum(r[e]["sent"][b]["ssim"] for r in solid) / len(solid))

    a_rust, p_jpeg = opaque_total("rust", "avif"), opaque_total("pillow", "jpeg")
    speed = total["sharp"] / total["rust"]
    lines += ["", "| goal | measured | |", "|---|---|---|",
              f"| total time ≥ 1.5x sharp's for the same outputs (JPEG, WebP, AVIF) | {speed:.2f}x | "
              f"{'met' if speed >= 1.5 else '**not met**'} |",
              f"| bytes to an AVIF browser ≤ 0.6x the seeds' Pillow JPEG at an SSIM no lower ({len(solid)} opaque "
              f"files) | {a_rust[0] / p_jpeg[0]:.3f}x, SSIM {a_rust[1]:.4f} vs {p_jpeg[1]:.4f} | "
              f"{'met' if a_rust[0] <= 0.6 * p_jpeg[0] and a_rust[1] >= p_jpeg[1] else '**not met**'} |"]
    # Cost per million uploads.
    share = min(1.0, memory_mb / FULL_CPU_MB)
    lines += ["", f"### Cost per million uploads", "",
              f"At the template's `MemorySize` ({memory_mb} MB, arm64): the measured one-core time per upload "
              f"(mean over these files) divided by the CPU share Lambda gives {memory_mb} MB ({share:.2f} of a "
              f"vCPU: one at {FULL_CPU_MB} MB), plus {S3_MS} ms for the S3 requests (the GET, HEADs and PUTs: "
              "what they added against the emulator in \"Warm latency\" above; on AWS it depends on the "
              "object's size), rounded up to the millisecond; "
              f"${PRICE_GB_SECOND:.10f} per GB-second and $0.20 per million requests (arm64, us-east-1, first tier, "
              "as in the cost model above; check https://aws.amazon.com/lambda/pricing/), and S3 PUTs at "
              "$0.005 per 1,000 (one per variant file and one for the manifest). The measured times are this "
              "machine's x86 core; Graviton2 differs, so read the ratio between the rows more than the "
              "dollars.", "",
              "| setting | one-core ms per upload | Lambda ms (est.) | Lambda $ per million | objects written per upload | S3 PUT $ per million | total $ per million |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for e, label in (("rust-jpeg", "`FORMATS=jpeg`"), ("rust", "`FORMATS=avif,webp,jpeg` (default)")):
        ms = total[e] / n * 1000
        lam = int(-(-(ms / share + S3_MS) // 1))
        compute = (lam / 1000 * memory_mb / 1024 * PRICE_GB_SECOND + PRICE_REQUEST) * 1e6
        objects = 4 + 1 + (0 if e == "rust-jpeg" else (kept["avif"] + kept["webp"]) / n)
        puts = objects * PRICE_PUT * 1e6
        lines.append(f"| {label} | {ms:.1f} | {lam} | {compute:.2f} | {objects:.2f} | {puts:.2f} | {compute + puts:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one file in four, one iteration")
    parser.add_argument("--report-only", action="store_true", help="from the last run's results.json")
    args = parser.parse_args()
    started = time.time()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        saved = json.loads((OUT / "results.json").read_text())
        rows, elapsed = saved["rows"], saved["elapsed"]
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "image-compressor", "--example",
                        "bench_pipeline"], check=True, cwd=ROOT)
        rows = measure(args.quick)
        elapsed = time.time() - started
        (OUT / "results.json").write_text(json.dumps({"rows": rows, "elapsed": elapsed}, indent=1))
    text = report(rows, args.quick, elapsed, template_memory_mb())
    tracing_overhead.write(text, HEADING)
    print(text)


if __name__ == "__main__":
    main()
