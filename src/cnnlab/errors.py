"""User-facing errors.

Every error a user can cause (bad path, corrupt file, unknown name, wrong shape, incompatible
checkpoint, ...) is a :class:`CnnlabError` whose message is one line naming the value received
and what was expected. The CLI prints that line without a traceback and exits with status 2.
"""

from __future__ import annotations


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
