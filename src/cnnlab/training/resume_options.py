"""Which options a resumed run accepts: re-running the command that started a run with
``--resume RUN`` appended works, and an option that would make it another run is refused.

The command line passes only the options the user gave (argparse's default is None for every
training option, :mod:`cnnlab.cli.config_flags`), so options left out keep their saved values
and options given are compared with the saved run:

- equal to the saved value (after the same normalisation as a new run: a folder as an
  absolute path, ``--classes`` parsed, ...): accepted;
- :data:`MAY_CHANGE` (``--epochs``, ``--workers``, ``--device``): the new value is used
  (``--epochs`` not for a schedule of fixed length: one-cycle and cosine);
- ``--lr`` of a run that diverged (:mod:`cnnlab.training.divergence`): a rescue, the new rate
  is used from the last checkpoint on;
- anything else that differs: refused, one line per option with both values.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.runs import CONFIG_FILE, read_run_config
from cnnlab.training.config import TrainConfig
from cnnlab.training.run_data import resolve_data_spec

MAY_CHANGE = ("epochs", "workers", "device")
FIXED_LENGTH_SCHEDULES = ("onecycle", "cosine")


class ResumeConflictError(ConfigError):
    """Options given with ``--resume`` that disagree with the saved run (one line each)."""


def flag_of(name: str) -> str:
    """The command-line spelling of a :class:`TrainConfig` field (``batch_size`` ->
    ``--batch-size``; ``model`` is the positional MODEL)."""
    if name == "model":
        return "MODEL"
    if name == "model_kwargs":
        return "--model-option"
    field = next((f for f in dataclasses.fields(TrainConfig) if f.name == name), None)
    flag = field.metadata.get("flag") if field is not None else None
    return flag.name if flag is not None else f"--{name.replace('_', '-')}"


def resumed_config(
    run_dir: Path, given: dict[str, Any], *, out: str | Path | None = None, rescue: bool = False
) -> TrainConfig:
    """The configuration a resume of ``run_dir`` trains with.

    Args:
        run_dir: the run.
        given: the :class:`TrainConfig` options given with the resume (``model``, ``data``
            as a spec, ``lr``, ...).
        out: ``--out`` given with the resume (must be the run itself).
        rescue: the run diverged: a new ``lr`` is accepted.

    Raises:
        ResumeConflictError: one line per option that disagrees with the saved run.
        ConfigError: an impossible value.
    """
    saved = TrainConfig.from_dict(read_run_config(run_dir)["config"], str(run_dir / CONFIG_FILE))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ConfigError(f"expected training options {sorted(names)}, received {unknown}")
    given = dict(given)
    if isinstance(given.get("data"), str):
        given["data"] = resolve_data_spec(given["data"])
    # the given values normalised as a new run's would be (raises on impossible values)
    wanted = TrainConfig(**{**saved.to_dict(), **given})
    conflicts: list[str] = []
    if out is not None and Path(out).resolve() != Path(run_dir).resolve():
        conflicts.append(
            f"expected --out {run_dir} (the run being resumed) or no --out, received --out {out}"
        )
    config = dataclasses.replace(saved)
    for name in given:
        old, new = getattr(saved, name), getattr(wanted, name)
        if new == old:
            continue
        if name in MAY_CHANGE and not (
            name == "epochs" and saved.schedule in FIXED_LENGTH_SCHEDULES
        ):
            setattr(config, name, new)
            continue
        if name == "lr" and rescue:
            config.lr = new
            continue
        conflicts.append(_conflict(run_dir, saved, name, old, new))
    if conflicts:
        raise ResumeConflictError("\n".join(conflicts))
    config.validate()
    return config


def _conflict(run_dir: Path, saved: TrainConfig, name: str, old: Any, new: Any) -> str:
    flag = flag_of(name)
    why = ""
    if name == "epochs":
        why = (
            f" (a {saved.schedule} schedule has a fixed length; --epochs may change for the "
            "step and constant schedules)"
        )
    elif name == "lr":
        why = " (--lr may change only to rescue a run that diverged)"
    return (
        f"expected {flag} {_shown(old)} as saved in {run_dir}, received {flag} {_shown(new)}{why}"
    )


def _shown(value: Any) -> str:
    if isinstance(value, bool):  # a switch (--strict, --sync-bn)
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    if value is None:
        return "(unset)"
    return str(value)
