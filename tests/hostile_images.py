"""Hostile image files for the decoder fuzz tests: damaged, huge, odd modes, other formats and
paths that are not files, each with what cnnlab must do with it.

:func:`write_hostile_files` writes them next to each other, made from one real MNIST digit, and
returns ``(path, expected)``: ``expected`` is ``"ok"`` (decoded, the same class as the clean
digit) or a fragment of the one-line error.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

BUDGET = "megapixels (--max-megapixels)"
UNDECODABLE = "cannot be decoded"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(width: int, height: int) -> bytes:
    """A PNG of ~70 bytes whose header declares ``width`` x ``height`` grey pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def bmp_bomb(width: int, height: int) -> bytes:
    """A 54-byte 24-bit BMP declaring ``width`` x ``height`` pixels (and holding none)."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is patched to declare another size."""
    at = jpeg.index(b"\xff\xc0")
    patched = bytearray(jpeg)
    patched[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(patched)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write_hostile_files(folder: Path, digit: np.ndarray) -> list[tuple[Path, str]]:
    """Write the hostile files into ``folder`` (made from ``digit``, an ``(H, W)`` uint8 MNIST
    image, light on dark); returns ``(path, expected)`` for each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    grey = Image.fromarray(digit, "L")
    png, jpeg, bmp = encoded(grey, "PNG"), encoded(grey, "JPEG", quality=95), encoded(grey, "BMP")
    cases: list[tuple[str, bytes | None, str]] = []
    # truncated: every part of the file cut off
    for cut in (0, 1, 8, 16, 33, 40, 60, len(png) // 2, len(png) - 13, len(png) - 1):
        expected = "ok" if cut >= len(png) - 13 else UNDECODABLE  # every pixel still there
        cases.append((f"truncated-{cut}.png", png[:cut], expected))
    for cut in (2, 20, 100, len(jpeg) // 2, len(jpeg) - 10):
        cases.append((f"truncated-{cut}.jpg", jpeg[:cut], UNDECODABLE))
    for cut in (2, 30, len(bmp) // 2):
        cases.append((f"truncated-{cut}.bmp", bmp[:cut], UNDECODABLE))
    # random bytes, bare or behind each format's signature
    for k, suffix in enumerate((".png", ".jpg", ".bmp", ".png", ".jpg", ".bmp")):
        cases.append((f"random-{k}{suffix}", rng.bytes(200 + 300 * k), UNDECODABLE))
    signatures = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM")
    for k, signature in enumerate(signatures * 2):
        cases.append((f"signature-{k}.png", signature + rng.bytes(64 + 500 * k), UNDECODABLE))
    # damaged in the middle: a flipped byte in the compressed data, or a wrong CRC
    damaged = bytearray(png)
    damaged[len(png) // 2] ^= 0xFF
    cases.append(("flipped-data.png", bytes(damaged), UNDECODABLE))
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0x01  # the IHDR chunk's CRC
    cases.append(("bad-crc.png", bytes(bad_crc), UNDECODABLE))
    # decompression bombs and images over the pixel budget
    cases.append(("bomb-50000.png", png_bomb(50000, 50000), BUDGET))
    cases.append(("bomb-wide.png", png_bomb(2**31 - 1, 1), BUDGET))
    cases.append(("bomb-50000.bmp", bmp_bomb(50000, 50000), BUDGET))
    cases.append(("bomb-65000.jpg", jpeg_with_size(jpeg, 65000, 65000), BUDGET))
    cases.append(("big-9000.png", encoded(Image.new("L", (9000, 9000)), "PNG"), BUDGET))
    big = Image.new("L", (9000, 9000))
    big.paste(grey.resize((9000, 9000)))
    cases.append(("big-9000.jpg", encoded(big, "JPEG", quality=90), "ok"))  # decoded at 1/8
    # modes: 16-bit, CMYK, palette with transparency, grey+alpha, 1-bit, animated
    sixteen = Image.fromarray(digit.astype(np.uint16) * 257)
    cases.append(("sixteen-bit.png", encoded(sixteen, "PNG"), "ok"))
    cases.append(("cmyk.jpg", encoded(grey.convert("CMYK"), "JPEG", quality=95), "ok"))
    palette = grey.convert("P")
    cases.append(("palette-alpha.png", encoded(palette, "PNG", transparency=255), "ok"))
    la = Image.merge("LA", (grey, Image.new("L", grey.size, 255)))
    cases.append(("grey-alpha.png", encoded(la, "PNG"), "ok"))
    cases.append(("palette.bmp", encoded(grey.convert("P"), "BMP"), "ok"))
    blank = Image.new("L", grey.size, 0)
    frames = encoded(grey, "PNG", save_all=True, append_images=[blank, blank], duration=100)
    cases.append(("animated.png", frames, "ok"))  # the first frame
    exif = Image.Exif()
    exif[0x0112] = 1  # orientation: as stored
    cases.append(("exif.jpg", encoded(grey, "JPEG", quality=95, exif=exif), "ok"))
    # other formats, whatever their name: never handed to another decoder
    cases.append(
        ("animated.gif", encoded(grey, "GIF", save_all=True, append_images=[blank]), UNDECODABLE)
    )
    cases.append(("gif-named.png", encoded(grey, "GIF"), UNDECODABLE))
    cases.append(("tiff-named.jpg", encoded(grey, "TIFF"), UNDECODABLE))
    cases.append(("webp-named.bmp", encoded(grey.convert("RGB"), "WEBP"), UNDECODABLE))
    cases.append(("ico-named.png", encoded(grey, "ICO"), UNDECODABLE))
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto showpage\n"
    cases.append(("postscript.png", eps, UNDECODABLE))
    cases.append(("postscript.eps", eps, UNDECODABLE))
    cases.append(("binary-eps.jpg", b"\xc5\xd0\xd3\xc6" + b"\0" * 26 + eps, UNDECODABLE))
    cases.append(("empty.png", b"", UNDECODABLE))
    cases.append(("text.jpg", b"just some text\n" * 10, UNDECODABLE))
    # names: a newline and other control characters stay on one line
    cases.append(("new\nline.png", png, "ok"))
    cases.append(("bad\nname\r.png", b"not an image", "'"))  # quoted
    cases.append(("tab\there.jpg", b"\xff\xd8 truncated", "'"))
    written = []
    for name, data, expected in cases:
        path = folder / name
        path.write_bytes(data if data is not None else b"")
        written.append((path, expected))
    # paths that are not regular files
    good = folder / "good.png"
    good.write_bytes(png)
    written.append((good, "ok"))
    os.symlink(good, folder / "link.png")
    written.append((folder / "link.png", "ok"))
    (folder / "folder.png").mkdir()
    written.append((folder / "folder.png", "(none in it)"))  # predict reads a folder's images
    os.mkfifo(folder / "fifo.png")
    written.append((folder / "fifo.png", "a FIFO"))
    os.symlink(folder / "gone.png", folder / "dangling.png")
    written.append((folder / "dangling.png", "a dangling symbolic link"))
    os.symlink(folder / "loop-b.png", folder / "loop-a.png")
    os.symlink(folder / "loop-a.png", folder / "loop-b.png")
    written.append((folder / "loop-a.png", "a symbolic link loop"))
    written.append((folder / "missing.png", "no such file"))
    written.append((good / "inside.png", "no such file"))  # a parent is a file
    return written
