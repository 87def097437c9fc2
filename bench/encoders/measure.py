"""Encoder choice (BENCHMARKS.md, "Choosing the encoders"): every file's four seed-B variants (Pillow's
Lanczos, flattened onto white) encoded by each encoder and setting (the encoder-choice binary), and
by Pillow's JPEG (85, optimize: the seeds'); luma SSIM of each output against the variant it encodes;
totals per setting. One core.

    cargo build --release --manifest-path bench/encoders/Cargo.toml
    LAVIF_Q=70,80 LAVIF_S=6,9 AVIF_Q=85 AVIF_S=10 WEBP_Q=90 WEBP_M=4 AOM_Q= python bench/encoders/measure.py <files>

AOM_Q / AOM_S: libavif with libaom through Pillow (13+) as a cross-check. MINPX / MAXPX: total only
variants in that pixel range.
"""
import json, os, subprocess, sys, time, io
from pathlib import Path
from PIL import Image, ImageOps
os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from image_quality import luma, ssim  # noqa: E402
VAR = HERE.parent / "out" / "encoders" / "variants"; OUT = HERE.parent / "out" / "encoders" / "files"
EDGES = [150, 300, 600, 1200]

def make_variants(files):
    out = []
    for f in files:
        with Image.open(f) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
                img = img.convert("RGBA"); bg = Image.new("RGBA", img.size, (255,255,255,255))
                img = Image.alpha_composite(bg, img)
            img = img.convert("RGB")
            for e in EDGES:
                v = img.copy(); v.thumbnail((e, e), Image.LANCZOS)
                p = VAR / f"{Path(f).stem}-{e}.png"
                v.save(p); out.append(str(p))
    return out

if __name__ == "__main__":
    files = sys.argv[1:]
    VAR.mkdir(parents=True, exist_ok=True); OUT.mkdir(parents=True, exist_ok=True)
    pngs = make_variants(files)
    rows = []
    # Rust encoders
    r = subprocess.run([str(HERE / "target" / "release" / "encoder-choice"), str(OUT)] + pngs, capture_output=True, text=True, check=True)
    rows += [json.loads(l) for l in r.stdout.splitlines()]
    for p in pngs:
        im = Image.open(p); im.load(); px = im.size[0]*im.size[1]
        best = 1e9
        for _ in range(3 if px < 200000 else 1):
            b = io.BytesIO(); t = time.perf_counter()
            im.save(b, "JPEG", quality=85, optimize=True)
            best = min(best, (time.perf_counter()-t)*1000)
        name = OUT / f"{Path(p).stem}__pillow_q85.jpg"; name.write_bytes(b.getvalue())
        rows.append(dict(file=Path(p).stem, pixels=px, codec="pillow", setting="q85", bytes=len(b.getvalue()), ms=best, out=str(name)))
    # libavif + aom through Pillow, one thread
    for aq in [q for q in os.environ.get("AOM_Q", "50,60,70").split(",") if q]:
        for sp in os.environ.get("AOM_S", "6,8,9").split(","):
            for p in pngs:
                im = Image.open(p); im.load(); px = im.size[0]*im.size[1]
                best = 1e9
                for _ in range(3 if px < 200000 else 1):
                    b = io.BytesIO(); t = time.perf_counter()
                    im.save(b, "AVIF", quality=int(aq), speed=int(sp), max_threads=1, codec="aom", subsampling="4:2:0")
                    best = min(best, (time.perf_counter()-t)*1000)
                name = OUT / f"{Path(p).stem}__aom_q{aq}s{sp}.avif"; name.write_bytes(b.getvalue())
                rows.append(dict(file=Path(p).stem, pixels=px, codec="aom", setting=f"q{aq}s{sp}", bytes=len(b.getvalue()), ms=best, out=str(name)))
    refs = {}
    for row in rows:
        f = row["file"]
        if f not in refs: refs[f] = luma(Image.open(VAR / f"{f}.png"))
        row["ssim"] = ssim(refs[f], luma(Image.open(row["out"])))
    json.dump(rows, open(os.environ.get("RESULT", str(OUT.parent / "rows.json")), "w"))
    # summary per codec/setting
    from collections import defaultdict
    agg = defaultdict(lambda: [0,0.0,0.0,0])
    for row in rows:
        a = agg[(row["codec"], row["setting"])]
        if os.environ.get("MINPX") and row["pixels"] < int(os.environ["MINPX"]): continue
        if os.environ.get("MAXPX") and row["pixels"] >= int(os.environ["MAXPX"]): continue
        a[0]+=row["bytes"]; a[1]+=row["ms"]; a[2]+=row["ssim"]; a[3]+=1
    base = agg[("pillow","q85")]
    for k,(b,ms,s,n) in sorted(agg.items()):
        print(f"{k[0]:6} {k[1]:10} bytes {b:9d} ({b/base[0]:.3f}) ms {ms:9.1f} ({ms/base[1]:6.2f}x pillow) ssim {s/n:.4f}")
