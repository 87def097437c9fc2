"""The image pipeline on uploads as users send them: every engine per class of file and in total.

    python bench/corpus.py [--baseline REV] [--quick]

The corpus is bench/corpus/ (files that image libraries' test suites and Debian packages ship, with
their sources in bench/corpus/SOURCES.md) plus the function's own test photos
(functions/image-compressor/testdata/good/, except the two files the project writes itself). Each
file goes through each engine in its own process pinned to one core, for seed A (one 800-px variant)
and seed B (150/300/600/1200), timing the median of several iterations after a warm-up one.

Engines: `rust` (the function, default settings), `rust-speed` (`JPEG_OPTIMIZE=speed`), the seeds'
Pillow pipeline and libvips (bench/baselines/images.py); with `--baseline REV`, also `rust-before`:
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
import run as bench  # noqa: E402  (ssim, Lanczos weights, process pinning)
import tracing_overhead  # noqa: E402  (a git revision's release build)

CORPUS = ROOT / "bench" / "corpus"
PHOTOS = ROOT / "functions" / "image-compressor" / "testdata" / "good"
# Written by testdata/make_hostile.py to test limits, not uploads anyone sends.
NOT_UPLOADS = {"png-1bit-4000x4000-blank.png", "png-palette-2bit-3-colours-padding-bits-set.png"}
OUT = ROOT / "bench" / "out" / "corpus"
ENGINES = ["rust", "rust-speed", "pillow", "vips"]
BINARIES = {"rust": ROOT / "target" / "release" / "examples" / "bench_pipeline"}
SEEDS = {"A": "compressed:800", "B": "thumbnail:150,small:300,medium:600,large:1200"}
LARGE_MP = 2.0
SSIM_SLACK = 0.005
HEADING = "## Upload corpus: every class of file"


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


def run_engine(engine, f, seed, quick):
    out_dir = OUT / engine / f["path"].name / seed
    n = str(iterations(f, quick))
    env = dict(os.environ, VIPS_CONCURRENCY="1", OMP_NUM_THREADS="1")
    if engine.startswith("rust"):
        binary = BINARIES["rust-before" if engine == "rust-before" else "rust"]
        cmd = [binary, f["path"], SEEDS[seed], n, out_dir]
        env["JPEG_OPTIMIZE"] = "speed" if engine == "rust-speed" else "size"
    else:
        cmd = [sys.executable, ROOT / "bench" / "baselines" / "images.py", engine, f["path"], SEEDS[seed], n, out_dir]
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=ROOT,
                          preexec_fn=bench.pin_to_one_core)
    if done.returncode != 0:
        return {"refused": (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1][:200]}
    r = json.loads(done.stdout.strip().splitlines()[-1])
    scores = []
    for v in r["variants"]:
        with Image.open(out_dir / f"{v['name']}.jpg") as produced:
            scores.append(bench.ssim(bench.luma(produced), bench.reference(f["path"], tuple(produced.size))))
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


def complete(rows):
    """Rows every engine but libvips produced output for: a class is compared on the same files.
    libvips reads no BMP; it is compared on the files it read (see `table`)."""
    return [r for r in rows if all("seconds" in r[e] for e in ENGINES if e != "vips")]


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
    lines = ["| class | seed | files | rust vs Pillow | " + ("rust before vs Pillow | " if before else "")
             + "rust vs libvips | rust-speed vs Pillow | libvips vs Pillow "
             "| rust bytes vs Pillow | SSIM rust / Pillow / libvips | rust RSS below Pillow's |",
             "|---|---|---:|---:|" + ("---:|" if before else "") + "---:|---:|---:|---:|---|---:|"]
    summary = {}
    keys = sorted({group(r) for r in rows}) + ["all files"]
    for key in keys:
        for seed in SEEDS:
            picked = [r for r in rows if r["seed"] == seed and (key == "all files" or group(r) == key)]
            if not picked:
                continue
            t = {e: totals(picked, e) for e in ENGINES if e != "vips"}
            read = [r for r in picked if "seconds" in r["vips"]]
            ratio = {e: t["pillow"]["seconds"] / t[e]["seconds"] for e in t}
            if read:
                t["vips"] = totals(read, "vips")
                ratio["vips"] = totals(read, "pillow")["seconds"] / t["vips"]["seconds"]
                vs_vips = t["vips"]["seconds"] / totals(read, "rust")["seconds"]
            else:
                t["vips"] = {"ssim": float("nan")}
                ratio["vips"] = vs_vips = float("nan")
            unread = "" if len(read) == len(picked) else f" ({len(read)} files)" if read else " (no file)"
            summary[(key, seed)] = {"ratio": ratio, "vs_vips": vs_vips,
                                    "bytes": t["rust"]["bytes"] / t["pillow"]["bytes"],
                                    "ssim": (t["rust"]["ssim"], t["pillow"]["ssim"]), "files": len(picked)}
            name = f"**{key}**" if key == "all files" else key
            lines.append(
                f"| {name} | {seed} | {len(picked)} | {ratio['rust']:.2f}x | "
                + (f"{ratio['rust-before']:.2f}x | " if before else "")
                + f"{times(vs_vips)}{unread} "
                f"| {ratio['rust-speed']:.2f}x | {times(ratio['vips'])}{unread} | {t['rust']['bytes'] / t['pillow']['bytes']:.3f} "
                f"| {t['rust']['ssim']:.4f} / {t['pillow']['ssim']:.4f} / {score(t['vips']['ssim'])} "
                f"| {t['rust']['rss_below_pillow']} of {len(picked)} |")
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
             "`rust` is the function's default (`JPEG_OPTIMIZE=size`), `rust-speed` is `JPEG_OPTIMIZE=speed`"
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
                  "engine's totals; one libvips cannot read (BMP) is left out of the libvips columns only:", ""]
        lines += [f"- {name}, {engine}: {reason}" for name, engine, reason in refused]
    goals = []
    for seed in SEEDS:
        s = summary[("all files", seed)]
        slow = [k for (k, sd), v in summary.items() if sd == seed and k != "all files" and v["ratio"]["rust"] < 1.0]
        goals.append(f"| seed {seed}: total ≥ 2x Pillow and ≥ 1.5x libvips | {s['ratio']['rust']:.2f}x Pillow, "
                     f"{s['vs_vips']:.2f}x libvips | {'met' if s['ratio']['rust'] >= 2 and s['vs_vips'] >= 1.5 else '**not met**'} |")
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one file in eight, two iterations (a smoke run)")
    parser.add_argument("--baseline", help="a git revision whose pipeline runs alongside, as rust-before")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the section from the last run's bench/out/corpus/results.json")
    args = parser.parse_args()
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
        print(f"corpus: seed {seed}: rust {s['ratio']['rust']:.2f}x Pillow, {s['vs_vips']:.2f}x libvips, "
              f"bytes {s['bytes']:.3f} of Pillow's")
    print(f"corpus: BENCHMARKS.md's Upload corpus section written in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
