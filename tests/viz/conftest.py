"""Fixtures of the picture tests: real test digits as PNG files and the CLI as a person uses it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from cli_helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="session")
def digits(subset, tmp_path_factory) -> list[tuple[Path, int]]:
    """The first 10 test digits of the subset as 28x28 PNG files, with their labels."""
    folder = tmp_path_factory.mktemp("digits")
    found = []
    for i in range(10):
        path = folder / f"digit-{i}.png"
        Image.fromarray(subset.test.images[i, 0].numpy()).save(path)
        found.append((path, int(subset.test.labels[i])))
    return found


@pytest.fixture(scope="session")
def digit(digits) -> Path:
    """One real test digit (a 7) as a PNG file."""
    path, label = digits[0]
    assert label == 7
    return path


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG header; fails unless ``path`` is a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (status, stdout, stderr)``."""
    return lambda *argv: run_cli(capsys, *argv)


@pytest.fixture
def png():
    """``png(path) -> (width, height)`` of a valid PNG file."""
    return png_size


@pytest.fixture
def one_line_error():
    """``one_line_error(status, stderr, *fragments)``: exit 2 and one line naming them all."""
    return assert_one_line_error
