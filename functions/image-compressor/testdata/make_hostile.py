"""Writes the generated test files listed in SOURCES.md (standard library only):

    python3 functions/image-compressor/testdata/make_hostile.py

Each is the smallest file that shows one hostile or edge case; the tests say what each must give.
"""
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).parent
SIGNATURE = b"\x89PNG\r\n\x1a\n"
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(values, depth: int, pad_with: int = 0) -> bytes:
    """Indices of one row packed MSB-first at `depth` bits, the last byte padded with `pad_with`."""
    per_byte = 8 // depth
    out = bytearray()
    for start in range(0, len(values), per_byte):
        group = list(values[start:start + per_byte])
        group += [pad_with] * (per_byte - len(group))
        byte = 0
        for v in group:
            byte = (byte << depth) | v
        out.append(byte)
    return bytes(out)


def scanlines(width, height, depth, pixel, interlaced, pad_with=0) -> bytes:
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, width, dx))
        if not xs:
            continue
        for y in range(y0, height, dy):
            raw += b"\x00" + pack_row([pixel(x, y) for x in xs], depth, pad_with)
    return raw


def png(width, height, depth, colour_type, raw, palette=None, interlaced=False) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 1 if interlaced else 0)
    body = SIGNATURE + chunk(b"IHDR", header)
    if palette is not None:
        body += chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
    return body + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    two = [(255, 0, 0), (0, 0, 255)]
    three = [(255, 0, 0), (0, 160, 0), (0, 0, 255)]
    # 8-bit indices 0..7 against a 2-colour palette.
    raw = scanlines(64, 64, 8, lambda x, y: (x // 8) % 8, False)
    (HERE / "bad/png-palette-index-out-of-range.png").write_bytes(png(64, 64, 8, 3, raw, two))
    # 2-bit, interlaced, 3-colour palette, one pixel (the last) using index 3.
    last = lambda x, y: 3 if (x, y) == (12, 6) else (x + y) % 3
    raw = scanlines(13, 7, 2, last, True)
    (HERE / "bad/png-palette-2bit-interlaced-index-out-of-range.png").write_bytes(
        png(13, 7, 2, 3, raw, three, interlaced=True))
    # The same picture, valid, with every row's padding bits set to 3 (decoders ignore padding).
    raw = scanlines(13, 7, 2, lambda x, y: (x + y) % 3, True, pad_with=3)
    (HERE / "good/png-palette-2bit-3-colours-padding-bits-set.png").write_bytes(
        png(13, 7, 2, 3, raw, three, interlaced=True))
    # The densest real file for MAX_PIXELS_PER_BYTE: a blank 1-bit 4000x4000 greyscale PNG.
    raw = scanlines(4000, 4000, 1, lambda x, y: 1, False)
    (HERE / "good/png-1bit-4000x4000-blank.png").write_bytes(png(4000, 4000, 1, 0, raw))
    # 50000x50000 indexed against a 2-colour palette (the first 4 KiB of its image data): the bounds
    # must refuse it before anything starts on its 2.5 GB of indices.
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + bytes(50000)) for _ in range(400))[:4096]
    header = struct.pack(">IIBBBBB", 50000, 50000, 8, 3, 0, 0, 0)
    bomb = SIGNATURE + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(two[0] + two[1]))
    (HERE / "bad/png-palette-bomb-50000x50000.png").write_bytes(bomb + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    # A 35-byte GIF announcing an 11254x4097 screen with one 1x1 frame: 46 MP from 35 bytes.
    gif = b"GIF89a" + struct.pack("<HH", 11254, 4097) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    gif += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b"
    (HERE / "bad/gif-35-bytes-11254x4097-screen.gif").write_bytes(gif)


if __name__ == "__main__":
    main()
