"""Prints each bootstrap's size and zipped size, and fails when one is over the package budget.

    python tools/package_size.py target/lambda/*/bootstrap          # make build-arm64
    python tools/package_size.py .aws-sam/build/*/bootstrap         # after sam build

A zipped bootstrap (deflate, level 9, as `sam deploy` uploads it) must stay under 4 MB (4,000,000
bytes): Lambda fetches and unpacks it at every cold start of a new instance. image-compressor is the
exception: it links its image codecs, and libaom (the AV1 encoder behind the AVIF variants) alone is
about as large as a whole function without codecs (docs/performance.md, "Package"). A function is
named by the directory that holds its bootstrap (`target/lambda/image-compressor/`,
`.aws-sam/build/ImageCompressorFunction/`).

The exit status is 1 when a bootstrap is over the budget, 2 when a file is missing.
"""
import argparse
import io
import re
import sys
import zipfile
from pathlib import Path

LIMIT = 4_000_000
# Functions whose codecs put them over the budget, as names with only lower-case letters and digits.
CODECS = ("imagecompressor",)


def zipped_size(path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.write(path, "bootstrap")
    return buffer.tell()


def has_codecs(path):
    """Whether the function whose bootstrap this is may be over the budget for its codecs."""
    name = re.sub(r"[^a-z0-9]", "", Path(path).parent.name.lower())
    return any(name.startswith(function) for function in CODECS)


def verdicts(sizes, limit=LIMIT):
    """(path, size, zipped, verdict) per bootstrap; the verdict is None when it is within budget."""
    out = []
    for path, size, zipped in sizes:
        if zipped < limit:
            verdict = None
        elif has_codecs(path):
            verdict = "over, allowed: its image codecs"
        else:
            verdict = "OVER THE BUDGET"
        out.append((path, size, zipped, verdict))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstraps", nargs="+")
    parser.add_argument("--limit", type=int, default=LIMIT, help="zipped bytes a bootstrap must stay under")
    args = parser.parse_args(argv)
    sizes = []
    for path in args.bootstraps:
        if not Path(path).is_file():
            print(f"package-size: {path}: no such file", file=sys.stderr)
            return 2
        sizes.append((path, Path(path).stat().st_size, zipped_size(path)))
    over = 0
    for path, size, zipped, verdict in verdicts(sizes, args.limit):
        note = "" if verdict is None else f"  {verdict}"
        print(f"{Path(path).parent.name:24s} {size:>10,} bytes, {zipped:>10,} zipped{note}")
        over += verdict == "OVER THE BUDGET"
    if over:
        print(f"package-size: {over} bootstrap(s) zipped to {args.limit:,} bytes or more; "
              "see docs/performance.md, \"Package\"", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
