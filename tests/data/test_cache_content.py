"""The dataset cache is checked by content: a byte changed in place, with its modification
time put back, is found by ``data fetch`` and by loading, and the file is fetched again when
a source can deliver it (else one line with the ``--force`` hint)."""

from __future__ import annotations

import gzip
import os
import shutil

from cnnlab.data.sources import MirrorSource, RemoteFile, fetch_files, sha256_of


def _damage_in_place(path):
    """Flip one byte in the middle of ``path`` and put its size and mtime back."""
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(stat.st_size // 2)
        byte = handle.read(1)
        handle.seek(stat.st_size // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size


def test_data_fetch_finds_a_byte_changed_in_place(cache_dir, tmp_path, cli, expect_error):
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir / "mnist-subset", cache / "mnist-subset")
    status, out, err = cli("data", "fetch", "mnist-subset", "--cache-dir", cache, cache=False)
    assert status == 0 and "verified" in out, err
    _damage_in_place(cache / "mnist-subset" / "train-images-idx3-ubyte")
    status, _, err = cli("data", "fetch", "mnist-subset", "--cache-dir", cache, cache=False)
    expect_error(status, err, "train-images-idx3-ubyte", "checksum mismatch", "--force")
    shutil.copyfile(
        cache_dir / "mnist-subset" / "train-images-idx3-ubyte",
        cache / "mnist-subset" / "train-images-idx3-ubyte",
    )
    status, out, err = cli("data", "fetch", "mnist-subset", "--cache-dir", cache, cache=False)
    assert status == 0 and "verified" in out, err


def test_a_damaged_cached_file_is_fetched_again(tmp_path):
    payload = {"a-ubyte": bytes(range(256)) * 400, "b-ubyte": b"labels" * 100}
    files = tuple(RemoteFile(n, sha256_of(d), len(d)) for n, d in payload.items())
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in payload.items():
        (mirror / f"{name}.gz").write_bytes(gzip.compress(data))
    cache = tmp_path / "cache" / "toy"
    fetch_files(cache, files, [MirrorSource(mirror.as_uri())])
    _damage_in_place(cache / "a-ubyte")
    fetch_files(cache, files, [MirrorSource(mirror.as_uri())])
    assert (cache / "a-ubyte").read_bytes() == payload["a-ubyte"]
