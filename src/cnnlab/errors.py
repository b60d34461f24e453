"""User-facing errors.

Every error a user can cause (bad path, corrupt file, unknown name, wrong shape, incompatible
checkpoint, ...) is a :class:`CnnlabError` whose message is one line naming the value received
and what was expected. The CLI prints that line without a traceback and exits with status 2.
"""

from __future__ import annotations

import errno
import os
import stat


class CnnlabError(Exception):
    """Base class of every user-facing cnnlab error (one-line message, CLI exit status 2)."""


class ConfigError(CnnlabError):
    """An argument or option has a value outside what is accepted."""


class DataError(CnnlabError):
    """A dataset, archive, image or cache cannot be fetched, verified or decoded."""


class ModelError(CnnlabError):
    """An unknown model, or a model that cannot take the given input."""


class CheckpointError(CnnlabError):
    """A run directory or checkpoint that is missing, corrupt or from another architecture."""


class TrainingError(CnnlabError):
    """Training had to stop (for example a non-finite loss)."""


class DistributedError(CnnlabError):
    """Training processes could not start, meet or finish together (torchrun, DDP)."""


class ReportedError(CnnlabError):
    """A failure another process already reported (rank 0, or a worker of ``--nproc``): the
    CLI exits with status 2 without printing it a second time."""


class UnsupportedOpError(ModelError):
    """A model uses an op or layer the NumPy engine does not implement (names op and layer)."""


def expected(what: str, **received: object) -> str:
    """Format the house error wording: ``expected WHAT, received name=value``.

    Example:
        >>> expected("a positive learning rate", lr=0.0)
        'expected a positive learning rate, received lr=0.0'
    """
    shown = ", ".join(f"{name}={value!r}" for name, value in received.items())
    return f"expected {what}, received {shown}" if shown else f"expected {what}"


class DataWarning(UserWarning):
    """Data was used with something left out (e.g. undecodable files skipped); one line."""


class RunFileWarning(UserWarning):
    """A damaged run file that is not needed was left out (e.g. a garbled history.json)."""


def shown_path(path: object) -> str:
    """``path`` as shown in a one-line message: as is, or quoted (``repr``) when it holds a
    newline or another character that is not printable, so the message stays one line."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def describe_path(path: object) -> str | None:
    """What ``path`` is when it is not a readable regular file (None when it is one), e.g.
    ``"a directory"``, ``"a FIFO"``, ``"a dangling symbolic link to 'x.png'"``,
    ``"a symbolic link loop"``, ``"no such file"``; never opens the file (a FIFO would block).
    """
    text = os.fspath(path)  # type: ignore[call-overload]
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        if os.path.islink(text):
            return f"a dangling symbolic link to {shown_path(os.readlink(text))}"
        return "no such file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if exc.errno == errno.ENOTDIR:
            return "no such file; a folder on its path is a file"
        return exc.strerror or type(exc).__name__
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    for check, name in kinds:
        if check(mode):
            return name
    if not os.access(text, os.R_OK):
        return "not readable (permission denied)"
    return None


def describe_missing(path: object, missing: str) -> str:
    """What stands at ``path`` where a folder or run was expected and is not: the words of
    :func:`describe_path` (``"a FIFO"``, ``"a dangling symbolic link to 'x'"``, ...), or
    ``missing`` (e.g. ``"no such folder"``) where it names no such file or a regular file."""
    what = describe_path(path)
    return missing if what in (None, "no such file") else what
