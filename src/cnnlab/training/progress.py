"""A per-epoch progress bar (tqdm), shown only on a terminal or when asked."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class EpochProgress:
    """Context manager wrapping a tqdm bar over an epoch's steps; a no-op when disabled."""

    def __init__(self, total: int, done: int, epoch: int, epochs: int, enabled: bool) -> None:
        self.bar = (
            tqdm(
                total=total,
                initial=done,
                desc=f"epoch {epoch}/{epochs}",
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
                mininterval=0.25,
            )
            if enabled
            else None
        )

    def update(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()
