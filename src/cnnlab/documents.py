"""The JSON documents of result records: a dataclass's fields by name, in order.

A record's ``to_dict()`` (``cnnlab evaluate --json``, ``cnnlab recipes --json``, the explorer's
JSON API) starts from :func:`field_values` and overrides or adds the values that need
converting (tuples to lists, integer keys to strings) or computing (a property); keys keep
the order given, which is the order the JSON prints.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def field_values(record: Any, *names: str) -> dict[str, Any]:
    """``{name: record.<name>}`` for ``names``, in that order; without names, for every field of
    the dataclass ``record`` in declaration order. Values are not copied (unlike
    :func:`dataclasses.asdict`, which copies them deeply and recurses into dataclasses)."""
    chosen = names or tuple(f.name for f in fields(record))
    return {name: getattr(record, name) for name in chosen}
