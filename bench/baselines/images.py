"""BASELINE (not part of the suite): the seeds' image pipeline in Python, for `make bench`.

    python bench/baselines/images.py pillow|vips <file> <variants> <iterations> [<out-dir>]

pillow: what the seed handlers do per variant: open, thumbnail((s, s), LANCZOS), convert to RGB,
        save JPEG quality=85 optimize=True.
vips:   pyvips thumbnail_buffer(size) + JPEG Q=85 (libvips, single-threaded via VIPS_CONCURRENCY=1).
Prints one JSON line in the same shape as the Rust bench_pipeline example.
"""
import io
import json
import statistics
import os
import sys
import time


def parse(variants):
    return [(name, int(size)) for name, size in (v.split(":") for v in variants.split(","))]


def pillow(data, variants):
    from PIL import Image

    out = []
    for name, size in variants:
        img = Image.open(io.BytesIO(data))
        img.thumbnail((size, size), Image.LANCZOS)
        if img.mode != "RGB":
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85, optimize=True)
        out.append((name, img.width, img.height, buf.getvalue()))
    return out


def vips(data, variants):
    import pyvips

    out = []
    for name, size in variants:
        img = pyvips.Image.thumbnail_buffer(data, size, height=size)
        if img.hasalpha():
            img = img.flatten(background=[255, 255, 255])
        jpeg = img.write_to_buffer(".jpg", Q=85)
        out.append((name, img.width, img.height, jpeg))
    return out


def peak_rss_kb():
    # VmHWM belongs to this process image; getrusage's ru_maxrss would carry the parent's across exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main():
    engine, file, variants, iterations = sys.argv[1:5]
    out_dir = sys.argv[5] if len(sys.argv) > 5 else None
    variants = parse(variants)
    data = open(file, "rb").read()
    run = pillow if engine == "pillow" else vips
    from PIL import Image

    with Image.open(io.BytesIO(data)) as probe:
        megapixels = probe.width * probe.height / 1e6
    run(data, variants)  # warm-up (imports, library init)
    # The median iteration: one slow iteration (a busy host) does not move it.
    times = []
    for _ in range(max(1, int(iterations))):
        started = time.perf_counter()
        result = run(data, variants)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for name, _, _, jpeg in result:
            open(os.path.join(out_dir, f"{name}.jpg"), "wb").write(jpeg)
    print(json.dumps({
        "engine": engine, "file": file, "megapixels": megapixels, "seconds": seconds,
        "min_seconds": min(times), "mp_per_s": megapixels / seconds, "output_bytes": sum(len(r[3]) for r in result),
        "variants": [{"name": n_, "width": w, "height": h, "bytes": len(j)} for n_, w, h, j in result],
        "peak_rss_kb": peak_rss_kb(),
    }))


if __name__ == "__main__":
    main()
