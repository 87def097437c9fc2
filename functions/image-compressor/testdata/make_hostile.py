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


def tiff_rgba16(width: int, height: int, rows_per_strip: int) -> bytes:
    """A little-endian TIFF of transparent black, RGBA at 16 bits a sample, in deflate-compressed strips."""
    strips = []
    for top in range(0, height, rows_per_strip):
        rows = min(rows_per_strip, height - top)
        strips.append(zlib.compress(bytes(rows * width * 8), 9))
    count = len(strips)
    entries = 11
    ifd_at = 8
    extra_at = ifd_at + 2 + entries * 12 + 4
    bits_at = extra_at
    offsets_at = bits_at + 8
    counts_at = offsets_at + 4 * count
    data_at = counts_at + 4 * count
    offsets, at = [], data_at
    for strip in strips:
        offsets.append(at)
        at += len(strip)

    def entry(tag, kind, n, value):
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 and n == 1 else struct.pack("<I", value)
        return struct.pack("<HHI", tag, kind, n) + packed

    ifd = struct.pack("<H", entries) + b"".join([
        entry(256, 4, 1, width),
        entry(257, 4, 1, height),
        entry(258, 3, 4, bits_at),
        entry(259, 3, 1, 8),  # Adobe deflate
        entry(262, 3, 1, 2),  # RGB
        entry(273, 4, count, offsets_at),
        entry(277, 3, 1, 4),
        entry(278, 4, 1, rows_per_strip),
        entry(279, 4, count, counts_at),
        entry(284, 3, 1, 1),  # chunky
        entry(338, 3, 1, 2),  # unassociated alpha
    ]) + struct.pack("<I", 0)
    out = b"II*\0" + struct.pack("<I", ifd_at) + ifd + struct.pack("<4H", 16, 16, 16, 16)
    out += struct.pack(f"<{count}I", *offsets) + struct.pack(f"<{count}I", *(len(s) for s in strips))
    return out + b"".join(strips)


class Bits:
    """VP8L's bit order: least significant bit first."""

    def __init__(self):
        self.value, self.count = 0, 0

    def put(self, value: int, bits: int):
        self.value |= value << self.count
        self.count += bits

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def animated_webp(width: int, height: int, xmp_bytes: int) -> bytes:
    """One frame of opaque black the size of the canvas, in a lossless bitstream whose five prefix
    codes each have a single symbol (no bits per pixel)."""
    bits = Bits()
    bits.put(width - 1, 14)
    bits.put(height - 1, 14)
    bits.put(0, 1)  # alpha not used
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta prefix codes
    for symbol in (0, 0, 0, 255, 0):  # green, red, blue, alpha, distance
        bits.put(1, 1)  # simple code
        bits.put(0, 1)  # one symbol
        if symbol < 2:
            bits.put(0, 1)
            bits.put(symbol, 1)
        else:
            bits.put(1, 1)
            bits.put(symbol, 8)
    vp8l = b"\x2f" + bits.bytes()
    u24 = lambda v: struct.pack("<I", v)[:3]
    frame = u24(0) + u24(0) + u24(width - 1) + u24(height - 1) + u24(100) + b"\x00"
    body = riff_chunk(b"VP8X", bytes([0x02 | 0x04, 0, 0, 0]) + u24(width - 1) + u24(height - 1))
    body += riff_chunk(b"ANIM", b"\0\0\0\0" + struct.pack("<H", 0))
    body += riff_chunk(b"ANMF", frame + riff_chunk(b"VP8L", vp8l))
    body += riff_chunk(b"XMP ", b" " * xmp_bytes)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


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

    # 8184x8184 RGBA, 16 bits a sample, deflate (Adobe), in strips of 8 rows: 511 MiB decoded (just
    # under MAX_DECODE_BYTES) from a file of 550 KB; the TIFF decoder holds the picture twice.
    (HERE / "bad/tiff-deflate-8184x8184-rgba16.tif").write_bytes(tiff_rgba16(8184, 8184, 8))
    # A 1x1 screen around one 23000x23000 frame: the screen passes every bound, the frame's buffer
    # alone is 505 MiB.
    gif = b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    gif += b"\x2c" + struct.pack("<HHHH", 0, 0, 23000, 23000) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b"
    (HERE / "bad/gif-1x1-screen-23000x23000-frame.gif").write_bytes(gif)
    # An animated WebP: a 9000x9000 canvas, one lossless frame as large (every prefix code has one
    # symbol, so the pixels take no bits), and 5 KB of XMP to pass MAX_PIXELS_PER_BYTE.
    (HERE / "bad/webp-animated-9000x9000-lossless.webp").write_bytes(animated_webp(9000, 9000, 5200))


if __name__ == "__main__":
    main()
