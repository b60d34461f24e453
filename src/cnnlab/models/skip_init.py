"""Building a network whose weights are about to be replaced, without initialising them.

Loading a checkpoint builds the network it names and then gives it the checkpoint's weights.
The constructor's random initialisation is wasted work that grows with the network: VGG's 138M
weights take seconds to draw, twice (``nn.Linear`` draws its defaults, then VGG draws its
own). Inside :func:`skip_init` the fills that initialisation consists of (``uniform_``,
``normal_``, ``fill_``, ``zero_`` and ``nn.init``'s functions that dispatch on their own) leave
the freshly allocated tensors as they are; shapes, dtypes and every other computation are
untouched. The values are then undefined: only a caller that overwrites every tensor (a strict
``load_state_dict`` of every parameter and buffer) may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

#: The in-place fills of initialisation, as ``__torch_function__`` sees them.
FILLS: frozenset[Callable[..., Any]] = frozenset(
    {
        torch.Tensor.uniform_,
        torch.Tensor.normal_,
        torch.Tensor.fill_,
        torch.Tensor.zero_,
        nn.init.uniform_,
        nn.init.normal_,
        nn.init.constant_,
        nn.init.kaiming_uniform_,
    }
)


class skip_init(TorchFunctionMode):  # noqa: N801 (used like a function: ``with skip_init():``)
    """Within this context, initialisation fills return their tensor unchanged (see the
    module docstring)."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func in FILLS:  # the tensor: ``self`` of a method, ``tensor=`` of nn.init's
            return args[0] if args else (kwargs or {})["tensor"]
        return func(*args, **(kwargs or {}))
