"""The image pipeline on uploads as users send them: every engine per class of file and in total.

    python bench/corpus.py [--baseline REV] [--quick]
    python bench/corpus.py --photos [--baseline REV]

`--photos` is the quick one: only the corpus's JPEG photos of 1.8 to 8.7 MP (cameras and
wallpapers), seed A, the fastest of 5 iterations per file, and a ratio to Pillow per file; it
rewrites the "JPEG photos" section of BENCHMARKS.md.

The corpus is bench/corpus/ (files that image libraries' test suites and Debian packages ship, with
their sources in bench/corpus/SOURCES.md) plus the function's own test photos
(functions/image-compressor/testdata/good/, except the two files the project writes itself). Each
file goes through each engine in its own process pinned to one core, for seed A (one 800-px variant)
and seed B (150/300/600/1200), timing the median of several iterations after a warm-up one.

Engines: `rust` (the function, default settings), `rust-speed` (`JPEG_OPTIMIZE=speed`), the seeds'
Pillow pipeline and libvips (bench/baselines/images.py), and sharp (bench/baselines/sharp.mjs, the
engine of the AWS image solution, one thread); with `--baseline REV`, also `rust-before`:
the function's pipeline as it was at REV (built in a git worktree), default settings, in the same run. A class is the format, as the file's bytes
say, and whether it is over 2 MP. A class's time is the sum of its files' median times; its ratio is
Pillow's time over the engine's. SSIM is each variant's luma SSIM against the canonical reference
(EXIF orientation applied, alpha flattened onto white, 16-bit samples scaled to 8 bits, an embedded
RGB colour profile applied, resized with Lanczos-3 in floating point), averaged per file, then per class.

Rewrites the "Upload corpus" section of BENCHMARKS.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import run as bench  # noqa: E402  (the shared photo list and seeds)
import image_quality as quality  # noqa: E402
import tracing_overhead  # noqa: E402  (a git revision's release build)

CORPUS = ROOT / "bench" / "corpus"
PHOTOS = ROOT / "functions" / "image-compressor" / "testdata" / "good"
# Written by testdata/make_hostile.py to test limits, not uploads anyone sends.
NOT_UPLOADS = {"png-1bit-4000x4000-blank.png", "png-palette-2bit-3-colours-padding-bits-set.png"}
OUT = ROOT / "bench" / "out" / "corpus"
ENGINES = ["rust", "rust-speed", "pillow", "vips", "sharp"]
BINARIES = {"rust": ROOT / "target" / "release" / "examples" / "bench_pipeline"}
SEEDS = {"A": "compressed:800", "B": "thumbnail:150,small:300,medium:600,large:1200"}
LARGE_MP = 2.0
SSIM_SLACK = 0.005
HEADING = "## Upload corpus: every class of file"
PHOTOS_HEADING = "## JPEG photos: one 800-px variant, file by file"
# Camera and wallpaper photos as `--photos` picks them: JPEGs of this many megapixels.
PHOTO_MP = (1.8, 8.7)
# The fastest of this many: the machine's other work slows single iterations, never speeds them up.
PHOTO_ITERATIONS = 5


def corpus():
    files = sorted(p for p in CORPUS.iterdir() if p.suffix.lower() not in (".md", ".py"))
    files += sorted(p for p in PHOTOS.iterdir() if p.name not in NOT_UPLOADS)
    out = []
    for path in files:
        with Image.open(path) as img:
            img.load()  # a file the reference cannot read whole has no place in the corpus
            megapixels = img.width * img.height / 1e6
            progressive = bool(img.info.get("progressive") or img.info.get("progression"))
            out.append({"path": path, "format": img.format, "megapixels": megapixels,
                        "progressive": img.format == "JPEG" and progressive,
                        "frames": getattr(img, "n_frames", 1)})
    return out


def klass(f):
    return f"{f['format']} {'> 2 MP' if f['megapixels'] > LARGE_MP else '≤ 2 MP'}"


def iterations(f, quick):
    if quick:
        return 2
    return 25 if f["megapixels"] < 0.5 else 10 if f["megapixels"] <= LARGE_MP else 5


def photo(f):
    return f["format"] == "JPEG" and PHOTO_MP[0] <= f["megapixels"] <= PHOTO_MP[1]


def run_engine(engine, f, seed, quick, n=None):
    out_dir = OUT / engine / f["path"].name / seed
    n = str(n or iterations(f, quick))
    env = dict(os.environ, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1")
    if engine.startswith("rust"):
        binary = BINARIES["rust-before" if engine == "rust-before" else "rust"]
        cmd = [binary, f["path"], SEEDS[seed], n, out_dir]
        env["JPEG_OPTIMIZE"] = "speed" if engine == "rust-speed" else "size"
        # JPEG only, as the baselines write (the modern formats: bench/formats.py).
        env["FORMATS"] = "jpeg"
    elif engine == "sharp":
        cmd = ["node", ROOT / "bench" / "baselines" / "sharp.mjs", f["path"], SEEDS[seed], n, out_dir]
        env["UV_THREADPOOL_SIZE"] = "1"
    else:
        cmd = [sys.executable, ROOT / "bench" / "baselines" / "images.py", engine, f["path"], SEEDS[seed], n, out_dir]
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=ROOT,
                          preexec_fn=quality.pin_to_one_core)
    if done.returncode != 0:
        return {"refused": (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1][:200]}
    r = json.loads(done.stdout.strip().splitlines()[-1])
    # A baseline built before the fastest iteration was reported gives its median only.
    r.setdefault("min_seconds", r["seconds"])
    scores = []
    for v in r["variants"]:
        with Image.open(out_dir / f"{v['name']}.jpg") as produced:
            scores.append(quality.ssim(quality.luma(produced), quality.reference(f["path"], tuple(produced.size))))
    r["ssim"] = sum(scores) / len(scores)
    return r


def measure(quick):
    files = corpus()
    if quick:
        files = files[::8]
    results = []
    for i, f in enumerate(files):
        for seed in SEEDS:
            row = {"file": f, "seed": seed}
            for engine in ENGINES:
                row[engine] = run_engine(engine, f, seed, quick)
            results.append(row)
            line = "  ".join(
                f"{e} {row[e]['seconds'] * 1000:7.1f} ms" if "seconds" in row[e] else f"{e} refused"
                for e in ENGINES)
            print(f"  [{i + 1}/{len(files)}] {f['path'].name:<52} {seed} {line}", flush=True)
    return files, results


# Peers compared on the files they read (libvips and sharp read no BMP), not on every file.
PEERS = ("vips", "sharp")
PEER_NAMES = {"vips": "libvips", "sharp": "sharp"}


def complete(rows):
    """Rows every engine but the peers produced output for: a class is compared on the same files.
    A peer is compared on the files it read (see `table`)."""
    return [r for r in rows if all("seconds" in r[e] for e in ENGINES if e not in PEERS)]


def totals(rows, engine):
    return {
        "seconds": sum(r[engine]["seconds"] for r in rows),
        "bytes": sum(r[engine]["output_bytes"] for r in rows),
        "ssim": statistics.mean(r[engine]["ssim"] for r in rows),
        "rss_below_pillow": sum(r[engine]["peak_rss_kb"] < r["pillow"]["peak_rss_kb"] for r in rows),
    }


def times(ratio):
    return "–" if ratio != ratio else f"{ratio:.2f}x"


def score(ssim):
    return "–" if ssim != ssim else f"{ssim:.4f}"


def table(rows, group):
    """One line per (class, seed) and the totals: each engine's time ratio to Pillow's."""
    before = "rust-before" in ENGINES
    peers = [p for p in PEERS if p in ENGINES]
    lines = ["| class | seed | files | rust vs Pillow | " + ("rust before vs Pillow | " if before else "")
             + "".join(f"rust vs {PEER_NAMES[p]} | " for p in peers) + "rust-speed vs Pillow | "
             + "".join(f"{PEER_NAMES[p]} vs Pillow | " for p in peers)
             + "rust bytes vs Pillow | SSIM rust / Pillow / " + " / ".join(PEER_NAMES[p] for p in peers)
             + " | rust RSS below Pillow's |",
             "|---|---|---:|---:|" + ("---:|" if before else "") + "---:|" * (2 * len(peers) + 2) + "---|---:|"]
    summary = {}
    keys = sorted({group(r) for r in rows}) + ["all files"]
    for key in keys:
        for seed in SEEDS:
            picked = [r for r in rows if r["seed"] == seed and (key == "all files" or group(r) == key)]
            if not picked:
                continue
            t = {e: totals(picked, e) for e in ENGINES if e not in PEERS}
            ratio = {e: t["pillow"]["seconds"] / t[e]["seconds"] for e in t}
            vs, unread = {}, {}
            for p in peers:
                read = [r for r in picked if "seconds" in r[p]]
                if read:
                    t[p] = totals(read, p)
                    ratio[p] = totals(read, "pillow")["seconds"] / t[p]["seconds"]
                    vs[p] = t[p]["seconds"] / totals(read, "rust")["seconds"]
                else:
                    t[p] = {"ssim": float("nan")}
                    ratio[p] = vs[p] = float("nan")
                unread[p] = "" if len(read) == len(picked) else f" ({len(read)} files)" if read else " (no file)"
            summary[(key, seed)] = {"ratio": ratio, "vs": vs,
                                    "bytes": t["rust"]["bytes"] / t["pillow"]["bytes"],
                                    "ssim": (t["rust"]["ssim"], t["pillow"]["ssim"]), "files": len(picked)}
            name = f"**{key}**" if key == "all files" else key
            lines.append(
                f"| {name} | {seed} | {len(picked)} | {ratio['rust']:.2f}x | "
                + (f"{ratio['rust-before']:.2f}x | " if before else "")
                + "".join(f"{times(vs[p])}{unread[p]} | " for p in peers)
                + f"{ratio['rust-speed']:.2f}x | "
                + "".join(f"{times(ratio[p])}{unread[p]} | " for p in peers)
                + f"{t['rust']['bytes'] / t['pillow']['bytes']:.3f} "
                f"| {t['rust']['ssim']:.4f} / {t['pillow']['ssim']:.4f} / "
                + " / ".join(score(t[p]["ssim"]) for p in peers)
                + f" | {t['rust']['rss_below_pillow']} of {len(picked)} |")
    return lines, summary


def report(files, results, quick, elapsed, baseline=None, date=None):
    rows = complete(results)
    refused = sorted({(r["file"]["path"].name, e, r[e]["refused"]) for r in results for e in ENGINES
                      if "refused" in r[e]})
    under = sum(f["megapixels"] <= LARGE_MP for f in files)
    lines = [HEADING, "",
             f"Written by `make bench` (`python bench/corpus.py{' --quick' if quick else ''}`) on "
             f"{date}, in {elapsed:.0f} s.",
             "",
             f"{len(files)} files as users upload them: {under} of them at 2 MP or less (icons, avatars, "
             "screenshots, product shots, animated GIF and WebP), the rest up to "
             f"{max(f['megapixels'] for f in files):.1f} MP. They are `bench/corpus/` (image libraries' test suites and "
             "Debian packages; sources and licences in `bench/corpus/SOURCES.md`) and the function's test photos. "
             "Every engine runs each file in its own process pinned to one core; a file's time is the median of 25 "
             "(under 0.5 MP), 10 (up to 2 MP) or 5 iterations after a warm-up one. A class's time is the sum of its "
             "files' times, and \"rust vs Pillow\" is Pillow's time over Rust's (above 1.00x, Rust is faster). "
             "`rust` is the function's default (`JPEG_OPTIMIZE=size`), `rust-speed` is `JPEG_OPTIMIZE=speed`; "
             "sharp is the engine of the AWS image solution (`bench/baselines/sharp.mjs`: auto-orient, fit inside, "
             "flatten onto white, JPEG quality 85 with its defaults), on one thread (`sharp.concurrency(1)`, "
             "`UV_THREADPOOL_SIZE=1`) with its operation cache off"
             + (f"; `rust before` is the function at `{baseline}` (default settings, built in a git worktree)"
                if baseline else "") + ". "
             "SSIM is against the canonical reference: EXIF orientation applied, alpha flattened onto white, "
             "16-bit samples scaled (a 16-bit tRNS colour kept transparent), an embedded RGB colour profile "
             "applied to sRGB with LittleCMS (as a colour-managed viewer shows the original), Lanczos-3 in "
             "floating point. The seeds' Pillow pipeline does not flatten alpha onto white, clips 16-bit grey "
             "and leaves a colour profile unapplied (and does not embed it), so its SSIM is low on those files, "
             "which is what it outputs.",
             ""]
    by_class, summary = table(rows, lambda r: klass(r["file"]))
    lines += by_class
    big_progressive = [r for r in rows if r["file"]["progressive"] and r["file"]["megapixels"] >= 5]
    if big_progressive:
        lines += ["", "Large progressive JPEGs (5 MP and more):", ""]
        prog, prog_summary = table(big_progressive, lambda r: "progressive JPEG ≥ 5 MP")
        lines += prog[:2] + [line for line in prog[2:] if "all files" not in line]
    per_file = sorted(((r["rust"]["ssim"] - r["pillow"]["ssim"], r["file"]["path"].name) for r in rows
                       if r["seed"] == "A"))
    worst = per_file[:5]
    below = [w for w in per_file if w[0] < -SSIM_SLACK]
    lines += ["", f"Seed A, SSIM per file, rust minus Pillow, the five lowest: "
              + ", ".join(f"{name} {d:+.4f}" for d, name in worst)
              + (f". {len(below)} file(s) more than {SSIM_SLACK} below Pillow's." if below
                 else f". None is more than {SSIM_SLACK} below Pillow's.")]
    if refused:
        lines += ["", "Files an engine refused. A file the function or Pillow refused is left out of every "
                  "engine's totals; one libvips or sharp cannot read (BMP) is left out of that peer's columns only:", ""]
        lines += [f"- {name}, {engine}: {reason}" for name, engine, reason in refused]
    goals = []
    for seed in SEEDS:
        s = summary[("all files", seed)]
        slow = [k for (k, sd), v in summary.items() if sd == seed and k != "all files" and v["ratio"]["rust"] < 1.0]
        goals.append(f"| seed {seed}: total ≥ 2x Pillow and ≥ 1.5x libvips | {s['ratio']['rust']:.2f}x Pillow, "
                     f"{s['vs']['vips']:.2f}x libvips | {'met' if s['ratio']['rust'] >= 2 and s['vs']['vips'] >= 1.5 else '**not met**'} |")
        goals.append(f"| seed {seed}: total ≥ 1.5x sharp (JPEG) | {s['vs']['sharp']:.2f}x sharp | "
                     f"{'met' if s['vs']['sharp'] >= 1.5 else '**not met**'} |")
        goals.append(f"| seed {seed}: no class slower than Pillow | "
                     f"{'none' if not slow else 'slower: ' + ', '.join(slow)} | {'met' if not slow else '**not met**'} |")
        goals.append(f"| seed {seed}: bytes ≤ Pillow's at a mean SSIM no lower | {s['bytes']:.3f} of Pillow's bytes, SSIM "
                     f"{s['ssim'][0]:.4f} vs {s['ssim'][1]:.4f} | "
                     f"{'met' if s['bytes'] <= 1 and s['ssim'][0] >= s['ssim'][1] else '**not met**'} |")
    if big_progressive:
        for seed in SEEDS:
            ratio = prog_summary[("progressive JPEG ≥ 5 MP", seed)]["ratio"]["rust"]
            goals.append(f"| seed {seed}: progressive JPEGs of 5 MP and more ≥ 1.5x Pillow | {ratio:.2f}x | "
                         f"{'met' if ratio >= 1.5 else '**not met**'} |")
    goals.append(f"| seed A: no file's SSIM more than {SSIM_SLACK} below Pillow's | lowest {worst[0][0]:+.4f} "
                 f"({worst[0][1]}), {len(below)} file(s) below | {'met' if not below else '**not met**'} |")
    heavier = [(r["file"]["path"].name, r["seed"]) for r in rows
               if r["rust"]["peak_rss_kb"] >= r["pillow"]["peak_rss_kb"]]
    goals.append(f"| peak RSS below Pillow's for every file, both seeds | "
                 f"{len(rows) - len(heavier)} of {len(rows)}"
                 + (f"; not: {', '.join(f'{n} ({sd})' for n, sd in heavier)}" if heavier else "")
                 + f" | {'met' if not heavier else '**not met**'} |")
    lines += ["", "| goal (default settings) | measured | |", "|---|---|---|"] + goals
    return "\n".join(lines) + "\n", summary


def measure_photos(engines):
    files = [f for f in corpus() if photo(f)]
    rows = []
    for i, f in enumerate(files):
        row = {"file": f, **{e: run_engine(e, f, "A", False, PHOTO_ITERATIONS) for e in engines}}
        rows.append(row)
        print(f"  [{i + 1}/{len(files)}] {f['path'].name:<52} " + "  ".join(
            f"{e} {row[e]['min_seconds'] * 1000:7.1f} ms" if "seconds" in row[e] else f"{e} refused"
            for e in engines), flush=True)
    return rows


def no_lower(ssim, than):
    """SSIM compared to four decimals, as `make bench` compares it (bench/run.py)."""
    return round(ssim, 4) >= round(than, 4)


def photos_report(rows, engines, elapsed, baseline, date):
    """One line per photo: each engine's fastest time and its ratio to Pillow's, bytes and SSIM."""
    others = [e for e in engines if e != "pillow"]
    label = {"rust": "rust", "rust-speed": "rust-speed", "rust-before": "rust before", "vips": "libvips",
             "sharp": "sharp"}
    lines = [PHOTOS_HEADING, "",
             f"Written by `make bench-photos` (`python bench/corpus.py --photos"
             f"{f' --baseline {baseline}' if baseline else ''}`) on {date}, in {elapsed:.0f} s.", "",
             f"The corpus's JPEGs of {PHOTO_MP[0]} to {PHOTO_MP[1]} MP (camera and wallpaper photos, "
             "`bench/corpus/SOURCES.md`, and the function's test photos), seed A (one 800-px variant), each "
             f"engine in its own process pinned to one core, the fastest of {PHOTO_ITERATIONS} iterations after "
             "a warm-up one. \"vs Pillow\" is Pillow's time over the engine's (above 1.00x, faster than "
             "Pillow). `rust` is the function's default (`JPEG_OPTIMIZE=size`), `rust-speed` is "
             "`JPEG_OPTIMIZE=speed`" + (f", `rust before` the function at `{baseline}`" if baseline else "")
             + "; libvips and sharp (one thread) as in the upload corpus section. SSIM as there too (luma, "
             "against the canonical reference).", "",
             "| photo | MP | " + " | ".join(f"{label[e]} ms" for e in others) + " | Pillow ms | "
             + " | ".join(f"{label[e]} vs Pillow" for e in others)
             + " | rust bytes vs Pillow | SSIM rust / Pillow |",
             "|---|---:|" + "---:|" * (2 * len(others) + 2) + "---|"]
    done = [r for r in rows if all("seconds" in r[e] for e in engines)]
    for r in done:
        t = {e: r[e]["min_seconds"] for e in engines}
        lines.append(f"| {r['file']['path'].name} | {r['file']['megapixels']:.1f} | "
                     + " | ".join(f"{t[e] * 1000:.1f}" for e in others) + f" | {t['pillow'] * 1000:.1f} | "
                     + " | ".join(f"{t['pillow'] / t[e]:.2f}x" for e in others)
                     + f" | {r['rust']['output_bytes'] / r['pillow']['output_bytes']:.3f} "
                     f"| {r['rust']['ssim']:.4f} / {r['pillow']['ssim']:.4f} |")
    total = {e: sum(r[e]["min_seconds"] for r in done) for e in engines}
    size = {e: sum(r[e]["output_bytes"] for r in done) for e in engines}
    quality = {e: statistics.mean(r[e]["ssim"] for r in done) for e in engines}
    lines.append(f"| **all {len(done)} photos** | | " + " | ".join(f"{total[e] * 1000:.1f}" for e in others)
                 + f" | {total['pillow'] * 1000:.1f} | "
                 + " | ".join(f"**{total['pillow'] / total[e]:.2f}x**" for e in others)
                 + f" | {size['rust'] / size['pillow']:.3f} | {quality['rust']:.4f} / {quality['pillow']:.4f} |")
    ratio = {r["file"]["path"].name: r["pillow"]["min_seconds"] / r["rust"]["min_seconds"] for r in done}
    slowest = min(ratio, key=ratio.get)
    in_total = total["pillow"] / total["rust"]
    goals = [
        f"| total ≥ 2x Pillow | {in_total:.2f}x | {'met' if in_total >= 2 else '**not met**'} |",
        f"| no photo below 1.2x Pillow | lowest {ratio[slowest]:.2f}x ({slowest}) | "
        f"{'met' if ratio[slowest] >= 1.2 else '**not met**'} |",
        f"| bytes ≤ Pillow's at a mean SSIM no lower | {size['rust'] / size['pillow']:.3f} of Pillow's bytes, SSIM "
        f"{quality['rust']:.4f} vs {quality['pillow']:.4f} | "
        f"{'met' if size['rust'] <= size['pillow'] and no_lower(quality['rust'], quality['pillow']) else '**not met**'} |",
    ]
    if "rust-before" in engines:
        goals.append(
            f"| bytes no more than `{baseline}`'s at a mean SSIM no lower | "
            f"{size['rust'] / size['rust-before']:.3f} of its bytes, SSIM {quality['rust']:.4f} vs "
            f"{quality['rust-before']:.4f} | "
            f"{'met' if size['rust'] <= size['rust-before'] and no_lower(quality['rust'], quality['rust-before']) else '**not met**'} |")
    refused = [f"- {r['file']['path'].name}, {e}: {r[e]['refused']}" for r in rows for e in engines
               if "refused" in r[e]]
    if refused:
        lines += ["", "Refused (left out of the totals):", ""] + refused
    lines += ["", "| goal (default settings, seed A) | measured | |", "|---|---|---|"] + goals
    return "\n".join(lines) + "\n", in_total, ratio


def photos_main(baseline):
    started = time.time()
    example = ["-p", "image-compressor", "--example", "bench_pipeline"]
    subprocess.run(["cargo", "build", "--release", "-q", *example], check=True, cwd=ROOT)
    engines = ["rust", "rust-speed", "pillow", "vips", "sharp"]
    if baseline:
        BINARIES["rust-before"] = tracing_overhead.build_baseline(baseline, example, "corpus-baseline") \
            / "examples" / "bench_pipeline"
        engines.insert(1, "rust-before")
    rows = measure_photos(engines)
    text, in_total, ratio = photos_report(rows, engines, time.time() - started, baseline, time.strftime("%Y-%m-%d"))
    tracing_overhead.write(text, PHOTOS_HEADING)
    print(text)
    print(f"photos: rust {in_total:.2f}x Pillow in total, {min(ratio.values()):.2f}x at the least")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", action="store_true",
                        help=f"the JPEG photos of {PHOTO_MP[0]}-{PHOTO_MP[1]} MP only, seed A, per file (quick)")
    parser.add_argument("--quick", action="store_true", help="one file in eight, two iterations (a smoke run)")
    parser.add_argument("--baseline", help="a git revision whose pipeline runs alongside, as rust-before")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the section from the last run's bench/out/corpus/results.json")
    args = parser.parse_args()
    if args.photos:
        photos_main(args.baseline)
        return
    if args.report_only:
        saved = json.loads((OUT / "results.json").read_text())
        files = {f["path"].name: f for f in corpus()}
        ENGINES[:] = [e for e in saved["rows"][0] if e not in ("file", "seed")]
        results = [{"file": files[r["file"]], "seed": r["seed"], **{e: r[e] for e in ENGINES}}
                   for r in saved["rows"]]
        picked = list({r["file"]["path"].name: r["file"] for r in results}.values())
        text, _ = report(picked, results, False, saved["elapsed"], saved["baseline"], saved["date"])
        tracing_overhead.write(text, HEADING)
        return
    quick = args.quick
    started = time.time()
    example = ["-p", "image-compressor", "--example", "bench_pipeline"]
    subprocess.run(["cargo", "build", "--release", "-q", *example], check=True, cwd=ROOT)
    if args.baseline:
        BINARIES["rust-before"] = tracing_overhead.build_baseline(args.baseline, example, "corpus-baseline") \
            / "examples" / "bench_pipeline"
        ENGINES.insert(1, "rust-before")
    print(f"corpus: {len(corpus())} files, {len(ENGINES)} engines, seeds {', '.join(SEEDS)}", flush=True)
    files, results = measure(quick)
    elapsed, date = time.time() - started, time.strftime("%Y-%m-%d")
    # Kept for `--report-only`, which rewrites the section from them.
    (OUT / "results.json").write_text(json.dumps({
        "elapsed": elapsed, "baseline": args.baseline, "date": date,
        "rows": [{"file": r["file"]["path"].name, "seed": r["seed"], **{e: r[e] for e in ENGINES}} for r in results],
    }, indent=1))
    text, summary = report(files, results, quick, elapsed, args.baseline, date)
    tracing_overhead.write(text, HEADING)
    for seed in SEEDS:
        s = summary[("all files", seed)]
        print(f"corpus: seed {seed}: rust {s['ratio']['rust']:.2f}x Pillow, {s['vs']['vips']:.2f}x libvips, "
              f"{s['vs']['sharp']:.2f}x sharp, "
              f"bytes {s['bytes']:.3f} of Pillow's")
    print(f"corpus: BENCHMARKS.md's Upload corpus section written in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
