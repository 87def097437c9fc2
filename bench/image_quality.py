"""Image quality and process helpers shared by the image benchmarks (bench/run.py, corpus.py,
formats.py): SSIM on luma, a floating-point Lanczos reference resize of the EXIF-oriented,
alpha-flattened, sRGB original, and one-core pinning for timed processes."""
import functools
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

ROOT = Path(__file__).resolve().parent.parent
# The colour space every reference is in: LittleCMS's built-in sRGB.
SRGB = ImageCms.createProfile("sRGB")


def pin_to_one_core():
    """For a child process: run on one core only (libvips' WebP loader otherwise lets libwebp run a
    second thread, and the comparison is single-threaded)."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def run_json(cmd, env=None, pin=False):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                         preexec_fn=pin_to_one_core if pin else None)
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


@functools.lru_cache(maxsize=2)
def original(path):
    """The original as every reference sees it: upright, 16-bit samples scaled to 8 bits,
    transparency flattened onto white, an embedded RGB colour profile applied (to sRGB, as a
    colour-managed viewer shows it), at full size."""
    with Image.open(path) as img:
        icc = img.info.get("icc_profile")
        img = ImageOps.exif_transpose(img)
        if img.mode.startswith("I;16") or img.mode == "I":
            raw = np.asarray(img, dtype=np.float64)
            grey = Image.fromarray(np.clip(raw / 257.0 + 0.5, 0, 255).astype(np.uint8), "L")
            if "transparency" in img.info:
                # tRNS names one 16-bit grey value as transparent: keep it through the scaling.
                alpha = Image.fromarray(np.where(raw == img.info["transparency"], 0, 255).astype(np.uint8), "L")
                grey = Image.merge("LA", (grey, alpha))
            img = grey
        if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        img = img.convert("RGB")
        if icc:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if profile.profile.xcolor_space.strip() == "RGB":
                img = ImageCms.profileToProfile(img, profile, SRGB, outputMode="RGB")
        return img


def lanczos_weights(n_in, n_out):
    """Lanczos-3 resampling from n_in to n_out samples as an (n_out x n_in) matrix, pixel centres
    aligned, the kernel widened by the reduction factor, each row summing to 1."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    x = np.arange(n_in) + 0.5
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - 3 * stretch), 0), min(int(centre + 3 * stretch) + 1, n_in)
        t = (x[lo:hi] - centre) / stretch
        w = np.sinc(t) * np.sinc(t / 3) * (np.abs(t) < 3)
        m[i, lo:hi] = w / w.sum()
    return m


@functools.lru_cache(maxsize=2)
def original_luma(path):
    return luma(original(path))


@functools.lru_cache(maxsize=16)
def reference(path, size):
    """The original's luma resized straight to `size` with Lanczos-3 in floating point: no JPEG, no
    8-bit rounding between the passes, and none of the contestants' own resize code."""
    full = original_luma(path)
    h, w = full.shape
    return np.clip(lanczos_weights(h, size[1]) @ (full @ lanczos_weights(w, size[0]).T), 0, 255)


@functools.lru_cache(maxsize=16)
def pillow_reference(path, size):
    """The reference of reports before 2026-12-02: Pillow's own 8-bit Lanczos resize, which is also
    the Pillow pipeline's image before encoding whenever it decodes at full size."""
    return luma(original(path).resize(size, Image.LANCZOS))
